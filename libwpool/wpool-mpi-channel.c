/* wpool-mpi-channel.c: frames between MPI ranks.
 *
 * The frames of wpool-protocol.c (the same kinds, the same GVariant
 * payloads, checked the same way) as MPI messages on a communicator. A
 * frame of up to WPOOL_MPI_FRAME_INLINE_SIZE bytes is one message, a
 * 16-byte header then its data. A larger one is the header alone, then
 * its data in pieces of at most 1 GiB (MPI counts are ints), sent from
 * the GVariant's own memory and received into one buffer that becomes the
 * payload: no copy on either side.
 *
 * Nothing waits inside MPI. Open MPI 4.1 never reports a dead peer: it
 * aborts the whole job, or under `--enable-recovery` leaves a receive
 * waiting for ever (doc/architecture.md, "MPI"). So every wait polls its
 * requests, with a deadline and a cancellable, backing off from spinning
 * to sleeps of up to a millisecond. A send or receive given up on that
 * way cannot be taken back from MPI: its request and buffer are kept
 * until MPI completes it, and freed then.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "wpool-error.h"
#include "wpool-mpi-channel-private.h"
#include "wpool-private.h"

typedef struct
{
  guint32 kind;
  guint32 reserved;
  guint64 size;
} Header;

/* The largest piece of a frame's data in one message: 1 GiB, or less
 * for tests (WPOOL_MPI_TEST_PIECE_SIZE), to cross many pieces cheaply. */
static gsize
piece_size (void)
{
  static gsize size;

  if (g_once_init_enter (&size))
    {
      const char *test = g_getenv ("WPOOL_MPI_TEST_PIECE_SIZE");
      guint64 value = test != NULL ? g_ascii_strtoull (test, NULL, 10) : 0;

      g_once_init_leave (&size, value > 0 && value < ((gsize)1 << 30) ? value : (gsize)1 << 30);
    }

  return size;
}

/* Requests given up on, with what their buffers belong to. */
typedef struct
{
  MPI_Request    *requests;
  int             n_requests;
  gpointer        owner;
  GDestroyNotify  owner_free;
} Abandoned;

static GMutex abandoned_lock;
static GPtrArray *abandoned;

static void
abandoned_free (Abandoned *self)
{
  g_free (self->requests);
  if (self->owner_free != NULL)
    self->owner_free (self->owner);
  g_free (self);
}

/* Frees what MPI has completed since it was given up on. */
static void
reap_abandoned (void)
{
  g_mutex_lock (&abandoned_lock);
  for (guint i = 0; abandoned != NULL && i < abandoned->len;)
    {
      Abandoned *self = g_ptr_array_index (abandoned, i);
      int done = 0;

      MPI_Testall (self->n_requests, self->requests, &done, MPI_STATUSES_IGNORE);
      if (done)
        g_ptr_array_remove_index_fast (abandoned, i);
      else
        i++;
    }
  g_mutex_unlock (&abandoned_lock);
}

static void
abandon (MPI_Request    *requests,
         int             n_requests,
         gpointer        owner,
         GDestroyNotify  owner_free)
{
  Abandoned *self = g_new (Abandoned, 1);

  *self = (Abandoned) { g_memdup2 (requests, n_requests * sizeof *requests), n_requests, owner, owner_free };
  g_mutex_lock (&abandoned_lock);
  if (abandoned == NULL)
    abandoned = g_ptr_array_new_with_free_func ((GDestroyNotify) abandoned_free);
  g_ptr_array_add (abandoned, self);
  g_mutex_unlock (&abandoned_lock);
}

/* Whether to stop waiting, with @error set: cancelled, or past @deadline
 * (monotonic µs; -1 for none). */
