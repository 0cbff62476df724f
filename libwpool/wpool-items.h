/* wpool-items.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib.h>

#include "wpool-version-macros.h"

G_BEGIN_DECLS

WPOOL_AVAILABLE_IN_0_1
GVariant *wpool_items_enumerate (GVariant  *items,
                                 GError   **error);

G_END_DECLS
