/* bench-mpi.c: the MPI start method on this machine, against FORK in the
 * same run: the per-item overhead of a warm kept-alive pool of 2 workers
 * on a trivial body (item-wise GVariant maps and chunk tasks), the
 * speedup of a CPU-bound body, and the memory a 1 GiB shared dataset
 * costs per (simulated) node. Tasks are symbols of libwpool-bench-tasks.so,
 * which both start methods run. Prints ns/item and ratios; asserts
 * nothing about time.
 *
 *   bench-mpi [MIB]
 *
 * runs every part under mpirun, one after the other:
 *
 *   mpirun -np 1 bench-mpi items    spawned workers (MPI_Comm_spawn)
 *   mpirun -np 3 bench-mpi items    the job's ranks 1 and 2 as workers
 *   mpirun -np 5 bench-mpi dataset MIB
 *   WPOOL_MPI_TEST_NODE_SIZE=3 mpirun -np 5 bench-mpi dataset MIB
 *   WPOOL_MPI_TEST_NODE_SIZE=3 mpirun -np 1 bench-mpi dataset MIB
 *
 * with --allow-run-as-root --oversubscribe --bind-to none: with 2
 * processes or fewer, mpirun binds each to a core, and FORK's workers
 * would share their caller's. WPOOL_MPI_TEST_NODE_SIZE=3 splits the
 * ranks of the pool's communicator into simulated nodes of 3 consecutive
 * ranks: {0 (the pool), 1, 2} and {3, 4}, two nodes of 2 workers each
 * (spawned, dataset runs 4 workers, ranks 1 to 4 of that communicator).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <wpool.h>

#include "bench-util.h"

#define N_TRIVIAL   1000000
#define N_CPU_BOUND 2000
#define N_JOBS      2

static const char *
bench_module (void)
{
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");

  return module != NULL ? module : BENCH_TASKS_MODULE;
}


typedef enum
{
  WAY_ITEMS,
  WAY_MAP_CHUNKS,
  WAY_CHUNK_TASK,
} Way;

/* One map of @n @items on @pool, the way @way, checked against
 * @expected; its time in ns. */
static double
run_once (WpoolPool    *pool,
          WpoolTask    *task,
          Way           way,
          GVariant     *items,
          const double *expected)
{
  const double *x = g_variant_get_data (items);
  gsize n = g_variant_n_children (items);
  g_autofree double *y = way == WAY_MAP_CHUNKS ? g_new0 (double, n) : NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  const double *computed = y;
  gint64 started = g_get_monotonic_time ();
  gint64 elapsed;

  if (way == WAY_MAP_CHUNKS)
    wpool_pool_map_chunks (pool, task, x, n, y, NULL, &error);
  else
    results = wpool_pool_map (pool, task, items, NULL, &error);
  elapsed = g_get_monotonic_time () - started;
  g_assert_no_error (error);

  if (results != NULL)
    computed = g_variant_get_data (results);
  for (gsize i = 0; i < n; i++)
    g_assert_cmpfloat (computed[i], ==, expected[i]);

  return elapsed * 1000.0;
}

/* The CPU time this process used so far, all its threads, in ns. */
static double
cpu_time_ns (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e9 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e3;
}

typedef struct
{
  /* Best of the maps, ns/item. */
  double ns;
  /* The CPU time the pool's own process spent over all the maps (its
   * threads waiting for the workers' answers), per wall time. */
  double caller_cpu;
} Figures;

/* Best of @n_repeats maps on each of @pools (FORK, MPI), taking turns
 * after a map each that starts their workers for @task. */
