/* test-map-stream.c: imap, imap_unordered, per-item outcomes and
 * map_unordered, on every start method.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>
#include <sys/prctl.h>

#include "wpool-test-util.h"

/* What a stream handed out, by item, and in which order. */
typedef struct
{
  guint      n_items;
  GVariant **results;
  GError   **errors;
  GArray    *order;
  GError    *error;
} Drained;

static void
drained_free (Drained *drained)
{
  for (guint i = 0; i < drained->n_items; i++)
    {
      g_clear_pointer (&drained->results[i], g_variant_unref);
      g_clear_error (&drained->errors[i]);
    }
  g_free (drained->results);
  g_free (drained->errors);
  g_array_unref (drained->order);
  g_clear_error (&drained->error);
  g_free (drained);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Drained, drained_free)

static Drained *
drained_new (WpoolMapStream *stream)
{
  Drained *drained = g_new0 (Drained, 1);

  drained->n_items = wpool_map_stream_get_n_items (stream);
  drained->results = g_new0 (GVariant *, drained->n_items);
  drained->errors = g_new0 (GError *, drained->n_items);
  drained->order = g_array_new (FALSE, FALSE, sizeof (guint));

  return drained;
}

/* Records one outcome, each item's once only. */
static void
drained_add (Drained  *drained,
             guint     index,
             GVariant *result,
             GError   *item_error)
{
  g_assert_cmpuint (index, <, drained->n_items);
  g_assert_true (drained->results[index] == NULL && drained->errors[index] == NULL);
  g_assert_true ((result == NULL) != (item_error == NULL));

  drained->results[index] = result;
  drained->errors[index] = item_error;
  g_array_append_val (drained->order, index);
}

/* Reads @stream to its end with the blocking next. */
static Drained *
drain (WpoolMapStream *stream)
{
  Drained *drained = drained_new (stream);
  GVariant *result = NULL;
  GError *item_error = NULL;
  guint index;

  while (wpool_map_stream_next (stream, &index, &result, &item_error, &drained->error))
    {
      drained_add (drained, index, result, item_error);
      item_error = NULL;
    }

  g_assert_cmpuint (index, ==, G_MAXUINT);
  g_assert_null (result);

  /* The end stays the end, its error told once. */
  g_assert_false (wpool_map_stream_next (stream, &index, &result, &item_error, NULL));

  return drained;
}

/* Every item had its outcome, and only item @failed failed, with
 * @domain and @code; its message is shown. */
static void
assert_only_failed (Drained *drained,
                    guint    n_items,
                    guint    failed,
                    GQuark   domain,
                    int      code)
{
  g_assert_no_error (drained->error);
  g_assert_cmpuint (drained->order->len, ==, n_items);
  for (guint i = 0; i < n_items; i++)
    {
      if (i == failed)
        {
          g_assert_error (drained->errors[i], domain, code);
          g_test_message ("%s", drained->errors[i]->message);
          continue;
        }
      g_assert_no_error (drained->errors[i]);
      g_assert_nonnull (drained->results[i]);
    }
}

static void
test_ordered (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 4);

  stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (50), WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (wpool_map_stream_get_n_items (stream), ==, 50);
  g_assert_cmpint (wpool_map_stream_get_flags (stream), ==, WPOOL_MAP_FLAGS_NONE);

  drained = drain (stream);
  g_assert_no_error (drained->error);
  g_assert_cmpuint (drained->order->len, ==, 50);
  for (guint i = 0; i < 50; i++)
    {
      g_assert_cmpuint (g_array_index (drained->order, guint, i), ==, i);
      g_assert_cmpfloat (g_variant_get_double (drained->results[i]), ==, (double)i * i);
    }

  /* The map ended with the stream: the workers stopped. */
  g_assert_false (wpool_pool_get_workers_running (pool));
}

