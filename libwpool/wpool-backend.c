/* wpool-backend.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-enums.h"
#include "wpool-error.h"
#include "wpool-protocol-private.h"
#include "wpool-trace-private.h"
#include "wpool-worker-private.h"

typedef struct
{
  WpoolBackend *backend;
  guint         index;
  GThread      *thread;
  GAsyncQueue  *queue;
  /* Held while a share of a job runs on the worker, by the driver's
   * thread or by a caller that drives the share itself. */
  GMutex        busy;
  /* Replaced while it finishes an item on its own: it frees itself when
   * it quits, and touches nothing else. */
  gint          replaced;
  /* Under the backend's mutex: done with its worker's exit, or left to
   * finish it on its own, holding a reference to the backend. */
  gboolean      finished;
  gboolean      detached;
} Driver;

typedef struct
{
  WpoolBackendConfig config;

  /* Guards the drivers' finishing and the exit outcomes they store. */
  GMutex    mutex;
  GCond     cond;
  gboolean  run_exit;
  GVariant **exit_results;
  GError   **exit_errors;
  /* The exits of workers restarted for their lifespan, in order, as
   * pairs of result and error. */
  GPtrArray *restart_exits;
  /* Chunks each worker ran since it started, read and written by its
   * driver only. */
  guint     *n_chunks;

  /* Replaced one by one when a worker is abandoned; read by other drivers
   * to pass jobs on. */
  Driver  **drivers;
  guint     n_started;
  /* The worker the next job starts with. */
  guint     next_worker;
  guint     stopped : 1;
} WpoolBackendPrivate;

/* The backend whose worker runs on this thread, if any. */
static GPrivate current_backend;

/* Told apart from every job by its address. */
static const int quit_message;
#define QUIT_MESSAGE ((gpointer)&quit_message)

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (WpoolBackend, wpool_backend, G_TYPE_OBJECT)

static void
wpool_backend_dispose (GObject *object)
{
  wpool_backend_stop (WPOOL_BACKEND (object), FALSE);

  G_OBJECT_CLASS (wpool_backend_parent_class)->dispose (object);
}

static void
wpool_backend_finalize (GObject *object)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (WPOOL_BACKEND (object));

  g_clear_pointer (&priv->config.shared_objects, g_variant_unref);
  g_clear_object (&priv->config.worker_init);
  g_clear_object (&priv->config.worker_exit);
  g_clear_pointer (&priv->config.cpu_ids, g_variant_unref);
  for (guint i = 0; priv->exit_results != NULL && i < priv->config.n_jobs; i++)
    {
      g_clear_pointer (&priv->exit_results[i], g_variant_unref);
      g_clear_error (&priv->exit_errors[i]);
    }
  g_clear_pointer (&priv->exit_results, g_free);
  g_clear_pointer (&priv->exit_errors, g_free);
  g_clear_pointer (&priv->restart_exits, g_ptr_array_unref);
  g_clear_pointer (&priv->n_chunks, g_free);
  g_mutex_clear (&priv->mutex);
  g_cond_clear (&priv->cond);

  G_OBJECT_CLASS (wpool_backend_parent_class)->finalize (object);
}

static gboolean
wpool_backend_real_check_task (WpoolBackendClass  *klass,
                               WpoolTask          *task,
                               GError            **error)
{
  return TRUE;
}

static gboolean
wpool_backend_real_prepare (WpoolBackend  *self,
                            WpoolTask     *task,
                            gboolean       idle,
                            GError       **error)
{
  return TRUE;
}

static gboolean
wpool_backend_real_is_alive (WpoolBackend *self,
                             guint         index)
{
  return TRUE;
}

static void
wpool_backend_class_init (WpoolBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = wpool_backend_dispose;
  object_class->finalize = wpool_backend_finalize;

  klass->check_task = wpool_backend_real_check_task;
  klass->prepare = wpool_backend_real_prepare;
  klass->is_alive = wpool_backend_real_is_alive;

}

