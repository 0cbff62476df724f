/* wpool-variant-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean wpool_variant_type_get_fixed_size (const GVariantType *type,
                                            gsize              *size);

G_END_DECLS