/* A slow first item does not hold the others back. */
static void
test_unordered (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  guint32 items[] = { 400, 1, 1, 1, 1, 1, 1, 1 };
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GVariant) unordered = NULL;
  g_autoptr(GError) error = NULL;
  guint32 sum = 0;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 1);

  stream = wpool_pool_imap (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);
  g_assert_no_error (error);
  drained = drain (stream);
  g_assert_no_error (drained->error);
  g_assert_cmpuint (drained->order->len, ==, G_N_ELEMENTS (items));
  g_assert_cmpuint (g_array_index (drained->order, guint, 0), !=, 0);
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    g_assert_cmpuint (g_variant_get_uint32 (drained->results[i]), ==, items[i]);

  unordered = wpool_pool_map_unordered (pool, task,
                                        g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                                        NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (unordered), ==, "au");
  g_assert_cmpuint (g_variant_n_children (unordered), ==, G_N_ELEMENTS (items));
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (unordered, i);

      sum += g_variant_get_uint32 (child);
    }
  g_assert_cmpuint (sum, ==, 407);
  {
    g_autoptr(GVariant) first = g_variant_get_child_value (unordered, 0);

    g_assert_cmpuint (g_variant_get_uint32 (first), ==, 1);
  }
}

/* Without keep-going, the first failure ends the stream after the items
 * before it; with it, every item has its outcome. */
static void
test_errors (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_fail_on_negative");
  const double values[] = { 1, -2, 3, -4, 5, 6, -7, 8 };
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) stopped = NULL;
  g_autoptr(Drained) kept = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 3);

  stream = wpool_pool_imap (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, G_N_ELEMENTS (values), sizeof (double)),
                            WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  stopped = drain (stream);
  g_assert_error (stopped->error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  /* Item 0 only, if its worker took it before the other's failure. */
  g_assert_cmpuint (stopped->order->len, <=, 1);
  if (stopped->order->len == 1)
    g_assert_cmpfloat (g_variant_get_double (stopped->results[0]), ==, 1);
  g_clear_object (&stream);

  stream = wpool_pool_imap (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, G_N_ELEMENTS (values), sizeof (double)),
                            WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  kept = drain (stream);
  g_assert_no_error (kept->error);
  g_assert_cmpuint (kept->order->len, ==, G_N_ELEMENTS (values));
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_assert_cmpuint (g_array_index (kept->order, guint, i), ==, i);
      if (values[i] < 0)
        g_assert_error (kept->errors[i], G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      else
        g_assert_cmpfloat (g_variant_get_double (kept->results[i]), ==, values[i]);
    }
}

/* Under keep-going a worker process that dies fails the item it ran;
 * the rest of its chunk runs on the other worker, and the next map has
 * two workers again. */
