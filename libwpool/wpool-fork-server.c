/* wpool-fork-server.c: a process that forks a pool's workers on request,
 * both its sides.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wpool-error.h"
#include "wpool-fork-server-private.h"
#include "wpool-protocol-private.h"
#include "wpool-serve-private.h"
#include "wpool-task-private.h"

/* The server talks to one pool over its control socket: FORK_WORKER, with
 * the worker's socket passed along, answered with the worker's pid, and
 * REAP, answered with its wait status. It forks each worker as
 * wpool_process_fork() does: the worker keeps its socket only, not the
 * control socket nor another worker's, and dies with the server through
 * its lifeline. The server is single-threaded, so that forking it is
 * always safe, however many threads the pool's process runs. */

typedef struct
{
  WpoolForkedWorker *forked;
  int                fd;
} ForkedMain;

static int
forked_worker_main (gpointer data)
{
  ForkedMain *child = data;

  return wpool_serve (child->forked->worker, child->forked->task, child->fd, child->forked->running);
}

/* Forks worker @id on @worker_fd: its pid, or 0 if @prepare cannot make
 * it, or minus an errno. */
static gint32
serve_fork_worker (GVariant               *request,
                   int                     worker_fd,
                   WpoolForkServerPrepare  prepare,
                   gpointer                data,
                   GHashTable             *lifelines)
{
  g_autoptr(GVariant) locations = NULL;
  WpoolForkedWorker forked = { NULL, NULL, NULL };
  ForkedMain child = { &forked, worker_fd };
  int lifeline = -1;
  guint32 id;
  pid_t pid;

  g_variant_get (request, "(u@a(ssss))", &id, &locations);
  if (worker_fd < 0 || !prepare (data, id, locations, &forked))
    return 0;

  pid = wpool_process_fork (worker_fd, forked_worker_main, &child, &lifeline, NULL);
  g_clear_object (&forked.worker);
  g_clear_object (&forked.task);

  if (pid <= 0)
    return -EAGAIN;

  g_hash_table_insert (lifelines, GINT_TO_POINTER (pid), GINT_TO_POINTER (lifeline));
  return pid;
}

/* The server's loop, until the pool closes @control_fd (or sends what it
 * should not): 0. @control_fd must be in wpool-process's registry, for
 * the workers not to keep it. */
int
wpool_fork_server_serve (int                     control_fd,
                         WpoolForkServerPrepare  prepare,
                         gpointer                data)
{
  /* pid → the server's end of the worker's lifeline. */
  g_autoptr(GHashTable) lifelines = g_hash_table_new (NULL, NULL);

  for (;;)
    {
      g_autoptr(GVariant) request = NULL;
      GVariant *reply;
      WpoolFrameKind kind = 0;
      WpoolFrameKind reply_kind;
      int worker_fd = -1;

      if (!(request = wpool_frame_read_fd (control_fd, &kind, &worker_fd, NULL)))
        break;

      if (kind == WPOOL_FRAME_FORK_WORKER)
        {
          reply_kind = WPOOL_FRAME_STARTED;
          reply = g_variant_new ("(i)", serve_fork_worker (request, worker_fd, prepare, data, lifelines));
        }
      else if (kind == WPOOL_FRAME_REAP)
        {
          gpointer lifeline;
          gint32 pid;
          int status = 0;

          /* Only a worker of this server: waitpid() of anything else, -1
           * or a process group, would take another child, and the kill()
           * of one that lingers reach every process in reach. */
          g_variant_get (request, "(i)", &pid);
          if (pid > 0 && g_hash_table_steal_extended (lifelines, GINT_TO_POINTER (pid), NULL, &lifeline))
            {
              status = wpool_process_reap (pid);
              wpool_process_close_fd (GPOINTER_TO_INT (lifeline));
            }
          reply_kind = WPOOL_FRAME_REAPED;
          reply = g_variant_new ("(i)", (gint32)status);
        }
      else
        {
          if (worker_fd >= 0)
            close (worker_fd);
          break;
        }

      /* Forked, or not: the server keeps no copy. */
      if (worker_fd >= 0)
        close (worker_fd);

      if (!wpool_frame_write (control_fd, reply_kind, reply, NULL))
        break;
    }

  /* The pool is gone: its workers see their sockets end as well. */
  while (waitpid (-1, NULL, 0) > 0 || errno == EINTR)
    ;

  return 0;
}

