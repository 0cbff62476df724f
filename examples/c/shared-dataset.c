/* shared-dataset.c: the first example of MPIRE's "Shared objects" page in
 * C, under all four start methods side by side. A big dataset is given to
 * the pool once, as its shared objects, and 100 tasks on 4 workers read
 * it. For each start method the demo prints the worker processes, the
 * address at which each sees the dataset, and the memory each worker adds
 * (Private_Dirty from /proc/PID/smaps_rollup; for threads, the growth of
 * this process's RSS).
 *
 *   def task(dataset, x): ...
 *   with WorkerPool(n_jobs=4, shared_objects=dataset, start_method=...) as pool:
 *       pool.map(task, range(100))
 *
 * Usage: shared-dataset [MIB [START-METHOD]]. Under MPI, on one machine
 * or several (see the "Running on several machines" guide):
 *
 *   mpirun -np 1 ./shared-dataset 256 mpi     # spawns 4 MPI workers
 *   mpirun -np 5 ./shared-dataset 256 mpi     # ranks 1 to 4 are the workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdlib.h>
#include <unistd.h>

#include "example-tasks.h"

#define N_TASKS 100
#define N_JOBS 4

static double
kib_field (const char *path,
           const char *field)
{
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL) || !(line = strstr (contents, field)))
    return -1;

  return g_ascii_strtod (line + strlen (field), NULL);
}

static double
rss_mib (void)
{
  return kib_field ("/proc/self/status", "VmRSS:") / 1024.0;
}

static double
private_dirty_mib (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/smaps_rollup", pid);

  return kib_field (path, "\nPrivate_Dirty:") / 1024.0;
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

static char *
module_path (const char *argv0)
{
  const char *path = g_getenv ("WPOOL_EXAMPLE_MODULE");
  g_autofree char *dir = NULL;

  if (path != NULL)
    return g_strdup (path);

  /* Built beside this program. */
  dir = g_path_get_dirname (argv0);
  return g_build_filename (dir, "libwpool-example-tasks.so", NULL);
}

/* One map of the 100 tasks; prints what each worker saw. FALSE if a
 * worker saw the dataset where the start method says it must not. */
static gboolean
run (WpoolStartMethod  start_method,
     WpoolTask        *task,
     GVariant         *shared_objects,
     gconstpointer     caller_address,
     gsize             n_values)
{
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  double dataset_mib = n_values * sizeof (double) / 1048576.0;
  double rss_before = rss_mib ();
  guint32 pids[N_JOBS] = { 0 };
  guint64 addresses[N_JOBS] = { 0 };
  guint tasks[N_JOBS] = { 0 };
  GVariantIter iter;
  guint32 worker_id;
  guint32 pid;
  guint64 address;
  double slice_sum;
  double total = 0;
  gboolean ok = TRUE;

  /* Kept alive, so that the workers' memory can be read after the map. */
  pool = g_object_new (WPOOL_TYPE_POOL,
                       "n-jobs", N_JOBS,
                       "start-method", start_method,
                       "shared-objects", shared_objects,
                       "keep-alive", TRUE,
                       NULL);

  g_print ("start method %s:\n", start_method_name (start_method));
  if (!(results = wpool_pool_map (pool, task, make_slices (n_values), NULL, &error)))
    {
      g_print ("  %s\n\n", error->message);
      return FALSE;
    }

  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uutd)", &worker_id, &pid, &address, &slice_sum))
    {
      /* One process and one address per worker, for all its tasks. */
      if ((pids[worker_id] != 0 && pids[worker_id] != pid) ||
          (addresses[worker_id] != 0 && addresses[worker_id] != address))
        ok = FALSE;

      pids[worker_id] = pid;
      addresses[worker_id] = address;
      tasks[worker_id]++;
      total += slice_sum;
    }

  for (guint w = 0; w < N_JOBS; w++)
    {
      gboolean callers = addresses[w] == (guint64)(gsize)caller_address;

      if (pids[w] == 0)
        {
          g_print ("  worker %u: no task\n", w);
          continue;
        }

      if (pids[w] == (guint32)getpid ())
        g_print ("  worker %u: %3u tasks, this process (pid %u), dataset at 0x%" G_GINT64_MODIFIER "x (%s)\n",
                 w, tasks[w], pids[w], addresses[w], callers ? "the caller's: no copy" : "a copy");
      else
        g_print ("  worker %u: %3u tasks, pid %u, dataset at 0x%" G_GINT64_MODIFIER "x (%s), "
                 "private memory %.1f MiB\n",
                 w, tasks[w], pids[w], addresses[w],
                 callers ? "the caller's, copy-on-write" :
                 start_method == WPOOL_START_METHOD_FORKSERVER ? "the server's, copy-on-write" :
                 start_method == WPOOL_START_METHOD_MPI ? "its node's one copy, shared" : "its own copy",
                 private_dirty_mib (pids[w]));

      /* THREADING and FORK read the caller's buffer; SPAWN, FORKSERVER
       * and MPI a copy, one per worker, one in the server, one per node. */
      if (callers != (start_method == WPOOL_START_METHOD_THREADING ||
                      start_method == WPOOL_START_METHOD_FORK))
        ok = FALSE;
    }

  if (start_method == WPOOL_START_METHOD_THREADING)
    g_print ("  this process's RSS grew by %.1f MiB during the map\n", rss_mib () - rss_before);
  else if (start_method == WPOOL_START_METHOD_FORKSERVER)
    g_print ("  the fork server holds the one copy of the %.0f MiB dataset\n", dataset_mib);
  else if (start_method == WPOOL_START_METHOD_MPI)
    g_print ("  each node holds one copy of the %.0f MiB dataset, in an MPI shared window\n", dataset_mib);

  g_print ("  sum of the dataset: %.0f\n\n", total);

  return ok;
}

