/* wpool-shared-array-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-shared-array.h"
#include "wpool-shared-memory-private.h"

G_BEGIN_DECLS

WpoolSharedArray  *wpool_shared_array_new_for_memory (WpoolSharedMemory  *memory,
                                                      GError            **error);
WpoolSharedMemory *wpool_shared_array_get_memory     (WpoolSharedArray   *self);

G_END_DECLS
