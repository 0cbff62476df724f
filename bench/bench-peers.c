/* bench-peers.c: libwpool against what a C developer would use instead,
 * on the same plain arrays of doubles, the same bodies and the same
 * machine, in one run: a serial loop, OpenMP's `parallel for`, one GTask
 * run in a thread per chunk, and wpool's chunk tasks and item-wise maps.
 * Then the latency of a warm one-item map and the start-up of a pool, per
 * start method. Prints ns/item and ratios; asserts nothing about time.
 *
 *   bench-peers [N_JOBS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wpool.h>

#include "bench-util.h"

#define N_REPEATS 5

typedef double (*Body) (double x);

/* The CPU-bound body at a cost that grows along the items, from 0 to
 * ~40 µs (~20 on average over 2 000 items): what an even split of the
 * items balances worst. */
static double
uneven (double x)
{
  guint n = (guint)(x * 850);

  for (guint i = 0; i < n; i++)
    x = sin (x) + cos (x) * 0.5;

  return x;
}

typedef struct
{
  const char *name;
  Body        body;
  guint       n_items;
} Workload;

static gboolean
body_chunk (WpoolWorker   *worker,
            GVariant      *shared_objects,
            gconstpointer  items,
            gsize          n_items,
            gpointer       results,
            gpointer       user_data,
            GError       **error)
{
  Body body = (Body)user_data;
  const double *x = items;
  double *y = results;

  for (gsize i = 0; i < n_items; i++)
    y[i] = body (x[i]);

  return TRUE;
}

static GVariant *
body_item (WpoolWorker  *worker,
           GVariant     *shared_objects,
           GVariant     *item,
           gpointer      user_data,
           GError      **error)
{
  Body body = (Body)user_data;

  return g_variant_new_double (body (g_variant_get_double (item)));
}

/* One GTask per chunk on GLib's own worker threads: what a GIO developer
 * writes with g_task_run_in_thread(). */
typedef struct
{
  Body          body;
  const double *x;
  double       *y;
  gsize         n;
} Chunk;

static void
chunk_thread (GTask        *task,
              gpointer      source,
              gpointer      data,
              GCancellable *cancellable)
{
  Chunk *chunk = data;

  for (gsize i = 0; i < chunk->n; i++)
    chunk->y[i] = chunk->body (chunk->x[i]);

  g_task_return_boolean (task, TRUE);
}

static void
chunk_done (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  guint *remaining = data;

  g_task_propagate_boolean (G_TASK (result), NULL);
  (*remaining)--;
}

static void
run_gtask (Body          body,
           const double *x,
           double       *y,
           guint         n,
           guint         n_chunks)
{
  g_autofree Chunk *chunks = g_new (Chunk, n_chunks);
  guint per_chunk = (n + n_chunks - 1) / n_chunks;
  guint remaining = 0;

  for (guint c = 0; c < n_chunks && c * per_chunk < n; c++)
    {
      g_autoptr(GTask) task = g_task_new (NULL, NULL, chunk_done, &remaining);

      chunks[c] = (Chunk) { body, x + c * per_chunk, y + c * per_chunk, MIN (per_chunk, n - c * per_chunk) };
      g_task_set_task_data (task, &chunks[c], NULL);
      g_task_run_in_thread (task, chunk_thread);
      remaining++;
    }

  while (remaining > 0)
    g_main_context_iteration (NULL, TRUE);
}

typedef enum
{
  SERIAL,
  OPENMP,
  OPENMP_GUIDED,
  GTASK_PER_CHUNK,
  WPOOL_THREADING_MAP_CHUNKS,
  WPOOL_THREADING_MAP_CHUNKS_EVEN,
  WPOOL_FORK_MAP_CHUNKS,
  WPOOL_THREADING_CHUNKS,
  WPOOL_FORK_CHUNKS,
  WPOOL_THREADING_ITEMS,
  N_RUNNERS
} Runner;