static gboolean
must_stop (gint64         deadline,
           GCancellable  *cancellable,
           const char    *what,
           int            rank,
           GError       **error)
{
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return TRUE;

  if (deadline >= 0 && g_get_monotonic_time () >= deadline)
    {
      if (rank == MPI_ANY_SOURCE)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT, "No rank %s in time", what);
      else
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT, "Rank %d did not %s in time", rank, what);
      return TRUE;
    }

  return FALSE;
}

/* Spins first, for a prompt answer (MPI makes progress in each test, as
 * its own blocking calls do by spinning); yields after 100 µs of waiting;
 * sleeps after 2 ms, a tenth of the time waited so far, up to 1 ms. A
 * sleep from the first round cost a 1 MiB round trip 3× plain MPI's. */
static void
back_off (gint64 *since)
{
  gint64 now = g_get_monotonic_time ();
  gint64 waited;

  if (*since == 0)
    *since = now;
  waited = now - *since;

  if (waited < 100)
    return;
  if (waited < 2000)
    g_thread_yield ();
  else
    g_usleep (MIN (waited / 10, 1000));
}

/* Polls @requests until all complete: TRUE. Else gives them up, with
 * @owner, which their buffers belong to, and @owner_free, to free it
 * once MPI is done (see above). */
static gboolean
wait_all (MPI_Request    *requests,
          int             n_requests,
          gpointer        owner,
          GDestroyNotify  owner_free,
          gint64          deadline,
          GCancellable   *cancellable,
          const char     *what,
          int             rank,
          GError        **error)
{
  gint64 since = 0;

  for (;;)
    {
      int done = 0;

      if (MPI_Testall (n_requests, requests, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "MPI failed as rank %d was to %s", rank, what);
          abandon (requests, n_requests, owner, owner_free);
          return FALSE;
        }
      if (done)
        return TRUE;
      if (must_stop (deadline, cancellable, what, rank, error))
        {
          abandon (requests, n_requests, owner, owner_free);
          return FALSE;
        }
      back_off (&since);
    }
}

/* Posts a message of @size bytes at @data for each piece of them. */
static int
post_pieces (gboolean      sending,
             gpointer      data,
             gsize         size,
             MPI_Comm      comm,
             int           rank,
             MPI_Request  *requests)
{
  gsize piece = piece_size ();
  int n = 0;

  for (gsize done = 0; done < size; done += piece, n++)
    {
      int count = (int) MIN (piece, size - done);

      if (sending)
        MPI_Isend ((guint8 *)data + done, count, MPI_BYTE, rank, WPOOL_MPI_TAG_PIECE, comm, &requests[n]);
      else
        MPI_Irecv ((guint8 *)data + done, count, MPI_BYTE, rank, WPOOL_MPI_TAG_PIECE, comm, &requests[n]);
    }

  return n;
}

/* A large frame on its way: its header and its payload. */
typedef struct
{
  Header    header;
  GVariant *payload;
} Outgoing;

static void
outgoing_free (Outgoing *self)
{
  g_variant_unref (self->payload);
  g_free (self);
}

