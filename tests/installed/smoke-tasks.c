/* smoke-tasks.c: the C task of the installed smoke tests (C, GJS, Vala),
 * installed beside them; built against the installed headers only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <wpool.h>

G_MODULE_EXPORT GVariant *smoke_square (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);

/* d → d: x * x */
GVariant *
smoke_square (WpoolWorker  *worker,
              GVariant     *shared_objects,
              GVariant     *item,
              gpointer      user_data,
              GError      **error)
{
  double x = g_variant_get_double (item);

  return g_variant_new_double (x * x);
}
