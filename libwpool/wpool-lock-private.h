/* wpool-lock-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-lock.h"
#include "wpool-shared-memory-private.h"

G_BEGIN_DECLS

WpoolLock         *wpool_lock_new_for_memory (WpoolSharedMemory *memory,
                                              gboolean           registered);
WpoolSharedMemory *wpool_lock_get_memory     (WpoolLock         *self);

G_END_DECLS