static void
wpool_backend_init (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  g_mutex_init (&priv->mutex);
  g_cond_init (&priv->cond);
}

static GType
wpool_backend_type_for_start_method (WpoolStartMethod   start_method,
                                     GError           **error)
{
  switch (start_method)
    {
    case WPOOL_START_METHOD_THREADING:
      return wpool_backend_threading_get_type ();

    case WPOOL_START_METHOD_FORK:
      return wpool_backend_fork_get_type ();

    case WPOOL_START_METHOD_SPAWN:
      return wpool_backend_spawn_get_type ();

    case WPOOL_START_METHOD_FORKSERVER:
      return wpool_backend_forkserver_get_type ();

    case WPOOL_START_METHOD_MPI:
      return wpool_backend_mpi_get_type ();

    default:
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Unknown start method %d", start_method);
      return G_TYPE_INVALID;
    }
}

/* Whether a map with a task timeout hands out one item at a time under
 * @start_method (see WpoolBackendClass). */
gboolean
wpool_backend_times_items_by_chunk (WpoolStartMethod start_method)
{
  g_autoptr(WpoolBackendClass) klass = NULL;
  GType type = wpool_backend_type_for_start_method (start_method, NULL);

  return type != G_TYPE_INVALID && (klass = g_type_class_ref (type))->times_items_by_chunk;
}

gboolean
wpool_backend_check_task (WpoolStartMethod   start_method,
                          WpoolTask         *task,
                          GError           **error)
{
  g_autoptr(WpoolBackendClass) klass = NULL;
  GType type;

  if (!(type = wpool_backend_type_for_start_method (start_method, error)))
    return FALSE;

  klass = g_type_class_ref (type);

  if (wpool_task_get_program (task) != NULL && !klass->runs_new_program)
    {
      g_autoptr(GEnumClass) methods = g_type_class_ref (WPOOL_TYPE_START_METHOD);

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                   "The task runs in a worker program of its own (“%s”), which only SPAWN "
                   "and FORKSERVER pools start, not a %s one",
                   wpool_task_get_program (task)[0],
                   g_enum_get_value (methods, start_method)->value_nick);
      return FALSE;
    }

  return klass->check_task (klass, task, error);
}

/* A dead worker's share of @job goes to the next live worker, so that a
 * job handed to it before it could be replaced still runs: a one-item map
 * would otherwise fail with nobody to take its item. Each forward needs a
 * new death, so this ends. */
static gboolean
wpool_backend_forward (Driver   *driver,
                       WpoolJob *job)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (driver->backend);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (driver->backend);

  for (guint i = 1; i < priv->n_started; i++)
    {
      Driver *other = g_atomic_pointer_get (&priv->drivers[(driver->index + i) % priv->n_started]);

      if (klass->is_alive (driver->backend, other->index))
        {
          g_async_queue_push (other->queue, job);
          return TRUE;
        }
    }

  return FALSE;
}

static void
wpool_backend_driver_free (Driver *driver)
{
  g_mutex_clear (&driver->busy);
  g_async_queue_unref (driver->queue);
  g_free (driver);
}

/* Runs the worker's exit as the driver quits, if the stop asked for it,
 * and tells the stop it is done. A stop that gave up waiting left the
 * driver, with a reference to the backend, to end on its own. */
static void
wpool_backend_driver_exit (Driver *driver)
{
  WpoolBackend *backend = driver->backend;
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (backend);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (backend);
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;
  gboolean detached;

  if (priv->run_exit && klass->exit_worker != NULL)
    result = klass->exit_worker (backend, driver->index, &error);

  g_mutex_lock (&priv->mutex);
  if (!(detached = driver->detached) && priv->run_exit)
    {
      priv->exit_results[driver->index] = g_steal_pointer (&result);
      priv->exit_errors[driver->index] = g_steal_pointer (&error);
    }
  driver->finished = TRUE;
  g_cond_broadcast (&priv->cond);
  g_mutex_unlock (&priv->mutex);

  if (detached)
    {
      wpool_backend_driver_free (driver);
      g_object_unref (backend);
    }
}