struct _WpoolForkServer
{
  gatomicrefcount  ref_count;
  /* For messages: "The fork server", "The FORK template". */
  const char      *name;
  /* One request and its reply at a time. */
  GMutex           lock;
  /* -1 once stopped; read atomically. */
  int              control_fd;
  /* Either a new program, or a fork() of this process and the pool's end
   * of its lifeline. */
  GSubprocess     *subprocess;
  pid_t            pid;
  int              lifeline;
  /* Once stopped for not answering: what happened to it. */
  char            *death;
  /* The program it runs (NULL: libwpool's helper, or a FORK template):
   * another program's task needs another server. */
  char           **program;
};

static WpoolForkServer *
server_new (const char *name,
            int         control_fd)
{
  WpoolForkServer *self = g_new0 (WpoolForkServer, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  self->name = name;
  self->control_fd = control_fd;
  self->lifeline = -1;

  return self;
}

/* A started wpool-worker helper in server mode, on @control_fd: it must
 * still be set up (wpool_process_setup()). */
WpoolForkServer *
wpool_fork_server_new_subprocess (const char  *name,
                                  GSubprocess *subprocess,
                                  int          control_fd)
{
  WpoolForkServer *self = server_new (name, control_fd);

  self->subprocess = g_object_ref (subprocess);
  self->pid = wpool_process_subprocess_pid (subprocess);

  return self;
}

typedef struct
{
  int                     control_fd;
  WpoolForkServerPrepare  prepare;
  gpointer                data;
} ServerMain;

#if defined(__SANITIZE_ADDRESS__)
# define WPOOL_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define WPOOL_ASAN 1
# endif
#endif

/* What a forked server and its workers do with GLib: allocate slices of
 * many sizes, often enough to empty and refill GSlice's per-thread
 * magazines from its global ones, and make and read GVariants of
 * containers, which takes the lock of GVariant's type cache. glibc's
 * malloc() is safe across fork(); AddressSanitizer's allocator is not
 * (GCC 12, clang 14): under it, malloc() too, as often. A lock another
 * thread held when the caller forked stays held here forever: the server
 * hangs in it now, where wpool_fork_server_fork() sees it, rather than in
 * a worker later. */
static void
warm_up (void)
{
  g_autoptr(GPtrArray) blocks = g_ptr_array_new ();
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) first = NULL;
  const char *text = NULL;
  guint32 number = 0;

  for (gsize size = 8; size <= 64 * 1024; size += size / 4)
    {
#ifdef WPOOL_ASAN
      /* More blocks than ASan's cache holds of that size (2 × min (128,
       * 16 KiB / size)), then freed, which drains it. */
      guint n = 2 * CLAMP (16 * 1024 / size, 1, 128) + 1;

      for (guint i = 0; i < n; i++)
        g_ptr_array_add (blocks, g_malloc (size));
      for (guint i = 0; i < n; i++)
        g_free (g_ptr_array_index (blocks, i));
      g_ptr_array_set_size (blocks, 0);
#endif

      if (size > 1024)
        continue;
      for (guint i = 0; i < 64; i++)
        g_ptr_array_add (blocks, g_slice_alloc (size));
      for (guint i = 0; i < blocks->len; i++)
        g_slice_free1 (size, g_ptr_array_index (blocks, i));
      g_ptr_array_set_size (blocks, 0);
    }

  value = g_variant_ref_sink (g_variant_new_parsed ("(uint32 1, [('a', 'b', 'c', 'd')], {'k': <'v'>})"));
  g_variant_get (value, "(u@a(ssss)a{sv})", &number, NULL, NULL);
  list = g_variant_get_child_value (value, 1);
  first = g_variant_get_child_value (list, 0);
  g_variant_get_child (first, 0, "&s", &text);
}

static int
server_main (gpointer data)
{
  ServerMain *server = data;
  char ready = 'R';

  warm_up ();
  if (write (server->control_fd, &ready, 1) != 1)
    return 1;

  return wpool_fork_server_serve (server->control_fd, server->prepare, server->data);
}

/* Where process @pid sleeps (/proc/PID/wchan), or %NULL. */
static char *
process_wchan (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/wchan", (int)pid);
  g_autofree char *wchan = NULL;

  if (!g_file_get_contents (path, &wchan, NULL, NULL) || *wchan == '\0')
    return NULL;

  return g_steal_pointer (&wchan);
}

