/* wpool-backend.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-private.h"
#include "wpool-enums.h"
#include "wpool-error.h"

typedef struct
{
  guint     n_jobs;
  GVariant *shared_objects;
  gpointer  shared_data;
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

static void
wpool_backend_class_init (WpoolBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = wpool_backend_dispose;
  object_class->finalize = wpool_backend_finalize;
  object_class->set_property = wpool_backend_set_property;

  klass->check_task = wpool_backend_real_check_task;

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
    case WPOOL_START_METHOD_FORKSERVER:
    case WPOOL_START_METHOD_SPAWN:
    default:
      {
        g_autoptr(GEnumClass) enum_class = g_type_class_ref (WPOOL_TYPE_START_METHOD);
        GEnumValue *value = g_enum_get_value (enum_class, start_method);

        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                     "The start method “%s” is not implemented in libwpool %s; "
                     "only WPOOL_START_METHOD_THREADING can run maps",
                     value ? value->value_nick : "unknown", WPOOL_VERSION_S);
        return G_TYPE_INVALID;
      }
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

WpoolBackend *
wpool_backend_new (WpoolStartMethod   start_method,
                   guint              n_jobs,
                   GVariant          *shared_objects,
                   gpointer           shared_data,
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

  if (!WPOOL_BACKEND_GET_CLASS (self)->start (self, error))
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

void
wpool_backend_dispatch (WpoolBackend *self,
                        WpoolJob     *job,
                        guint         n_workers)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  g_assert (!priv->stopped);
  g_assert (n_workers > 0 && n_workers <= priv->n_jobs);

  WPOOL_BACKEND_GET_CLASS (self)->dispatch (self, job, n_workers);
}

/* Idempotent: the pool stops the workers when it is done with them, and
 * dispose makes sure of it. */
void
wpool_backend_stop (WpoolBackend *self)
{
  WpoolBackendPrivate *priv = wpool_backend_get_instance_private (self);

  if (priv->stopped)
    return;

  priv->stopped = TRUE;
  WPOOL_BACKEND_GET_CLASS (self)->stop (self);
}

/* Backends mark their worker threads, so that a task mapping on its own
 * pool is refused instead of waiting forever for itself. */
void
wpool_backend_set_current (WpoolBackend *self)
{
  g_private_set (&current_backend, self);
}

gboolean
wpool_backend_is_current (WpoolBackend *self)
{
  return self != NULL && g_private_get (&current_backend) == self;
}