/* On worker @index's driver thread: the worker stops and a new one takes
 * its slot (and runs its init). FALSE if it could not start: the slot is
 * then dead, as if its worker died. */
static gboolean
wpool_backend_renew_worker (WpoolBackend *self,
                            guint         index,
                            WpoolJob     *job,
                            const char   *why)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);
  g_autoptr(GError) error = NULL;
  gboolean started;

  wpool_trace_worker_restart (index, why);
  priv->n_chunks[index] = 0;
  klass->stop_worker (self, index);
  wpool_frame_watch_begin (wpool_job_get_cancellable (job));
  started = klass->start_worker (self, index, wpool_job_get_task (job), &error);
  wpool_frame_watch_end ();
  if (started)
    return TRUE;

  /* The map was cancelled meanwhile: it ends, and says so. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;

  g_warning ("Cannot start a new worker %u %s: %s", index, why, error->message);
  return FALSE;
}

/* Worker @index reached its lifespan: it runs its exit, then is renewed. */
static gboolean
wpool_backend_restart_worker (WpoolBackend *self,
                              guint         index,
                              WpoolJob     *job)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);

  if (priv->config.worker_exit != NULL && klass->exit_worker != NULL)
    {
      GError *error = NULL;
      GVariant *result = klass->exit_worker (self, index, &error);

      g_mutex_lock (&priv->mutex);
      g_ptr_array_add (priv->restart_exits, result);
      g_ptr_array_add (priv->restart_exits, error);
      g_mutex_unlock (&priv->mutex);
    }

  return wpool_backend_renew_worker (self, index, job, "at the end of its lifespan");
}

/* Worker @index's share of @job, through the restarts of its lifespan and
 * the deaths of its worker under keep-going. */
static WpoolShareOutcome
wpool_backend_driver_work (Driver   *driver,
                           WpoolJob *job)
{
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (driver->backend);
  WpoolShareOutcome outcome;

  for (;;)
    {
      outcome = klass->work (driver->backend, driver->index, job);

      /* Restarted or revived, or dead: then the rest of the share goes
       * elsewhere. */
      if (outcome == WPOOL_SHARE_RESTART)
        {
          if (!wpool_backend_restart_worker (driver->backend, driver->index, job))
            return WPOOL_SHARE_PASS_ON;
        }
      else if (outcome == WPOOL_SHARE_PASS_ON && wpool_job_get_keep_going (job) &&
               !wpool_job_should_stop (job))
        {
          /* Under keep-going a new worker takes the dead one's slot, so
           * that only the items that killed a worker fail. */
          if (!wpool_backend_renew_worker (driver->backend, driver->index, job, "after its worker died"))
            return WPOOL_SHARE_PASS_ON;
        }
      else
        return outcome;
    }
}

/* After every chunk of worker @index, on its driver's thread: whether it
 * reached its lifespan, and must restart before its next. */
gboolean
wpool_backend_count_chunk (WpoolBackend *self,
                           guint         index)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->config.worker_lifespan > 0 && ++priv->n_chunks[index] >= priv->config.worker_lifespan;
}

/* Runs the driver's worker's share of @job, whose reference it takes,
 * with the driver's busy lock held, which it releases. */
static void
wpool_backend_driver_run_locked (Driver   *driver,
                                 WpoolJob *job)
{
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (driver->backend);
  gboolean forwarded = FALSE;

  /* Our reference, and our share of the job, go with it. */
  if (!klass->is_alive (driver->backend, driver->index))
    forwarded = wpool_backend_forward (driver, job);

  if (!forwarded)
    switch (wpool_backend_driver_work (driver, job))
      {
      case WPOOL_SHARE_RESTART:
        g_assert_not_reached ();
      case WPOOL_SHARE_PASS_ON:
        /* Items of our dead worker's chunk, handed out again. */
        if ((forwarded = wpool_backend_forward (driver, job)))
          break;
        G_GNUC_FALLTHROUGH;
      case WPOOL_SHARE_DONE:
        wpool_job_worker_done (job);
        break;
      case WPOOL_SHARE_ABANDONED:
        /* The share was finished for us. */
        break;
      }

  g_mutex_unlock (&driver->busy);

  if (!forwarded)
    wpool_job_unref (job);
}