typedef enum
{
  SERVER_READY,
  SERVER_DEADLOCKED,
  SERVER_FAILED,
} ServerStart;

/* Waits for a forked server to say it is ready. It is single-threaded:
 * asleep in a futex, it waits for a lock that no thread of its will ever
 * release, one held by another thread of the caller's when it forked. */
static ServerStart
wait_for_server (pid_t     pid,
                 int       fd,
                 GError  **error)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  char ready = 0;

  for (;;)
    {
      struct pollfd pfd = { fd, POLLIN, 0 };
      g_autofree char *wchan = NULL;
      int ret = poll (&pfd, 1, 10);

      if (ret > 0)
        {
          ssize_t n = read (fd, &ready, 1);

          if (n == 1 && ready == 'R')
            return SERVER_READY;
          if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "it ended as it started");
          return SERVER_FAILED;
        }
      if (ret < 0 && errno != EINTR)
        {
          int errsv = errno;

          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "%s", g_strerror (errsv));
          return SERVER_FAILED;
        }

      if ((wchan = process_wchan (pid)) != NULL && g_str_has_prefix (wchan, "futex"))
        return SERVER_DEADLOCKED;
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT, "it did not start within 60 s");
          return SERVER_FAILED;
        }
    }
}

/* Kills a forked server that will not serve, reaps it and closes its
 * ends: its wait status. */
static int
discard_server (pid_t pid,
                int   lifeline,
                int   control_fd)
{
  int status;

  kill (pid, SIGKILL);
  status = wpool_process_reap (pid);
  wpool_process_close_fd (lifeline);
  wpool_process_close_fd (control_fd);

  return status;
}

/* Forks a server from the calling thread (wpool_process_fork()), which
 * makes workers with @prepare (@data): what they inherit is this process
 * as it is now. It dies with this process, not with the calling thread. */
WpoolForkServer *
wpool_fork_server_fork (const char              *name,
                        WpoolForkServerPrepare   prepare,
                        gpointer                 data,
                        GError                 **error)
{
  WpoolForkServer *self;
  ServerMain server = { -1, prepare, data };
  ServerStart start = SERVER_DEADLOCKED;
  int lifeline = -1;
  int fds[2] = { -1, -1 };
  pid_t pid = -1;

  /* One that inherited a held lock is forked anew: the thread that held
   * it has let go of it by then, mostly. */
  for (guint attempt = 0; attempt < 10 && start == SERVER_DEADLOCKED; attempt++)
    {
      if (pid > 0)
        {
          discard_server (pid, g_steal_fd (&lifeline), fds[0]);
          g_debug ("%s (pid %d) was forked holding a lock of another thread: forked again", name, (int)pid);
        }

      if (!wpool_process_socketpair (fds, error))
        return NULL;

      server.control_fd = fds[1];
      pid = wpool_process_fork (fds[1], server_main, &server, &lifeline, error);
      wpool_process_close_fd (fds[1]);
      if (pid <= 0)
        {
          wpool_process_close_fd (fds[0]);
          g_prefix_error (error, "%s cannot start: ", name);
          return NULL;
        }

      start = wait_for_server (pid, fds[0], error);
    }

  if (start != SERVER_READY)
    {
      g_autofree char *how = wpool_process_describe_status (discard_server (pid, lifeline, fds[0]));

      if (start == SERVER_DEADLOCKED)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "%s cannot start: forked 10 times, it waited every time for a lock another thread "
                     "of this process held", name);
      else
        g_prefix_error (error, "%s cannot start (%s): ", name, how);
      return NULL;
    }

  self = server_new (name, fds[0]);
  self->pid = pid;
  self->lifeline = lifeline;

  return self;
}

WpoolForkServer *
wpool_fork_server_ref (WpoolForkServer *self)
{
  g_atomic_ref_count_inc (&self->ref_count);

  return self;
}

/* Closes the control socket: the server reaps what is left and exits. It
 * is waited for, and killed if it lingers. Under the lock. */
