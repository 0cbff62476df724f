/* wpool-backend-threading.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-task-private.h"
#include "wpool-trace-private.h"
#include "wpool-worker-private.h"

/* THREADING: every worker is its own driver thread, bound to one
 * WpoolWorker for its whole life, running the job in this process. Every
 * worker holds the very same shared-objects GVariant: no copy. */

struct _WpoolBackendThreading
{
  WpoolBackend   parent_instance;

  /* Replaced when a worker is abandoned while its thread, which holds a
   * reference, still runs an item. */
  GMutex         mutex;
  WpoolWorker  **workers;
};

G_DECLARE_FINAL_TYPE (WpoolBackendThreading, wpool_backend_threading, WPOOL, BACKEND_THREADING, WpoolBackend)
G_DEFINE_FINAL_TYPE (WpoolBackendThreading, wpool_backend_threading, WPOOL_TYPE_BACKEND)

static gboolean
wpool_backend_threading_check_task (WpoolBackendClass  *klass,
                                    WpoolTask          *task,
                                    GError            **error)
{
  if (wpool_task_is_javascript_func (task))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A JavaScript function cannot run on a worker thread: GJS runs "
                           "JavaScript on its main thread only. Export it from an ES module and "
                           "map it under SPAWN, whose workers are new gjs processes "
                           "(wpool.js's pool.mapModule()), or export the task from a C module");
      return FALSE;
    }

  return TRUE;
}

static gboolean
wpool_backend_threading_start_worker (WpoolBackend  *backend,
                                      guint          index,
                                      WpoolTask     *task,
                                      GError       **error)
{
  WpoolBackendThreading *self = WPOOL_BACKEND_THREADING (backend);
  gint64 trace_begin = wpool_trace_now ();

  WpoolWorker *worker = wpool_backend_new_worker (backend, index);

  g_mutex_lock (&self->mutex);
  if (self->workers == NULL)
    self->workers = g_new0 (WpoolWorker *, wpool_backend_get_n_jobs (backend));
  self->workers[index] = worker;
  g_mutex_unlock (&self->mutex);

  wpool_trace_worker_start (trace_begin, index, 0);
  return TRUE;
}

/* Held by the worker's thread while it runs anything: a worker replaced
 * or given up on still has its thread. */
static WpoolWorker *
wpool_backend_threading_dup_worker (WpoolBackendThreading *self,
                                    guint                  index)
{
  WpoolWorker *worker;

  g_mutex_lock (&self->mutex);
  worker = g_object_ref (self->workers[index]);
  g_mutex_unlock (&self->mutex);

  return worker;
}

typedef struct
{
  WpoolBackend *backend;
  guint         index;
} ChunkDone;

static gboolean
wpool_backend_threading_chunk_done (gpointer data)
{
  ChunkDone *done = data;

  return wpool_backend_count_chunk (done->backend, done->index);
}

static WpoolShareOutcome
wpool_backend_threading_work (WpoolBackend *backend,
                              guint         index,
                              WpoolJob     *job)
{
  g_autoptr(WpoolWorker) worker = wpool_backend_threading_dup_worker (WPOOL_BACKEND_THREADING (backend), index);
  g_autoptr(GVariant) cpus = wpool_backend_dup_worker_cpus (backend, index);
  GError *error = NULL;

  /* On every share: a worker replaced has a new thread. */
  if (cpus != NULL && !wpool_process_set_cpus (0, cpus, &error))
    {
      wpool_job_fail (job, error);
      return WPOOL_SHARE_DONE;
    }

  return wpool_job_work (job, worker, wpool_backend_threading_chunk_done,
                         &(ChunkDone) { backend, index });
}

static GVariant *
wpool_backend_threading_exit_worker (WpoolBackend  *backend,
                                     guint          index,
                                     GError       **error)
{
  g_autoptr(WpoolWorker) worker = wpool_backend_threading_dup_worker (WPOOL_BACKEND_THREADING (backend), index);

  return wpool_worker_run_exit (worker, wpool_task_get_result_type (wpool_backend_get_config (backend)->worker_exit),
                                error);
}

static void
wpool_backend_threading_stop_worker (WpoolBackend *backend,
                                     guint         index)
{
  WpoolBackendThreading *self = WPOOL_BACKEND_THREADING (backend);
  WpoolWorker *worker;

  g_mutex_lock (&self->mutex);
  worker = g_steal_pointer (&self->workers[index]);
  g_mutex_unlock (&self->mutex);

  g_clear_object (&worker);
}

static void
wpool_backend_threading_finalize (GObject *object)
{
  WpoolBackendThreading *self = (WpoolBackendThreading *)object;

  g_free (self->workers);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (wpool_backend_threading_parent_class)->finalize (object);
}

static void
wpool_backend_threading_class_init (WpoolBackendThreadingClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);

  object_class->finalize = wpool_backend_threading_finalize;

  backend_class->check_task = wpool_backend_threading_check_task;
  backend_class->start_worker = wpool_backend_threading_start_worker;
  backend_class->work = wpool_backend_threading_work;
  backend_class->exit_worker = wpool_backend_threading_exit_worker;
  backend_class->stop_worker = wpool_backend_threading_stop_worker;
  backend_class->exit_in_process = TRUE;
}

static void
wpool_backend_threading_init (WpoolBackendThreading *self)
{
  g_mutex_init (&self->mutex);
}