static gpointer
wpool_backend_driver_main (gpointer data)
{
  Driver *driver = data;
  gpointer message;

  /* A task that maps on its own pool from here would wait for itself. */
  g_private_set (&current_backend, driver->backend);

  while ((message = g_async_queue_pop (driver->queue)) != QUIT_MESSAGE)
    {
      g_mutex_lock (&driver->busy);
      wpool_backend_driver_run_locked (driver, message);
    }

  g_private_set (&current_backend, NULL);

  if (g_atomic_int_get (&driver->replaced))
    {
      wpool_backend_driver_free (driver);
      return NULL;
    }

  wpool_backend_driver_exit (driver);

  return NULL;
}

/* Starts a driver for worker @index, whose worker has started. */
static Driver *
wpool_backend_driver_new (WpoolBackend  *self,
                          guint          index,
                          GError       **error)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  g_autofree char *name = g_strdup_printf ("wpool-worker-%u", index);
  Driver *driver = g_new0 (Driver, 1);
  GError *local_error = NULL;

  driver->backend = self;
  driver->index = index;
  driver->queue = g_async_queue_new ();
  g_mutex_init (&driver->busy);

  if (!(driver->thread = g_thread_try_new (name, wpool_backend_driver_main, driver, &local_error)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot start the thread of worker %u of %u: %s",
                   index, priv->config.n_jobs, local_error->message);
      g_clear_error (&local_error);
      wpool_backend_driver_free (driver);
      return NULL;
    }

  return driver;
}

static gboolean
wpool_backend_start (WpoolBackend  *self,
                     WpoolTask     *task,
                     GError       **error)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);

  priv->drivers = g_new0 (Driver *, priv->config.n_jobs);

  for (guint i = 0; i < priv->config.n_jobs; i++)
    {
      if (!klass->start_worker (self, i, task, error))
        return FALSE;

      if (!(priv->drivers[i] = wpool_backend_driver_new (self, i, error)))
        {
          klass->stop_worker (self, i);
          return FALSE;
        }

      priv->n_started++;
    }

  return TRUE;
}

/* Starts the workers of @start_method that @config says for @task, for a
 * map that @cancellable cancels. */
WpoolBackend *
wpool_backend_new (WpoolStartMethod          start_method,
                   const WpoolBackendConfig *config,
                   WpoolTask                *task,
                   GCancellable             *cancellable,
                   GError                  **error)
{
  g_autoptr(WpoolBackend) self = NULL;
  WpoolBackendPrivate *priv;
  gboolean started;
  GType type;

  g_assert (config->n_jobs > 0);

  if (!(type = wpool_backend_type_for_start_method (start_method, error)))
    return NULL;

  self = g_object_new (type, NULL);
  priv = wpool_backend_get_instance_private (self);

  /* The shared objects are left as they are: serializing a tuple built
   * of big children would copy them all, where reaching a child copies
   * nothing. */
  priv->config = *config;
  if (config->shared_objects != NULL)
    g_variant_ref (config->shared_objects);
  if (config->worker_init != NULL)
    g_object_ref (config->worker_init);
  if (config->worker_exit != NULL)
    g_object_ref (config->worker_exit);
  if (config->cpu_ids != NULL)
    g_variant_ref (config->cpu_ids);
  priv->exit_results = g_new0 (GVariant *, config->n_jobs);
  priv->exit_errors = g_new0 (GError *, config->n_jobs);
  priv->restart_exits = g_ptr_array_new ();
  priv->n_chunks = g_new0 (guint, config->n_jobs);

  /* On failure, dispose stops the workers that did start. */
  wpool_frame_watch_begin (cancellable);
  started = wpool_backend_start (self, task, error);
  wpool_frame_watch_end ();
  if (!started)
    return NULL;

  return g_steal_pointer (&self);
}