static void
server_stop_locked (WpoolForkServer *self)
{
  int status;

  if (self->control_fd < 0)
    return;

  wpool_process_close_fd (self->control_fd);
  g_atomic_int_set (&self->control_fd, -1);

  if (self->subprocess != NULL)
    {
      status = wpool_process_reap_subprocess (self->subprocess);
      g_clear_object (&self->subprocess);
    }
  else
    {
      status = wpool_process_reap (self->pid);
      wpool_process_close_fd (g_steal_fd (&self->lifeline));
    }

  if (self->death == NULL)
    {
      g_autofree char *how = wpool_process_describe_status (status);

      self->death = g_strdup_printf ("%s (pid %d) ended: %s", self->name, (int)self->pid, how);
    }
}

void
wpool_fork_server_unref (WpoolForkServer *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  server_stop_locked (self);
  g_mutex_clear (&self->lock);
  g_free (self->death);
  g_strfreev (self->program);
  g_free (self);
}

static gboolean
server_is_running (WpoolForkServer *self)
{
  return g_atomic_int_get (&self->control_fd) >= 0;
}

static gboolean
call_was_stopped (const GError *error)
{
  return g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* One request and its reply. A server that does not answer is stopped:
 * the request fails with what happened to it (or the timeout or
 * cancellation that stopped it), and any after with what happened to it.
 * Takes a floating @request. */
static GVariant *
server_call (WpoolForkServer  *self,
             WpoolFrameKind    kind,
             GVariant         *request,
             int               passed_fd,
             WpoolFrameKind    reply_kind,
             GError          **error)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (request);
  g_autoptr(GError) local_error = NULL;
  GVariant *reply = NULL;

  g_mutex_lock (&self->lock);
  if (self->control_fd >= 0 &&
      !(reply = wpool_frame_call (self->control_fd, kind, sunk, passed_fd, reply_kind, &local_error)))
    {
      /* Where a server that did not answer in time waits says why (a
       * lock inherited held across fork() waits in a futex), before it
       * is stopped. */
      if (g_error_matches (local_error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
        {
          g_autofree char *wchan = process_wchan (self->pid);

          if (wchan != NULL)
            g_prefix_error (&local_error, "%s (pid %d) waits in %s: ", self->name, (int)self->pid, wchan);
        }
      server_stop_locked (self);
    }
  /* A start that ran out of time or was cancelled says so: the server
   * only ended because it was stopped for it. */
  if (reply == NULL && call_was_stopped (local_error))
    g_propagate_error (error, g_steal_pointer (&local_error));
  else if (reply == NULL)
    g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, self->death);
  g_mutex_unlock (&self->lock);

  return reply;
}

/* The worker's pid, or 0 with @error set; *@refused if the server could
 * not make the worker (a task it cannot load). */
static GPid
server_fork_worker (WpoolForkServer  *self,
                    guint             index,
                    GVariant         *locations,
                    int               child_fd,
                    gboolean         *refused,
                    GError          **error)
{
  g_autoptr(GVariant) reply = NULL;
  gint32 pid = 0;

  *refused = FALSE;
  if (!(reply = server_call (self, WPOOL_FRAME_FORK_WORKER, g_variant_new ("(u@a(ssss))", index, locations),
                             child_fd, WPOOL_FRAME_STARTED, error)))
    return 0;

  g_variant_get (reply, "(i)", &pid);
  *refused = pid == 0;
  if (pid <= 0)
    g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "%s cannot start worker %u: %s", self->name, index,
                 pid < 0 ? g_strerror (-pid) : "no such task");

  return MAX (pid, 0);
}

void
wpool_fork_servers_init (WpoolForkServers *self)
{
  g_mutex_init (&self->lock);
}

/* Once every worker was reaped. */
void
wpool_fork_servers_clear (WpoolForkServers *self)
{
  wpool_fork_servers_retire (self);
  for (guint i = 0; i < self->n_slots; i++)
    g_clear_pointer (&self->forked_by[i], wpool_fork_server_unref);
  g_clear_pointer (&self->forked_by, g_free);
  g_mutex_clear (&self->lock);
}

/* The next worker to start needs a new server; this one ends once its
 * workers are reaped. */
void
wpool_fork_servers_retire (WpoolForkServers *self)
{
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->current, wpool_fork_server_unref);
  g_mutex_unlock (&self->lock);
}

/* Starts worker @index of @n_slots for @task on @child_fd, which the
 * caller keeps, with @locations (floating) as FORK_WORKER says them. A
 * server found dead is replaced with @start, once: its pid, or 0 with
 * @error set. */