static void
measure (WpoolPool    *pools[2],
         WpoolTask    *task,
         Way           way,
         GVariant     *items,
         const double *expected,
         guint         n_repeats,
         Figures       figures[2])
{
  gsize n = g_variant_n_children (items);
  double wall[2] = { 0, 0 };
  double cpu[2] = { 0, 0 };

  for (guint p = 0; p < 2; p++)
    {
      run_once (pools[p], task, way, items, expected);
      figures[p].ns = G_MAXDOUBLE;
    }
  for (guint r = 0; r < n_repeats; r++)
    for (guint p = 0; p < 2; p++)
      {
        double cpu_before = cpu_time_ns ();
        double ns = run_once (pools[p], task, way, items, expected);

        cpu[p] += cpu_time_ns () - cpu_before;
        wall[p] += ns;
        figures[p].ns = MIN (figures[p].ns, ns / n);
      }
  for (guint p = 0; p < 2; p++)
    figures[p].caller_cpu = cpu[p] / wall[p];
}

static GVariant *
doubles (guint n,
         double step)
{
  g_autofree double *values = g_new (double, n);

  for (guint i = 0; i < n; i++)
    values[i] = i * step;

  return g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)));
}

static WpoolTask *
chunk_task (const char *symbol)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task = wpool_task_new_for_chunk_symbol (bench_module (), symbol, G_VARIANT_TYPE_DOUBLE,
                                                     G_VARIANT_TYPE_DOUBLE, &error);

  g_assert_no_error (error);
  return task;
}

/* The median of 200 warm one-item maps on @pool, in µs. */
static double
one_item_latency (WpoolPool *pool,
                  WpoolTask *task)
{
  g_autoptr(GVariant) item = doubles (1, 0.0);
  double times[200];
  double expected = 1.0;

  for (guint r = 0; r < G_N_ELEMENTS (times); r++)
    times[r] = run_once (pool, task, WAY_ITEMS, item, &expected) / 1000;

  return bench_median (times, G_N_ELEMENTS (times));
}

/* Per-item overhead on a trivial body, and the speedup of a CPU-bound
 * one, on warm kept-alive pools of 2 workers: FORK and MPI. */
