/* wpool-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-worker.h"

G_BEGIN_DECLS

WpoolWorker *wpool_worker_new (guint     id,
                               GVariant *shared_objects,
                               gpointer  shared_data);
GError      *wpool_worker_take_reported_error (WpoolWorker *self);

G_END_DECLS
