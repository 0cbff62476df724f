/* bench-async-start.c: what an async map costs its caller's main loop on a
 * cold pool, whatever the size of the shared objects, per start method.
 *
 * For every start method and every size of an `ay` dataset as the shared
 * objects (a touched g_malloc'd buffer; none at size 0), each run takes a
 * new pool and a trivial map of one item per job, and measures how long
 * the call takes to return, the longest stall of the caller's main loop
 * during the map (the largest gap between the dispatches of a 1 ms
 * timeout: 1 000 µs when nothing stalls it), the gap that spans the
 * results' return (what the end of the map costs the loop), and the time
 * to the results. Against:
 *
 * - wpool_pool_map_async(), which starts the workers and ends the map on
 *   the pool's control thread (FORK forks on the caller's thread);
 * - wpool_pool_map() in g_task_run_in_thread(), what a GLib developer
 *   would write instead;
 * - wpool_pool_map() on the main thread, for reference: its stall is the
 *   whole map.
 *
 * Prints medians and ratios; asserts nothing about time.
 *
 *   bench-async-start [MIB[,MIB...]] [N_RUNS] [N_JOBS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wpool.h>

#include "bench-util.h"

typedef enum
{
  PEER_ASYNC,
  PEER_GTASK,
  PEER_BLOCKING,
  N_PEERS
} Peer;

static const char *peer_names[N_PEERS] = {
  "map_async()",
  "map() in g_task_run_in_thread()",
  "map() on the main thread",
};

/* What a run measures, in µs. */
typedef enum
{
  FIGURE_RETURNED,
  FIGURE_STALL,
  FIGURE_END_STALL,
  FIGURE_RESULTS,
  N_FIGURES
} Figure;

typedef struct
{
  WpoolTask *task;
  GVariant  *items;
} MapArgs;

/* One measured map, and the main loop's ticks around it. */
typedef struct
{
  guint     n_ticks;
  gint64    last_tick;
  gint64    max_gap;
  gint64    end_gap;
  gint64    done_at;
  GVariant *results;
  GError   *error;
} Run;

static gboolean
tick (gpointer data)
{
  Run *run = data;
  gint64 now = g_get_monotonic_time ();

  run->max_gap = MAX (run->max_gap, now - run->last_tick);
  /* The gap that spans the results' return. */
  if (run->done_at != 0 && run->end_gap == 0)
    run->end_gap = now - run->last_tick;
  run->last_tick = now;
  run->n_ticks++;

  return G_SOURCE_CONTINUE;
}

static void
map_done (GObject      *source,
          GAsyncResult *result,
          gpointer      data)
{
  Run *run = data;

  run->results = wpool_pool_map_finish (WPOOL_POOL (source), result, &run->error);
  run->done_at = g_get_monotonic_time ();
}

static void
map_in_thread (GTask        *gtask,
               gpointer      source,
               gpointer      task_data,
               GCancellable *cancellable)
{
  MapArgs *args = task_data;
  GError *error = NULL;
  GVariant *results = wpool_pool_map (WPOOL_POOL (source), args->task, args->items, cancellable, &error);

  if (results != NULL)
    g_task_return_pointer (gtask, results, (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (gtask, error);
}

static void
gtask_done (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  Run *run = data;

  run->results = g_task_propagate_pointer (G_TASK (result), &run->error);
  run->done_at = g_get_monotonic_time ();
}

/* Runs until the ticker has dispatched once more. */
static void
wait_for_tick (Run *run)
{
  guint n_ticks = run->n_ticks;

  while (run->n_ticks == n_ticks)
    g_main_context_iteration (NULL, TRUE);
}

/* One map on a new pool: µs to return, the longest gap between the ticks
 * of the main loop, the gap that spans the results, µs to the results. */
static void
measure (Peer              peer,
         WpoolStartMethod  method,
         guint             n_jobs,
         GVariant         *shared_objects,
         MapArgs          *args,
         double            figures[N_FIGURES])
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (n_jobs, method);
  g_autoptr(GSource) ticker = g_timeout_source_new (1);
  g_autoptr(GError) error = NULL;
  Run run = { 0, };
  gint64 t0;

  wpool_pool_set_shared_objects (pool, shared_objects, &error);
  g_assert_no_error (error);

  g_source_set_callback (ticker, tick, &run, NULL);
  g_source_attach (ticker, NULL);
  run.last_tick = g_get_monotonic_time ();
  while (run.n_ticks < 3)
    wait_for_tick (&run);
  run.max_gap = 0;

  t0 = g_get_monotonic_time ();
  switch (peer)
    {
    case PEER_ASYNC:
      wpool_pool_map_async (pool, args->task, args->items, NULL, map_done, &run);
      break;
    case PEER_GTASK:
      {
        g_autoptr(GTask) gtask = g_task_new (pool, NULL, gtask_done, &run);

        g_task_set_task_data (gtask, args, NULL);
        g_task_run_in_thread (gtask, map_in_thread);
      }
      break;
    case PEER_BLOCKING:
      run.results = wpool_pool_map (pool, args->task, args->items, NULL, &run.error);
      run.done_at = g_get_monotonic_time ();
      break;
    case N_PEERS:
    default:
      g_assert_not_reached ();
    }
  figures[FIGURE_RETURNED] = g_get_monotonic_time () - t0;

  while (run.done_at == 0)
    g_main_context_iteration (NULL, TRUE);
  /* The gap that spans the end of a blocking map. */
  wait_for_tick (&run);
  g_source_destroy (ticker);

  g_assert_no_error (run.error);
  g_assert_cmpuint (g_variant_n_children (run.results), ==, g_variant_n_children (args->items));
  g_variant_unref (run.results);

  figures[FIGURE_STALL] = run.max_gap;
  figures[FIGURE_END_STALL] = run.end_gap;
  figures[FIGURE_RESULTS] = run.done_at - t0;
}

/* A touched buffer of @mib MiB as an `ay`, or %NULL at 0. */
static GVariant *
make_dataset (gsize mib)
{
  guint8 *bytes;

  if (mib == 0)
    return NULL;

  /* Written whole, so that every page is this process's before the pool. */
  bytes = g_malloc (mib << 20);
  memset (bytes, 0x5a, mib << 20);

  return g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, mib << 20,
                                                      TRUE, g_free, bytes));
}

