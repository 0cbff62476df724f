/* smoke.c: libwpool used from its installed prefix only, as a new user
 * would: maps a C task of the module installed beside this program
 * (libsmoke-tasks.so, found through G_TEST_BUILT, the program's own
 * directory) under every start method. Installed with -Dinstalled_tests
 * for gnome-desktop-testing-runner; scripts/test-installed also builds it
 * from the prefix with pkg-config and an rpath and runs it without
 * LD_LIBRARY_PATH or WPOOL_WORKER, so that SPAWN's and FORKSERVER's
 * helper must find itself and its library where they were installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <wpool.h>

static const struct {
  const char *name;
  WpoolStartMethod method;
} methods[] = {
  { "threading", WPOOL_START_METHOD_THREADING },
  { "fork", WPOOL_START_METHOD_FORK },
  { "spawn", WPOOL_START_METHOD_SPAWN },
  { "forkserver", WPOOL_START_METHOD_FORKSERVER },
};

static void
test_map (gconstpointer data)
{
  const double items[] = { 1, 2, 3, 4, 5 };
  g_autofree char *module = g_test_build_filename (G_TEST_BUILT, "libsmoke-tasks.so", NULL);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  const double *values;
  gsize n = 0;

  task = wpool_task_new_for_symbol (module, "smoke_square", &error);
  g_assert_no_error (error);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);

  pool = wpool_pool_new (2, methods[GPOINTER_TO_UINT (data)].method);
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, G_N_ELEMENTS (items),
                                                       sizeof (double)),
                            NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (results), ==, "ad");
  values = g_variant_get_fixed_array (results, &n, sizeof (double));
  g_assert_cmpuint (n, ==, G_N_ELEMENTS (items));
  for (gsize i = 0; i < n; i++)
    g_assert_cmpfloat (values[i], ==, items[i] * items[i]);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autofree char *path = g_strdup_printf ("/installed/c/map/%s", methods[i].name);

      g_test_add_data_func (path, GUINT_TO_POINTER (i), test_map);
    }

  return g_test_run ();
}
