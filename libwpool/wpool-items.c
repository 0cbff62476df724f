/* wpool-items.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-items.h"

/**
 * wpool_items_enumerate:
 * @items: a [struct@GLib.Variant] array of any element type T; if floating,
 *   it is consumed
 * @error: return location for a [type@GLib.Error]
 *
 * Pairs every item with its index, as Python's `enumerate()` does for an
 * MPIRE map: an `a<T>` becomes an `a(u<T>)` of (index, item). A task then
 * knows where to store its result, in a [class@Wpool.SharedArray] for
 * instance.
 *
 * Returns: (transfer full): the pairs, or %NULL with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when @items is not an array
 *
 * Since: 0.1
 */
GVariant *
wpool_items_enumerate (GVariant  *items,
                       GError   **error)
{
  g_autoptr(GVariant) sunk = NULL;
  g_autoptr(GVariantType) pair_type = NULL;
  g_autoptr(GVariantType) array_type = NULL;
  GVariantBuilder builder;
  const GVariantType *pair_members[2];
  gsize n;

  g_return_val_if_fail (items != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sunk = g_variant_ref_sink (items);

  if (!g_variant_is_of_type (sunk, G_VARIANT_TYPE_ARRAY))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "The items must be a GVariant array (type “a*”), not of type “%s”",
                   g_variant_get_type_string (sunk));
      return NULL;
    }

  if ((n = g_variant_n_children (sunk)) > G_MAXUINT32)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Too many items to number: %" G_GSIZE_FORMAT, n);
      return NULL;
    }

  pair_members[0] = G_VARIANT_TYPE_UINT32;
  pair_members[1] = g_variant_type_element (g_variant_get_type (sunk));
  pair_type = g_variant_type_new_tuple (pair_members, 2);
  array_type = g_variant_type_new_array (pair_type);

  g_variant_builder_init (&builder, array_type);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (sunk, i);

      g_variant_builder_add_value (&builder, g_variant_new ("(u@*)", (guint32)i, item));
    }

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}
