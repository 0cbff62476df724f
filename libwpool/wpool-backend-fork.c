/* wpool-backend-fork.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-fork-server-private.h"
#include "wpool-process-private.h"

/* FORK: workers are forked from a template, a fork() of the caller made
 * on the caller's thread when the first worker of a task starts (the
 * pool's first map, or the first after the task changed). The template is
 * single-threaded: it holds the task, the shared objects and the shared
 * data copy-on-write, as the caller had them then, and forks every worker
 * of that task, the first ones and every restart or replacement, on
 * request (wpool-fork-server.c). So C functions and their closures work
 * as in the caller, and no worker is ever forked from the threaded caller
 * in the middle of a map, where another thread of the caller may hold a
 * lock the child would need (GSlice's, say: a worker restarted for its
 * lifespan hung at its first allocation, 6 runs in 6 of the stress test in
 * test-fork-restarts.c).
 *
 * What a worker sees of the caller's memory is the caller as it was when
 * the template was forked, not when the worker started: a worker that
 * restarts, or replaces a dead one, does not see what the caller changed
 * since. Shared arrays and locks are memory shared with the caller, and
 * seen as they are now.
 *
 * The template dies with the pool's process (its lifeline), not with the
 * thread that forked it; workers die with the template. A template that
 * dies is forked anew on the caller's thread before the next map; until
 * then, workers that would start in the middle of a map fail to. */

struct _WpoolBackendFork
{
  WpoolBackendProcess parent_instance;

  WpoolForkServers    servers;
  /* The task of the current template. */
  WpoolTask          *template_task;
  /* Whether the caller may be forked now: no map runs. Read atomically. */
  gint                may_fork;
};

G_DECLARE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL, BACKEND_FORK, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL_TYPE_BACKEND_PROCESS)

/* In the template: worker @id of its task. */
static gboolean
prepare_worker (gpointer           data,
                guint32            id,
                GVariant          *locations,
                WpoolForkedWorker *forked)
{
  WpoolBackendFork *self = data;

  if (id >= wpool_backend_get_n_jobs (WPOOL_BACKEND (self)))
    return FALSE;

  forked->worker = wpool_backend_new_worker (WPOOL_BACKEND (self), id);
  forked->task = g_object_ref (self->template_task);
  forked->running = wpool_backend_process_get_progress (WPOOL_BACKEND_PROCESS (self), id);

  return TRUE;
}

/* A template for @task, forked from the caller's thread: only when no
 * map runs, as the backend starts or is prepared for a map. */
static WpoolForkServer *
start_template (gpointer    data,
                WpoolTask  *task,
                GError    **error)
{
  WpoolBackendFork *self = data;

  if (self->template_task != NULL && !g_atomic_int_get (&self->may_fork))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                           "no template can be forked while a map runs: new workers start "
                           "when the next map does");
      return NULL;
    }

  g_set_object (&self->template_task, task);

  return wpool_fork_server_fork ("The FORK template", prepare_worker, self, error);
}

static GPid
wpool_backend_fork_spawn (WpoolBackendProcess  *process,
                          guint                 index,
                          WpoolTask            *task,
                          int                   fd,
                          int                   child_fd,
                          GError              **error)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (process);
  GPid pid;

  /* The template has the task: nothing to locate. */
  pid = wpool_fork_servers_start_worker (&self->servers, wpool_backend_get_n_jobs (WPOOL_BACKEND (self)),
                                         index, task, g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0),
                                         child_fd, start_template, self, error);

  wpool_process_close_fd (child_fd);

  return pid;
}

static gboolean
wpool_backend_fork_worker_has_server (WpoolBackendProcess *process,
                                       guint                index)
{
  return wpool_fork_servers_worker_has_server (&WPOOL_BACKEND_FORK (process)->servers, index);
}

static int
wpool_backend_fork_reap (WpoolBackendProcess *process,
                         guint                index)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (process);

  return wpool_fork_servers_reap_worker (&self->servers, index, wpool_backend_process_get_pid (process, index));
}

/* The caller's thread, no map running: a new task, or a template that
 * died, takes a new template. */
static gboolean
wpool_backend_fork_prepare (WpoolBackend  *backend,
                            WpoolTask     *task,
                            gboolean       idle,
                            GError       **error)
{
  WpoolBackendFork *self = WPOOL_BACKEND_FORK (backend);
  gboolean ret;

  if (idle && task != self->template_task)
    wpool_fork_servers_retire (&self->servers);

  g_atomic_int_set (&self->may_fork, idle);
  ret = WPOOL_BACKEND_CLASS (wpool_backend_fork_parent_class)->prepare (backend, task, idle, error);
  g_atomic_int_set (&self->may_fork, FALSE);

  return ret;
}

/* The server stops with its workers, on the thread that stopped them. */
static void
wpool_backend_fork_stopped (WpoolBackend *backend)
{
  wpool_fork_servers_retire (&WPOOL_BACKEND_FORK (backend)->servers);
}

static void
wpool_backend_fork_finalize (GObject *object)
{
  WpoolBackendFork *self = (WpoolBackendFork *)object;

  /* The workers were stopped and reaped by dispose. */
  wpool_fork_servers_clear (&self->servers);
  g_clear_object (&self->template_task);

  G_OBJECT_CLASS (wpool_backend_fork_parent_class)->finalize (object);
}

static void
wpool_backend_fork_class_init (WpoolBackendForkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_fork_finalize;
  WPOOL_BACKEND_CLASS (klass)->stopped = wpool_backend_fork_stopped;

  backend_class->prepare = wpool_backend_fork_prepare;

  process_class->server_name = "its FORK template";
  process_class->spawn = wpool_backend_fork_spawn;
  process_class->reap = wpool_backend_fork_reap;
  process_class->worker_has_server = wpool_backend_fork_worker_has_server;
}

static void
wpool_backend_fork_init (WpoolBackendFork *self)
{
  wpool_fork_servers_init (&self->servers);
}
