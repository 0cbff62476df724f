/* wpool-test-module.c: task functions exported for symbol tasks, used by
 * the C, PyGObject and GJS tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <wpool.h>

#define WPOOL_TEST_EXPORT __attribute__((visibility("default")))

WPOOL_TEST_EXPORT GVariant *wpool_test_square (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_scaled (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_shared_address (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_fail_on_negative (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_sleep_ms (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);

/* d → d: x * x */
GVariant *
wpool_test_square (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  double x = g_variant_get_double (item);

  return g_variant_new_double (x * x);
}

/* d → d: x * factor + offset, with shared objects “(dd)” = (factor, offset). */
GVariant *
wpool_test_scaled (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  double factor;
  double offset;

  if (shared_objects == NULL || !g_variant_is_of_type (shared_objects, G_VARIANT_TYPE ("(dd)")))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "shared objects must be (factor, offset) as “(dd)”");
      return NULL;
    }

  g_variant_get (shared_objects, "(dd)", &factor, &offset);

  return g_variant_new_double (g_variant_get_double (item) * factor + offset);
}

/* any → (ut): the worker's id and the address of the shared objects'
 * data as the worker sees it. */
GVariant *
wpool_test_shared_address (WpoolWorker  *worker,
                           GVariant     *shared_objects,
                           GVariant     *item,
                           gpointer      user_data,
                           GError      **error)
{
  gconstpointer data = shared_objects ? g_variant_get_data (shared_objects) : NULL;

  return g_variant_new ("(ut)", wpool_worker_get_id (worker), (guint64)(gsize)data);
}

/* d → d: fails with G_IO_ERROR_INVALID_ARGUMENT on a negative item. */
GVariant *
wpool_test_fail_on_negative (WpoolWorker  *worker,
                             GVariant     *shared_objects,
                             GVariant     *item,
                             gpointer      user_data,
                             GError      **error)
{
  double x = g_variant_get_double (item);

  if (x < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "negative item %g", x);
      return NULL;
    }

  return g_variant_new_double (x);
}

/* u → u: sleeps that many milliseconds, returns the item. */
GVariant *
wpool_test_sleep_ms (WpoolWorker  *worker,
                     GVariant     *shared_objects,
                     GVariant     *item,
                     gpointer      user_data,
                     GError      **error)
{
  guint32 ms = g_variant_get_uint32 (item);

  g_usleep (ms * G_TIME_SPAN_MILLISECOND);

  return g_variant_new_uint32 (ms);
}
