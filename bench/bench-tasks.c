/* bench-tasks.c: the tasks of the benchmarks, loaded by symbol so that
 * every start method runs them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>
#include <unistd.h>
#include <wpool.h>

#include "bench-util.h"

#define BENCH_EXPORT __attribute__((visibility("default")))

BENCH_EXPORT GVariant *bench_return_result (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
BENCH_EXPORT GVariant *bench_store_result (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
BENCH_EXPORT GVariant *bench_pid_then_sleep (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
BENCH_EXPORT GVariant *bench_sum_slice (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
BENCH_EXPORT GVariant *bench_square_plus_one (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
BENCH_EXPORT gboolean bench_square_plus_one_chunk (WpoolWorker *, GVariant *, gconstpointer, gsize, gpointer, gpointer,
                                                   GError **);
BENCH_EXPORT gboolean bench_cpu_bound_chunk (WpoolWorker *, GVariant *, gconstpointer, gsize, gpointer, gpointer,
                                             GError **);

/* (ud) → d: x*x + 1, returned. */
GVariant *
bench_return_result (WpoolWorker  *worker,
                     GVariant     *shared_objects,
                     GVariant     *item,
                     gpointer      user_data,
                     GError      **error)
{
  guint32 index;
  double x;

  g_variant_get (item, "(ud)", &index, &x);

  return g_variant_new_double (x * x + 1);
}

/* (ud) → b: x*x + 1, stored at index in the shared double array that is
 * the shared objects, without a lock; returns TRUE. */
GVariant *
bench_store_result (WpoolWorker  *worker,
                    GVariant     *shared_objects,
                    GVariant     *item,
                    gpointer      user_data,
                    GError      **error)
{
  WpoolSharedArray *results = wpool_worker_get_shared_array (worker, 0, error);
  guint32 index;
  double x;

  if (results == NULL)
    return NULL;

  g_variant_get (item, "(ud)", &index, &x);

  if (!wpool_shared_array_set_double (results, index, x * x + 1, error))
    return NULL;

  return g_variant_new_boolean (TRUE);
}

/* u → u: writes this process's pid to the shared int64 array at the
 * worker's id, then sleeps that many milliseconds: an item to be killed
 * or timed out in the middle. */
GVariant *
bench_pid_then_sleep (WpoolWorker  *worker,
                      GVariant     *shared_objects,
                      GVariant     *item,
                      gpointer      user_data,
                      GError      **error)
{
  WpoolSharedArray *pids = shared_objects ? wpool_worker_get_shared_array (worker, 0, NULL) : NULL;

  if (pids != NULL)
    wpool_shared_array_set_int64 (pids, wpool_worker_get_id (worker), getpid (), NULL);
  g_usleep (g_variant_get_uint32 (item) * G_TIME_SPAN_MILLISECOND);

  return g_variant_ref (item);
}

/* u → (ut): item k of 200 sums the k-th of 200 slices of the shared
 * objects, an `ay` dataset or a byte WpoolSharedArray, one byte a page
 * (what reading it costs in memory, not in time), and returns the
 * worker's pid and the sum. */
GVariant *
bench_sum_slice (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  guint32 k = g_variant_get_uint32 (item);
  const guint8 *data;
  gsize size;
  gsize slice;
  guint64 sum = 0;

  if (g_variant_is_of_type (shared_objects, G_VARIANT_TYPE_BYTESTRING))
    {
      data = g_variant_get_data (shared_objects);
      size = g_variant_get_size (shared_objects);
    }
  else
    {
      WpoolSharedArray *array = wpool_worker_get_shared_array (worker, 0, error);

      if (array == NULL)
        return NULL;
      data = wpool_shared_array_get_data (array, &size);
    }

  slice = size / 200;
  for (gsize i = (gsize)k * slice; i < MIN ((gsize)(k + 1) * slice, size); i += 4096)
    sum += data[i];

  return g_variant_new ("(ut)", (guint32)getpid (), sum);
}

/* d → d: x*x + 1, an item at a time. */
GVariant *
bench_square_plus_one (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  return g_variant_new_double (bench_trivial (g_variant_get_double (item)));
}

/* d → d: x*x + 1, a chunk at a time. */
gboolean
bench_square_plus_one_chunk (WpoolWorker   *worker,
                             GVariant      *shared_objects,
                             gconstpointer  items,
                             gsize          n_items,
                             gpointer       results,
                             gpointer       user_data,
                             GError       **error)
{
  bench_apply (bench_trivial, items, results, n_items);

  return TRUE;
}

/* d → d: bench-peers' CPU-bound body, about 20 µs of arithmetic an
 * item, a chunk at a time. */
gboolean
bench_cpu_bound_chunk (WpoolWorker   *worker,
                       GVariant      *shared_objects,
                       gconstpointer  items,
                       gsize          n_items,
                       gpointer       results,
                       gpointer       user_data,
                       GError       **error)
{
  bench_apply (bench_cpu_bound, items, results, n_items);

  return TRUE;
}