static void
test_keep_going_worker_death (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  const char *items[] = { "a", "b", "c", "d", "segv", "f", "g", "h", "i" };
  guint base_children = wpool_test_count_children ();
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 3);

  stream = wpool_pool_imap (pool, task, g_variant_new_strv (items, G_N_ELEMENTS (items)),
                            WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  drained = drain (stream);
  assert_only_failed (drained, G_N_ELEMENTS (items), 4, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  g_assert_true (g_str_has_prefix (drained->errors[4]->message, "Item 4: worker "));
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    if (i != 4)
      g_assert_cmpstr (g_variant_get_string (drained->results[i], NULL), ==, items[i]);

  results = wpool_pool_map (pool, task, g_variant_new_strv (items, 4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("['a', 'b', 'c', 'd']"));
  g_assert_cmpuint (wpool_test_count_children (), ==,
                    base_children + wpool_test_expected_children (method, 2));
}

/* When every worker died, the items left each fail, and the stream still
 * ends. */
static void
test_keep_going_all_died (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  const char *items[] = { "exit", "exit", "c", "d", "e", "f" };
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_chunk_size (pool, 1);

  stream = wpool_pool_imap (pool, task, g_variant_new_strv (items, G_N_ELEMENTS (items)),
                            WPOOL_MAP_FLAGS_KEEP_GOING | WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);
  g_assert_no_error (error);
  drained = drain (stream);
  g_assert_no_error (drained->error);
  g_assert_cmpuint (drained->order->len, ==, G_N_ELEMENTS (items));
  g_assert_error (drained->errors[0], WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  g_assert_error (drained->errors[1], WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  for (guint i = 2; i < G_N_ELEMENTS (items); i++)
    g_assert_true (drained->results[i] != NULL || g_error_matches (drained->errors[i], WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED));
}

/* Under THREADING, waits, for 10 s at most, until this process has
 * @expected threads: a worker thread left in an item ends once the item
 * returns, and must not be counted by the next test. (Process start
 * methods may start GLib's worker thread for good.) */
static void
wait_for_threads (gconstpointer method,
                  guint         expected)
{
  if (GPOINTER_TO_INT (method) != WPOOL_START_METHOD_THREADING)
    return;

  for (guint tries = 0; tries < 1000 && wpool_test_count_threads () != expected; tries++)
    g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (wpool_test_count_threads (), ==, expected);
}

/* Under keep-going an item past the task timeout fails alone; the item
 * after it in its chunk runs on the other worker. */
static void
test_keep_going_timeout (gconstpointer data)
{
  guint base_threads = wpool_test_count_threads ();
  double timeout = wpool_test_under_valgrind () ? 2.0 : 0.3;
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  guint32 items[] = { 5, (guint32)(timeout * 3000), 5, 5, 5, 5, 5 };
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 3);
  wpool_pool_set_task_timeout (pool, timeout);

  stream = wpool_pool_imap (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  drained = drain (stream);
  assert_only_failed (drained, G_N_ELEMENTS (items), 1, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    if (i != 1)
      g_assert_cmpuint (g_variant_get_uint32 (drained->results[i]), ==, items[i]);

  g_clear_object (&stream);
  g_clear_object (&pool);
  wait_for_threads (data, base_threads);
}

typedef struct
{
  Drained  *drained;
  gboolean  done;
  gboolean  answered;
} AsyncRead;

static void
next_done (GObject      *object,
           GAsyncResult *result,
           gpointer      data)
{
  AsyncRead *read = data;
  GVariant *value = NULL;
  GError *item_error = NULL;
  guint index;

  read->answered = TRUE;
  if (wpool_map_stream_next_finish (WPOOL_MAP_STREAM (object), result, &index, &value, &item_error,
                                    &read->drained->error))
    drained_add (read->drained, index, value, item_error);
  else
    read->done = TRUE;
}

/* Outcomes come on the caller's main context, one per next. */
static void
test_async (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_fail_on_negative");
  const double values[] = { 1, 2, -3, 4, 5 };
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GCancellable) wait = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  AsyncRead read = { NULL, FALSE, FALSE };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 1);

  stream = wpool_pool_imap (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, G_N_ELEMENTS (values), sizeof (double)),
                            WPOOL_MAP_FLAGS_KEEP_GOING | WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);
  g_assert_no_error (error);

  read.drained = drained_new (stream);
  while (!read.done)
    {
      read.answered = FALSE;
      wpool_map_stream_next_async (stream, wait, next_done, &read);
      wpool_test_wait_for (&read.answered);
    }

  g_assert_no_error (read.drained->error);
  g_assert_cmpuint (read.drained->order->len, ==, G_N_ELEMENTS (values));
  g_assert_error (read.drained->errors[2], G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpfloat (g_variant_get_double (read.drained->results[4]), ==, 5);
  drained_free (read.drained);
}

/* Dropping a stream in the middle stops its map; the pool goes on. */
static void
test_dropped (gconstpointer data)
{
  guint base_threads = wpool_test_count_threads ();
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint index;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 1);

  stream = wpool_pool_imap (pool, task, wpool_test_repeat_uint32 (200, 5), WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_map_stream_next (stream, &index, &result, NULL, &error));
  g_assert_cmpuint (index, ==, 0);
  g_clear_object (&stream);

  g_assert_false (wpool_pool_get_workers_running (pool));
  g_assert_cmpuint (wpool_pool_get_n_completed (pool), <, 200);

  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (3, 1), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[uint32 1, 1, 1]"));

  /* Worker threads left in their items end with them. */
  g_clear_object (&pool);
  wait_for_threads (data, base_threads);
}

/* Under THREADING, the items that would hang: they wait until the test
 * lets them go, so that their threads end before it does. */
typedef struct
{
  GMutex   mutex;
  GCond    cond;
  gboolean open;
  /* Items that left the gate, counted once its mutex is let go: clearing
   * it waits for this, which ThreadSanitizer sees. */
  gint     n_waiting;
  gint     n_left;
} Gate;

static Gate hang_gate;

/* u → u: G_MAXUINT32 hangs until hang_gate opens; any other sleeps that
 * many milliseconds. */
static GVariant *
sleep_or_hang (WpoolWorker  *worker,
               GVariant     *shared_objects,
               GVariant     *item,
               gpointer      user_data,
               GError      **error)
{
  guint32 ms = g_variant_get_uint32 (item);

  if (ms != G_MAXUINT32)
    {
      g_usleep (ms * G_TIME_SPAN_MILLISECOND);
      return g_variant_ref (item);
    }

  g_atomic_int_inc (&hang_gate.n_waiting);
  g_mutex_lock (&hang_gate.mutex);
  while (!hang_gate.open)
    g_cond_wait (&hang_gate.cond, &hang_gate.mutex);
  g_mutex_unlock (&hang_gate.mutex);
  g_atomic_int_inc (&hang_gate.n_left);

  return g_variant_ref (item);
}

/* Dropping a stream whose items run stops them as a cancellation does and
 * returns at once: worker processes are killed, worker threads left to
 * finish on their own (their results dropped); the pool maps again at
 * once, and under THREADING the threads left end with their items. Items
 * of 5 s, then one that never returns (a process's sleeps for 49 days,
 * a thread's waits for the test). */
static void
test_dropped_running (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = NULL;
  guint base_threads = wpool_test_count_threads ();
  guint base_children = wpool_test_count_children ();
  const guint32 hang = G_MAXUINT32;
  const guint32 items[][3] = { { 1, 5000, 5000 }, { 1, hang, hang } };

  if (method == WPOOL_START_METHOD_THREADING)
    task = wpool_task_new (sleep_or_hang, NULL, NULL);
  else
    task = wpool_test_module_task ("wpool_test_sleep_ms");
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 1);
  g_mutex_init (&hang_gate.mutex);
  g_cond_init (&hang_gate.cond);
  hang_gate.open = FALSE;
  hang_gate.n_waiting = 0;
  hang_gate.n_left = 0;

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      g_autoptr(WpoolMapStream) stream = NULL;
      g_autoptr(GVariant) result = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      gint64 started;
      gint64 elapsed;
      guint index;

      stream = wpool_pool_imap (pool, task,
                                g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items[i], 3, sizeof (guint32)),
                                WPOOL_MAP_FLAGS_NONE, NULL, &error);
      g_assert_no_error (error);
      /* The workers run: one took item 2 after item 0, the other item 1. */
      g_assert_true (wpool_map_stream_next (stream, &index, &result, NULL, &error));
      g_assert_cmpuint (index, ==, 0);
      g_usleep (50 * G_TIME_SPAN_MILLISECOND);

      started = g_get_monotonic_time ();
      g_clear_object (&stream);
      elapsed = g_get_monotonic_time () - started;
      g_test_message ("dropped in %.1f ms (%s items)", elapsed / 1000.0, i == 0 ? "5 s" : "hung");
      /* Generous: the items run 5 s, or forever. */
      g_assert_cmpint (elapsed, <, 2 * G_USEC_PER_SEC);
      g_assert_false (wpool_pool_get_workers_running (pool));
      g_assert_cmpuint (wpool_test_count_children (), ==, base_children);

      results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (3, 1), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_variant (results, g_variant_new_parsed ("[uint32 1, 1, 1]"));
    }

  /* Threads left in their items end with them. */
  g_mutex_lock (&hang_gate.mutex);
  hang_gate.open = TRUE;
  g_cond_broadcast (&hang_gate.cond);
  g_mutex_unlock (&hang_gate.mutex);
  wait_for_threads (data, base_threads);
  while (g_atomic_int_get (&hang_gate.n_left) < g_atomic_int_get (&hang_gate.n_waiting))
    g_usleep (G_TIME_SPAN_MILLISECOND);
  g_mutex_clear (&hang_gate.mutex);
  g_cond_clear (&hang_gate.cond);
}

