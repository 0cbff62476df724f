/* result-containers.c: the second example of MPIRE's "Shared objects"
 * page in C, the copy-on-write alternative, under all four start methods:
 * two float arrays of 100 elements without locks as the shared objects, a
 * map over the (index, value) pairs of range(100) that stores x*x and x+x
 * at index and returns x % 2.
 *
 *   square_results_container = Array('f', 100, lock=False)
 *   add_results_container = Array('f', 100, lock=False)
 *   with WorkerPool(n_jobs=4, shared_objects=(square…, add…)) as pool:
 *       modulo_results = pool.map(square_add_and_modulo_with_index,
 *                                 enumerate(range(100)), iterable_len=100)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdlib.h>

#include "example-tasks.h"

static void
print_values (const char *name,
              GVariant   *values)
{
  g_autofree char *text = g_variant_print (values, FALSE);

  g_print ("  %s: %s\n", name, text);
}

static gboolean
run (WpoolStartMethod  start_method,
     WpoolTask        *task)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (WPOOL_TYPE_START_METHOD);
  g_autoptr(WpoolSharedArray) square_results_container = NULL;
  g_autoptr(WpoolSharedArray) add_results_container = NULL;
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(GVariant) square_values = NULL;
  g_autoptr(GVariant) add_values = NULL;
  g_autoptr(GVariant) modulo_results = NULL;
  g_autoptr(GVariant) pairs = NULL;
  g_autoptr(GError) error = NULL;
  gint32 range[100];
  gboolean ok = TRUE;

  g_print ("start method %s:\n", g_enum_get_value (klass, start_method)->value_nick);

  /* Use a shared array of size 100 and type float to store the results */
  if (!(square_results_container = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_FLOAT, 100, FALSE, &error)) ||
      !(add_results_container = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_FLOAT, 100, FALSE, &error)))
    {
      g_print ("  %s\n", error->message);
      return FALSE;
    }

  pool = g_object_new (WPOOL_TYPE_POOL,
                       "n-jobs", 4,
                       "start-method", start_method,
                       "shared-objects", g_variant_new ("(@(st)@(st))",
                                                        wpool_shared_array_get_handle (square_results_container),
                                                        wpool_shared_array_get_handle (add_results_container)),
                       NULL);

  /* Square, add and modulo the results and store them in the results
   * containers: enumerate(range(100)) */
  for (gint32 i = 0; i < 100; i++)
    range[i] = i;
  pairs = wpool_items_enumerate (g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, range, 100, sizeof (gint32)),
                                 &error);
  g_assert_no_error (error);

  if (!(modulo_results = wpool_pool_map (pool, task, pairs, NULL, &error)))
    {
      g_print ("  %s\n", error->message);
      return FALSE;
    }

  square_values = wpool_shared_array_dup_values (square_results_container);
  add_values = wpool_shared_array_dup_values (add_results_container);
  print_values ("square results", square_values);
  print_values ("add results", add_values);
  print_values ("modulo results", modulo_results);

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GVariant) m = g_variant_get_child_value (modulo_results, i);

      if (wpool_shared_array_get_double (square_results_container, i, NULL) != i * i ||
          wpool_shared_array_get_double (add_results_container, i, NULL) != i + i ||
          g_variant_get_int32 (m) != (gint32)i % 2)
        ok = FALSE;
    }

  g_print ("  %s\n\n", ok ? "all 100 results are right" : "WRONG RESULTS");
  return ok;
}

int
main (int   argc,
      char *argv[])
{
  const WpoolStartMethod start_methods[] = {
    WPOOL_START_METHOD_THREADING, WPOOL_START_METHOD_FORK,
    WPOOL_START_METHOD_FORKSERVER, WPOOL_START_METHOD_SPAWN,
  };
  const char *module = g_getenv ("WPOOL_EXAMPLE_MODULE");
  g_autofree char *default_module = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GError) error = NULL;
  int status = EXIT_SUCCESS;

  setlocale (LC_ALL, "");

  /* Loaded by symbol, so that SPAWN and FORKSERVER workers find it too. */
  if (module == NULL)
    {
      g_autofree char *dir = g_path_get_dirname (argv[0]);
      module = default_module = g_build_filename (dir, "libwpool-example-tasks.so", NULL);
    }

  if (!(task = wpool_task_new_for_symbol (module, "wpool_example_square_add_and_modulo_with_index", &error)))
    {
      g_printerr ("%s\n", error->message);
      return EXIT_FAILURE;
    }
  wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);

  for (guint m = 0; m < G_N_ELEMENTS (start_methods); m++)
    if (!run (start_methods[m], task))
      status = EXIT_FAILURE;

  return status;
}
