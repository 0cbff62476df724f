/* wpool-pool-imap.c: the maps whose outcomes a #WpoolMapStream hands
 * out (wpool_pool_imap(), wpool_pool_imap_source(), and
 * wpool_pool_map_unordered() over them). This file starts a stream's maps
 * and ends them, for the stream, through the functions it gives it: the
 * stream calls no pool code of its own, and the pool's other files no
 * stream code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-map-stream-private.h"
#include "wpool-pool-private.h"

/* Starts a map of @items for @stream, which hands out its outcomes. */
static gboolean
start_window (WpoolMapStream  *stream,
              GVariant        *items,
              GError         **error)
{
  WpoolPool *self = wpool_map_stream_get_pool (stream);
  g_autoptr(WpoolJob) job = NULL;
  gpointer window;

  if (!(job = wpool_pool_prepare_map (self, wpool_map_stream_get_task (stream), items,
                                      wpool_map_stream_get_flags (stream),
                                      wpool_map_stream_get_map_cancellable (stream), error)))
    return FALSE;

  window = wpool_map_stream_add_window (stream, job);
  if (!wpool_pool_start_map (self, job, wpool_map_stream_window_done, window, NULL, error))
    {
      wpool_map_stream_remove_window (stream, window);
      return FALSE;
    }

  return TRUE;
}

static const WpoolMapStreamOps stream_ops = {
  .start_window = start_window,
  .end_job = wpool_pool_end_job,
};

/**
 * wpool_pool_imap:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run on every item
 * @items: a [struct@GLib.Variant] array of any element type; if floating,
 *   it is consumed
 * @flags: how the map hands out its outcomes
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Starts a map of @task over @items, as [method@Wpool.Pool.map] does, and
 * returns at once with a stream of its outcomes: read them as they come
 * with [method@Wpool.MapStream.next] or
 * [method@Wpool.MapStream.next_async].
 *
 * %WPOOL_MAP_FLAGS_UNORDERED hands results out as they complete, and
 * %WPOOL_MAP_FLAGS_KEEP_GOING gives every item its own outcome: a failed
 * item, a crashed worker process or a timed-out item fails alone, the
 * rest of the map goes on.
 *
 * Returns: (transfer full): the map's stream, or %NULL with @error set if
 *   the map cannot start
 *
 * Since: 0.1
 */
WpoolMapStream *
wpool_pool_imap (WpoolPool      *self,
                 WpoolTask      *task,
                 GVariant       *items,
                 WpoolMapFlags   flags,
                 GCancellable   *cancellable,
                 GError        **error)
{
  g_autoptr(WpoolMapStream) stream = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (WPOOL_IS_TASK (task), NULL);
  g_return_val_if_fail (items != NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* The map runs under the stream's cancellable, which @cancellable and
   * dropping the stream cancel. */
  stream = wpool_map_stream_new (self, task, flags, cancellable, &stream_ops);
  if (!start_window (stream, items, error))
    return NULL;

  return g_steal_pointer (&stream);
}

/**
 * wpool_pool_imap_source:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run on every item
 * @source: (scope notified): gives the items, one by one
 * @user_data: data for @source
 * @destroy: (nullable): frees @user_data once the source is done
 * @n_items_hint: how many items @source will give, if known, or 0
 * @flags: how the map hands out its outcomes
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Starts a map of @task over the items @source gives, as MPIRE does with
 * a generator, and returns a stream of its outcomes, numbered from 0 in
 * the order the source gave the items. The items never all exist at
 * once: the source is asked for a window of them at a time, one window
 * ahead of those being handed out, on the thread that reads the stream
 * (so a JavaScript or Python source runs where it may). A window holds
 * [property@Wpool.Pool:max-tasks-active] chunks, half of them each.
 *
 * The chunk size is [property@Wpool.Pool:chunk-size], or if it is
 * automatic, as for a map of @n_items_hint items, or 1 without a hint.
 * Progress counts the items taken from the source so far.
 *
 * Returns: (transfer full): the map's stream, or %NULL with @error set if
 *   the map cannot start or the source failed at once
 *
 * Since: 0.1
 */
WpoolMapStream *
wpool_pool_imap_source (WpoolPool       *self,
                        WpoolTask       *task,
                        WpoolItemSource  source,
                        gpointer         user_data,
                        GDestroyNotify   destroy,
                        guint64          n_items_hint,
                        WpoolMapFlags    flags,
                        GCancellable    *cancellable,
                        GError         **error)
{
  g_autoptr(WpoolMapStream) stream = NULL;
  guint chunk_size;
  guint max_active;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (WPOOL_IS_TASK (task), NULL);
  g_return_val_if_fail (source != NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  chunk_size = self->chunk_size > 0 || n_items_hint > 0
               ? wpool_pool_resolve_chunk_size (self, (guint)MIN (n_items_hint, G_MAXINT / 2), NULL)
               : 1;
  max_active = self->max_tasks_active > 0 ? self->max_tasks_active : self->n_jobs * 2;

  stream = wpool_map_stream_new (self, task, flags, cancellable, &stream_ops);
  wpool_map_stream_set_source (stream, source, user_data, destroy,
                               (guint)MIN ((guint64)chunk_size * MAX (max_active / 2, 1), G_MAXINT / 2));

  if (!wpool_map_stream_fill (stream, error))
    return NULL;

  return g_steal_pointer (&stream);
}

/**
 * wpool_pool_map_unordered:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run on every item
 * @items: a [struct@GLib.Variant] array of any element type; if floating,
 *   it is consumed
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Runs @task on every element of @items, as [method@Wpool.Pool.map] does,
 * and returns the results in the order they completed (MPIRE's
 * `map_unordered`): the first ones ready are not held back by a slow item
 * before them. A task that needs to know which item a result is for returns
 * the index with it (see [func@Wpool.items_enumerate]).
 *
 * Returns: (transfer full): the results, as an array of the task's result
 *   type or `av`, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_map_unordered (WpoolPool     *self,
                          WpoolTask     *task,
                          GVariant      *items,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariantType) array_type = NULL;
  const GVariantType *result_type;
  GVariantBuilder builder;
  GVariant *result;
  GError *local_error = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (WPOOL_IS_TASK (task), NULL);
  g_return_val_if_fail (items != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(stream = wpool_pool_imap (self, task, items, WPOOL_MAP_FLAGS_UNORDERED, cancellable, error)))
    return NULL;

  result_type = wpool_task_get_result_type (task);
  array_type = g_variant_type_new_array (result_type ? result_type : G_VARIANT_TYPE_VARIANT);
  g_variant_builder_init (&builder, array_type);

  while (wpool_map_stream_next (stream, NULL, &result, NULL, &local_error))
    {
      g_variant_builder_add_value (&builder, result_type ? result : g_variant_new_variant (result));
      g_variant_unref (result);
    }

  if (local_error != NULL)
    {
      g_variant_builder_clear (&builder);
      g_propagate_error (error, local_error);
      return NULL;
    }

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}
