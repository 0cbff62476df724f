/* wpool-worker.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-worker-private.h"

/**
 * WpoolWorker:
 *
 * The worker that runs a task, inside whatever thread or process it lives
 * in. A #WpoolTaskFunc receives it as its first argument.
 *
 * A worker is created when its pool starts its workers and lives as long as
 * they do, so a kept-alive pool hands the same worker to every map. Its
 * identifier runs from 0 to #WpoolPool:n-jobs − 1.
 *
 * A worker is owned by its thread or process: use it only from inside the
 * task that received it.
 */

struct _WpoolWorker
{
  GObject   parent_instance;

  guint     id;
  /* Owned by the pool's backend, which outlives every task call. */
  GVariant *shared_objects;
  gpointer  shared_data;

  /* Set by wpool_worker_report_error() during a task call. A worker runs
   * one item at a time, on its own thread, so this needs no lock. */
  GError   *reported_error;
};

enum {
  PROP_0,
  PROP_ID,
  PROP_SHARED_OBJECTS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (WpoolWorker, wpool_worker, G_TYPE_OBJECT)

static void
wpool_worker_finalize (GObject *object)
{
  WpoolWorker *self = (WpoolWorker *)object;

  g_clear_pointer (&self->shared_objects, g_variant_unref);
  g_clear_error (&self->reported_error);

  G_OBJECT_CLASS (wpool_worker_parent_class)->finalize (object);
}

static void
wpool_worker_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  WpoolWorker *self = WPOOL_WORKER (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_uint (value, self->id);
      break;

    case PROP_SHARED_OBJECTS:
      g_value_set_variant (value, self->shared_objects);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
wpool_worker_class_init (WpoolWorkerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = wpool_worker_finalize;
  object_class->get_property = wpool_worker_get_property;

  /**
   * WpoolWorker:id:
   *
   * The worker's identifier, from 0 to #WpoolPool:n-jobs − 1.
   */
  properties[PROP_ID] =
    g_param_spec_uint ("id", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolWorker:shared-objects:
   *
   * The shared objects of the pool as this worker sees them.
   */
  properties[PROP_SHARED_OBJECTS] =
    g_param_spec_variant ("shared-objects", NULL, NULL,
                          G_VARIANT_TYPE_ANY, NULL,
                          (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
wpool_worker_init (WpoolWorker *self)
{
}

WpoolWorker *
wpool_worker_new (guint     id,
                  GVariant *shared_objects,
                  gpointer  shared_data)
{
  WpoolWorker *self = g_object_new (WPOOL_TYPE_WORKER, NULL);

  self->id = id;
  self->shared_objects = shared_objects ? g_variant_ref (shared_objects) : NULL;
  self->shared_data = shared_data;

  return self;
}

/**
 * wpool_worker_get_id:
 * @self: a #WpoolWorker
 *
 * Gets the worker's identifier, from 0 to #WpoolPool:n-jobs − 1.
 *
 * Returns: the identifier
 */
guint
wpool_worker_get_id (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), 0);

  return self->id;
}

/**
 * wpool_worker_get_shared_objects:
 * @self: a #WpoolWorker
 *
 * Gets the pool's shared objects as this worker sees them. Under
 * %WPOOL_START_METHOD_THREADING this is the very #GVariant given to the
 * pool, with no copy.
 *
 * Returns: (transfer none) (nullable): the shared objects, or %NULL
 */
GVariant *
wpool_worker_get_shared_objects (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  return self->shared_objects;
}

/**
 * wpool_worker_get_shared_data: (skip)
 * @self: a #WpoolWorker
 *
 * Gets the C pointer given to wpool_pool_set_shared_data(). Under
 * %WPOOL_START_METHOD_THREADING it is the caller's own memory.
 *
 * Returns: (nullable): the shared data, or %NULL
 */
gpointer
wpool_worker_get_shared_data (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  return self->shared_data;
}

/**
 * wpool_worker_report_error:
 * @self: a #WpoolWorker
 * @domain: the error domain
 * @code: the error code
 * @message: the error message
 *
 * Fails the item the worker is running, from inside the task, for
 * bindings whose callbacks cannot set the #GError out argument of a
 * #WpoolTaskFunc (PyGObject 3.42 prints a callback's exception and returns
 * %NULL). The task then returns %NULL; the map fails with this error, its
 * message prefixed with the item and the worker as usual.
 *
 * libwpool's PyGObject override calls it for you: a Python task that
 * raises fails its map with the exception's type, message and traceback.
 */
void
wpool_worker_report_error (WpoolWorker *self,
                           GQuark       domain,
                           int          code,
                           const char  *message)
{
  g_return_if_fail (WPOOL_IS_WORKER (self));
  g_return_if_fail (domain != 0);
  g_return_if_fail (message != NULL);

  g_clear_error (&self->reported_error);
  self->reported_error = g_error_new_literal (domain, code, message);
}

GError *
wpool_worker_take_reported_error (WpoolWorker *self)
{
  return g_steal_pointer (&self->reported_error);
}
