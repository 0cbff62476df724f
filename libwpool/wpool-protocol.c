/* wpool-protocol.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wpool-error.h"
#include "wpool-protocol-private.h"

/* Frames up to this size are checked to be in normal form. */
#define WPOOL_FRAME_CHECKED_SIZE 4096

typedef struct
{
  guint32 kind;
  guint32 reserved;
  guint64 size;
} FrameHeader;

static const char *
frame_type_string (WpoolFrameKind kind)
{
  switch (kind)
    {
    case WPOOL_FRAME_RUN_CHUNK: return "(uusuv)";
    case WPOOL_FRAME_RESULTS:   return "(uvat)";
    case WPOOL_FRAME_ERROR:     return "(usis)";
    case WPOOL_FRAME_SETUP:     return "(ua(ssss)s)";
    case WPOOL_FRAME_READY:     return "(s)";
    case WPOOL_FRAME_FORK_WORKER: return "(ua(ssss))";
    case WPOOL_FRAME_STARTED:   return "(i)";
    case WPOOL_FRAME_REAP:      return "(i)";
    case WPOOL_FRAME_REAPED:    return "(i)";
    case WPOOL_FRAME_SHARED_MEMORY: return "(t)";
    case WPOOL_FRAME_EXIT:      return "(s)";
    case WPOOL_FRAME_EXIT_RESULT: return "(v)";
    case WPOOL_FRAME_TRANSFER:  return "(t)";
    default:                    return NULL;
    }
}

static gboolean
socket_failed (GError     **error,
               const char  *what)
{
  int errsv = errno;

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               "Cannot %s the worker socket: %s", what, g_strerror (errsv));
  return FALSE;
}

/* A watch over this thread's socket I/O while a worker starts: each read
 * and write waits for the socket, the cancellable or the deadline, so that
 * a helper that never answers, or a task module whose constructor blocks,
 * cannot hold the pool forever. */
typedef struct
{
  GCancellable *cancellable;
  /* Each time the socket is ready, the deadline moves @timeout on: a
   * start that moves data (a big dataset to a slow worker) goes on. */
  gint64        timeout;
  gint64        deadline;
  /* Only a start is watched, not the reaping around it. */
  gboolean      armed;
  /* Once cancelled, how long an answer on its way is still waited for. */
  gint64        grace_end;
} Watch;

/* A start cancelled as its answer was coming (a fork server replying
 * with a new worker's pid) is let finish: killing the process that was
 * about to answer costs far more than the wait. */
#define CANCEL_GRACE_USEC (100 * G_TIME_SPAN_MILLISECOND)

static GPrivate current_watch = G_PRIVATE_INIT (g_free);

/* Sets the watch of this thread's socket I/O until
 * wpool_frame_watch_end(): while armed, I/O fails with
 * %G_IO_ERROR_CANCELLED once @cancellable is, and with
 * %WPOOL_ERROR_TIMED_OUT past the deadline it is armed with. */
void
wpool_frame_watch_begin (GCancellable *cancellable)
{
  Watch *watch = g_private_get (&current_watch);

  if (watch == NULL)
    g_private_set (&current_watch, (watch = g_new0 (Watch, 1)));

  *watch = (Watch) { cancellable, 0, 0, FALSE, 0 };
}

/* Watches what follows on this thread until disarmed: it fails once
 * @timeout µs (0 for no limit) pass with no I/O on the socket; with no
 * watch begun, only then. */
void
wpool_frame_watch_arm (gint64 timeout)
{
  Watch *watch = g_private_get (&current_watch);

  if (watch == NULL)
    g_private_set (&current_watch, (watch = g_new0 (Watch, 1)));

  watch->timeout = timeout;
  watch->deadline = timeout > 0 ? g_get_monotonic_time () + timeout : 0;
  watch->armed = TRUE;
  watch->grace_end = 0;
}

void
wpool_frame_watch_disarm (void)
{
  Watch *watch = g_private_get (&current_watch);

  if (watch != NULL)
    watch->armed = FALSE;
}

void
wpool_frame_watch_end (void)
{
  Watch *watch = g_private_get (&current_watch);

  if (watch != NULL)
    *watch = (Watch) { NULL, 0, 0, FALSE, 0 };
}

/* The cancellable this thread's I/O is watched for, if any. */
GCancellable *
wpool_frame_watch_get_cancellable (void)
{
  Watch *watch = g_private_get (&current_watch);

  return watch != NULL ? watch->cancellable : NULL;
}

static Watch *
get_watch (void)
{
  Watch *watch = g_private_get (&current_watch);

  return watch != NULL && watch->armed && (watch->cancellable != NULL || watch->deadline > 0) ? watch : NULL;
}

