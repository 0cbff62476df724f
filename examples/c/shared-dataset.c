/* shared-dataset.c: the first example of MPIRE's "Shared objects" page in
 * C. A big dataset is given to the pool once as its shared objects, and
 * many tasks read it. Under THREADING every worker reads the caller's own
 * buffer: the demo prints the address each worker sees and the process's
 * RSS, which does not grow by a copy of the dataset.
 *
 *   def task(dataset, x): ...
 *   with WorkerPool(n_jobs=4, shared_objects=dataset, start_method=...) as pool:
 *       pool.map(task, range(100))
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdlib.h>

#include "example-tasks.h"

#define N_TASKS 100

static double
rss_mib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL) ||
      !(line = strstr (status, "VmRSS:")))
    return -1;

  return g_ascii_strtod (line + strlen ("VmRSS:"), NULL) / 1024.0;
}

static GVariant *
make_dataset (gsize n_values)
{
  double *values = g_new (double, n_values);

  for (gsize i = 0; i < n_values; i++)
    values[i] = (double)(i % 1000);

  /* Wraps the buffer: the GVariant owns it, nothing is copied. */
  return g_variant_new_from_data (G_VARIANT_TYPE ("ad"), values, n_values * sizeof (double),
                                  TRUE, g_free, values);
}

static GVariant *
make_slices (gsize n_values)
{
  g_autoptr(GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE ("a(tt)"));
  gsize per_task = n_values / N_TASKS;

  for (guint i = 0; i < N_TASKS; i++)
    g_variant_builder_add (builder, "(tt)", (guint64)(i * per_task),
                           (guint64)(i + 1 == N_TASKS ? n_values - i * per_task : per_task));

  return g_variant_builder_end (builder);
}

static const char *
start_method_name (WpoolStartMethod start_method)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (WPOOL_TYPE_START_METHOD);

  return g_enum_get_value (klass, start_method)->value_nick;
}

int
main (int   argc,
      char *argv[])
{
  gsize n_values = (argc > 1 ? g_ascii_strtoull (argv[1], NULL, 10) : 256) * 1024 * 1024 / sizeof (double);
  g_autoptr(GVariant) dataset = NULL;
  g_autoptr(GVariant) shared_objects = NULL;
  g_autoptr(WpoolTask) task = wpool_task_new (wpool_example_slice_sum, NULL, NULL);
  const WpoolStartMethod start_methods[] = {
    WPOOL_START_METHOD_THREADING, WPOOL_START_METHOD_FORK,
    WPOOL_START_METHOD_FORKSERVER, WPOOL_START_METHOD_SPAWN,
  };
  double rss_before;
  double rss_with_dataset;
  gconstpointer caller_address;
  int status = EXIT_SUCCESS;

  setlocale (LC_ALL, "");

  rss_before = rss_mib ();
  dataset = g_variant_ref_sink (make_dataset (n_values));
  shared_objects = g_variant_ref_sink (g_variant_new ("(@ads)", dataset, "a big dataset"));
  rss_with_dataset = rss_mib ();
  caller_address = g_variant_get_data (dataset);
  wpool_task_set_result_type (task, G_VARIANT_TYPE (EXAMPLE_SLICE_SUM_RESULT_TYPE));

  g_print ("libwpool %s — shared objects demo\n", WPOOL_VERSION_S);
  g_print ("dataset: %" G_GSIZE_FORMAT " doubles (%.0f MiB) at %p in the caller\n",
           n_values, n_values * sizeof (double) / 1048576.0, caller_address);
  g_print ("RSS: %.1f MiB before the dataset, %.1f MiB with it\n\n", rss_before, rss_with_dataset);

  for (guint m = 0; m < G_N_ELEMENTS (start_methods); m++)
    {
      g_autoptr(WpoolPool) pool = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GHashTable) addresses = g_hash_table_new (NULL, NULL);
      guint tasks_per_worker[4] = { 0 };
      GVariantIter iter;
      guint32 worker_id;
      guint64 address;
      double slice_sum;
      double total = 0;
      double rss_after;

      pool = g_object_new (WPOOL_TYPE_POOL,
                           "n-jobs", 4,
                           "start-method", start_methods[m],
                           "shared-objects", shared_objects,
                           NULL);

      g_print ("start method %s:\n", start_method_name (start_methods[m]));
      results = wpool_pool_map (pool, task, make_slices (n_values), NULL, &error);
      rss_after = rss_mib ();

      if (results == NULL)
        {
          g_print ("  %s\n\n", error->message);
          /* Only THREADING is implemented so far; anything else is a bug. */
          if (!g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED))
            status = EXIT_FAILURE;
          continue;
        }

      g_variant_iter_init (&iter, results);
      while (g_variant_iter_next (&iter, "(utd)", &worker_id, &address, &slice_sum))
        {
          g_hash_table_add (addresses, GSIZE_TO_POINTER ((gsize)address));
          tasks_per_worker[worker_id]++;
          total += slice_sum;
        }

      g_print ("  %u tasks; per worker: %u, %u, %u, %u\n", N_TASKS,
               tasks_per_worker[0], tasks_per_worker[1], tasks_per_worker[2], tasks_per_worker[3]);
      g_print ("  dataset addresses seen by the workers: %u distinct, %s the caller's\n",
               g_hash_table_size (addresses),
               g_hash_table_size (addresses) == 1 &&
               g_hash_table_contains (addresses, caller_address) ? "all equal to" : "NOT");
      g_print ("  sum of the dataset: %.0f\n", total);
      g_print ("  RSS after the map: %.1f MiB (%+.1f MiB): no copy of the %.0f MiB dataset\n\n",
               rss_after, rss_after - rss_with_dataset, n_values * sizeof (double) / 1048576.0);

      if (g_hash_table_size (addresses) != 1 || !g_hash_table_contains (addresses, caller_address))
        status = EXIT_FAILURE;
    }

  return status;
}