/* An empty map is a stream that ends at once. */
static void
test_empty (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(Drained) drained = NULL;
  g_autoptr(GVariant) unordered = NULL;
  g_autoptr(GError) error = NULL;

  stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (0), WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);
  g_assert_no_error (error);
  drained = drain (stream);
  g_assert_no_error (drained->error);
  g_assert_cmpuint (drained->order->len, ==, 0);

  unordered = wpool_pool_map_unordered (pool, task, wpool_test_range_doubles (0), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (unordered, g_variant_new_parsed ("@av []"));
}

typedef struct
{
  guint     next;
  guint     n;
  guint     fail_at;
  gboolean  wrong_type_at_end;
  /* Items taken less outcomes read, at most, and whether it was freed. */
  guint     consumed;
  guint     max_ahead;
  gboolean  destroyed;
} Counter;

static GVariant *
counter_next (gpointer   data,
              GError   **error)
{
  Counter *counter = data;

  if (counter->next == counter->fail_at)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "no more input");
      return NULL;
    }

  if (counter->next >= counter->n)
    return counter->wrong_type_at_end && counter->next++ == counter->n ? g_variant_new_string ("oops") : NULL;

  counter->max_ahead = MAX (counter->max_ahead, counter->next + 1 - counter->consumed);
  return g_variant_new_double (counter->next++);
}

