/* bench-threading.c: the THREADING map against the baselines a GLib
 * developer would otherwise write, on the same items, body and machine in
 * one run. Prints ns/item and ratios; asserts nothing about time.
 *
 *   bench-threading [N_ITEMS] [N_JOBS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <wpool.h>

#include "bench-util.h"

#define N_REPEATS 5

/* The trivial body: x*x + 1. */
static GVariant *
trivial_task (WpoolWorker  *worker,
              GVariant     *shared_objects,
              GVariant     *item,
              gpointer      user_data,
              GError      **error)
{
  return g_variant_new_double (bench_trivial (g_variant_get_double (item)));
}

/* The CPU-bound body: about 20 µs of arithmetic on this kind of machine. */
static GVariant *
cpu_bound_task (WpoolWorker  *worker,
                GVariant     *shared_objects,
                GVariant     *item,
                gpointer      user_data,
                GError      **error)
{
  return g_variant_new_double (bench_cpu_bound (g_variant_get_double (item)));
}

static GVariant *
make_items (guint n)
{
  g_autofree double *values = g_new (double, n);

  for (guint i = 0; i < n; i++)
    values[i] = i * 0.001;

  return g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)));
}

/* Serial: the same GVariant item in, GVariant result out, one thread. */
static GVariant *
run_serial (WpoolTaskFunc func,
            GVariant     *items)
{
  guint n = g_variant_n_children (items);
  g_autofree GVariant **results = g_new (GVariant *, n);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (items, i);
      results[i] = func (NULL, NULL, item, NULL, NULL);
    }

  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_DOUBLE, results, n));
}

/* Serial, storing the results flat as wpool does for a fixed-size result
 * type: the honest baseline for its speedup. */
static GVariant *
run_serial_flat (WpoolTaskFunc func,
                 GVariant     *items)
{
  guint n = g_variant_n_children (items);
  double *values = g_new (double, MAX (n, 1));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (items, i);
      g_autoptr(GVariant) result = g_variant_ref_sink (func (NULL, NULL, item, NULL, NULL));

      values[i] = g_variant_get_double (result);
    }

  return g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE ("ad"), values, n * sizeof (double),
                                                      TRUE, g_free, values));
}

/* The naive GLib way: one g_thread_pool_push() per item. */
typedef struct
{
  WpoolTaskFunc func;
  GVariant     *items;
  GVariant    **results;
  gint          remaining;
  GMutex        mutex;
  GCond         cond;
} PushState;

static void
push_one (gpointer data,
          gpointer user_data)
{
  PushState *state = user_data;
  guint i = GPOINTER_TO_UINT (data) - 1;
  g_autoptr(GVariant) item = g_variant_get_child_value (state->items, i);

  state->results[i] = g_variant_ref_sink (state->func (NULL, NULL, item, NULL, NULL));

  if (g_atomic_int_dec_and_test (&state->remaining))
    {
      g_mutex_lock (&state->mutex);
      g_cond_signal (&state->cond);
      g_mutex_unlock (&state->mutex);
    }
}

static GVariant *
run_push_per_item (GThreadPool   *thread_pool,
                   PushState     *state,
                   WpoolTaskFunc  func,
                   GVariant      *items)
{
  guint n = g_variant_n_children (items);
  GVariant *ret;

  state->func = func;
  state->items = items;
  state->results = g_new (GVariant *, n);
  g_atomic_int_set (&state->remaining, n);

  for (guint i = 0; i < n; i++)
    g_thread_pool_push (thread_pool, GUINT_TO_POINTER (i + 1), NULL);

  g_mutex_lock (&state->mutex);
  while (g_atomic_int_get (&state->remaining) > 0)
    g_cond_wait (&state->cond, &state->mutex);
  g_mutex_unlock (&state->mutex);

  ret = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_DOUBLE, state->results, n));
  for (guint i = 0; i < n; i++)
    g_variant_unref (state->results[i]);
  g_free (state->results);

  return ret;
}

typedef enum { SERIAL, SERIAL_FLAT, PUSH_PER_ITEM, WPOOL_MAP } Runner;

