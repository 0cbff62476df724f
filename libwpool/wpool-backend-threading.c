/* wpool-backend-threading.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-private.h"
#include "wpool-error.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

/* THREADING: n-jobs threads of this process, each bound to one
 * WpoolWorker for its whole life (which later brings per-worker state and
 * init/exit functions for free), fed through its own queue. Every worker
 * holds the very same shared-objects GVariant: no copy. */

typedef struct
{
  WpoolBackend *backend;
  WpoolWorker  *worker;
  GThread      *thread;
  GAsyncQueue  *queue;
} ThreadWorker;

struct _WpoolBackendThreading
{
  WpoolBackend  parent_instance;

  ThreadWorker *workers;
  guint         n_workers;
};

G_DECLARE_FINAL_TYPE (WpoolBackendThreading, wpool_backend_threading, WPOOL, BACKEND_THREADING, WpoolBackend)
G_DEFINE_FINAL_TYPE (WpoolBackendThreading, wpool_backend_threading, WPOOL_TYPE_BACKEND)

/* Told apart from every job by its address. */
static const int quit_message;
#define QUIT_MESSAGE ((gpointer)&quit_message)

static gpointer
thread_worker_main (gpointer data)
{
  ThreadWorker *tw = data;
  gpointer message;

  wpool_backend_set_current (tw->backend);

  while ((message = g_async_queue_pop (tw->queue)) != QUIT_MESSAGE)
    {
      WpoolJob *job = message;

      wpool_job_work (job, tw->worker);
      wpool_job_worker_done (job);
      wpool_job_unref (job);
    }

  wpool_backend_set_current (NULL);

  return NULL;
}

static gboolean
wpool_backend_threading_check_task (WpoolBackendClass  *klass,
                                    WpoolTask          *task,
                                    GError            **error)
{
  if (wpool_task_is_javascript_func (task))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A JavaScript function cannot run on a worker thread: GJS runs "
                           "JavaScript on its main thread only. Export the task from a C "
                           "module and create it with Wpool.Task.new_for_symbol()");
      return FALSE;
    }

  return TRUE;
}

static void
wpool_backend_threading_stop (WpoolBackend *backend)
{
  WpoolBackendThreading *self = WPOOL_BACKEND_THREADING (backend);

  for (guint i = 0; i < self->n_workers; i++)
    g_async_queue_push (self->workers[i].queue, QUIT_MESSAGE);

  for (guint i = 0; i < self->n_workers; i++)
    {
      ThreadWorker *tw = &self->workers[i];

      g_thread_join (tw->thread);
      g_async_queue_unref (tw->queue);
      g_object_unref (tw->worker);
    }

  g_clear_pointer (&self->workers, g_free);
  self->n_workers = 0;
}

static gboolean
wpool_backend_threading_start (WpoolBackend  *backend,
                               GError       **error)
{
  WpoolBackendThreading *self = WPOOL_BACKEND_THREADING (backend);
  guint n_jobs = wpool_backend_get_n_jobs (backend);

  self->workers = g_new0 (ThreadWorker, n_jobs);

  for (guint i = 0; i < n_jobs; i++)
    {
      ThreadWorker *tw = &self->workers[i];
      g_autofree char *name = g_strdup_printf ("wpool-worker-%u", i);
      GError *local_error = NULL;

      tw->backend = backend;
      tw->worker = wpool_worker_new (i,
                                     wpool_backend_get_shared_objects (backend),
                                     wpool_backend_get_shared_data (backend));
      tw->queue = g_async_queue_new ();

      if (!(tw->thread = g_thread_try_new (name, thread_worker_main, tw, &local_error)))
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "Cannot start worker thread %u of %u: %s",
                       i, n_jobs, local_error->message);
          g_clear_error (&local_error);
          g_async_queue_unref (tw->queue);
          g_object_unref (tw->worker);
          wpool_backend_threading_stop (backend);
          return FALSE;
        }

      self->n_workers++;
    }

  return TRUE;
}

static void
wpool_backend_threading_dispatch (WpoolBackend *backend,
                                  WpoolJob     *job,
                                  guint         n_workers)
{
  WpoolBackendThreading *self = WPOOL_BACKEND_THREADING (backend);

  for (guint i = 0; i < n_workers; i++)
    g_async_queue_push (self->workers[i].queue, wpool_job_ref (job));
}

static void
wpool_backend_threading_class_init (WpoolBackendThreadingClass *klass)
{
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);

  backend_class->check_task = wpool_backend_threading_check_task;
  backend_class->start = wpool_backend_threading_start;
  backend_class->dispatch = wpool_backend_threading_dispatch;
  backend_class->stop = wpool_backend_threading_stop;
}

static void
wpool_backend_threading_init (WpoolBackendThreading *self)
{
}
