/* bench-detection.c: how soon a pool notices a worker process that died in
 * the middle of an item (from the kill to the map's failure), and how far
 * past the task timeout a hung item fails, per start method. Prints
 * medians; asserts nothing about time.
 *
 *   bench-detection [N_RUNS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <wpool.h>

#include "bench-util.h"

typedef struct
{
  gboolean done;
  gint64   when;
  GError  *error;
} Outcome;

static void
map_done (GObject      *source,
          GAsyncResult *result,
          gpointer      data)
{
  Outcome *outcome = data;
  g_autoptr(GVariant) results = wpool_pool_map_finish (WPOOL_POOL (source), result, &outcome->error);

  outcome->when = g_get_monotonic_time ();
  outcome->done = TRUE;
}

static void
wait_for (Outcome *outcome)
{
  while (!outcome->done)
    g_main_context_iteration (NULL, TRUE);
}

/* ms from killing a worker busy in an item to the map's failure. */
static double
measure_death (WpoolStartMethod method,
               WpoolTask       *task)
{
  g_autoptr(WpoolSharedArray) pids = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 1, FALSE, NULL);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  Outcome outcome = { 0, };
  gint64 pid = 0;
  gint64 killed;

  wpool_pool_set_shared_objects (pool, g_variant_new_tuple ((GVariant *[]) { wpool_shared_array_get_handle (pids) }, 1), NULL);
  wpool_pool_map_async (pool, task, g_variant_new_parsed ("[uint32 5000]"), NULL, map_done, &outcome);

  while (pid == 0)
    {
      g_usleep (G_TIME_SPAN_MILLISECOND);
      pid = wpool_shared_array_get_int64 (pids, 0, NULL);
    }

  killed = g_get_monotonic_time ();
  kill ((pid_t)pid, SIGKILL);
  wait_for (&outcome);
  g_assert_true (g_error_matches (outcome.error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED));
  g_clear_error (&outcome.error);

  return (outcome.when - killed) / 1000.0;
}

/* ms past a 200 ms task timeout that a hung item's map fails. */
static double
measure_timeout (WpoolStartMethod method,
                 WpoolTask       *task)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  Outcome outcome = { 0, };
  gint64 started = g_get_monotonic_time ();

  wpool_pool_set_task_timeout (pool, 0.2);
  wpool_pool_map_async (pool, task, g_variant_new_parsed ("[uint32 1000]"), NULL, map_done, &outcome);
  wait_for (&outcome);
  g_assert_true (g_error_matches (outcome.error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT));
  g_clear_error (&outcome.error);

  return (outcome.when - started) / 1000.0 - 200;
}

int
main (int   argc,
      char *argv[])
{
  guint n_runs = argc > 1 ? (guint)atoi (argv[1]) : 5;
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = NULL;

  setlocale (LC_ALL, "");

  if (!(task = wpool_task_new_for_symbol (module ? module : "libwpool-bench-tasks.so", "bench_pid_then_sleep", &error)))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  g_print ("detection, median of %u runs (the timeout's figure includes starting the worker)\n", n_runs);
  g_print ("  %-12s %24s %28s\n", "", "death → failed map, ms", "past a 200 ms timeout, ms");

  for (guint m = 0; m < G_N_ELEMENTS (bench_start_methods); m++)
    {
      g_autofree double *deaths = g_new (double, n_runs);
      g_autofree double *overshoots = g_new (double, n_runs);

      for (guint r = 0; r < n_runs; r++)
        {
          deaths[r] = bench_start_methods[m].method == WPOOL_START_METHOD_THREADING ? 0 : measure_death (bench_start_methods[m].method, task);
          overshoots[r] = measure_timeout (bench_start_methods[m].method, task);
        }
      if (bench_start_methods[m].method == WPOOL_START_METHOD_THREADING)
        g_print ("  %-12s %24s %28.1f\n", bench_start_methods[m].name, "(a thread cannot die)", bench_median (overshoots, n_runs));
      else
        g_print ("  %-12s %24.1f %28.1f\n", bench_start_methods[m].name, bench_median (deaths, n_runs),
                 bench_median (overshoots, n_runs));
    }

  return 0;
}