GPid
wpool_fork_servers_start_worker (WpoolForkServers      *self,
                                 guint                  n_slots,
                                 guint                  index,
                                 WpoolTask             *task,
                                 GVariant              *locations,
                                 int                    child_fd,
                                 WpoolForkServerStart   start,
                                 gpointer               start_data,
                                 GError               **error)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (locations);

  /* The first worker starts on the caller's thread, alone. */
  if (self->forked_by == NULL)
    {
      self->forked_by = g_new0 (WpoolForkServer *, n_slots);
      self->n_slots = n_slots;
    }

  for (guint attempt = 0; ; attempt++)
    {
      g_autoptr(WpoolForkServer) server = NULL;
      GError *local_error = NULL;
      gboolean started = FALSE;
      gboolean refused;
      GPid pid;

      /* A dead server stays current until one replaces it: whoever finds
       * no replacement is told what happened to it. */
      g_mutex_lock (&self->lock);
      if (self->current != NULL && !wpool_task_runs_program (task, (const char * const *)self->current->program))
        g_clear_pointer (&self->current, wpool_fork_server_unref);
      if (self->current == NULL || !server_is_running (self->current))
        {
          WpoolForkServer *fresh = start (start_data, task, &local_error);

          if (fresh != NULL)
            {
              g_clear_pointer (&self->current, wpool_fork_server_unref);
              self->current = fresh;
              fresh->program = g_strdupv ((char **)wpool_task_get_program (task));
              started = TRUE;
            }
          else if (self->current != NULL)
            g_prefix_error (&local_error, "%s; ", self->current->death);
        }
      if (local_error == NULL)
        server = wpool_fork_server_ref (self->current);
      g_mutex_unlock (&self->lock);

      if (server == NULL)
        {
          g_propagate_error (error, local_error);
          return 0;
        }

      if ((pid = server_fork_worker (server, index, sunk, child_fd, &refused, &local_error)) > 0)
        {
          g_clear_pointer (&self->forked_by[index], wpool_fork_server_unref);
          self->forked_by[index] = g_steal_pointer (&server);
          return pid;
        }

      /* It died as it was asked: a new one is then tried. So is one kept
       * from an earlier task that refuses this one (a worker program's
       * resolver that fails on it): a new server's setup says why, which
       * a refusal cannot. */
      if (attempt > 0 || call_was_stopped (local_error) ||
          (server_is_running (server) && (!refused || started)))
        {
          g_propagate_error (error, local_error);
          return 0;
        }
      g_clear_error (&local_error);

      /* A dead one stays current, to be named if none replaces it. */
      g_mutex_lock (&self->lock);
      if (refused && self->current == server)
        g_clear_pointer (&self->current, wpool_fork_server_unref);
      g_mutex_unlock (&self->lock);
    }
}

/* Whether the server that forked worker @index still runs: one that was
 * stopped (a call to it cancelled or timed out) takes its workers with
 * it, through their lifeline, but maybe only after a while, during which
 * they still look alive. TRUE for a slot no server forked. */
gboolean
wpool_fork_servers_worker_has_server (WpoolForkServers *self,
                                      guint             index)
{
  return self->forked_by == NULL || index >= self->n_slots || self->forked_by[index] == NULL ||
         server_is_running (self->forked_by[index]);
}

/* Waits for worker @index, pid @pid, which ended or was told to: its wait
 * status, WPOOL_STATUS_SERVER_DIED if the server that forked it died (and
 * the worker with it). */
int
wpool_fork_servers_reap_worker (WpoolForkServers *self,
                                guint             index,
                                GPid              pid)
{
  g_autoptr(WpoolForkServer) server = NULL;
  g_autoptr(GVariant) reply = NULL;
  gint32 status = WPOOL_STATUS_SERVER_DIED;

  if (self->forked_by == NULL || !(server = g_steal_pointer (&self->forked_by[index])))
    return status;

  /* A server that does not answer died, and its workers with it: one of
   * them came to this process if it is a child subreaper. */
  if ((reply = server_call (server, WPOOL_FRAME_REAP, g_variant_new ("(i)", (gint32)pid), -1,
                            WPOOL_FRAME_REAPED, NULL)))
    g_variant_get (reply, "(i)", &status);
  else
    wpool_process_reap_orphan (pid);

  return status;
}