/* Sends a frame of @kind with @payload (consumed if floating) to @rank. */
gboolean
wpool_mpi_frame_send (MPI_Comm         comm,
                      int              rank,
                      WpoolFrameKind   kind,
                      GVariant        *payload,
                      gint64           deadline,
                      GCancellable    *cancellable,
                      GError         **error)
{
  GVariant *sunk = g_variant_ref_sink (payload);
  gsize size = g_variant_get_size (sunk);
  Header header = { kind, 0, size };
  g_autofree MPI_Request *requests = NULL;
  Outgoing *outgoing;
  int n_requests;

  reap_abandoned ();

  if (size <= WPOOL_MPI_FRAME_INLINE_SIZE)
    {
      guint8 *message = g_malloc (sizeof header + size);
      MPI_Request request;

      memcpy (message, &header, sizeof header);
      g_variant_store (sunk, message + sizeof header);
      g_variant_unref (sunk);
      MPI_Isend (message, (int)(sizeof header + size), MPI_BYTE, rank, WPOOL_MPI_TAG_FRAME, comm, &request);
      if (!wait_all (&request, 1, message, g_free, deadline, cancellable, "receive a frame", rank, error))
        return FALSE;

      g_free (message);
      return TRUE;
    }

  /* The header, then the data from the GVariant's own memory. */
  outgoing = g_new (Outgoing, 1);
  *outgoing = (Outgoing) { header, sunk };
  requests = g_new (MPI_Request, 2 + size / piece_size ());
  MPI_Isend (&outgoing->header, sizeof header, MPI_BYTE, rank, WPOOL_MPI_TAG_FRAME, comm, &requests[0]);
  n_requests = 1 + post_pieces (TRUE, (gpointer) g_variant_get_data (sunk), size, comm, rank, requests + 1);
  if (!wait_all (requests, n_requests, outgoing, (GDestroyNotify) outgoing_free, deadline, cancellable,
                 "receive a frame", rank, error))
    return FALSE;

  outgoing_free (outgoing);
  return TRUE;
}

/* Reads the message @message (of @count bytes) and drops it. */
static void
drop_message (MPI_Message *message,
              int          count)
{
  g_autofree guint8 *data = g_try_malloc (MAX (count, 1));
  guint8 scratch[sizeof (Header)];

  /* Too large to hold: truncated, an error MPI returns and we drop too. */
  if (data == NULL)
    MPI_Mrecv (scratch, sizeof scratch, MPI_BYTE, message, MPI_STATUS_IGNORE);
  else
    MPI_Mrecv (data, count, MPI_BYTE, message, MPI_STATUS_IGNORE);
}

/* The next frame from @rank (or MPI_ANY_SOURCE; *@source says which):
 * its payload, of the type its kind fixes; or %NULL, with @error set, or
 * without once the rank ended the conversation (wpool_mpi_frame_end()).
 * A message that is not a frame libwpool sends is read and refused. */