static void
counter_destroy (gpointer data)
{
  Counter *counter = data;

  g_assert_false (counter->destroyed);
  counter->destroyed = TRUE;
}

/* A source's items are taken a window at a time, as outcomes are read:
 * never more than two windows ahead of them. */
static void
test_source (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  Counter counter = { .n = 1000, .fail_at = G_MAXUINT };
  GVariant *result;
  guint index;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 10);
  wpool_pool_set_max_tasks_active (pool, 4);
  g_assert_cmpuint (wpool_pool_get_max_tasks_active (pool), ==, 4);

  stream = wpool_pool_imap_source (pool, task, counter_next, &counter, counter_destroy, 0,
                                   WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, &index, &result, NULL, &error))
    {
      g_assert_cmpuint (index, ==, counter.consumed);
      g_assert_cmpfloat (g_variant_get_double (result), ==, (double)index * index);
      g_variant_unref (result);
      counter.consumed++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (counter.consumed, ==, 1000);
  g_assert_cmpuint (wpool_map_stream_get_n_items (stream), ==, 1000);
  /* Windows of 2 chunks of 10: one read from, one ahead. */
  g_assert_cmpuint (counter.max_ahead, <=, 40);
  g_assert_true (counter.destroyed);
  g_assert_false (wpool_pool_get_workers_running (pool));
}

/* Read with next_async(), a source's stream hands out every outcome in
 * order: a next that ends a window waits on for the next one's outcomes
 * (it failed with "taken by another next" when the window just pulled
 * had nothing ready), and none is lost. */
typedef struct
{
  GArray   *results;
  GError   *error;
  gboolean  answered;
  gboolean  done;
} SourceRead;

static void
source_next_done (GObject      *object,
                  GAsyncResult *result,
                  gpointer      data)
{
  SourceRead *read = data;
  g_autoptr(GVariant) value = NULL;
  guint index;

  read->answered = TRUE;
  if (!wpool_map_stream_next_finish (WPOOL_MAP_STREAM (object), result, &index, &value, NULL, &read->error))
    {
      read->done = TRUE;
      return;
    }
  g_assert_cmpuint (index, ==, read->results->len);
  g_array_append_val (read->results, (double) { g_variant_get_double (value) });
}