int
main (int   argc,
      char *argv[])
{
  gsize n_values = (argc > 1 ? g_ascii_strtoull (argv[1], NULL, 10) : 256) * 1024 * 1024 / sizeof (double);
  WpoolStartMethod start_methods[] = {
    WPOOL_START_METHOD_THREADING, WPOOL_START_METHOD_FORK,
    WPOOL_START_METHOD_FORKSERVER, WPOOL_START_METHOD_SPAWN,
  };
  guint n_start_methods = G_N_ELEMENTS (start_methods);
  g_autofree char *module = module_path (argv[0]);
  g_autoptr(GVariant) dataset = NULL;
  g_autoptr(GVariant) shared_objects = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GError) error = NULL;
  int status = EXIT_SUCCESS;

  setlocale (LC_ALL, "");

  /* Under `mpirun -np N`, ranks 1 to N-1 serve rank 0's MPI pools here,
   * then return; anywhere else this returns FALSE at once. */
  if (wpool_worker_serve ((const char * const *)argv, WPOOL_SERVE_FLAGS_MPI_RANKS, NULL, NULL, NULL))
    return EXIT_SUCCESS;

  if (argc > 2)
    {
      g_autoptr(GEnumClass) klass = g_type_class_ref (WPOOL_TYPE_START_METHOD);
      GEnumValue *value = g_enum_get_value_by_nick (klass, argv[2]);

      if (value == NULL)
        {
          g_printerr ("Unknown start method “%s”: fork, forkserver, spawn, threading or mpi\n", argv[2]);
          return EXIT_FAILURE;
        }
      start_methods[0] = value->value;
      n_start_methods = 1;
    }

  if (!(task = wpool_task_new_for_symbol (module, "wpool_example_slice_sum", &error)))
    {
      g_printerr ("%s\n", error->message);
      return EXIT_FAILURE;
    }
  wpool_task_set_result_type (task, G_VARIANT_TYPE (EXAMPLE_SLICE_SUM_RESULT_TYPE));

  g_print ("libwpool %s — shared objects demo, %u workers, %u tasks\n", WPOOL_VERSION_S, N_JOBS, N_TASKS);
  g_print ("RSS before the dataset: %.1f MiB\n", rss_mib ());
  dataset = g_variant_ref_sink (make_dataset (n_values));
  shared_objects = g_variant_ref_sink (g_variant_new ("(@ads)", dataset, "a big dataset"));
  g_print ("dataset: %" G_GSIZE_FORMAT " doubles (%.0f MiB) at %p in the caller (pid %d); RSS %.1f MiB\n\n",
           n_values, n_values * sizeof (double) / 1048576.0, g_variant_get_data (dataset), getpid (), rss_mib ());

  for (guint m = 0; m < n_start_methods; m++)
    if (!run (start_methods[m], task, shared_objects, g_variant_get_data (dataset), n_values))
      status = EXIT_FAILURE;

  return status;
}
