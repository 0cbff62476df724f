/* wpool-variant.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-variant-private.h"

#define ALIGN_UP(offset, alignment) (((offset) + (alignment) - 1) & ~((gsize)(alignment) - 1))

/* GVariant's serialization rules for fixed-size types: basic types are
 * their own size and alignment; a tuple or dict entry aligns each member
 * and pads to its largest alignment; the unit tuple takes one byte. GLib
 * keeps this in its private GVariantTypeInfo. */
static gboolean
fixed_size_of (const char **type_string,
               gsize       *size,
               gsize       *alignment)
{
  char c = *(*type_string)++;

  switch (c)
    {
    case 'b': case 'y':
      *size = *alignment = 1;
      return TRUE;

    case 'n': case 'q':
      *size = *alignment = 2;
      return TRUE;

    case 'i': case 'u': case 'h':
      *size = *alignment = 4;
      return TRUE;

    case 'x': case 't': case 'd':
      *size = *alignment = 8;
      return TRUE;

    case '(': case '{':
      {
        char close = c == '(' ? ')' : '}';
        gsize offset = 0;
        gsize max_alignment = 1;

        while (**type_string != close)
          {
            gsize member_size;
            gsize member_alignment;

            if (!fixed_size_of (type_string, &member_size, &member_alignment))
              return FALSE;

            offset = ALIGN_UP (offset, member_alignment) + member_size;
            max_alignment = MAX (max_alignment, member_alignment);
          }
        (*type_string)++;

        *alignment = max_alignment;
        *size = offset == 0 ? 1 : ALIGN_UP (offset, max_alignment);
        return TRUE;
      }

    default:
      /* s, o, g, v, a, m: variable size. */
      return FALSE;
    }
}

/* Whether every value of the definite @type has the same serialized size,
 * and which: an array of such values is their plain concatenation. */
gboolean
wpool_variant_type_get_fixed_size (const GVariantType *type,
                                   gsize              *size)
{
  const char *type_string = g_variant_type_peek_string (type);
  gsize alignment;

  g_assert (g_variant_type_is_definite (type));

  return fixed_size_of (&type_string, size, &alignment);
}