static const char *runner_names[N_RUNNERS] = {
  "serial loop",
  "OpenMP parallel for",
  "OpenMP parallel for, guided",
  "GTask per chunk",
  "wpool THREADING, map_chunks",
  "  same, 4 even chunks per job",
  "wpool FORK, map_chunks",
  "wpool THREADING, chunk task",
  "wpool FORK, chunk task",
  "wpool THREADING, GVariant items",
};

typedef struct
{
  guint      n_jobs;
  WpoolPool *threading;
  /* THREADING with MPIRE's even split (n-splits = 4 per job) rather than
   * guided chunks. */
  WpoolPool *threading_even;
  WpoolPool *fork;
  /* The workload's tasks, kept: a kept-alive FORK pool restarts its
   * processes for a new task. */
  WpoolTask *chunks;
  WpoolTask *items;
} Pools;

/* Runs @runner once into @y, or for wpool into @results, which it returns
 * as they are; returns its time in ns. */
static double
run_once (Pools          *pools,
          Runner          runner,
          const Workload *workload,
          GVariant       *items,
          double         *y,
          GVariant      **results_out)
{
  const double *x = g_variant_get_data (items);
  guint n = workload->n_items;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  gint64 started = g_get_monotonic_time ();

  switch (runner)
    {
    case SERIAL:
      for (guint i = 0; i < n; i++)
        y[i] = workload->body (x[i]);
      break;

    case OPENMP:
#pragma omp parallel for num_threads (pools->n_jobs) schedule (static)
      for (guint i = 0; i < n; i++)
        y[i] = workload->body (x[i]);
      break;

    case OPENMP_GUIDED:
#pragma omp parallel for num_threads (pools->n_jobs) schedule (guided)
      for (guint i = 0; i < n; i++)
        y[i] = workload->body (x[i]);
      break;

    case GTASK_PER_CHUNK:
      run_gtask (workload->body, x, y, n, pools->n_jobs * 4);
      break;

    case WPOOL_THREADING_MAP_CHUNKS:
    case WPOOL_THREADING_MAP_CHUNKS_EVEN:
    case WPOOL_FORK_MAP_CHUNKS:
      wpool_pool_map_chunks (runner == WPOOL_FORK_MAP_CHUNKS ? pools->fork :
                             runner == WPOOL_THREADING_MAP_CHUNKS_EVEN ? pools->threading_even : pools->threading,
                             pools->chunks, x, n, y, NULL, &error);
      g_assert_no_error (error);
      break;

    case WPOOL_THREADING_CHUNKS:
    case WPOOL_FORK_CHUNKS:
    case WPOOL_THREADING_ITEMS:
      results = wpool_pool_map (runner == WPOOL_FORK_CHUNKS ? pools->fork : pools->threading,
                                runner == WPOOL_THREADING_ITEMS ? pools->items : pools->chunks,
                                items, NULL, &error);
      g_assert_no_error (error);
      break;

    default:
      g_assert_not_reached ();
    }

  *results_out = g_steal_pointer (&results);

  return (g_get_monotonic_time () - started) * 1000.0;
}

/* Best of N_REPEATS in ns/item; checks the results against @expected. */
static double
measure (Pools          *pools,
         Runner          runner,
         const Workload *workload,
         GVariant       *items,
         const double   *expected)
{
  g_autofree double *y = g_new0 (double, workload->n_items);
  double best = G_MAXDOUBLE;

  for (guint r = 0; r < N_REPEATS; r++)
    {
      g_autoptr(GVariant) results = NULL;
      const double *computed = y;

      best = MIN (best, run_once (pools, runner, workload, items, y, &results));
      if (results != NULL)
        computed = g_variant_get_data (results);
      for (guint i = 0; i < workload->n_items; i++)
        g_assert_cmpfloat (computed[i], ==, expected[i]);
    }

  return best / workload->n_items;
}

