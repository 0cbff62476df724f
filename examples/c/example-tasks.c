/* example-tasks.c: the task of the shared-dataset examples, built as a
 * module that every example loads by symbol: so can SPAWN and FORKSERVER
 * workers, and GJS, which cannot run a JS function on a worker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <unistd.h>

#include "example-tasks.h"

GVariant *
wpool_example_slice_sum (WpoolWorker  *worker,
                         GVariant     *shared_objects,
                         GVariant     *item,
                         gpointer      user_data,
                         GError      **error)
{
  g_autoptr(GVariant) dataset = NULL;
  const double *values;
  gsize n_values;
  guint64 offset;
  guint64 length;
  double sum = 0;

  if (shared_objects == NULL || !g_variant_is_of_type (shared_objects, G_VARIANT_TYPE ("(ads)")))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                           "The shared objects must be (dataset, label) as “(ads)”");
      return NULL;
    }

  /* Unpacking the tuple gives a view of the pool's own buffer: no copy. */
  dataset = g_variant_get_child_value (shared_objects, 0);
  values = g_variant_get_fixed_array (dataset, &n_values, sizeof (double));
  g_variant_get (item, "(tt)", &offset, &length);

  if (offset > n_values || length > n_values - offset)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Slice %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT " is out of the dataset (%" G_GSIZE_FORMAT " values)",
                   offset, length, n_values);
      return NULL;
    }

  for (guint64 i = offset; i < offset + length; i++)
    sum += values[i];

  return g_variant_new ("(uutd)", wpool_worker_get_id (worker), (guint32)getpid (),
                        (guint64)(gsize)values, sum);
}

GVariant *
wpool_example_square_add_and_modulo_with_index (WpoolWorker  *worker,
                                                GVariant     *shared_objects,
                                                GVariant     *item,
                                                gpointer      user_data,
                                                GError      **error)
{
  WpoolSharedArray *square_results_container;
  WpoolSharedArray *add_results_container;
  guint32 idx;
  gint32 x;

  /* Unpack results containers */
  if (!(square_results_container = wpool_worker_get_shared_array (worker, 0, error)) ||
      !(add_results_container = wpool_worker_get_shared_array (worker, 1, error)))
    return NULL;

  g_variant_get (item, "(ui)", &idx, &x);

  /* Square, add and modulo */
  if (!wpool_shared_array_set_double (square_results_container, idx, x * x, error) ||
      !wpool_shared_array_set_double (add_results_container, idx, x + x, error))
    return NULL;

  return g_variant_new_int32 (x % 2);
}

GVariant *
wpool_example_work_ms (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  g_usleep (g_variant_get_uint32 (item) * G_TIME_SPAN_MILLISECOND);

  return g_variant_ref (item);
}
