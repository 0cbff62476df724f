/* wpool-backend-fork.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wpool-backend-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-serve-private.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

/* FORK: every worker is a fork() of the caller, made on the caller's
 * thread while no driver runs a job. It inherits the task, the shared
 * objects and the shared data: copy-on-write, nothing is sent. Its driver
 * thread sends it chunks of items over a socketpair and takes back their
 * results; a worker that dies is seen as the end of its socket, and the
 * item it ran is read from a page shared with it. */

typedef struct
{
  pid_t        pid;
  int          fd;
  WpoolWorker *worker;
} ForkWorker;

struct _WpoolBackendFork
{
  WpoolBackend  parent_instance;

  /* The task the workers were forked with: they can run no other. */
  WpoolTask    *task;
  ForkWorker   *workers;
  /* One gint per worker, in memory shared with them: the item each runs. */
  gint         *progress;
  gsize         progress_size;
};

G_DECLARE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL, BACKEND_FORK, WpoolBackend)
G_DEFINE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL_TYPE_BACKEND)

static gboolean
wpool_backend_fork_check_task (WpoolBackendClass  *klass,
                               WpoolTask          *task,
                               GError            **error)
{
  /* SpiderMonkey's helper threads do not survive a fork: a JS function
   * in a forked child hangs as soon as the garbage collector needs them. */
  if (wpool_task_is_javascript_func (task))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A JavaScript function cannot run in a forked worker: GJS's "
                           "engine does not survive fork(). Export the task from a C "
                           "module and create it with Wpool.Task.new_for_symbol()");
      return FALSE;
    }

  return TRUE;
}

static gboolean
wpool_backend_fork_start_worker (WpoolBackend  *backend,
                                 guint          index,
                                 WpoolTask     *task,
                                 GError       **error)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (backend);
  ForkWorker *fw;
  int fds[2];
  pid_t pid;

  if (self->workers == NULL)
    {
      guint n_jobs = wpool_backend_get_n_jobs (backend);

      self->workers = g_new0 (ForkWorker, n_jobs);
      for (guint i = 0; i < n_jobs; i++)
        self->workers[i].fd = -1;

      self->progress_size = n_jobs * sizeof (gint);
      self->progress = mmap (NULL, self->progress_size, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (self->progress == MAP_FAILED)
        {
          int errsv = errno;

          self->progress = NULL;
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "Cannot map memory to share with the workers: %s", g_strerror (errsv));
          return FALSE;
        }
    }

  if (self->task != task)
    g_set_object (&self->task, task);

  fw = &self->workers[index];

  /* Made here, so that the child does not allocate GObjects. */
  g_clear_object (&fw->worker);
  fw->worker = wpool_worker_new (index,
                                 wpool_backend_get_shared_objects (backend),
                                 wpool_backend_get_shared_data (backend));

  if (!wpool_process_socketpair (fds, error))
    return FALSE;

  if ((pid = wpool_process_fork (fds[1], error)) < 0)
    {
      wpool_process_close_fd (fds[0]);
      wpool_process_close_fd (fds[1]);
      return FALSE;
    }

  if (pid == 0)
    {
      int status = wpool_serve (fw->worker, task, fds[1], &self->progress[index]);

      fflush (stdout);
      fflush (stderr);
      _exit (status);
    }

  wpool_process_close_fd (fds[1]);
  fw->pid = pid;
  fw->fd = fds[0];

  return TRUE;
}

static void
wpool_backend_fork_stop_worker (WpoolBackend *backend,
                                guint         index)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (backend);
  ForkWorker *fw = &self->workers[index];

  /* The worker exits when it reads the end of its socket. */
  wpool_process_close_fd (fw->fd);
  fw->fd = -1;

  if (fw->pid > 0)
    wpool_process_reap (fw->pid);
  fw->pid = 0;

  g_clear_object (&fw->worker);
}

/* Whether worker @index can take work; reaps it if it ended while idle. */
static gboolean
fork_worker_is_alive (ForkWorker *fw)
{
  int status;

  if (fw->pid <= 0)
    return FALSE;

  if (waitpid (fw->pid, &status, WNOHANG) == fw->pid)
    {
      fw->pid = 0;
      return FALSE;
    }

  return TRUE;
}

static gboolean
wpool_backend_fork_prepare (WpoolBackend  *backend,
                            WpoolTask     *task,
                            gboolean       idle,
                            GError       **error)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (backend);
  guint n_jobs = wpool_backend_get_n_jobs (backend);
  gboolean new_task = task != self->task;

  /* Forking is only safe while no driver runs: otherwise wait for the
   * workers that died to be replaced at the next map. */
  if (!idle)
    {
      if (new_task)
        {
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
                               "The worker processes were forked for another task and a map "
                               "still runs on them: wait for it to finish");
          return FALSE;
        }
      return TRUE;
    }

  /* A forked worker only knows the task it was forked with: a new task
   * means new workers. Dead workers are replaced. */
  for (guint i = 0; i < n_jobs; i++)
    {
      if (new_task || !fork_worker_is_alive (&self->workers[i]))
        {
          wpool_backend_fork_stop_worker (backend, i);
          if (!wpool_backend_fork_start_worker (backend, i, task, error))
            return FALSE;
        }
    }

  return TRUE;
}