static void
run_workload (Pools          *pools,
              const Workload *workload)
{
  g_autofree double *values = g_new (double, workload->n_items);
  g_autofree double *expected = g_new (double, workload->n_items);
  g_autoptr(GVariant) items = NULL;
  double ns[N_RUNNERS];
  double openmp;

  for (guint i = 0; i < workload->n_items; i++)
    {
      values[i] = i * 0.001;
      expected[i] = workload->body (values[i]);
    }
  items = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, workload->n_items, sizeof (double)));
  g_set_object (&pools->chunks, wpool_task_new_for_chunks (G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE,
                                                           body_chunk, workload->body, NULL));
  g_object_unref (pools->chunks);
  g_set_object (&pools->items, wpool_task_new (body_item, workload->body, NULL));
  g_object_unref (pools->items);
  wpool_task_set_result_type (pools->items, G_VARIANT_TYPE_DOUBLE);

  g_print ("\n%s, %u items, %u jobs (best of %d)\n", workload->name, workload->n_items, pools->n_jobs, N_REPEATS);
  g_print ("  %-32s %12s %10s %12s\n", "", "ns/item", "speedup", "vs OpenMP");
  for (Runner r = 0; r < N_RUNNERS; r++)
    ns[r] = measure (pools, r, workload, items, expected);
  /* Against OpenMP's better schedule for the workload. */
  openmp = MIN (ns[OPENMP], ns[OPENMP_GUIDED]);
  for (Runner r = 0; r < N_RUNNERS; r++)
    g_print ("  %-32s %12.1f %9.2f× %11.2f×\n", runner_names[r], ns[r], ns[SERIAL] / ns[r], ns[r] / openmp);
}

/* The floor under a warm map's latency: the median round trip of a byte
 * between this thread and another (the hand-off to a driver or worker
 * thread and back), and through a socket to another process (a driver
 * to its worker process and back), in µs. */
static gpointer
echo_thread (gpointer data)
{
  GAsyncQueue **queues = data;
  gpointer message;

  while ((message = g_async_queue_pop (queues[0])) != GINT_TO_POINTER (2))
    g_async_queue_push (queues[1], message);

  return NULL;
}

static void
round_trips (double *thread_us,
             double *process_us)
{
  GAsyncQueue *queues[2] = { g_async_queue_new (), g_async_queue_new () };
  GThread *thread = g_thread_new ("echo", echo_thread, queues);
  double times[200];
  int fds[2];
  char byte = 0;
  pid_t pid;

  for (guint r = 0; r < G_N_ELEMENTS (times); r++)
    {
      gint64 t0 = g_get_monotonic_time ();

      g_async_queue_push (queues[0], GINT_TO_POINTER (1));
      g_async_queue_pop (queues[1]);
      times[r] = g_get_monotonic_time () - t0;
    }
  g_async_queue_push (queues[0], GINT_TO_POINTER (2));
  g_thread_join (thread);
  g_async_queue_unref (queues[0]);
  g_async_queue_unref (queues[1]);
  *thread_us = bench_median (times, G_N_ELEMENTS (times));

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM, 0, fds));
  if ((pid = fork ()) == 0)
    {
      close (fds[0]);
      while (read (fds[1], &byte, 1) == 1 && write (fds[1], &byte, 1) == 1)
        ;
      _exit (0);
    }
  close (fds[1]);
  for (guint r = 0; r < G_N_ELEMENTS (times); r++)
    {
      gint64 t0 = g_get_monotonic_time ();

      g_assert_cmpint (write (fds[0], &byte, 1), ==, 1);
      g_assert_cmpint (read (fds[0], &byte, 1), ==, 1);
      times[r] = g_get_monotonic_time () - t0;
    }
  close (fds[0]);
  waitpid (pid, NULL, 0);
  *process_us = bench_median (times, G_N_ELEMENTS (times));
}

/* A warm one-item map on a kept-alive pool, and the start-up of a pool
 * (a new pool's first one-item map less that), per start method. */
