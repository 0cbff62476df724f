/* wpool-lock.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib-object.h>

#include "wpool-version-macros.h"

G_BEGIN_DECLS

#define WPOOL_TYPE_LOCK (wpool_lock_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolLock, wpool_lock, WPOOL, LOCK, GObject)

WPOOL_AVAILABLE_IN_0_1
WpoolLock *wpool_lock_new         (GError    **error);
WPOOL_AVAILABLE_IN_0_1
void       wpool_lock_acquire     (WpoolLock  *self);
WPOOL_AVAILABLE_IN_0_1
gboolean   wpool_lock_try_acquire (WpoolLock  *self);
WPOOL_AVAILABLE_IN_0_1
void       wpool_lock_release     (WpoolLock  *self);
WPOOL_AVAILABLE_IN_0_1
GVariant  *wpool_lock_get_handle  (WpoolLock  *self);

G_END_DECLS