/* Waits until @fd can be read or @cancellable is cancelled. */
static gboolean
wait_readable (int           fd,
               GCancellable *cancellable)
{
  GPollFD fds[2] = { { fd, G_IO_IN | G_IO_HUP | G_IO_ERR, 0 } };
  guint n_fds = 1;
  gboolean ret;

  if (g_cancellable_make_pollfd (cancellable, &fds[1]))
    n_fds = 2;

  while (g_poll (fds, n_fds, -1) < 0 && errno == EINTR)
    ;

  ret = !g_cancellable_is_cancelled (cancellable);

  if (n_fds == 2)
    g_cancellable_release_fd (cancellable);

  return ret;
}

/* Worker @index ended while it ran the chunk that starts at @first: the
 * map fails with what happened to it, or as cancelled if that is why. */
static void
fork_worker_died (WpoolBackendFork *self,
                  guint             index,
                  WpoolJob         *job,
                  gboolean          cancelled)
{
  ForkWorker *fw = &self->workers[index];
  int status = wpool_process_reap (fw->pid);
  pid_t pid = fw->pid;
  GError *error = NULL;

  fw->pid = 0;

  if (cancelled)
    {
      g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
    }
  else
    {
      g_autofree char *how = wpool_process_describe_status (status);

      g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "Item %d: worker %u (pid %d) died: %s",
                   g_atomic_int_get (&self->progress[index]), index, (int)pid, how);
    }

  wpool_job_fail (job, error);
}

static void
wpool_backend_fork_work (WpoolBackend *backend,
                         guint         index,
                         WpoolJob     *job)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (backend);
  ForkWorker *fw = &self->workers[index];
  const GVariantType *result_type = wpool_job_get_result_type (job);
  g_autofree char *result_type_string = result_type ? g_variant_type_dup_string (result_type) : g_strdup ("");
  GCancellable *cancellable = wpool_job_get_cancellable (job);
  guint first;
  guint last;

  /* A worker that died in an earlier map is replaced before the next one
   * that finds no map running; until then it sits this one out. */
  if (fw->pid <= 0)
    return;

  while (wpool_job_next_chunk (job, &first, &last))
    {
      g_autoptr(GVariant) items = wpool_job_dup_chunk_items (job, first, last);
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;
      WpoolFrameKind kind = 0;

      g_atomic_int_set (&self->progress[index], (gint)first);

      if (!wpool_frame_write (fw->fd, WPOOL_FRAME_RUN_CHUNK,
                              g_variant_new ("(uusv)", first, last - first, result_type_string, items),
                              &error))
        {
          if (g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT))
            wpool_job_fail (job, g_steal_pointer (&error));
          else
            fork_worker_died (self, index, job, FALSE);
          return;
        }

      /* A cancelled map does not wait for the worker's items: the worker
       * is killed and replaced before the next map. */
      if (!wait_readable (fw->fd, cancellable))
        {
          kill (fw->pid, SIGKILL);
          fork_worker_died (self, index, job, TRUE);
          return;
        }

      if (!(reply = wpool_frame_read (fw->fd, &kind, &error)))
        {
          fork_worker_died (self, index, job, FALSE);
          return;
        }

      if (kind == WPOOL_FRAME_RESULTS)
        {
          g_autoptr(GVariant) results = NULL;
          guint32 reply_first;

          g_variant_get (reply, "(uv)", &reply_first, &results);
          if (reply_first != first ||
              !wpool_job_take_chunk_results (job, first, results, &error))
            {
              if (error == NULL)
                g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                             "Worker %u answered for item %u instead of %u", index, reply_first, first);
              wpool_job_fail (job, g_steal_pointer (&error));
              return;
            }
        }
      else if (kind == WPOOL_FRAME_ERROR)
        {
          const char *domain;
          const char *message;
          guint32 item;
          gint32 code;

          /* The task's own error, its domain and code kept. */
          g_variant_get (reply, "(u&si&s)", &item, &domain, &code, &message);
          wpool_job_fail (job, g_error_new_literal (g_quark_from_string (domain), code, message));
          return;
        }
      else
        {
          wpool_job_fail (job, g_error_new (WPOOL_ERROR, WPOOL_ERROR_FAILED,
                                            "Worker %u sent an unexpected frame (kind %u)", index, kind));
          return;
        }
    }
}

static void
wpool_backend_fork_finalize (GObject *object)
{
  WpoolBackendFork *self = (WpoolBackendFork *)object;

  if (self->progress != NULL)
    munmap (self->progress, self->progress_size);
  g_free (self->workers);
  g_clear_object (&self->task);

  G_OBJECT_CLASS (wpool_backend_fork_parent_class)->finalize (object);
}

static void
wpool_backend_fork_class_init (WpoolBackendForkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);

  object_class->finalize = wpool_backend_fork_finalize;

  backend_class->check_task = wpool_backend_fork_check_task;
  backend_class->start_worker = wpool_backend_fork_start_worker;
  backend_class->prepare = wpool_backend_fork_prepare;
  backend_class->work = wpool_backend_fork_work;
  backend_class->stop_worker = wpool_backend_fork_stop_worker;
}

static void
wpool_backend_fork_init (WpoolBackendFork *self)
{
}