static void
test_source_async (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GArray) results = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GError) error = NULL;
  Counter counter = { .n = 300, .fail_at = G_MAXUINT };
  SourceRead read = { results, NULL, FALSE, FALSE };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_max_tasks_active (pool, 2);

  stream = wpool_pool_imap_source (pool, task, counter_next, &counter, NULL, 0, WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  while (!read.done)
    {
      read.answered = FALSE;
      wpool_map_stream_next_async (stream, NULL, source_next_done, &read);
      wpool_test_wait_for (&read.answered);
    }

  g_assert_no_error (read.error);
  g_assert_cmpuint (results->len, ==, 300);
  for (guint i = 0; i < 300; i++)
    g_assert_cmpfloat (g_array_index (results, double, i), ==, (double)i * i);
}

/* A source that fails, or changes its items' type, ends the stream with
 * a clear error, after the outcomes of the items before. */
static void
test_source_errors (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  Counter failing = { .n = 100, .fail_at = 45 };
  Counter mixed = { .n = 30, .fail_at = G_MAXUINT, .wrong_type_at_end = TRUE };
  Counter empty = { .n = 0, .fail_at = G_MAXUINT };
  g_autoptr(GError) error = NULL;
  WpoolMapStream *stream;
  guint n = 0;

  wpool_pool_set_chunk_size (pool, 5);
  wpool_pool_set_max_tasks_active (pool, 2);

  stream = wpool_pool_imap_source (pool, task, counter_next, &failing, NULL, 100,
                                   WPOOL_MAP_FLAGS_UNORDERED | WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, NULL, NULL, NULL, &error))
    n++;
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_true (g_str_has_prefix (error->message, "The item source failed: "));
  g_assert_cmpuint (n, <=, 45);
  g_clear_error (&error);
  g_clear_object (&stream);

  stream = wpool_pool_imap_source (pool, task, counter_next, &mixed, NULL, 0, WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  n = 0;
  while (wpool_map_stream_next (stream, NULL, NULL, NULL, &error))
    n++;
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "Item 30 from the source is of type “s”, not “d”"));
  g_clear_error (&error);
  g_clear_object (&stream);

  stream = wpool_pool_imap_source (pool, task, counter_next, &empty, NULL, 0, WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (wpool_map_stream_next (stream, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&stream);

  /* Dropped early, with windows in flight: the pool goes on. */
  failing = (Counter) { .n = 1000, .fail_at = G_MAXUINT };
  stream = wpool_pool_imap_source (pool, task, counter_next, &failing, counter_destroy, 0, WPOOL_MAP_FLAGS_NONE, NULL, &error);
  g_assert_true (wpool_map_stream_next (stream, NULL, NULL, NULL, &error));
  g_clear_object (&stream);
  g_assert_true (failing.destroyed);
  g_assert_false (wpool_pool_get_workers_running (pool));
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "imap/ordered", test_ordered, FALSE },
    { "imap/unordered", test_unordered, FALSE },
    { "imap/errors", test_errors, FALSE },
    { "imap/keep-going/worker-death", test_keep_going_worker_death, TRUE },
    { "imap/keep-going/all-died", test_keep_going_all_died, TRUE },
    { "imap/keep-going/timeout", test_keep_going_timeout, FALSE },
    { "imap/async", test_async, FALSE },
    { "imap/dropped", test_dropped, FALSE },
    { "imap/dropped/running", test_dropped_running, FALSE },
    { "imap/empty", test_empty, FALSE },
    { "imap/source", test_source, FALSE },
    { "imap/source/errors", test_source_errors, FALSE },
    { "imap/source/async", test_source_async, FALSE },
  };

  g_test_init (&argc, &argv, NULL);

  /* Workers orphaned by their fork server come to this process. */
  prctl (PR_SET_CHILD_SUBREAPER, 1);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  return g_test_run ();
}