static void
run_items (const char *mode)
{
  g_autoptr(WpoolPool) fork_pool = wpool_pool_new (N_JOBS, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolPool) mpi_pool = wpool_pool_new (N_JOBS, WPOOL_START_METHOD_MPI);
  WpoolPool *pools[2] = { fork_pool, mpi_pool };
  g_autoptr(WpoolTask) item_task = NULL;
  g_autoptr(WpoolTask) trivial_chunks = chunk_task ("bench_square_plus_one_chunk");
  g_autoptr(WpoolTask) cpu_chunks = chunk_task ("bench_cpu_bound_chunk");
  g_autoptr(GVariant) trivial_items = doubles (N_TRIVIAL, 0.001);
  g_autoptr(GVariant) cpu_items = doubles (N_CPU_BOUND, 0.001);
  g_autofree double *trivial_expected = g_new (double, N_TRIVIAL);
  g_autofree double *cpu_expected = g_new (double, N_CPU_BOUND);
  g_autoptr(GError) error = NULL;
  const struct { const char *name; WpoolTask *task; Way way; guint n_repeats; } ways[] = {
    { "GVariant items (map)", NULL, WAY_ITEMS, 3 },
    { "chunk task, map_chunks", trivial_chunks, WAY_MAP_CHUNKS, 5 },
    { "chunk task, map", trivial_chunks, WAY_CHUNK_TASK, 5 },
  };
  double serial = G_MAXDOUBLE;
  double latency[2];
  Figures figures[2];

  item_task = wpool_task_new_for_symbol (bench_module (), "bench_square_plus_one", &error);
  g_assert_no_error (error);
  wpool_task_set_result_type (item_task, G_VARIANT_TYPE_DOUBLE);
  for (guint p = 0; p < 2; p++)
    wpool_pool_set_keep_alive (pools[p], TRUE);

  /* "caller CPU": the CPU time of the pool's process (all its threads)
   * over the maps' wall time, FORK / MPI. */
  bench_apply (bench_trivial, g_variant_get_data (trivial_items), trivial_expected, N_TRIVIAL);
  g_print ("\nMPI workers: %s; trivial body (x*x + 1), %d items, %d jobs, warm kept-alive pools, best of 3–5\n",
           mode, N_TRIVIAL, N_JOBS);
  g_print ("  %-26s %14s %14s %12s %18s\n", "", "FORK ns/item", "MPI ns/item", "MPI vs FORK", "caller CPU");
  for (guint w = 0; w < G_N_ELEMENTS (ways); w++)
    {
      measure (pools, ways[w].task ? ways[w].task : item_task, ways[w].way, trivial_items, trivial_expected,
               ways[w].n_repeats, figures);
      g_print ("  %-26s %14.1f %14.1f %11.2f× %8.0f%% / %3.0f%%\n", ways[w].name, figures[0].ns, figures[1].ns,
               figures[1].ns / figures[0].ns, 100 * figures[0].caller_cpu, 100 * figures[1].caller_cpu);
    }

  /* (The first of them starts the workers for the item task again.) */
  latency[0] = one_item_latency (fork_pool, item_task);
  latency[1] = one_item_latency (mpi_pool, item_task);
  g_print ("  %-26s %11.0f µs %11.0f µs %11.2f×\n", "warm 1-item map, median", latency[0], latency[1],
           latency[1] / latency[0]);

  /* The serial loop, best of 5, then both pools' map_chunks. */
  for (guint r = 0; r < 5; r++)
    {
      g_autofree double *y = g_new (double, N_CPU_BOUND);
      gint64 started = g_get_monotonic_time ();

      bench_apply (bench_cpu_bound, g_variant_get_data (cpu_items), y, N_CPU_BOUND);
      serial = MIN (serial, (g_get_monotonic_time () - started) * 1000.0 / N_CPU_BOUND);
      memcpy (cpu_expected, y, N_CPU_BOUND * sizeof (double));
    }
  measure (pools, cpu_chunks, WAY_MAP_CHUNKS, cpu_items, cpu_expected, 9, figures);
  g_print ("\nMPI workers: %s; CPU-bound body (~20 µs), %d items, %d jobs, map_chunks, best of 9\n",
           mode, N_CPU_BOUND, N_JOBS);
  g_print ("  %-26s %14s %10s %18s %12s\n", "", "ns/item", "speedup", "vs FORK's speedup", "caller CPU");
  g_print ("  %-26s %14.0f %9.2f×\n", "serial loop", serial, 1.0);
  for (guint p = 0; p < 2; p++)
    g_print ("  %-26s %14.0f %9.2f× %17.0f%% %11.0f%%\n", p == 0 ? "FORK" : "MPI", figures[p].ns,
             serial / figures[p].ns, 100 * figures[0].ns / figures[p].ns, 100 * figures[p].caller_cpu);
}

typedef struct
{
  guint32 id;
  guint32 pid;
  /* In KiB: the dataset's mapping as the worker saw it after reading it
   * all, and the whole process's PSS before the pool and after the map. */
  guint64 mapping_pss;
  guint64 mapping_rss;
  double  pss_before;
  double  pss_after;
  double  private_dirty;
} WorkerMemory;

/* Maps the tests' wpool_test_shared_mapping() on a new kept-alive pool of @n_workers with
 * @dataset as its shared objects, 4 items a worker, one at a time; fills
 * @workers (by worker id) from the results and, while the pool still
 * runs, from the workers' /proc/PID/smaps_rollup: their PSS @before the
 * dataset, or after it. Returns the pool. */
static WpoolPool *
read_dataset (guint         n_workers,
              GVariant     *dataset,
              WorkerMemory *workers,
              gboolean      before)
{
  WpoolPool *pool = wpool_pool_new (n_workers, WPOOL_START_METHOD_MPI);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint32 *indexes = g_new0 (guint32, n_workers * 4);

  /* What test-mpi-pool reads of each worker's mapping, from its module. */
  task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_MODULE") ?: BENCH_TEST_MODULE, "wpool_test_shared_mapping",
                                    &error);
  g_assert_no_error (error);
  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uuttt)"));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_shared_objects (pool, dataset, &error);
  g_assert_no_error (error);

  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, indexes, n_workers * 4, sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);

  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      WorkerMemory report = { 0, };
      WorkerMemory *worker;

      g_variant_get_child (results, i, "(uuttt)", &report.id, &report.pid, NULL, &report.mapping_pss,
                           &report.mapping_rss);
      g_assert_cmpuint (report.id, <, n_workers);
      worker = &workers[report.id];
      worker->id = report.id;
      worker->pid = report.pid;
      worker->mapping_pss = report.mapping_pss;
      worker->mapping_rss = MAX (worker->mapping_rss, report.mapping_rss);
    }

  for (guint i = 0; i < n_workers; i++)
    {
      if (workers[i].pid == 0)
        continue;
      if (before)
        workers[i].pss_before = bench_smaps_kib (workers[i].pid, "\nPss:");
      else
        {
          workers[i].pss_after = bench_smaps_kib (workers[i].pid, "\nPss:");
          workers[i].private_dirty = bench_smaps_kib (workers[i].pid, "\nPrivate_Dirty:");
        }
    }

  return pool;
}