static void
run_latency (guint n_jobs)
{
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");
  double thread_us;
  double process_us;

  round_trips (&thread_us, &process_us);
  g_print ("\nround trips, the floor (median of 200): thread to thread %.1f µs, "
           "process to process through a socket %.1f µs\n", thread_us, process_us);

  g_print ("\nlatency, %u jobs (median of 200 warm maps; best of 5 starts)\n", n_jobs);
  g_print ("  %-12s %14s %14s %14s\n", "", "1-item map µs", "apply µs", "start-up ms");

  for (guint m = 0; m < G_N_ELEMENTS (bench_start_methods); m++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (n_jobs, bench_start_methods[m].method);
      g_autoptr(WpoolTask) task = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) one = g_variant_ref_sink (g_variant_new_parsed ("[(uint32 0, 1.0)]"));
      g_autoptr(GVariant) item = g_variant_ref_sink (g_variant_new_parsed ("(uint32 0, 1.0)"));
      double maps[200];
      double applies[200];
      double start_up = G_MAXDOUBLE;

      if (!(task = wpool_task_new_for_symbol (module ? module : "libwpool-bench-tasks.so", "bench_return_result", &error)))
        {
          g_print ("  %-12s (no task module: %s)\n", bench_start_methods[m].name, error->message);
          return;
        }
      wpool_pool_set_keep_alive (pool, TRUE);

      for (guint r = 0; r < G_N_ELEMENTS (maps); r++)
        {
          g_autoptr(GVariant) a = NULL;
          g_autoptr(GVariant) b = NULL;
          gint64 t0 = g_get_monotonic_time ();

          a = wpool_pool_map (pool, task, one, NULL, &error);
          maps[r] = g_get_monotonic_time () - t0;
          t0 = g_get_monotonic_time ();
          b = wpool_pool_apply (pool, task, item, NULL, &error);
          applies[r] = g_get_monotonic_time () - t0;
          g_assert_no_error (error);
        }

      for (guint r = 0; r < 5; r++)
        {
          g_autoptr(WpoolPool) fresh = wpool_pool_new (n_jobs, bench_start_methods[m].method);
          g_autoptr(GVariant) a = NULL;
          gint64 t0 = g_get_monotonic_time ();

          a = wpool_pool_map (fresh, task, one, NULL, &error);
          g_assert_no_error (error);
          start_up = MIN (start_up, (g_get_monotonic_time () - t0) / 1000.0);
        }

      g_print ("  %-12s %14.1f %14.1f %14.2f\n", bench_start_methods[m].name, bench_median (maps, G_N_ELEMENTS (maps)),
               bench_median (applies, G_N_ELEMENTS (applies)), start_up);
    }
}

int
main (int   argc,
      char *argv[])
{
  const Workload workloads[] = {
    { "trivial body (x*x + 1)", bench_trivial, 1000000 },
    { "CPU-bound body (~20 µs)", bench_cpu_bound, 2000 },
    { "uneven CPU-bound body (0-40 µs, growing)", uneven, 2000 },
  };
  Pools pools = { argc > 1 ? (guint)atoi (argv[1]) : g_get_num_processors () };

  /* OpenMP's threads spin after a parallel loop by default, taking the
   * CPUs from whatever runs next: run again with them waiting politely.
   * libgomp reads the variable as it loads, hence the exec. */
  if (g_getenv ("OMP_WAIT_POLICY") == NULL)
    {
      g_setenv ("OMP_WAIT_POLICY", "PASSIVE", TRUE);
      execv ("/proc/self/exe", argv);
    }

  setlocale (LC_ALL, "");

  pools.threading = wpool_pool_new (pools.n_jobs, WPOOL_START_METHOD_THREADING);
  pools.threading_even = wpool_pool_new (pools.n_jobs, WPOOL_START_METHOD_THREADING);
  wpool_pool_set_n_splits (pools.threading_even, pools.n_jobs * 4);
  pools.fork = wpool_pool_new (pools.n_jobs, WPOOL_START_METHOD_FORK);
  wpool_pool_set_keep_alive (pools.threading, TRUE);
  wpool_pool_set_keep_alive (pools.threading_even, TRUE);
  wpool_pool_set_keep_alive (pools.fork, TRUE);

  for (guint w = 0; w < G_N_ELEMENTS (workloads); w++)
    run_workload (&pools, &workloads[w]);

  run_latency (pools.n_jobs);

  g_object_unref (pools.threading);
  g_object_unref (pools.threading_even);
  g_object_unref (pools.fork);
  g_clear_object (&pools.chunks);
  g_clear_object (&pools.items);

  return 0;
}
