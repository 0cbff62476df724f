/* wpool-task.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib-object.h>

#include "wpool-version-macros.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

#define WPOOL_TYPE_TASK (wpool_task_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolTask, wpool_task, WPOOL, TASK, GObject)

/**
 * WpoolTaskFunc:
 * @worker: the worker running the task
 * @shared_objects: (nullable): the pool's shared objects as this worker sees
 *   them, or %NULL when the pool has none
 * @item: the item to process, one element of the items given to the map
 * @user_data: (closure): the data given to [ctor@Wpool.Task.new]
 * @error: return location for a [type@GLib.Error]
 *
 * The function a [class@Wpool.Pool] maps over its items. As in MPIRE, the
 * shared objects come as the argument right after the worker.
 *
 * It runs on a worker thread or in a worker process, never on the caller's
 * main context, and may run concurrently with itself: it must only read
 * @shared_objects and @user_data, or synchronise its writes.
 *
 * Returns: (transfer full) (nullable): the item's result, which may be a
 *   floating reference, or %NULL with @error set
 *
 * Since: 0.1
 */
typedef GVariant *(*WpoolTaskFunc) (WpoolWorker  *worker,
                                    GVariant     *shared_objects,
                                    GVariant     *item,
                                    gpointer      user_data,
                                    GError      **error);

/**
 * WpoolChunkFunc:
 * @worker: the worker running the task
 * @shared_objects: (nullable): the pool's shared objects as this worker sees
 *   them, or %NULL when the pool has none
 * @items: the chunk's @n_items items, of the task's item type, laid out as
 *   in the items' [struct@GLib.Variant] array: a plain C array for basic
 *   types
 * @n_items: the number of items
 * @results: where the chunk's @n_items results go, of the task's result
 *   type, laid out the same way
 * @user_data: the data given to [ctor@Wpool.Task.new_for_chunks]
 * @error: return location for a [type@GLib.Error]
 *
 * The function of a chunk task: it runs a whole chunk of fixed-size items
 * at once, with no [struct@GLib.Variant] per item, as an OpenMP loop body
 * would. The same rules as for a [callback@Wpool.TaskFunc] hold otherwise.
 *
 * Returns: %TRUE, or %FALSE with @error set: every item of the chunk fails
 *
 * Since: 0.1
 */
typedef gboolean (*WpoolChunkFunc) (WpoolWorker    *worker,
                                    GVariant       *shared_objects,
                                    gconstpointer   items,
                                    gsize           n_items,
                                    gpointer        results,
                                    gpointer        user_data,
                                    GError        **error);

/* Here rather than in wpool-worker.h, which knows no WpoolTask. */
typedef WpoolTask *(*WpoolTaskResolveFunc) (const char  *module,
                                            const char  *name,
                                            GVariant    *shared_objects,
                                            gpointer     user_data,
                                            GError     **error);

WPOOL_AVAILABLE_IN_0_2
gboolean            wpool_worker_serve         (const char * const  *args,
                                                WpoolServeFlags      flags,
                                                WpoolTaskResolveFunc resolve,
                                                gpointer             user_data,
                                                GError             **error);

WPOOL_AVAILABLE_IN_0_1
WpoolTask          *wpool_task_new_for_chunks  (const GVariantType  *item_type,
                                                const GVariantType  *result_type,
                                                WpoolChunkFunc       func,
                                                gpointer             user_data,
                                                GDestroyNotify       destroy);
WPOOL_AVAILABLE_IN_0_1
WpoolTask          *wpool_task_new_for_chunk_symbol (const char          *module_path,
                                                     const char          *symbol,
                                                     const GVariantType  *item_type,
                                                     const GVariantType  *result_type,
                                                     GError             **error);
WPOOL_AVAILABLE_IN_0_1
const GVariantType *wpool_task_get_item_type   (WpoolTask           *self);
WPOOL_AVAILABLE_IN_0_1
WpoolTask          *wpool_task_new             (WpoolTaskFunc        func,
                                                gpointer             user_data,
                                                GDestroyNotify       destroy);
WPOOL_AVAILABLE_IN_0_1
WpoolTask          *wpool_task_new_for_symbol  (const char          *module_path,
                                                const char          *symbol,
                                                GError             **error);
WPOOL_AVAILABLE_IN_0_2
WpoolTask          *wpool_task_new_for_program (const char * const  *argv,
                                                const char          *module,
                                                const char          *name);
WPOOL_AVAILABLE_IN_0_2
const char * const *wpool_task_get_program     (WpoolTask           *self);
WPOOL_AVAILABLE_IN_0_1
const char         *wpool_task_get_module_path (WpoolTask           *self);
WPOOL_AVAILABLE_IN_0_1
const char         *wpool_task_get_symbol      (WpoolTask           *self);
WPOOL_AVAILABLE_IN_0_1
const GVariantType *wpool_task_get_result_type (WpoolTask           *self);
WPOOL_AVAILABLE_IN_0_1
void                wpool_task_set_result_type (WpoolTask           *self,
                                                const GVariantType  *result_type);

G_END_DECLS
