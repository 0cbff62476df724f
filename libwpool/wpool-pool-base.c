/* wpool-pool-base.c: what every part of a #WpoolPool uses, below them
 * all: its property notifications and progress signal, emitted on the
 * right main context, and its disposed state. The GObject (wpool-pool.c)
 * fills the GParamSpecs in its class_init; nothing here calls the pool's
 * other files.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-pool-private.h"

GParamSpec *wpool_pool_properties[N_PROPS];
guint wpool_pool_signals[N_SIGNALS];

typedef struct
{
  WpoolPool *pool;
  guint      mask;
  guint64    n_completed;
  guint64    n_total;
} Emission;

/* Notifies @prop_id, on this thread. */
void
wpool_pool_notify (WpoolPool *self,
                   guint      prop_id)
{
  g_object_notify_by_pspec (G_OBJECT (self), wpool_pool_properties[prop_id]);
}

/* Sets the timeout at @field, in seconds (checked by its setter), to
 * @seconds, and notifies @prop_id if it changed. */
void
wpool_pool_set_seconds (WpoolPool *self,
                        gdouble   *field,
                        gdouble    seconds,
                        guint      prop_id)
{
  if (*field == seconds)
    return;

  *field = seconds;
  wpool_pool_notify (self, prop_id);
}

static void
wpool_pool_emit_now (WpoolPool *self,
                     guint      mask,
                     guint64    n_completed,
                     guint64    n_total)
{
  g_object_freeze_notify (G_OBJECT (self));
  for (guint prop = 1; prop < N_PROPS; prop++)
    if (mask & (1u << prop))
      g_object_notify_by_pspec (G_OBJECT (self), wpool_pool_properties[prop]);
  g_object_thaw_notify (G_OBJECT (self));

  if (mask & EMIT_PROGRESS)
    g_signal_emit (self, wpool_pool_signals[PROGRESS], 0, n_completed, n_total);
}

static gboolean
wpool_pool_emit_in_context (gpointer data)
{
  Emission *emission = data;

  wpool_pool_emit_now (emission->pool, emission->mask, emission->n_completed, emission->n_total);

  return G_SOURCE_REMOVE;
}

static void
emission_free (gpointer data)
{
  Emission *emission = data;

  g_object_unref (emission->pool);
  g_free (emission);
}

/* Emits the notifications of @mask, and the progress signal with
 * @n_completed and @n_total: at once with no @context (a blocking call
 * emits on its own thread), else on @context, whose thread may not be
 * this one, and which must not wait for the pool's lock. */
void
wpool_pool_emit (WpoolPool    *self,
                 GMainContext *context,
                 guint         mask,
                 guint64       n_completed,
                 guint64       n_total)
{
  GSource *source;
  Emission *emission;

  if (mask == 0)
    return;

  if (context == NULL)
    {
      wpool_pool_emit_now (self, mask, n_completed, n_total);
      return;
    }

  emission = g_new (Emission, 1);
  *emission = (Emission) { g_object_ref (self), mask, n_completed, n_total };
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[wpool] notify");
  g_source_set_callback (source, wpool_pool_emit_in_context, emission, emission_free);
  wpool_pool_attach (source, context);
}

/* Attaches @source, which it consumes, to @context from another thread
 * than the context's. That thread may run the source, release what it
 * held, and drop the context at once: the context is held until the
 * source is let go, which GLib cannot do once the context is freed. */
void
wpool_pool_attach (GSource      *source,
                   GMainContext *context)
{
  g_main_context_ref (context);
  g_source_attach (source, context);
  g_source_unref (source);
  g_main_context_unref (context);
}

/* Async maps queued and not started yet. */
guint
wpool_pool_get_n_pending (WpoolPool *self)
{
  guint n;

  g_mutex_lock (&self->pending_mutex);
  n = self->n_pending;
  g_mutex_unlock (&self->pending_mutex);

  return n;
}

/* A disposed pool has let its workers, shared objects and shared data
 * go: a map would run without what the caller set, so none runs. Nor
 * does one on a pool constructed with a value it could not take, which
 * would run without it. */
gboolean
wpool_pool_check_usable (WpoolPool  *self,
                         GError    **error)
{
  if (self->construct_error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->construct_error));
      return FALSE;
    }

  if (!self->disposed)
    return TRUE;

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                       "The pool was disposed: it runs no more maps, nor takes shared objects");
  return FALSE;
}