const WpoolBackendConfig *
wpool_backend_get_config (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return &priv->config;
}

/* The CPUs (`au`) worker @index is pinned to, or %NULL. */
GVariant *
wpool_backend_dup_worker_cpus (WpoolBackend *self,
                               guint         index)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  gsize n;

  if (priv->config.cpu_ids == NULL || (n = g_variant_n_children (priv->config.cpu_ids)) == 0)
    return NULL;

  return g_variant_get_child_value (priv->config.cpu_ids, n == 1 ? 0 : index);
}

/* A worker of this backend, with the pool's worker-init and worker-exit. */
WpoolWorker *
wpool_backend_new_worker (WpoolBackend *self,
                          guint         index)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolWorker *worker = wpool_worker_new (index, priv->config.shared_objects, priv->config.shared_data);

  wpool_worker_set_lifecycle (worker, priv->config.worker_init, priv->config.worker_exit);

  return worker;
}

/* Runs every worker's exit now, on the caller's thread, while no driver
 * runs a job: for workers replaced before a map, which must end as if the
 * pool stopped them. */
void
wpool_backend_run_exits (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);

  if (priv->config.worker_exit == NULL || klass->exit_worker == NULL)
    return;

  for (guint i = 0; i < priv->n_started; i++)
    {
      g_clear_pointer (&priv->exit_results[i], g_variant_unref);
      g_clear_error (&priv->exit_errors[i]);
      priv->exit_results[i] = klass->exit_worker (self, i, &priv->exit_errors[i]);
    }

  priv->run_exit = TRUE;
}

/* An exit result as an element of the exit results: itself if the exit
 * task declares its type, else boxed in a `v`. Takes @result. */
static GVariant *
wpool_backend_box_exit_result (const GVariantType *type,
                               GVariant           *result)
{
  GVariant *boxed;

  if (type != NULL)
    return result;

  boxed = g_variant_ref_sink (g_variant_new_variant (result));
  g_variant_unref (result);

  return boxed;
}

/* The outcome of every worker's exit at the last stop that ran them: an
 * array of the exit task's result type, or `av`; %NULL without an error
 * if there is no exit task. */
GVariant *
wpool_backend_take_exit_results (WpoolBackend  *self,
                                 GError       **error)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  const GVariantType *type;
  g_autoptr(GPtrArray) results = NULL;
  g_autoptr(GPtrArray) restarts = NULL;
  GError *first_error = NULL;

  if (priv->config.worker_exit == NULL || !priv->run_exit)
    return NULL;

  /* Taken once. */
  priv->run_exit = FALSE;

  /* Those restarted first, in the order they ended, then the others. */
  g_mutex_lock (&priv->mutex);
  restarts = g_steal_pointer (&priv->restart_exits);
  priv->restart_exits = g_ptr_array_new ();
  g_mutex_unlock (&priv->mutex);

  type = wpool_task_get_result_type (priv->config.worker_exit);
  results = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);

  for (guint i = 0; i < restarts->len; i += 2)
    {
      if (first_error == NULL && restarts->pdata[i + 1] != NULL)
        first_error = g_error_copy (restarts->pdata[i + 1]);
      if (restarts->pdata[i] != NULL)
        g_ptr_array_add (results, wpool_backend_box_exit_result (type, restarts->pdata[i]));
      g_clear_error ((GError **)&restarts->pdata[i + 1]);
    }

  for (guint i = 0; i < priv->config.n_jobs; i++)
    if (first_error == NULL && priv->exit_errors[i] != NULL)
      first_error = g_steal_pointer (&priv->exit_errors[i]);

  if (first_error != NULL)
    {
      g_propagate_error (error, first_error);
      return NULL;
    }

  for (guint i = 0; i < priv->config.n_jobs; i++)
    {
      GVariant *result = g_steal_pointer (&priv->exit_results[i]);

      if (result == NULL)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Worker %u: its worker-exit did not run", i);
          return NULL;
        }
      g_ptr_array_add (results, wpool_backend_box_exit_result (type, result));
    }

  return g_variant_ref_sink (g_variant_new_array (type ? type : G_VARIANT_TYPE_VARIANT,
                                                  (GVariant **)results->pdata, results->len));
}

