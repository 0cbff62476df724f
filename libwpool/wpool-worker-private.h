/* wpool-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

WpoolWorker *wpool_worker_new (guint     id,
                               GVariant *shared_objects,
                               gpointer  shared_data);
GError      *wpool_worker_take_reported_error (WpoolWorker *self);
void         wpool_worker_set_lifecycle       (WpoolWorker  *self,
                                               WpoolTask    *init,
                                               WpoolTask    *exit);
gboolean     wpool_worker_has_init            (WpoolWorker  *self);
gboolean     wpool_worker_run_init            (WpoolWorker  *self,
                                               GError      **error);
gboolean     wpool_worker_has_exit            (WpoolWorker  *self);
GVariant    *wpool_worker_run_exit            (WpoolWorker         *self,
                                               const GVariantType  *result_type,
                                               GError             **error);

G_END_DECLS
