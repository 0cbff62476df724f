/* wpool-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* Here for wpool-worker-lifecycle.c, which runs the worker-init and
 * worker-exit on it. */
struct _WpoolWorker
{
  GObject   parent_instance;

  guint     id;
  /* Owned by the pool's backend, which outlives every task call. */
  GVariant *shared_objects;
  gpointer  shared_data;
  /* What each member of the shared objects stands for, if it is the
   * handle of a shared array or lock: resolved when the worker is made,
   * in the pool's process, so that a forked worker takes no lock. */
  GPtrArray *shared_members;

  /* Set by wpool_worker_report_error() during a task call. A worker runs
   * one item at a time, on its own thread, so this needs no lock. */
  GError   *reported_error;

  /* The pool's worker-init and worker-exit, the outcome of the init once
   * it ran, and the state the worker's calls share. */
  WpoolTask    *init;
  WpoolTask    *exit;
  gboolean      init_ran;
  GError       *init_error;
  GVariantDict *state;
};


WpoolWorker *wpool_worker_new (guint     id,
                               GVariant *shared_objects,
                               gpointer  shared_data);
void         wpool_worker_take_reported_error (WpoolWorker  *self,
                                               GError      **error);
void         wpool_worker_set_lifecycle       (WpoolWorker  *self,
                                               WpoolTask    *init,
                                               WpoolTask    *exit);
gboolean     wpool_worker_load_tasks          (WpoolTaskResolveFunc   resolve,
                                               gpointer               user_data,
                                               GVariant              *shared_objects,
                                               GVariant              *locations,
                                               WpoolTask            **task,
                                               WpoolTask            **init,
                                               WpoolTask            **exit,
                                               GError               **error);
gboolean     wpool_worker_has_init            (WpoolWorker  *self);
gboolean     wpool_worker_run_init            (WpoolWorker  *self,
                                               GError      **error);
gboolean     wpool_worker_has_exit            (WpoolWorker  *self);
GVariant    *wpool_worker_run_exit            (WpoolWorker         *self,
                                               const GVariantType  *result_type,
                                               GError             **error);
GVariant    *wpool_worker_invoke              (WpoolWorker         *self,
                                               WpoolTask           *task,
                                               GVariant            *item,
                                               guint                index,
                                               const GVariantType  *result_type,
                                               GError             **error);
gboolean     wpool_worker_run_chunk           (WpoolWorker         *self,
                                               WpoolTask           *task,
                                               gconstpointer        items,
                                               guint                first,
                                               gsize                n_items,
                                               gpointer             results,
                                               GError             **error);

G_END_DECLS
