/* bench-shared-array.c: results written into a WpoolSharedArray against
 * results returned as GVariant, per start method, in one run: ns/item and
 * the ratio. Asserts nothing about time; checks the results.
 *
 *   bench-shared-array [N_ITEMS] [N_JOBS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <wpool.h>

#define N_REPEATS 3

static GVariant *
make_pairs (guint n)
{
  g_autoptr(GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE ("a(ud)"));

  for (guint i = 0; i < n; i++)
    g_variant_builder_add (builder, "(ud)", i, i * 0.001);

  GVariant *pairs = g_variant_ref_sink (g_variant_builder_end (builder));

  /* Serialized once, outside the timed maps. */
  g_variant_get_data (pairs);

  return pairs;
}

/* Best of N_REPEATS maps on a warm, kept-alive pool, in ns per item. */
static double
measure (WpoolPool  *pool,
         WpoolTask  *task,
         GVariant   *items)
{
  guint n = g_variant_n_children (items);
  double best = INFINITY;

  for (guint r = 0; r <= N_REPEATS; r++)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      gint64 start = g_get_monotonic_time ();

      if (!(results = wpool_pool_map (pool, task, items, NULL, &error)))
        g_error ("map failed: %s", error->message);

      /* The first map starts the workers: not counted. */
      if (r > 0)
        best = MIN (best, (g_get_monotonic_time () - start) * 1000.0 / n);
    }

  return best;
}

int
main (int   argc,
      char *argv[])
{
  guint n_items = argc > 1 ? (guint)g_ascii_strtoull (argv[1], NULL, 10) : 1000000;
  guint n_jobs = argc > 2 ? (guint)g_ascii_strtoull (argv[2], NULL, 10) : g_get_num_processors ();
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");
  const struct { WpoolStartMethod method; const char *name; } methods[] = {
    { WPOOL_START_METHOD_THREADING, "threading" },
    { WPOOL_START_METHOD_FORK, "fork" },
    { WPOOL_START_METHOD_FORKSERVER, "forkserver" },
    { WPOOL_START_METHOD_SPAWN, "spawn" },
  };
  g_autofree char *default_module = NULL;
  g_autoptr(GVariant) items = NULL;
  g_autoptr(WpoolTask) returning = NULL;
  g_autoptr(WpoolTask) storing = NULL;
  g_autoptr(GError) error = NULL;

  setlocale (LC_ALL, "");

  if (module == NULL)
    {
      g_autofree char *dir = g_path_get_dirname (argv[0]);
      module = default_module = g_build_filename (dir, "libwpool-bench-tasks.so", NULL);
    }

  if (!(returning = wpool_task_new_for_symbol (module, "bench_return_result", &error)) ||
      !(storing = wpool_task_new_for_symbol (module, "bench_store_result", &error)))
    g_error ("%s", error->message);
  wpool_task_set_result_type (returning, G_VARIANT_TYPE_DOUBLE);
  wpool_task_set_result_type (storing, G_VARIANT_TYPE_BOOLEAN);

  items = make_pairs (n_items);

  g_print ("libwpool %s, %u items of (index, x), x*x + 1, %u jobs, %u processors, best of %u warm maps\n\n",
           WPOOL_VERSION_S, n_items, n_jobs, g_get_num_processors (), N_REPEATS);
  g_print ("  %-11s %22s %22s %8s\n", "start", "returned as GVariant", "stored in shared array", "ratio");

  for (guint m = 0; m < G_N_ELEMENTS (methods); m++)
    {
      g_autoptr(WpoolSharedArray) results = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, n_items, FALSE, &error);
      g_autoptr(WpoolPool) returning_pool = wpool_pool_new (n_jobs, methods[m].method);
      g_autoptr(WpoolPool) storing_pool = wpool_pool_new (n_jobs, methods[m].method);
      double returned;
      double stored;

      if (results == NULL)
        g_error ("%s", error->message);

      wpool_pool_set_keep_alive (returning_pool, TRUE);
      wpool_pool_set_keep_alive (storing_pool, TRUE);
      wpool_pool_set_shared_objects (storing_pool, wpool_shared_array_get_handle (results), NULL);

      returned = measure (returning_pool, returning, items);
      stored = measure (storing_pool, storing, items);

      for (guint i = 0; i < n_items; i += 9973)
        if (wpool_shared_array_get_double (results, i, NULL) != (i * 0.001) * (i * 0.001) + 1)
          g_error ("%s: wrong result at %u", methods[m].name, i);

      g_print ("  %-11s %19.1f ns %19.1f ns %7.2fx\n", methods[m].name, returned, stored, returned / stored);
    }

  return EXIT_SUCCESS;
}