typedef struct
{
  GThreadPool *thread_pool;
  PushState    push_state;
  WpoolPool   *pool;
} Runners;

/* Best of N_REPEATS, in ns per item; checks every run against serial. */
static double
measure (Runners       *runners,
         Runner         runner,
         WpoolTaskFunc  func,
         GVariant      *items,
         GVariant      *expected)
{
  g_autoptr(WpoolTask) task = wpool_task_new (func, NULL, NULL);
  guint n = g_variant_n_children (items);
  double best = INFINITY;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);

  for (guint r = 0; r < N_REPEATS; r++)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      gint64 start = g_get_monotonic_time ();
      gint64 elapsed;

      switch (runner)
        {
        case SERIAL:
          results = run_serial (func, items);
          break;
        case SERIAL_FLAT:
          results = run_serial_flat (func, items);
          break;
        case PUSH_PER_ITEM:
          results = run_push_per_item (runners->thread_pool, &runners->push_state, func, items);
          break;
        case WPOOL_MAP:
        default:
          results = wpool_pool_map (runners->pool, task, items, NULL, &error);
          break;
        }

      elapsed = g_get_monotonic_time () - start;

      if (results == NULL)
        g_error ("map failed: %s", error->message);
      if (expected != NULL && !g_variant_equal (results, expected))
        g_error ("results differ from the serial run");

      best = MIN (best, elapsed * 1000.0 / n);
    }

  return best;
}

static void
run_workload (Runners       *runners,
              const char    *name,
              WpoolTaskFunc  func,
              guint          n_items)
{
  g_autoptr(GVariant) items = make_items (n_items);
  g_autoptr(GVariant) expected = run_serial (func, items);
  double serial = measure (runners, SERIAL, func, items, expected);
  double serial_flat = measure (runners, SERIAL_FLAT, func, items, expected);
  double push = measure (runners, PUSH_PER_ITEM, func, items, expected);
  double wpool = measure (runners, WPOOL_MAP, func, items, expected);

  g_print ("\n%s, %u items (speedups against the flat serial loop)\n", name, n_items);
  g_print ("  %-40s %12.1f ns/item  speedup %.2fx\n", "serial loop, results as a GVariant tree", serial, serial_flat / serial);
  g_print ("  %-40s %12.1f ns/item\n", "serial loop, results stored flat", serial_flat);
  g_print ("  %-40s %12.1f ns/item  speedup %.2fx\n", "g_thread_pool_push per item", push, serial_flat / push);
  g_print ("  %-40s %12.1f ns/item  speedup %.2fx\n", "wpool_pool_map (THREADING)", wpool, serial_flat / wpool);
  g_print ("  wpool throughput / push-per-item: %.2fx\n", push / wpool);
}

int
main (int   argc,
      char *argv[])
{
  guint n_items = argc > 1 ? (guint)g_ascii_strtoull (argv[1], NULL, 10) : 1000000;
  guint n_jobs = argc > 2 ? (guint)g_ascii_strtoull (argv[2], NULL, 10) : g_get_num_processors ();
  Runners runners = { 0 };

  setlocale (LC_ALL, "");

  runners.thread_pool = g_thread_pool_new (push_one, &runners.push_state, n_jobs, TRUE, NULL);
  g_mutex_init (&runners.push_state.mutex);
  g_cond_init (&runners.push_state.cond);
  runners.pool = wpool_pool_new (n_jobs, WPOOL_START_METHOD_THREADING);
  wpool_pool_set_keep_alive (runners.pool, TRUE);

  g_print ("libwpool %s, %u jobs, %u processors, best of %u runs\n",
           WPOOL_VERSION_S, n_jobs, g_get_num_processors (), N_REPEATS);

  run_workload (&runners, "trivial body (x*x + 1)", trivial_task, n_items);
  run_workload (&runners, "CPU-bound body (~20 µs)", cpu_bound_task, 2000);

  g_thread_pool_free (runners.thread_pool, FALSE, TRUE);
  g_object_unref (runners.pool);

  return EXIT_SUCCESS;
}
