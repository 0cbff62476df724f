/* wpool-shared-array.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib-object.h>

#include "wpool-lock.h"
#include "wpool-version-macros.h"

G_BEGIN_DECLS

/**
 * WpoolSharedArrayType:
 * @WPOOL_SHARED_ARRAY_TYPE_INT32: 32-bit signed integers
 * @WPOOL_SHARED_ARRAY_TYPE_INT64: 64-bit signed integers
 * @WPOOL_SHARED_ARRAY_TYPE_UINT8: bytes
 * @WPOOL_SHARED_ARRAY_TYPE_FLOAT: single-precision floats, as Python's
 *   `multiprocessing.Array('f', …)`
 * @WPOOL_SHARED_ARRAY_TYPE_DOUBLE: double-precision floats
 *
 * The type of the elements of a [class@Wpool.SharedArray].
 *
 * Since: 0.1
 */
typedef enum
{
  WPOOL_SHARED_ARRAY_TYPE_INT32,
  WPOOL_SHARED_ARRAY_TYPE_INT64,
  WPOOL_SHARED_ARRAY_TYPE_UINT8,
  WPOOL_SHARED_ARRAY_TYPE_FLOAT,
  WPOOL_SHARED_ARRAY_TYPE_DOUBLE,
} WpoolSharedArrayType;

#define WPOOL_TYPE_SHARED_ARRAY (wpool_shared_array_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolSharedArray, wpool_shared_array, WPOOL, SHARED_ARRAY, GObject)

WPOOL_AVAILABLE_IN_0_1
WpoolSharedArray     *wpool_shared_array_new              (WpoolSharedArrayType   element_type,
                                                           gsize                  length,
                                                           gboolean               with_lock,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_2
WpoolSharedArray     *wpool_shared_array_new_for_fd       (int                    fd,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_1
WpoolSharedArrayType  wpool_shared_array_get_element_type (WpoolSharedArray      *self);
WPOOL_AVAILABLE_IN_0_1
gsize                 wpool_shared_array_get_length       (WpoolSharedArray      *self);
WPOOL_AVAILABLE_IN_0_1
WpoolLock            *wpool_shared_array_get_lock         (WpoolSharedArray      *self);
WPOOL_AVAILABLE_IN_0_1
double                wpool_shared_array_get_double       (WpoolSharedArray      *self,
                                                           gsize                  index,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_1
gboolean              wpool_shared_array_set_double       (WpoolSharedArray      *self,
                                                           gsize                  index,
                                                           double                 value,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_1
gint64                wpool_shared_array_get_int64        (WpoolSharedArray      *self,
                                                           gsize                  index,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_1
gboolean              wpool_shared_array_set_int64        (WpoolSharedArray      *self,
                                                           gsize                  index,
                                                           gint64                 value,
                                                           GError               **error);
WPOOL_AVAILABLE_IN_0_1
GVariant             *wpool_shared_array_dup_values       (WpoolSharedArray      *self);
WPOOL_AVAILABLE_IN_0_1
gpointer              wpool_shared_array_get_data         (WpoolSharedArray      *self,
                                                           gsize                 *length);
WPOOL_AVAILABLE_IN_0_1
GVariant             *wpool_shared_array_get_handle       (WpoolSharedArray      *self);
WPOOL_AVAILABLE_IN_0_2
int                   wpool_shared_array_dup_fd           (WpoolSharedArray      *self,
                                                           gsize                 *offset,
                                                           GError               **error);

G_END_DECLS
