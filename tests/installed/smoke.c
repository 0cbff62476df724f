/* smoke.c: libwpool used from its installed prefix only, as a new user
 * would: linked with an rpath, run without LD_LIBRARY_PATH or
 * WPOOL_WORKER, so that SPAWN's and FORKSERVER's helper must find itself
 * and its library where they were installed. Maps a symbol of the module
 * named on the command line under every start method.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>

#include <wpool.h>

int
main (int   argc,
      char *argv[])
{
  const WpoolStartMethod methods[] = {
    WPOOL_START_METHOD_THREADING, WPOOL_START_METHOD_FORK,
    WPOOL_START_METHOD_SPAWN, WPOOL_START_METHOD_FORKSERVER,
  };
  const double items[] = { 1, 2, 3 };
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GError) error = NULL;
  int status = EXIT_SUCCESS;

  if (argc < 2 || !(task = wpool_task_new_for_symbol (argv[1], "smoke_square", &error)))
    {
      g_printerr ("usage: smoke MODULE (%s)\n", error ? error->message : "no module");
      return EXIT_FAILURE;
    }
  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);

  for (guint m = 0; m < G_N_ELEMENTS (methods); m++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (2, methods[m]);
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) map_error = NULL;
      const double *values;
      gsize n = 0;

      results = wpool_pool_map (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, 3, sizeof (double)),
                                NULL, &map_error);
      values = results ? g_variant_get_fixed_array (results, &n, sizeof (double)) : NULL;
      if (results == NULL || n != 3 || values[0] != 1 || values[1] != 4 || values[2] != 9)
        {
          g_printerr ("not ok - start method %u: %s\n", methods[m], map_error ? map_error->message : "wrong results");
          status = EXIT_FAILURE;
        }
      else
        g_print ("ok - start method %u from the installed prefix\n", methods[m]);
    }

  return status;
}