/* Under a watch, waits until @fd is ready for @events: FALSE with @error
 * set when the watch ends the wait first. */
static gboolean
watch_wait (Watch   *watch,
            int      fd,
            gushort  events,
            GError **error)
{
  GPollFD fds[2] = { { fd, events | G_IO_HUP | G_IO_ERR, 0 } };
  gboolean cancellable_fd = g_cancellable_make_pollfd (watch->cancellable, &fds[1]);
  gboolean ret = FALSE;

  for (;;)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 deadline = watch->deadline;
      gint timeout_ms = -1;

      if (g_cancellable_is_cancelled (watch->cancellable))
        {
          if (watch->grace_end == 0)
            watch->grace_end = now + CANCEL_GRACE_USEC;
          if (now >= watch->grace_end)
            {
              g_cancellable_set_error_if_cancelled (watch->cancellable, error);
              break;
            }
          deadline = deadline > 0 ? MIN (deadline, watch->grace_end) : watch->grace_end;
        }

      if (deadline > 0)
        {
          gint64 left = deadline - now;

          if (left <= 0)
            {
              g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                                   WPOOL_FRAME_START_TIMED_OUT);
              break;
            }
          timeout_ms = (gint)MIN ((left + 999) / 1000, G_MAXINT);
        }

      /* Cancelled: the cancellable's fd stays readable, so only the
       * socket and the time are waited for. */
      if (g_poll (fds, cancellable_fd && watch->grace_end == 0 ? 2 : 1, timeout_ms) < 0 && errno == EINTR)
        continue;

      if (fds[0].revents != 0)
        {
          if (watch->timeout > 0)
            watch->deadline = g_get_monotonic_time () + watch->timeout;
          ret = TRUE;
          break;
        }
    }

  if (cancellable_fd)
    g_cancellable_release_fd (watch->cancellable);

  return ret;
}

/* Writes every byte of @iov: in one sendmsg() as long as the socket takes
 * them, so that the reader wakes once for a small frame, not once for each
 * part. Consumes @iov. */
static gboolean
write_iov (int           fd,
           struct iovec *iov,
           gsize         n_iov,
           GError      **error)
{
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n_iov };
  Watch *watch = get_watch ();

  while (msg.msg_iovlen > 0 && msg.msg_iov[0].iov_len == 0)
    msg.msg_iov++, msg.msg_iovlen--;

  while (msg.msg_iovlen > 0)
    {
      /* MSG_NOSIGNAL: a dead peer is an error here, not a SIGPIPE. */
      gssize n = sendmsg (fd, &msg, MSG_NOSIGNAL | (watch ? MSG_DONTWAIT : 0));

      if (n < 0 && errno == EINTR)
        continue;

      if (n < 0 && errno == EAGAIN && watch != NULL)
        {
          if (!watch_wait (watch, fd, G_IO_OUT, error))
            return FALSE;
          continue;
        }

      if (n < 0)
        return socket_failed (error, "write to");

      while (msg.msg_iovlen > 0 && (gsize)n >= msg.msg_iov[0].iov_len)
        {
          n -= msg.msg_iov[0].iov_len;
          msg.msg_iov++;
          msg.msg_iovlen--;
        }
      if (n > 0)
        {
          msg.msg_iov[0].iov_base = (guint8 *)msg.msg_iov[0].iov_base + n;
          msg.msg_iov[0].iov_len -= n;
        }
    }

  return TRUE;
}

static gboolean
write_frame (int                fd,
             const FrameHeader *header,
             gconstpointer      data,
             gsize              size,
             GError           **error)
{
  struct iovec iov[2] = { { (gpointer)header, sizeof *header }, { (gpointer)data, size } };

  return write_iov (fd, iov, G_N_ELEMENTS (iov), error);
}

/* Reads exactly @size bytes; FALSE with no error on end of file before
 * the first byte. A file descriptor passed along is stored in @passed_fd
 * when given, else closed. */
static gboolean
read_all (int       fd,
          gpointer  data,
          gsize     size,
          int      *passed_fd,
          GError  **error)
{
  guint8 *p = data;
  gsize done = 0;
  Watch *watch = get_watch ();

  while (done < size)
    {
      union {
        struct cmsghdr header;
        char buffer[CMSG_SPACE (sizeof (int))];
      } control;
      struct iovec iov = { p + done, size - done };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = &control, .msg_controllen = sizeof control };
      gssize n;

      if (watch != NULL && !watch_wait (watch, fd, G_IO_IN, error))
        return FALSE;

      n = recvmsg (fd, &msg, MSG_CMSG_CLOEXEC);

      if (n < 0 && errno == EINTR)
        continue;

      if (n < 0)
        return socket_failed (error, "read from");

      for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
          {
            int received;

            memcpy (&received, CMSG_DATA (cmsg), sizeof received);
            if (passed_fd != NULL && *passed_fd < 0)
              *passed_fd = received;
            else
              close (received);
          }

      if (n == 0)
        {
          if (done > 0)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                         "The worker socket closed in the middle of a frame");
          return FALSE;
        }

      done += n;
    }

  return TRUE;
}

