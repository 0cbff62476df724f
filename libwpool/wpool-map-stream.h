/* wpool-map-stream.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "wpool-version-macros.h"

G_BEGIN_DECLS

/**
 * WpoolMapFlags:
 * @WPOOL_MAP_FLAGS_NONE: results in input order; the first failed item
 *   ends the map, as [method@Wpool.Pool.map] does (MPIRE's `imap`)
 * @WPOOL_MAP_FLAGS_UNORDERED: results as they complete, whatever their
 *   order (MPIRE's `imap_unordered`)
 * @WPOOL_MAP_FLAGS_KEEP_GOING: a failed item fails alone: its error comes
 *   in its place and the other items go on. A worker process that dies or
 *   overruns [property@Wpool.Pool:task-timeout] fails the item it ran; the
 *   rest of its chunk runs again on other workers
 *
 * How [method@Wpool.Pool.imap] runs a map and hands out its outcomes.
 *
 * Since: 0.1
 */
typedef enum /*< flags >*/
{
  WPOOL_MAP_FLAGS_NONE       = 0,
  WPOOL_MAP_FLAGS_UNORDERED  = 1 << 0,
  WPOOL_MAP_FLAGS_KEEP_GOING = 1 << 1,
} WpoolMapFlags;

/**
 * WpoolItemSource:
 * @user_data: the data given with the source
 * @error: return location for a [type@GLib.Error]
 *
 * Gives the next item of a map started with
 * [method@Wpool.Pool.imap_source]: a [struct@GLib.Variant] of the same type
 * as the first, floating or not, which the pool consumes. It is called on
 * the thread that reads the stream, as the workers need more items.
 *
 * Returns: (transfer full) (nullable): the next item, or %NULL at the end,
 *   or with @error set if it failed
 *
 * Since: 0.1
 */
typedef GVariant *(*WpoolItemSource) (gpointer   user_data,
                                      GError   **error);

#define WPOOL_TYPE_MAP_STREAM (wpool_map_stream_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolMapStream, wpool_map_stream, WPOOL, MAP_STREAM, GObject)

WPOOL_AVAILABLE_IN_0_1
guint          wpool_map_stream_get_n_items  (WpoolMapStream       *self);
WPOOL_AVAILABLE_IN_0_1
WpoolMapFlags  wpool_map_stream_get_flags    (WpoolMapStream       *self);
WPOOL_AVAILABLE_IN_0_1
gboolean       wpool_map_stream_next         (WpoolMapStream       *self,
                                              guint                *index,
                                              GVariant            **result,
                                              GError              **item_error,
                                              GError              **error);
WPOOL_AVAILABLE_IN_0_1
void           wpool_map_stream_next_async   (WpoolMapStream       *self,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
WPOOL_AVAILABLE_IN_0_1
gboolean       wpool_map_stream_next_finish  (WpoolMapStream       *self,
                                              GAsyncResult         *result,
                                              guint                *index,
                                              GVariant            **item_result,
                                              GError              **item_error,
                                              GError              **error);

G_END_DECLS