guint
wpool_backend_get_n_jobs (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->config.n_jobs;
}

GVariant *
wpool_backend_get_shared_objects (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->config.shared_objects;
}

gpointer
wpool_backend_get_shared_data (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->config.shared_data;
}

gboolean
wpool_backend_prepare (WpoolBackend  *self,
                       WpoolTask     *task,
                       gboolean       idle,
                       GCancellable  *cancellable,
                       GError       **error)
{
  gboolean ret;

  wpool_frame_watch_begin (cancellable);
  ret = WPOOL_BACKEND_GET_CLASS (self)->prepare (self, task, idle, error);
  wpool_frame_watch_end ();

  return ret;
}

/* The share of worker @from, abandoned by @job's watchdog with items
 * left, goes to the next worker that @job did not abandon: FALSE if
 * there is none. (A worker abandoned by another job still takes it, once
 * that job ends and its queue moves to its replacement.) */
static gboolean
wpool_backend_pass_on (WpoolJob *job,
                       guint     from,
                       gpointer  data)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (WPOOL_BACKEND (data));

  for (guint i = 1; i < priv->n_started; i++)
    {
      guint to = (from + i) % priv->n_started;

      if (!wpool_job_is_abandoned (job, to))
        {
          g_async_queue_push (((Driver *)g_atomic_pointer_get (&priv->drivers[to]))->queue, wpool_job_ref (job));
          return TRUE;
        }
    }

  return FALSE;
}

/* Hands @job to @n_workers workers; each calls wpool_job_worker_done()
 * exactly once. Called on the caller's thread, under the pool's lock. With
 * @caller_waits, the caller waits for the job next: where the backend
 * allows, it drives the first worker's share itself if that worker is
 * free, rather than waking its driver and waiting to be woken in turn (two
 * thread hand-offs, most of a small map's latency). That share is then
 * returned, for wpool_backend_drive() once the lock is let go; else %NULL. */
WpoolBackendShare *
wpool_backend_dispatch (WpoolBackend *self,
                        WpoolJob     *job,
                        guint         n_workers,
                        gboolean      caller_waits)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  Driver *first = priv->drivers[priv->next_worker % priv->n_started];
  gboolean drive = caller_waits && WPOOL_BACKEND_GET_CLASS (self)->drives_on_caller &&
                   g_mutex_trylock (&first->busy);

  g_assert (!priv->stopped);
  g_assert (n_workers > 0 && n_workers <= priv->n_started);

  wpool_job_set_pass_on (job, wpool_backend_pass_on, self);

  /* Jobs of fewer chunks than workers start where the last one ended, so
   * that small maps in flight together spread over all the workers. */
  for (guint i = drive ? 1 : 0; i < n_workers; i++)
    g_async_queue_push (priv->drivers[(priv->next_worker + i) % priv->n_started]->queue, wpool_job_ref (job));

  priv->next_worker = (priv->next_worker + n_workers) % priv->n_started;

  return drive ? (WpoolBackendShare *)first : NULL;
}

/* Runs @share of @job, from wpool_backend_dispatch(), on this thread: its
 * driver is held busy until then, and no lock need be. */
void
wpool_backend_drive (WpoolBackendShare *share,
                     WpoolJob          *job)
{
  wpool_backend_driver_run_locked ((Driver *)share, wpool_job_ref (job));
}

/* Waits until every driver ran its worker's exit, for the exit timeout
 * at most: those still running it are left to end on their own, which a
 * worker in this process must be, and the exit fails with a timeout. */
