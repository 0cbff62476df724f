/* test-hardening.c: what a buggy worker, or bytes crafted to look like a
 * pool, can do to the other processes: nothing but be refused.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "wpool-test-util.h"

/* A worker that writes over its shared array's header (length, element
 * size and type, id) changes nothing for itself, nor for the caller: each
 * process keeps the bounds it took when it made or mapped the array. */
static void
test_shared_array_header_clobbered (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  g_autoptr(WpoolTask) clobber = wpool_test_module_task ("wpool_test_clobber_header");
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GVariant) handle = NULL;
  g_autoptr(GVariant) handle_after = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) values = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;

  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 4, FALSE, &error);
  g_assert_no_error (error);
  handle = g_variant_ref_sink (wpool_shared_array_get_handle (array));
  g_assert_true (wpool_pool_set_shared_objects (pool, handle, NULL));

  results = wpool_pool_map (pool, clobber, g_variant_new_parsed ("[0]"), NULL, &error);
  g_assert_no_error (error);
  /* In the worker: index 4 refused, 4 elements. */
  wpool_test_assert_variant (results, g_variant_new_parsed ("[<(true, uint64 4)>]"));

  /* The caller's bounds are its own. */
  g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 4);
  g_assert_cmpint (wpool_shared_array_get_element_type (array), ==, WPOOL_SHARED_ARRAY_TYPE_DOUBLE);
  g_assert_nonnull (wpool_shared_array_get_data (array, &length));
  g_assert_cmpuint (length, ==, 4);
  handle_after = g_variant_ref_sink (wpool_shared_array_get_handle (array));
  g_assert_cmpvariant (handle_after, handle);

  g_assert_cmpfloat (wpool_shared_array_get_double (array, 4, &error), ==, 0);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpint (wpool_shared_array_get_int64 (array, 1 << 20, &error), ==, 0);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_shared_array_set_double (array, (gsize)1 << 30, 1, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_shared_array_set_int64 (array, 100000, 1, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (wpool_shared_array_set_double (array, 3, 2.5, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (wpool_shared_array_get_double (array, 3, &error), ==, 2.5);
  g_assert_no_error (error);
  values = wpool_shared_array_dup_values (array);
  wpool_test_assert_variant (values, g_variant_new_parsed ("[0.0, 0.0, 0.0, 2.5]"));
}

/* Memory whose header claims more than the memfd holds is refused by a
 * process that maps it later, before any access: a spawned worker, or a
 * fork server, does not start. A forked worker inherits the caller's
 * bounds, and works. */
static void
test_shared_array_header_clobbered_later (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) later = wpool_pool_new (1, method);
  g_autoptr(WpoolTask) clobber = wpool_test_module_task ("wpool_test_clobber_header");
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT32, 16, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (array), NULL));
  results = wpool_pool_map (pool, clobber, g_variant_new_parsed ("[0]"), NULL, &error);
  g_assert_no_error (error);

  g_assert_true (wpool_pool_set_shared_objects (later, wpool_shared_array_get_handle (array), NULL));
  if (method == WPOOL_START_METHOD_FORK)
    {
      g_autoptr(WpoolTask) store_at = wpool_test_module_task ("wpool_test_store_at");
      g_autoptr(GVariant) stored = NULL;

      stored = wpool_pool_map (later, store_at, g_variant_new_parsed ("[(uint32 15, 1.0)]"), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_map_fails (later, store_at, g_variant_new_parsed ("[(uint32 16, 1.0)]"), NULL,
                                   WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "Index 16 is out");
    }
  else
    {
      wpool_test_assert_map_fails (later, clobber, g_variant_new_parsed ("[0]"), NULL,
                                   WPOOL_ERROR, WPOOL_ERROR_FAILED, "Bad shared memory");
    }
  g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 16);
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "shared-array/header-clobbered", test_shared_array_header_clobbered, FALSE },
    { "shared-array/header-clobbered-later", test_shared_array_header_clobbered_later, TRUE },
  };

  g_test_init (&argc, &argv, NULL);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  return g_test_run ();
}
