/* wpool-worker.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-shared-memory-private.h"
#include "wpool-worker-private.h"

/**
 * WpoolWorker:
 *
 * The worker that runs a task, inside whatever thread or process it lives
 * in. A [callback@Wpool.TaskFunc] receives it as its first argument.
 *
 * A worker is created when its pool starts its workers and lives as long as
 * they do, so a kept-alive pool hands the same worker to every map. Its
 * identifier runs from 0 to [property@Wpool.Pool:n-jobs] − 1.
 *
 * A worker is owned by its thread or process: use it only from inside the
 * task that received it.
 *
 * A worker keeps state from one item to the next, as MPIRE's
 * `use_worker_state` does: [method@Wpool.Worker.get_state] is a dictionary
 * the worker's tasks, its [property@Wpool.Pool:worker-init] and its
 * [property@Wpool.Pool:worker-exit] share, and C tasks can attach data with
 * [method@GObject.Object.set_data_full]. A worker process has its own copy:
 * the caller never sees it, but for what [property@Wpool.Pool:worker-exit]
 * returns.
 *
 * Since: 0.1
 */


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
  g_clear_pointer (&self->shared_members, g_ptr_array_unref);
  g_clear_error (&self->reported_error);
  g_clear_object (&self->init);
  g_clear_object (&self->exit);
  g_clear_error (&self->init_error);
  g_clear_pointer (&self->state, g_variant_dict_unref);

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
   * The worker's identifier, from 0 to [property@Wpool.Pool:n-jobs] − 1.
   *
   * Since: 0.1
   */
  properties[PROP_ID] =
    g_param_spec_uint ("id", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolWorker:shared-objects:
   *
   * The shared objects of the pool as this worker sees them.
   *
   * Since: 0.1
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

static void
unref_if_set (gpointer object)
{
  if (object != NULL)
    g_object_unref (object);
}

WpoolWorker *
wpool_worker_new (guint     id,
                  GVariant *shared_objects,
                  gpointer  shared_data)
{
  WpoolWorker *self = g_object_new (WPOOL_TYPE_WORKER, NULL);

  self->id = id;
  g_autoptr(GPtrArray) members = wpool_shared_objects_members (shared_objects);

  self->shared_objects = shared_objects ? g_variant_ref (shared_objects) : NULL;
  self->shared_data = shared_data;
  self->shared_members = g_ptr_array_new_with_free_func ((GDestroyNotify) unref_if_set);
  for (guint i = 0; i < members->len; i++)
    g_ptr_array_add (self->shared_members, wpool_shared_objects_resolve (members->pdata[i]));

  return self;
}

/**
 * wpool_worker_get_id:
 * @self: a [class@Wpool.Worker]
 *
 * Gets the worker's identifier, from 0 to [property@Wpool.Pool:n-jobs] − 1.
 *
 * Returns: the identifier
 *
 * Since: 0.1
 */
guint
wpool_worker_get_id (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), 0);

  return self->id;
}

/**
 * wpool_worker_get_shared_objects:
 * @self: a [class@Wpool.Worker]
 *
 * Gets the pool's shared objects as this worker sees them. Under
 * %WPOOL_START_METHOD_THREADING this is the very [struct@GLib.Variant]
 * given to the pool, with no copy.
 *
 * Returns: (transfer none) (nullable): the shared objects, or %NULL
 *
 * Since: 0.1
 */
GVariant *
wpool_worker_get_shared_objects (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  return self->shared_objects;
}

/**
 * wpool_worker_get_shared_data: (skip)
 * @self: a [class@Wpool.Worker]
 *
 * Gets the C pointer given to [method@Wpool.Pool.set_shared_data]. Under
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
 * @self: a [class@Wpool.Worker]
 * @domain: the error domain
 * @code: the error code
 * @message: the error message
 *
 * Fails the item the worker is running, from inside the task, for bindings
 * whose callbacks cannot set the [type@GLib.Error] out argument of a
 * [callback@Wpool.TaskFunc] (PyGObject 3.42 prints a callback's exception
 * and returns %NULL). The task then returns %NULL; the map fails with this
 * error, its message prefixed with the item and the worker as usual.
 *
 * libwpool's PyGObject override calls it for you: a Python task that
 * raises fails its map with the exception's type, message and traceback.
 *
 * Since: 0.1
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

/* Moves the error a binding reported into @error, unless the task set one
 * itself, which wins. */
void
wpool_worker_take_reported_error (WpoolWorker  *self,
                                  GError      **error)
{
  if (*error == NULL)
    *error = g_steal_pointer (&self->reported_error);
  else
    g_clear_error (&self->reported_error);
}

/**
 * wpool_worker_get_state:
 * @self: a [class@Wpool.Worker]
 *
 * Gets the worker's state: a dictionary that lives as long as the worker
 * and that its tasks, [property@Wpool.Pool:worker-init] and
 * [property@Wpool.Pool:worker-exit] read and write, as MPIRE's
 * `worker_state`. A kept-alive pool keeps it from one map to the next; a
 * worker restarted, or replaced after it died, starts with an empty one.
 *
 * Returns: (transfer none): the worker's state
 *
 * Since: 0.1
 */
GVariantDict *
wpool_worker_get_state (WpoolWorker *self)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  if (self->state == NULL)
    self->state = g_variant_dict_new (NULL);

  return self->state;
}

static GObject *
shared_member (WpoolWorker  *self,
               guint         index,
               GType         type,
               const char   *what,
               GError      **error)
{
  GObject *object = index < self->shared_members->len ? self->shared_members->pdata[index] : NULL;

  if (object == NULL || !G_TYPE_CHECK_INSTANCE_TYPE (object, type))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Shared object %u is not the handle of a %s", index, what);
      return NULL;
    }

  return object;
}

/**
 * wpool_worker_get_shared_array:
 * @self: a [class@Wpool.Worker]
 * @index: the position of the array's handle in the shared objects' tuple
 *   (0 when the shared objects are the handle alone)
 * @error: return location for a [type@GLib.Error]
 *
 * Gets the [class@Wpool.SharedArray] whose handle,
 * [method@Wpool.SharedArray.get_handle], is member @index of the pool's
 * shared objects: the very array the caller made, whatever the start
 * method.
 *
 * Returns: (transfer none): the array, or %NULL with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when that member is no such handle
 *
 * Since: 0.1
 */
WpoolSharedArray *
wpool_worker_get_shared_array (WpoolWorker  *self,
                               guint         index,
                               GError      **error)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  return (WpoolSharedArray *)shared_member (self, index, WPOOL_TYPE_SHARED_ARRAY, "shared array", error);
}

/**
 * wpool_worker_get_lock:
 * @self: a [class@Wpool.Worker]
 * @index: the position of the lock's handle in the shared objects' tuple
 *   (0 when the shared objects are the handle alone)
 * @error: return location for a [type@GLib.Error]
 *
 * Gets the [class@Wpool.Lock] whose handle, [method@Wpool.Lock.get_handle],
 * is member @index of the pool's shared objects.
 *
 * Returns: (transfer none): the lock, or %NULL with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when that member is no such handle
 *
 * Since: 0.1
 */
WpoolLock *
wpool_worker_get_lock (WpoolWorker  *self,
                       guint         index,
                       GError      **error)
{
  g_return_val_if_fail (WPOOL_IS_WORKER (self), NULL);

  return (WpoolLock *)shared_member (self, index, WPOOL_TYPE_LOCK, "lock", error);
}
