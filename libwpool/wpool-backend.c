/* wpool-backend.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-error.h"

typedef struct
{
  WpoolBackend *backend;
  guint         index;
  GThread      *thread;
  GAsyncQueue  *queue;
  /* Left to finish an item on its own: it frees itself when it quits. */
  gint          detached;
} Driver;

typedef struct
{
  guint     n_jobs;
  GVariant *shared_objects;
  gpointer  shared_data;

  /* Replaced one by one when a worker is abandoned; read by other drivers
   * to pass jobs on. */
  Driver  **drivers;
  guint     n_started;
  /* The worker the next job starts with. */
  guint     next_worker;
  guint     stopped : 1;
} WpoolBackendPrivate;

enum {
  PROP_0,
  PROP_N_JOBS,
  PROP_SHARED_OBJECTS,
  PROP_SHARED_DATA,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The backend whose worker runs on this thread, if any. */
static GPrivate current_backend;

/* Told apart from every job by its address. */
static const int quit_message;
#define QUIT_MESSAGE ((gpointer)&quit_message)

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (WpoolBackend, wpool_backend, G_TYPE_OBJECT)

static void
wpool_backend_dispose (GObject *object)
{
  wpool_backend_stop (WPOOL_BACKEND (object));

  G_OBJECT_CLASS (wpool_backend_parent_class)->dispose (object);
}

static void
wpool_backend_finalize (GObject *object)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (WPOOL_BACKEND (object));

  g_clear_pointer (&priv->shared_objects, g_variant_unref);

  G_OBJECT_CLASS (wpool_backend_parent_class)->finalize (object);
}

static void
wpool_backend_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (WPOOL_BACKEND (object));

  switch (prop_id)
    {
    case PROP_N_JOBS:
      priv->n_jobs = g_value_get_uint (value);
      break;

    case PROP_SHARED_OBJECTS:
      /* Left as they are: serializing a tuple built of big children would
       * copy them all, where reaching a child copies nothing. */
      priv->shared_objects = g_value_dup_variant (value);
      break;

    case PROP_SHARED_DATA:
      priv->shared_data = g_value_get_pointer (value);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
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
  object_class->set_property = wpool_backend_set_property;

  klass->check_task = wpool_backend_real_check_task;
  klass->prepare = wpool_backend_real_prepare;
  klass->is_alive = wpool_backend_real_is_alive;

  properties[PROP_N_JOBS] =
    g_param_spec_uint ("n-jobs", NULL, NULL,
                       1, G_MAXUINT, 1,
                       (G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  properties[PROP_SHARED_OBJECTS] =
    g_param_spec_variant ("shared-objects", NULL, NULL,
                          G_VARIANT_TYPE_ANY, NULL,
                          (G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  properties[PROP_SHARED_DATA] =
    g_param_spec_pointer ("shared-data", NULL, NULL,
                          (G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
wpool_backend_init (WpoolBackend *self)
{
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

    default:
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Unknown start method %d", start_method);
      return G_TYPE_INVALID;
    }
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
  g_async_queue_unref (driver->queue);
  g_free (driver);
}

static gpointer
wpool_backend_driver_main (gpointer data)
{
  Driver *driver = data;
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (driver->backend);
  gpointer message;

  /* A task that maps on its own pool from here would wait for itself. */
  g_private_set (&current_backend, driver->backend);

  while ((message = g_async_queue_pop (driver->queue)) != QUIT_MESSAGE)
    {
      WpoolJob *job = message;

      /* Our reference, and our share of the job, go with it. */
      if (!klass->is_alive (driver->backend, driver->index) && wpool_backend_forward (driver, job))
        continue;

      switch (klass->work (driver->backend, driver->index, job))
        {
        case WPOOL_SHARE_PASS_ON:
          /* Items of our dead worker's chunk, handed out again. */
          if (wpool_backend_forward (driver, job))
            continue;
          G_GNUC_FALLTHROUGH;
        case WPOOL_SHARE_DONE:
          wpool_job_worker_done (job);
          break;
        case WPOOL_SHARE_ABANDONED:
          /* The share was finished for us. */
          break;
        }
      wpool_job_unref (job);
    }

  g_private_set (&current_backend, NULL);

  if (g_atomic_int_get (&driver->detached))
    wpool_backend_driver_free (driver);

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

  if (!(driver->thread = g_thread_try_new (name, wpool_backend_driver_main, driver, &local_error)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot start the thread of worker %u of %u: %s",
                   index, priv->n_jobs, local_error->message);
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

  priv->drivers = g_new0 (Driver *, priv->n_jobs);

  for (guint i = 0; i < priv->n_jobs; i++)
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

/* Starts @n_jobs workers of @start_method for @task. */
WpoolBackend *
wpool_backend_new (WpoolStartMethod   start_method,
                   guint              n_jobs,
                   GVariant          *shared_objects,
                   gpointer           shared_data,
                   WpoolTask         *task,
                   GError           **error)
{
  g_autoptr(WpoolBackend) self = NULL;
  GType type;

  if (!(type = wpool_backend_type_for_start_method (start_method, error)))
    return NULL;

  self = g_object_new (type,
                       "n-jobs", n_jobs,
                       "shared-objects", shared_objects,
                       "shared-data", shared_data,
                       NULL);

  /* On failure, dispose stops the workers that did start. */
  if (!wpool_backend_start (self, task, error))
    return NULL;

  return g_steal_pointer (&self);
}

guint
wpool_backend_get_n_jobs (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->n_jobs;
}

GVariant *
wpool_backend_get_shared_objects (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->shared_objects;
}

gpointer
wpool_backend_get_shared_data (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  return priv->shared_data;
}

gboolean
wpool_backend_prepare (WpoolBackend  *self,
                       WpoolTask     *task,
                       gboolean       idle,
                       GError       **error)
{
  return WPOOL_BACKEND_GET_CLASS (self)->prepare (self, task, idle, error);
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
 * exactly once. Called on the caller's thread. */
void
wpool_backend_dispatch (WpoolBackend *self,
                        WpoolJob     *job,
                        guint         n_workers)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  g_assert (!priv->stopped);
  g_assert (n_workers > 0 && n_workers <= priv->n_started);

  wpool_job_set_pass_on (job, wpool_backend_pass_on, self);

  /* Jobs of fewer chunks than workers start where the last one ended, so
   * that small maps in flight together spread over all the workers. */
  for (guint i = 0; i < n_workers; i++)
    g_async_queue_push (priv->drivers[(priv->next_worker + i) % priv->n_started]->queue, wpool_job_ref (job));

  priv->next_worker = (priv->next_worker + n_workers) % priv->n_started;
}

/* Idempotent: the pool stops the workers when it is done with them, and
 * dispose makes sure of it. */
void
wpool_backend_stop (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);
  WpoolBackendClass *klass = WPOOL_BACKEND_GET_CLASS (self);

  if (priv->stopped)
    return;

  priv->stopped = TRUE;

  for (guint i = 0; i < priv->n_started; i++)
    g_async_queue_push (priv->drivers[i]->queue, QUIT_MESSAGE);

  for (guint i = 0; i < priv->n_started; i++)
    {
      g_thread_join (priv->drivers[i]->thread);
      wpool_backend_driver_free (priv->drivers[i]);
      klass->stop_worker (self, i);
    }

  g_clear_pointer (&priv->drivers, g_free);
  priv->n_started = 0;
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

  g_atomic_int_set (&old->detached, TRUE);
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
