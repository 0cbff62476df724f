/* wpool-map-stream-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-job-private.h"
#include "wpool-map-stream.h"
#include "wpool-pool.h"

G_BEGIN_DECLS

/* How a stream starts a map of more items from its source, and ends a
 * map it handed out: given by its maker (wpool-pool-imap.c), so that the
 * stream calls no pool code itself. */
typedef struct
{
  gboolean (*start_window) (WpoolMapStream  *stream,
                            GVariant        *items,
                            GError         **error);
  gboolean (*end_job)      (WpoolPool       *pool,
                            WpoolJob        *job,
                            GError         **error);
} WpoolMapStreamOps;

/* A stream is made for a task's maps; its maker adds a window for each
 * map it starts for the stream (all the items, or those a source gave),
 * which the stream ends. */
WpoolMapStream *wpool_map_stream_new           (WpoolPool               *pool,
                                                WpoolTask               *task,
                                                WpoolMapFlags            flags,
                                                GCancellable            *cancellable,
                                                const WpoolMapStreamOps *ops);
WpoolPool      *wpool_map_stream_get_pool      (WpoolMapStream  *self);
WpoolTask      *wpool_map_stream_get_task      (WpoolMapStream  *self);
GCancellable   *wpool_map_stream_get_map_cancellable (WpoolMapStream *self);
void            wpool_map_stream_set_source    (WpoolMapStream  *self,
                                                WpoolItemSource  source,
                                                gpointer         source_data,
                                                GDestroyNotify   source_destroy,
                                                guint            window_size);
gboolean        wpool_map_stream_fill          (WpoolMapStream  *self,
                                                GError         **error);
gpointer        wpool_map_stream_add_window    (WpoolMapStream  *self,
                                                WpoolJob        *job);
void            wpool_map_stream_remove_window (WpoolMapStream  *self,
                                                gpointer         window);
void            wpool_map_stream_window_done   (WpoolJob        *job,
                                                gpointer         window);

G_END_DECLS