/* A frame of raw data, such as the shared objects, written from where
 * they are: no copy. */
gboolean
wpool_frame_write_data (int             fd,
                        WpoolFrameKind  kind,
                        gconstpointer   data,
                        guint64         size,
                        GError        **error)
{
  FrameHeader header = { kind, 0, size };

  if (size > WPOOL_FRAME_MAX_SIZE)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "A frame of %" G_GUINT64_FORMAT " bytes is too large to send to a worker "
                   "(at most %" G_GUINT64_FORMAT "): use smaller chunks",
                   size, WPOOL_FRAME_MAX_SIZE);
      return FALSE;
    }

  return write_frame (fd, &header, data, size, error);
}

gboolean
wpool_frame_write (int              fd,
                   WpoolFrameKind   kind,
                   GVariant        *payload,
                   GError         **error)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (payload);

  g_assert (g_variant_is_of_type (sunk, G_VARIANT_TYPE (frame_type_string (kind))));

  return wpool_frame_write_data (fd, kind, g_variant_get_data (sunk), g_variant_get_size (sunk), error);
}

/* A frame with @passed_fd passed along (SCM_RIGHTS), as the fork server
 * gets each worker's socket. */
gboolean
wpool_frame_write_fd (int              fd,
                      WpoolFrameKind   kind,
                      GVariant        *payload,
                      int              passed_fd,
                      GError         **error)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (payload);
  FrameHeader header = { kind, 0, g_variant_get_size (sunk) };
  union {
    struct cmsghdr header;
    char buffer[CMSG_SPACE (sizeof (int))];
  } control;
  struct iovec iov = { &header, sizeof header };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
  gssize n;

  g_assert (g_variant_is_of_type (sunk, G_VARIANT_TYPE (frame_type_string (kind))));

  memset (&control, 0, sizeof control);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &passed_fd, sizeof (int));

  while ((n = sendmsg (fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
    ;

  if (n < 0)
    return socket_failed (error, "write to");

  /* The descriptor went with the first byte; the rest is plain data. */
  {
    struct iovec rest[2] = { { (guint8 *)&header + n, sizeof header - n },
                             { (gpointer)g_variant_get_data (sunk), header.size } };

    return write_iov (fd, rest, G_N_ELEMENTS (rest), error);
  }
}

/* Whether a frame's header, as it came from a socket or another
 * transport, names a frame libwpool could have sent. */
gboolean
wpool_frame_check_header (guint32   kind,
                          guint64   size,
                          GError  **error)
{
  if (kind < WPOOL_FRAME_RUN_CHUNK || kind > WPOOL_FRAME_LAST || size > WPOOL_FRAME_MAX_SIZE)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Received a bad frame (kind %u, %" G_GUINT64_FORMAT " bytes)", kind, size);
      return FALSE;
    }

  return TRUE;
}

/* How much of a frame's data is allocated before any of it arrived. */
#define FRAME_FIRST_READ ((gsize)1 << 20)

static GBytes *
read_data (int              fd,
           WpoolFrameKind  *kind,
           int             *passed_fd,
           GError         **error)
{
  FrameHeader header;
  gpointer data = NULL;
  gsize capacity;
  gsize done = 0;

  if (!read_all (fd, &header, sizeof header, passed_fd, error))
    return NULL;

  if (!wpool_frame_check_header (header.kind, header.size, error))
    return NULL;

  /* The buffer grows as the data arrives, doubling: a header alone does
   * not make this process allocate the gigabytes it claims (found by
   * fuzz-frames). */
  capacity = MIN (header.size, FRAME_FIRST_READ);
  for (;;)
    {
      gpointer grown = g_try_realloc (data, MAX (capacity, 1));

      if (grown == NULL)
        {
          g_free (data);
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "Cannot allocate %" G_GUINT64_FORMAT " bytes for a frame", header.size);
          return NULL;
        }
      data = grown;

      if (!read_all (fd, (guint8 *)data + done, capacity - done, NULL, error))
        {
          g_free (data);
          if (error != NULL && *error == NULL)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                         "The worker socket closed in the middle of a frame");
          return NULL;
        }

      if ((done = capacity) == header.size)
        break;
      capacity = MIN (capacity * 2, header.size);
    }

  *kind = header.kind;
  return g_bytes_new_take (data, header.size);
}