GVariant *
wpool_mpi_frame_recv (MPI_Comm          comm,
                      int               rank,
                      int              *source,
                      WpoolFrameKind   *kind,
                      gint64            deadline,
                      GCancellable     *cancellable,
                      GError          **error)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autofree MPI_Request *requests = NULL;
  MPI_Message message;
  MPI_Status status;
  Header header;
  guint8 *data;
  int found = 0;
  int count = 0;
  gint64 since = 0;
  int n_requests;

  reap_abandoned ();

  /* Probed, not received: no buffer waits in MPI for a frame that may
   * never come. Any tag, to take messages in their order: pieces are
   * never seen here, a receive for each is posted with their header. */
  for (;;)
    {
      /* Under MPI_ERRORS_RETURN a broken call returns: it would never find. */
      if (MPI_Improbe (rank, MPI_ANY_TAG, comm, &found, &message, &status) != MPI_SUCCESS)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "MPI failed as this rank waited for a frame");
          return NULL;
        }
      if (found)
        break;
      if (must_stop (deadline, cancellable, "send a frame", rank, error))
        return NULL;
      back_off (&since);
    }

  MPI_Get_count (&status, MPI_BYTE, &count);
  if (source != NULL)
    *source = status.MPI_SOURCE;
  if (status.MPI_TAG == WPOOL_MPI_TAG_END)
    {
      drop_message (&message, count);
      return NULL;
    }
  if (status.MPI_TAG != WPOOL_MPI_TAG_FRAME)
    {
      drop_message (&message, count);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Received a message of tag %d from rank %d, not a frame", status.MPI_TAG, status.MPI_SOURCE);
      return NULL;
    }
  if (count < (int) sizeof header || (gsize) count > sizeof header + WPOOL_MPI_FRAME_INLINE_SIZE)
    {
      drop_message (&message, count);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Received a bad frame from rank %d (a message of %d bytes)", status.MPI_SOURCE, count);
      return NULL;
    }

  /* Matched: the data is here, or on its way. */
  data = g_malloc (count);
  MPI_Mrecv (data, count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
  memcpy (&header, data, sizeof header);

  /* Small data comes with the header; large data only after it. */
  if (!WPOOL_PRIVATE_CALL (frame_check_header) (header.kind, header.size, error) ||
      (count == (int) sizeof header ? header.size != 0 && header.size <= WPOOL_MPI_FRAME_INLINE_SIZE
                                    : (guint64) count != sizeof header + header.size))
    {
      g_free (data);
      if (error != NULL && *error == NULL)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "Received a bad frame from rank %d (kind %u, %" G_GUINT64_FORMAT " bytes in a message of %d)",
                     status.MPI_SOURCE, header.kind, header.size, count);
      return NULL;
    }
  *kind = header.kind;

  if (count != (int) sizeof header || header.size == 0)
    {
      /* Still aligned for GVariant: g_malloc()'s alignment, plus 16. */
      g_autoptr(GBytes) whole = g_bytes_new_take (data, count);

      bytes = g_bytes_new_from_bytes (whole, sizeof header, header.size);
    }
  else
    {
      g_free (data);
      if (!(data = g_try_malloc (header.size)))
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "Cannot allocate %" G_GUINT64_FORMAT " bytes for a frame", header.size);
          return NULL;
        }
      requests = g_new (MPI_Request, 1 + header.size / piece_size ());
      n_requests = post_pieces (FALSE, data, header.size, comm, status.MPI_SOURCE, requests);
      /* Not cancelled once the header is read: the sender is sending the
       * rest, and a frame given up on half-way would be neither read
       * nor answered again. The deadline still holds. */
      if (!wait_all (requests, n_requests, data, g_free, deadline, NULL, "send a frame",
                     status.MPI_SOURCE, error))
        return NULL;
      bytes = g_bytes_new_take (data, header.size);
    }

  return WPOOL_PRIVATE_CALL (frame_decode) (header.kind, bytes, error);
}

/* Ends the conversation with @rank: its next receive returns %NULL
 * without an error, as a socket's end of file. */
gboolean
wpool_mpi_frame_end (MPI_Comm       comm,
                     int            rank,
                     gint64         deadline,
                     GCancellable  *cancellable,
                     GError       **error)
{
  MPI_Request request;

  MPI_Isend (NULL, 0, MPI_BYTE, rank, WPOOL_MPI_TAG_END, comm, &request);

  return wait_all (&request, 1, NULL, NULL, deadline, cancellable, "receive the end", rank, error);
}

/* A worker's port to its pool's rank: it waits for the pool as long as
 * it takes (a pool that is gone ends the job, under Open MPI 4.1). */
typedef struct
{
  WpoolFramePort parent;
  MPI_Comm       comm;
  int            rank;
} MpiPort;

static gboolean
mpi_port_write (WpoolFramePort  *port,
                WpoolFrameKind   kind,
                GVariant        *payload,
                GError         **error)
{
  MpiPort *self = (MpiPort *) port;

  return wpool_mpi_frame_send (self->comm, self->rank, kind, payload, -1, NULL, error);
}

static GVariant *
mpi_port_read (WpoolFramePort  *port,
               WpoolFrameKind  *kind,
               int             *passed_fd,
               GError         **error)
{
  MpiPort *self = (MpiPort *) port;

  return wpool_mpi_frame_recv (self->comm, self->rank, NULL, kind, -1, NULL, error);
}

/* A port to @rank of @comm, to free with g_free(). */
WpoolFramePort *
wpool_mpi_frame_port_new (MPI_Comm comm,
                          int      rank)
{
  MpiPort *self = g_new0 (MpiPort, 1);

  self->parent.write = mpi_port_write;
  self->parent.read = mpi_port_read;
  self->parent.fd = -1;
  self->comm = comm;
  self->rank = rank;

  return &self->parent;
}