/* The memory a @mib MiB `ay` dataset as the shared objects costs each
 * (simulated) node: the PSS that the pool's rank and the node's workers
 * gained, against a pool of the same workers with a page of shared
 * objects. */
static void
run_dataset (guint n_workers,
             gsize mib)
{
  const char *test_size = g_getenv ("WPOOL_MPI_TEST_NODE_SIZE");
  guint node_size = test_size != NULL && atoi (test_size) > 0 ? (guint)atoi (test_size) : n_workers + 1;
  guint n_nodes = (n_workers + 1 + node_size - 1) / node_size;
  gsize size = mib << 20;
  g_autofree WorkerMemory *workers = g_new0 (WorkerMemory, n_workers);
  g_autofree double *node_extra = g_new0 (double, n_nodes);
  g_autoptr(GVariant) dataset = NULL;
  g_autoptr(GVariant) page = NULL;
  g_autofree guint8 *zeros = g_new0 (guint8, 4096);
  double pool_before;
  double pool_after;
  double total = 0;
  guint8 *bytes;

  /* Written, so that its pages are this process's before any pool. */
  bytes = g_malloc (size);
  for (gsize i = 0; i < size; i += 4096)
    bytes[i] = (guint8)(i >> 12);
  dataset = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, size, TRUE, g_free, bytes));
  page = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, zeros, 4096, 1));

  /* The workers' memory without the dataset (the same processes when
   * they are the job's ranks; spawned ones are new, and alike). */
  g_object_unref (read_dataset (n_workers, page, workers, TRUE));
  for (guint i = 0; i < n_workers; i++)
    workers[i].pid = 0;

  pool_before = bench_smaps_kib (getpid (), "\nPss:");
  {
    g_autoptr(WpoolPool) pool = read_dataset (n_workers, dataset, workers, FALSE);

    pool_after = bench_smaps_kib (getpid (), "\nPss:");
  }

  g_print ("\n%zu MiB `ay` shared objects, %u workers, nodes of %u ranks (the pool's rank 0 and its first "
           "workers on node 0), each worker reading it all\n", mib, n_workers, node_size);
  g_print ("  %-6s %-14s %16s %8s %22s %24s\n", "node", "ranks", "extra PSS", "copies",
           "dataset RSS/worker", "private dirty/worker");
  for (guint node = 0; node < n_nodes; node++)
    {
      g_autoptr(GString) ranks = g_string_new (node == 0 ? "0" : "");
      double rss = 0;
      double dirty = 0;
      guint n = 0;

      if (node == 0)
        node_extra[0] = pool_after - pool_before;
      for (guint i = 0; i < n_workers; i++)
        {
          if ((i + 1) / node_size != node)
            continue;
          if (workers[i].pid == 0)
            {
              g_print ("  (worker %u ran no item: run again)\n", i);
              continue;
            }
          g_string_append_printf (ranks, "%s%u", ranks->len > 0 ? "," : "", i + 1);
          node_extra[node] += workers[i].pss_after - workers[i].pss_before;
          rss += workers[i].mapping_rss;
          dirty += workers[i].private_dirty;
          n++;
        }
      total += node_extra[node];
      g_print ("  %-6u %-14s %12.1f MiB %8.3f %18.1f MiB %20.1f MiB\n", node, ranks->str, node_extra[node] / 1024,
               node_extra[node] / 1024 / mib, n > 0 ? rss / n / 1024 : 0, n > 0 ? dirty / n / 1024 : 0);
    }
  g_print ("  %-21s %12.1f MiB %8.3f copies for %u node%s; the pool's own process: %.1f MiB of it\n", "all",
           total / 1024, total / 1024 / mib, n_nodes, n_nodes > 1 ? "s" : "", (pool_after - pool_before) / 1024);
}