/* The next frame's data, or NULL: with @error set on a bad frame, without
 * on a clean end of file. */
GBytes *
wpool_frame_read_data (int              fd,
                       WpoolFrameKind  *kind,
                       GError         **error)
{
  return read_data (fd, kind, NULL, error);
}

/* The next frame's payload, of the type its kind fixes, and the file
 * descriptor passed along if any (else -1), or NULL: with @error set on a
 * bad frame, without on a clean end of file. */
GVariant *
wpool_frame_read_fd (int              fd,
                     WpoolFrameKind  *kind,
                     int             *passed_fd,
                     GError         **error)
{
  g_autoptr(GBytes) bytes = NULL;

  if (passed_fd != NULL)
    *passed_fd = -1;

  if (!(bytes = read_data (fd, kind, passed_fd, error)))
    return NULL;

  return wpool_frame_decode (*kind, bytes, error);
}

/* The payload of a frame of @kind whose data, as received, is @bytes: of
 * the type its kind fixes, or %NULL with @error set. */
GVariant *
wpool_frame_decode (WpoolFrameKind   kind,
                    GBytes          *bytes,
                    GError         **error)
{
  g_autoptr(GVariant) payload = NULL;
  const char *type_string;

  if (!(type_string = frame_type_string (kind)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Received a frame of raw data (kind %u) where a message belongs", kind);
      return NULL;
    }

  /* Not trusted: a small frame that is not in normal form was not written
   * by libwpool, and is refused. Checking a chunk of items or results
   * would visit every element (23 ns an item for a million doubles):
   * GVariant reads those safely as they are, as untrusted data. */
  payload = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type_string), bytes, FALSE));
  if (g_bytes_get_size (bytes) <= WPOOL_FRAME_CHECKED_SIZE && !g_variant_is_normal_form (payload))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Received a malformed frame (kind %u, %" G_GSIZE_FORMAT " bytes)",
                   kind, g_bytes_get_size (bytes));
      return NULL;
    }

  return g_steal_pointer (&payload);
}

GVariant *
wpool_frame_read (int              fd,
                  WpoolFrameKind  *kind,
                  GError         **error)
{
  return wpool_frame_read_fd (fd, kind, NULL, error);
}

/* Sends a request, with @passed_fd unless it is -1, and reads its reply,
 * which must be of @reply_kind. */
GVariant *
wpool_frame_call (int              fd,
                  WpoolFrameKind   kind,
                  GVariant        *payload,
                  int              passed_fd,
                  WpoolFrameKind   reply_kind,
                  GError         **error)
{
  g_autoptr(GVariant) reply = NULL;
  WpoolFrameKind kind_read = 0;

  if (!(passed_fd >= 0 ? wpool_frame_write_fd (fd, kind, payload, passed_fd, error)
                       : wpool_frame_write (fd, kind, payload, error)))
    return NULL;

  if (!(reply = wpool_frame_read (fd, &kind_read, error)) || kind_read != reply_kind)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "The worker process ended, or answered with a frame of kind %u instead of %u",
                     kind_read, reply_kind);
      return NULL;
    }

  return g_steal_pointer (&reply);
}

static gboolean
fd_port_write (WpoolFramePort  *port,
               WpoolFrameKind   kind,
               GVariant        *payload,
               GError         **error)
{
  return wpool_frame_write (port->fd, kind, payload, error);
}

static GVariant *
fd_port_read (WpoolFramePort  *port,
              WpoolFrameKind  *kind,
              int             *passed_fd,
              GError         **error)
{
  return wpool_frame_read_fd (port->fd, kind, passed_fd, error);
}

/* A port over the socket @fd. */
void
wpool_frame_port_init_fd (WpoolFramePort *port,
                          int             fd)
{
  *port = (WpoolFramePort) { fd_port_write, fd_port_read, fd };
}

/* Sends a frame on @port; @payload is consumed if floating. */
gboolean
wpool_frame_port_write (WpoolFramePort  *port,
                        WpoolFrameKind   kind,
                        GVariant        *payload,
                        GError         **error)
{
  return port->write (port, kind, payload, error);
}

/* The next frame on @port, as wpool_frame_read_fd(). */
GVariant *
wpool_frame_port_read (WpoolFramePort  *port,
                       WpoolFrameKind  *kind,
                       int             *passed_fd,
                       GError         **error)
{
  if (passed_fd != NULL)
    *passed_fd = -1;

  return port->read (port, kind, passed_fd, error);
}