static void
wpool_backend_wait_for_exits (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  gint64 deadline = g_get_monotonic_time () + priv->config.worker_exit_timeout;

  g_mutex_lock (&priv->mutex);
  for (guint i = 0; i < priv->n_started; i++)
    while (!priv->drivers[i]->finished && g_cond_wait_until (&priv->cond, &priv->mutex, deadline))
      ;

  for (guint i = 0; i < priv->n_started; i++)
    {
      if (priv->drivers[i]->finished)
        continue;

      priv->drivers[i]->detached = TRUE;
      g_object_ref (self);
      g_clear_error (&priv->exit_errors[i]);
      priv->exit_errors[i] = g_error_new (WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                                          "Worker %u: its worker-exit ran for longer than the "
                                          "worker-exit timeout (%g s); a thread cannot be stopped, "
                                          "so it was left to finish", i,
                                          priv->config.worker_exit_timeout / (double)G_USEC_PER_SEC);
    }
  g_mutex_unlock (&priv->mutex);
}

/* Idempotent: the pool stops the workers when it is done with them, and
 * dispose makes sure of it. With @run_exit, every worker runs the pool's
 * worker-exit first. */
void
wpool_backend_stop (WpoolBackend *self,
                    gboolean      run_exit)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);

  if (priv->stopped)
    return;

  priv->stopped = TRUE;
  /* Read by the drivers once they pop the quit message. */
  priv->run_exit = run_exit && priv->config.worker_exit != NULL;

  for (guint i = 0; i < priv->n_started; i++)
    g_async_queue_push (priv->drivers[i]->queue, QUIT_MESSAGE);

  if (priv->run_exit && klass->exit_in_process && priv->config.worker_exit_timeout > 0)
    wpool_backend_wait_for_exits (self);

  for (guint i = 0; i < priv->n_started; i++)
    {
      /* Read without the mutex: only wpool_backend_wait_for_exits(),
       * on this thread, sets it. */
      if (priv->drivers[i]->detached)
        g_thread_unref (priv->drivers[i]->thread);
      else
        {
          g_thread_join (priv->drivers[i]->thread);
          wpool_backend_driver_free (priv->drivers[i]);
        }
      klass->stop_worker (self, i);
    }

  g_clear_pointer (&priv->drivers, g_free);
  priv->n_started = 0;

  if (klass->stopped != NULL)
    klass->stopped (self);
}

/* Worker @index was abandoned in the middle of an item it may never
 * finish (a thread cannot be killed): its driver is left to end on its
 * own once it returns, and a new worker and driver take its place and its
 * queued jobs. On the caller's thread. */
gboolean
wpool_backend_replace_worker (WpoolBackend  *self,
                              guint          index,
                              WpoolTask     *task,
                              GError       **error)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);
  Driver *old = priv->drivers[index];
  Driver *driver;
  gpointer message;

  g_assert (index < priv->n_started);

  wpool_trace_worker_restart (index, "in place of the thread abandoned past the task timeout");
  klass->stop_worker (self, index);
  if (!klass->start_worker (self, index, task, error) ||
      !(driver = wpool_backend_driver_new (self, index, error)))
    {
      /* The slot keeps its old driver, whose queue still takes jobs. */
      return FALSE;
    }

  g_atomic_pointer_set (&priv->drivers[index], driver);

  /* Only this thread pushes but for a forwarding driver, and a thread
   * worker is never seen dead, so nothing is pushed meanwhile. */
  while ((message = g_async_queue_try_pop (old->queue)) != NULL)
    g_async_queue_push (driver->queue, message);

  g_atomic_int_set (&old->replaced, TRUE);
  g_thread_unref (old->thread);
  g_async_queue_push (old->queue, QUIT_MESSAGE);

  return TRUE;
}

/* Whether this thread is a driver of @self: a task mapping on its own
 * pool is refused instead of waiting forever for itself. */
gboolean
wpool_backend_is_current (WpoolBackend *self)
{
  return self != NULL && g_private_get (&current_backend) == self;
}
