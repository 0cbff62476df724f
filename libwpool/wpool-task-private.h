/* wpool-task-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-task.h"

G_BEGIN_DECLS

gboolean  wpool_task_check                (WpoolTask    *self,
                                           GError      **error);
gboolean  wpool_task_is_javascript_func   (WpoolTask    *self);
gboolean  wpool_task_locate               (WpoolTask    *self,
                                           const char  **module_path,
                                           const char  **symbol,
                                           GError      **error);
gboolean  wpool_task_runs_program         (WpoolTask          *self,
                                           const char * const *program);
gboolean  wpool_task_is_chunk_task        (WpoolTask    *self);
gboolean  wpool_task_run_chunk            (WpoolTask     *self,
                                           WpoolWorker   *worker,
                                           gconstpointer  items,
                                           gsize          n_items,
                                           gpointer       results,
                                           GError       **error);
GVariant *wpool_task_call                 (WpoolTask          *self,
                                           WpoolWorker        *worker,
                                           GVariant           *item,
                                           const GVariantType *result_type,
                                           GError            **error);

G_END_DECLS
