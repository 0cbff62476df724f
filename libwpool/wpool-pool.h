/* wpool-pool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "wpool-map-stream.h"
#include "wpool-start-method.h"
#include "wpool-task.h"
#include "wpool-version-macros.h"

G_BEGIN_DECLS

/**
 * WPOOL_MAX_N_JOBS:
 *
 * The largest [property@Wpool.Pool:n-jobs] a pool accepts.
 *
 * Since: 0.1
 */
#define WPOOL_MAX_N_JOBS 1024

#define WPOOL_TYPE_POOL (wpool_pool_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolPool, wpool_pool, WPOOL, POOL, GObject)

WPOOL_AVAILABLE_IN_0_1
WpoolPool        *wpool_pool_new                (guint                 n_jobs,
                                                 WpoolStartMethod      start_method);
WPOOL_AVAILABLE_IN_0_1
guint             wpool_pool_get_n_jobs         (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
WpoolStartMethod  wpool_pool_get_start_method   (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_get_keep_alive     (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_keep_alive     (WpoolPool            *self,
                                                 gboolean              keep_alive);
WPOOL_AVAILABLE_IN_0_1
guint             wpool_pool_get_chunk_size     (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_chunk_size     (WpoolPool            *self,
                                                 guint                 chunk_size);
WPOOL_AVAILABLE_IN_0_1
guint             wpool_pool_get_n_splits       (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_n_splits       (WpoolPool            *self,
                                                 guint                 n_splits);
WPOOL_AVAILABLE_IN_0_1
guint             wpool_pool_get_max_tasks_active (WpoolPool          *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_max_tasks_active (WpoolPool          *self,
                                                   guint               max_tasks_active);
WPOOL_AVAILABLE_IN_0_1
gdouble           wpool_pool_get_task_timeout   (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_task_timeout   (WpoolPool            *self,
                                                 gdouble               task_timeout);
WPOOL_AVAILABLE_IN_0_1
guint             wpool_pool_get_worker_lifespan (WpoolPool           *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_worker_lifespan (WpoolPool           *self,
                                                  guint                worker_lifespan);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_get_cpu_ids        (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_set_cpu_ids        (WpoolPool            *self,
                                                 GVariant             *cpu_ids,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
WpoolTask        *wpool_pool_get_worker_init    (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_set_worker_init    (WpoolPool            *self,
                                                 WpoolTask            *worker_init,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
WpoolTask        *wpool_pool_get_worker_exit    (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_set_worker_exit    (WpoolPool            *self,
                                                 WpoolTask            *worker_exit,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_2
gdouble           wpool_pool_get_worker_start_timeout (WpoolPool      *self);
WPOOL_AVAILABLE_IN_0_2
void              wpool_pool_set_worker_start_timeout (WpoolPool      *self,
                                                      gdouble         timeout);
WPOOL_AVAILABLE_IN_0_1
gdouble           wpool_pool_get_worker_init_timeout (WpoolPool       *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_worker_init_timeout (WpoolPool       *self,
                                                      gdouble          timeout);
WPOOL_AVAILABLE_IN_0_1
gdouble           wpool_pool_get_worker_exit_timeout (WpoolPool       *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_worker_exit_timeout (WpoolPool       *self,
                                                      gdouble          timeout);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_get_exit_results   (WpoolPool            *self,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_stop_and_join      (WpoolPool            *self,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_terminate          (WpoolPool            *self,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_get_shared_objects (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_set_shared_objects (WpoolPool            *self,
                                                 GVariant             *shared_objects,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_set_shared_data    (WpoolPool            *self,
                                                 gpointer              shared_data,
                                                 GDestroyNotify        destroy,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_get_workers_running (WpoolPool           *self);
WPOOL_AVAILABLE_IN_0_1
guint64           wpool_pool_get_n_completed    (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
guint64           wpool_pool_get_n_total        (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gdouble           wpool_pool_get_eta            (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_get_enable_insights (WpoolPool           *self);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_set_enable_insights (WpoolPool           *self,
                                                  gboolean             enable_insights);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_get_insights       (WpoolPool            *self);
WPOOL_AVAILABLE_IN_0_1
char             *wpool_pool_get_insights_summary (WpoolPool          *self);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_map                (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *items,
                                                 GCancellable         *cancellable,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_map_async          (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *items,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_map_finish         (WpoolPool            *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
gboolean          wpool_pool_map_chunks         (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 gconstpointer         items,
                                                 gsize                 n_items,
                                                 gpointer              results,
                                                 GCancellable         *cancellable,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_map_unordered      (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *items,
                                                 GCancellable         *cancellable,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
WpoolMapStream   *wpool_pool_imap               (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *items,
                                                 WpoolMapFlags         flags,
                                                 GCancellable         *cancellable,
                                                 GError              **error);

WPOOL_AVAILABLE_IN_0_1
WpoolMapStream   *wpool_pool_imap_source        (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 WpoolItemSource       source,
                                                 gpointer              user_data,
                                                 GDestroyNotify        destroy,
                                                 guint64               n_items_hint,
                                                 WpoolMapFlags         flags,
                                                 GCancellable         *cancellable,
                                                 GError              **error);

WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_apply              (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *item,
                                                 GCancellable         *cancellable,
                                                 GError              **error);
WPOOL_AVAILABLE_IN_0_1
void              wpool_pool_apply_async        (WpoolPool            *self,
                                                 WpoolTask            *task,
                                                 GVariant             *item,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
WPOOL_AVAILABLE_IN_0_1
GVariant         *wpool_pool_apply_finish       (WpoolPool            *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);

G_END_DECLS
