/* wpool-insights-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How many of the slowest items insights keep. */
#define WPOOL_INSIGHTS_N_SLOWEST 5

typedef struct
{
  guint  map;
  guint  item;
  gint64 duration;
} WpoolSlowItem;

/* What one worker measured during one share of a map, on its own
 * thread, then added to the pool's insights at once; starts zeroed. */
typedef struct
{
  guint64       n_items;
  gint64        working;
  gint64        transfer;
  WpoolSlowItem slowest[WPOOL_INSIGHTS_N_SLOWEST];
  guint         n_slowest;
} WpoolShareInsights;

/* The insights of the maps since the pool was last idle, shared by their
 * jobs and added to by every worker's thread. */
typedef struct _WpoolInsights WpoolInsights;

WpoolInsights *wpool_insights_new          (guint               n_workers);
WpoolInsights *wpool_insights_ref          (WpoolInsights      *self);
void           wpool_insights_unref        (WpoolInsights      *self);
void           wpool_insights_add_start_up (WpoolInsights      *self,
                                            gint64              duration);
guint          wpool_insights_next_map     (WpoolInsights      *self);
void           wpool_insights_end          (WpoolInsights      *self);
void           wpool_insights_share_item   (WpoolShareInsights *share,
                                            guint               map,
                                            guint               item,
                                            gint64              duration);
void           wpool_insights_share_chunk  (WpoolShareInsights *share,
                                            guint               map,
                                            guint               first,
                                            guint               n_items,
                                            gint64              duration);
void           wpool_insights_share_end    (WpoolInsights      *self,
                                            guint               worker_id,
                                            WpoolShareInsights *share);
GVariant      *wpool_insights_to_variant   (WpoolInsights      *self);
char          *wpool_insights_describe     (GVariant           *insights);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WpoolInsights, wpool_insights_unref)

G_END_DECLS