/* Runs every part under mpirun, each in a job of its own. */
static int
run_all (const char *self,
         gsize       mib)
{
  g_autofree char *mib_string = g_strdup_printf ("%zu", mib);
  g_auto(GStrv) env = g_get_environ ();
  const struct { const char *title; const char *np; const char *part; const char *node_size; } runs[] = {
    { "spawned workers", "1", "items", NULL },
    { "the job's ranks", "3", "items", NULL },
    { "the job's ranks, one node", "5", "dataset", NULL },
    { "the job's ranks, 2 simulated nodes of 3 ranks", "5", "dataset", "3" },
    { "spawned workers, 2 simulated nodes of 3 ranks", "1", "dataset", "3" },
  };

  if (g_getenv ("WPOOL_MPI_MODULE") == NULL)
    env = g_environ_setenv (env, "WPOOL_MPI_MODULE", BENCH_MPI_MODULE, TRUE);
  if (g_getenv ("WPOOL_WORKER") == NULL)
    env = g_environ_setenv (env, "WPOOL_WORKER", BENCH_WORKER, TRUE);

  for (guint r = 0; r < G_N_ELEMENTS (runs); r++)
    {
      const char *argv[] = { "mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", runs[r].np,
                             self, runs[r].part, mib_string, NULL };
      g_auto(GStrv) run_env = g_strdupv (env);
      g_autoptr(GError) error = NULL;
      int status;

      if (runs[r].node_size != NULL)
        run_env = g_environ_setenv (run_env, "WPOOL_MPI_TEST_NODE_SIZE", runs[r].node_size, TRUE);
      else
        run_env = g_environ_unsetenv (run_env, "WPOOL_MPI_TEST_NODE_SIZE");
      g_print ("\n== %s: %smpirun -np %s bench-mpi %s ==\n", runs[r].title,
               runs[r].node_size ? "WPOOL_MPI_TEST_NODE_SIZE=3 " : "", runs[r].np, runs[r].part);
      fflush (stdout);
      if (!g_spawn_sync (NULL, (char **)argv, run_env, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error) ||
          !g_spawn_check_wait_status (status, &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
    }

  return 0;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  const char *world_size = g_getenv ("OMPI_COMM_WORLD_SIZE");
  int n_ranks = world_size != NULL ? atoi (world_size) : 0;
  gsize mib = argc > 2 ? (gsize)g_ascii_strtoull (argv[2], NULL, 10) : 1024;

  setlocale (LC_ALL, "");

  if (n_ranks == 0)
    {
      g_autofree char *self = g_canonicalize_filename (argv[0], NULL);

      return run_all (self, argc > 1 ? (gsize)g_ascii_strtoull (argv[1], NULL, 10) : 1024);
    }

  /* Ranks 1 to N-1 serve rank 0's pools, and return once it is done. */
  if (wpool_worker_serve ((const char * const *)argv, WPOOL_SERVE_FLAGS_MPI_RANKS, NULL, NULL, &error))
    return 0;
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);

  if (argc > 1 && g_str_equal (argv[1], "items"))
    run_items (n_ranks > 1 ? "the job's ranks" : "spawned");
  else if (argc > 1 && g_str_equal (argv[1], "dataset"))
    run_dataset (n_ranks > 1 ? (guint)n_ranks - 1 : 4, mib);
  else
    {
      g_printerr ("Usage: bench-mpi [MIB], or under mpirun: bench-mpi items|dataset [MIB]\n");
      return 1;
    }

  return 0;
}
