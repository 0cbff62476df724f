/* wpool-pool-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-job-private.h"
#include "wpool-pool.h"

G_BEGIN_DECLS

gboolean wpool_pool_end_job (WpoolPool  *self,
                             WpoolJob   *job,
                             GError    **error);

gboolean wpool_pool_start_window (WpoolPool       *self,
                                  WpoolMapStream  *stream,
                                  WpoolTask       *task,
                                  GVariant        *items,
                                  WpoolMapFlags    flags,
                                  GCancellable    *cancellable,
                                  GError         **error);

G_END_DECLS