int
main (int   argc,
      char *argv[])
{
  g_auto(GStrv) sizes = g_strsplit (argc > 1 ? argv[1] : "0,256,1024", ",", -1);
  guint n_runs = argc > 2 ? (guint)g_ascii_strtoull (argv[2], NULL, 10) : 3;
  guint n_jobs = argc > 3 ? (guint)g_ascii_strtoull (argv[3], NULL, 10) : 2;
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");
  g_autofree char *default_module = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) items = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint32 *zeros = NULL;
  MapArgs args;

  setlocale (LC_ALL, "");

  if (n_runs == 0 || n_jobs == 0)
    {
      g_printerr ("usage: %s [MIB[,MIB...]] [N_RUNS] [N_JOBS]\n", argv[0]);
      return 2;
    }

  /* A task by symbol, which every start method can run. */
  if (module == NULL)
    {
      g_autofree char *dir = g_path_get_dirname (argv[0]);
      module = default_module = g_build_filename (dir, "libwpool-bench-tasks.so", NULL);
    }
  if (!(task = wpool_task_new_for_symbol (module, "bench_pid_then_sleep", &error)))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);

  /* One item a job, each sleeping 0 ms: the map is its start-up. */
  zeros = g_new0 (guint32, n_jobs);
  items = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, zeros, n_jobs, sizeof (guint32)));
  args = (MapArgs) { task, items };

  g_print ("a trivial map of %u items on a cold pool of %u jobs, median of %u runs; stall: the longest gap\n"
           "between the dispatches of a 1 ms timeout on the caller's main loop (1 000 µs: no stall);\n"
           "at end: the gap that spans the results' return\n",
           n_jobs, n_jobs, n_runs);

  /* First maps load what every later one finds loaded. */
  for (guint m = 0; m < G_N_ELEMENTS (bench_start_methods); m++)
    {
      double ignored[N_FIGURES];

      measure (PEER_BLOCKING, bench_start_methods[m].method, n_jobs, NULL, &args, ignored);
    }

  for (guint s = 0; sizes[s] != NULL; s++)
    {
      gsize mib = g_ascii_strtoull (sizes[s], NULL, 10);
      g_autoptr(GVariant) dataset = make_dataset (mib);

      for (guint m = 0; m < G_N_ELEMENTS (bench_start_methods); m++)
        {
          g_autofree double *runs = g_new (double, N_PEERS * N_FIGURES * n_runs);
          double medians[N_PEERS][N_FIGURES];

          /* The peers take turns, so that noise falls on all of them. */
          for (guint r = 0; r < n_runs; r++)
            for (guint p = 0; p < N_PEERS; p++)
              {
                double figures[N_FIGURES];

                measure (p, bench_start_methods[m].method, n_jobs, dataset, &args, figures);
                for (guint f = 0; f < N_FIGURES; f++)
                  runs[(p * N_FIGURES + f) * n_runs + r] = figures[f];
              }
          for (guint p = 0; p < N_PEERS; p++)
            for (guint f = 0; f < N_FIGURES; f++)
              medians[p][f] = bench_median (&runs[(p * N_FIGURES + f) * n_runs], n_runs);

          g_print ("\n%s, %zu MiB of shared objects\n", bench_start_methods[m].name, mib);
          /* µ takes two bytes, which printf counts. */
          g_print ("  %-32s %13s %13s %13s %13s %11s %11s %11s\n", "", "returns µs", "stall µs", "at end µs",
                   "results µs", "stall vs", "stall vs", "results vs");
          g_print ("  %-32s %12s %12s %12s %12s %11s %11s %11s\n", "", "", "", "", "", "blocking", "GTask", "GTask");
          for (guint p = 0; p < N_PEERS; p++)
            g_print ("  %-32s %12.0f %12.0f %12.0f %12.0f %10.3f× %10.2f× %10.2f×\n", peer_names[p],
                     medians[p][FIGURE_RETURNED], medians[p][FIGURE_STALL], medians[p][FIGURE_END_STALL],
                     medians[p][FIGURE_RESULTS], medians[p][FIGURE_STALL] / medians[PEER_BLOCKING][FIGURE_STALL],
                     medians[p][FIGURE_STALL] / medians[PEER_GTASK][FIGURE_STALL],
                     medians[p][FIGURE_RESULTS] / medians[PEER_GTASK][FIGURE_RESULTS]);
        }
    }

  return 0;
}
