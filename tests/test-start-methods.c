/* test-start-methods.c: the semantics every start method must keep, run
 * once per start method, measured where they differ: which process runs
 * the task, where it finds the shared objects, what memory they cost, and
 * what survives a worker's death.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wpool-test-util.h"

static WpoolPool *
new_pool (gconstpointer data,
          guint         n_jobs)
{
  return wpool_pool_new (n_jobs, GPOINTER_TO_INT (data));
}

static void
test_results (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) typed = NULL;
  g_autoptr(GVariant) boxed = NULL;
  g_autoptr(GVariant) strings = NULL;
  g_autoptr(GError) error = NULL;
  gsize n;
  const double *values;

  boxed = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (boxed), ==, "av");
  g_assert_cmpuint (g_variant_n_children (boxed), ==, 1000);

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 7);
  typed = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, &error);
  g_assert_no_error (error);
  values = g_variant_get_fixed_array (typed, &n, sizeof (double));
  g_assert_cmpuint (n, ==, 1000);
  for (guint i = 0; i < n; i++)
    g_assert_cmpfloat (values[i], ==, (double)i * i);

  /* Variable-sized items and results cross too. */
  {
    g_autoptr(WpoolTask) echo = wpool_test_module_task ("wpool_test_die");

    wpool_task_set_result_type (echo, G_VARIANT_TYPE_STRING);
    strings = wpool_pool_map (pool, echo, g_variant_new_parsed ("['a', 'bb', '', 'ccc']"), NULL, &error);
    g_assert_no_error (error);
    wpool_test_assert_variant (strings, g_variant_new_parsed ("['a', 'bb', '', 'ccc']"));
  }
}

/* MPIRE's semantics, measured: which process runs each task, and where
 * it finds the shared objects' data. THREADING: this process, the
 * caller's buffer. FORK: other processes, each at the caller's address
 * (copy-on-write). SPAWN: other processes, each at one address of its
 * own for all its tasks (copied once per worker, not per task).
 * FORKSERVER: other processes, all at the server's one copy. */
static void
test_shared_objects_where (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GVariant) dataset = g_variant_ref_sink (wpool_test_range_doubles (1 << 16));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint64 caller_address = (guint64)(gsize)g_variant_get_data (dataset);
  guint64 server_address = 0;
  GVariantIter iter;
  guint32 id;
  guint32 pid;
  guint64 address;

  /* Several objects as one tuple, built around the dataset: its members
   * must reach the workers as they are, not serialized into a copy. */
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new ("(@ads)", dataset, "label"), NULL));
  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uut)"));
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (200), NULL, &error);
  g_assert_no_error (error);

  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uut)", &id, &pid, &address))
    {
      gpointer seen;

      g_assert_cmpuint (id, <, 2);

      if (WPOOL_TEST_IS_PROCESS (method))
        g_assert_cmpuint (pid, !=, getpid ());
      else
        g_assert_cmpuint (pid, ==, getpid ());

      if (method == WPOOL_START_METHOD_SPAWN)
        {
          /* Its own copy, made once: one address for all its tasks. */
          g_assert_cmpuint (address, !=, caller_address);
          if (g_hash_table_lookup_extended (pids, GUINT_TO_POINTER (pid), NULL, &seen))
            g_assert_cmpuint ((gsize)seen, ==, (gsize)address);
        }
      else if (method == WPOOL_START_METHOD_FORKSERVER)
        {
          /* The server's one copy, shared by every worker. */
          g_assert_cmpuint (address, !=, caller_address);
          if (server_address == 0)
            server_address = address;
          g_assert_cmpuint (address, ==, server_address);
        }
      else
        {
          g_assert_cmpuint (address, ==, caller_address);
        }

      g_hash_table_insert (pids, GUINT_TO_POINTER (pid), GSIZE_TO_POINTER ((gsize)address));
    }

  g_assert_cmpuint (g_hash_table_size (pids), <=, 2);
  g_test_message ("%u process(es) ran the 200 tasks", g_hash_table_size (pids));
}

static void
test_shared_objects_tuple (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_scaled");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new ("(dd)", 10.0, 0.5), NULL));
  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[0.5, 10.5, 20.5, 30.5]"));
}

static void
test_errors (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) failing = wpool_test_module_task ("wpool_test_fail_on_negative");
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  double values[] = { 1, 2, 3, -4, 5, 6 };

  wpool_pool_set_keep_alive (pool, TRUE);

  /* A task's own error keeps its domain and code, names item and worker. */
  wpool_test_assert_map_fails (pool, failing,
                               g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 6, sizeof (double)),
                               NULL, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Item 3 on worker ");

  /* A result of another type than declared. */
  wpool_task_set_result_type (square, G_VARIANT_TYPE_INT32);
  wpool_test_assert_map_fails (pool, square, wpool_test_range_doubles (3), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT, "but declares “i”");

  /* The pool, and its workers, stay usable. */
  wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
  results = wpool_pool_map (pool, square, wpool_test_range_doubles (3), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[0.0, 1.0, 4.0]"));
}

static void
test_cancel (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) sleeper = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  GThread *canceller;

  wpool_pool_set_chunk_size (pool, 1);
  canceller = wpool_test_cancel_later (cancellable, 50);
  /* 2 000 items of 10 ms on 2 workers: 10 s uncancelled. */
  wpool_test_assert_map_fails (pool, sleeper, wpool_test_repeat_uint32 (2000, 10), cancellable,
                               G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
  g_thread_join (canceller);
  /* A generous bound: only proves it did not run to the end. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);

  results = wpool_pool_map (pool, square, wpool_test_range_doubles (5), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 5);
}

/* keep-alive keeps the very workers, and their shared objects, which can
 * then not change; without it nothing is left after a map. */
static void
test_keep_alive (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uut)"));
  wpool_pool_set_chunk_size (pool, 1);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("kept"), NULL));

  first = wpool_pool_map (pool, task, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);
  g_assert_false (wpool_pool_get_workers_running (pool));
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
  g_clear_pointer (&first, g_variant_unref);

  wpool_pool_set_keep_alive (pool, TRUE);
  first = wpool_pool_map (pool, task, wpool_test_range_doubles (64), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children + wpool_test_expected_children (method, 2));

  g_assert_false (wpool_pool_set_shared_objects (pool, g_variant_new_string ("changed"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_clear_error (&error);

  second = wpool_pool_map (pool, task, wpool_test_range_doubles (64), NULL, &error);
  g_assert_no_error (error);

  /* The same worker, the same process, for every worker id. */
  for (guint i = 0; i < 64; i++)
    {
      guint32 id1, pid1, id2, pid2;
      guint64 address1, address2;

      g_variant_get_child (first, i, "(uut)", &id1, &pid1, &address1);
      for (guint j = 0; j < 64; j++)
        {
          g_variant_get_child (second, j, "(uut)", &id2, &pid2, &address2);
          if (id1 == id2)
            {
              g_assert_cmpuint (pid1, ==, pid2);
              g_assert_cmpuint (address1, ==, address2);
            }
        }
    }

  wpool_pool_set_keep_alive (pool, FALSE);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
}

/* A worker that dies fails the map with which item, which worker and how;
 * it is replaced and the next map works. */
static void
test_worker_death (gconstpointer data)
{
  const struct { const char *how; const char *says; } deaths[] = {
    { "segv", "killed by signal 11" },
    { "abort", "killed by signal 6" },
    { "exit", "exited with status 3" },
    { "close", "it closed its socket without exiting, and was killed" },
  };
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  guint base_children = wpool_test_count_children ();

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);

  for (guint d = 0; d < G_N_ELEMENTS (deaths); d++)
    {
      const char *items[] = { "a", "b", "c", deaths[d].how, "e", "f" };
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      results = wpool_pool_map (pool, task, g_variant_new_strv (items, 6), NULL, &error);
      g_assert_null (results);
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
      g_test_message ("%s: %s", deaths[d].how, error->message);
      g_assert_true (g_str_has_prefix (error->message, "Item 3: worker "));
      if (wpool_test_under_valgrind () && g_str_equal (deaths[d].how, "exit"))
        g_assert_nonnull (strstr (error->message, "exited with status"));
      else
        g_assert_nonnull (strstr (error->message, deaths[d].says));
      g_clear_error (&error);

      /* Replaced: two live workers, and the next map works on both. */
      results = wpool_pool_map (pool, task, g_variant_new_strv (items, 3), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_variant (results, g_variant_new_parsed ("['a', 'b', 'c']"));
      g_assert_cmpuint (wpool_test_count_children (), ==,
                        base_children + wpool_test_expected_children (GPOINTER_TO_INT (data), 2));
    }
}

/* A worker process killed in the middle of an item is noticed through
 * its socket, not by polling: its map fails soon after (the bench measures
 * how soon; here a generous bound), naming the signal. */
static void
test_death_detection (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 1);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(WpoolSharedArray) pids = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 1, FALSE, NULL);
  gint64 bound = (wpool_test_under_valgrind () ? 10 : 2) * G_USEC_PER_SEC;
  WpoolTestOutcome outcome = { 0, };
  gint64 pid = 0;
  gint64 killed;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (pids), NULL));
  wpool_pool_map_async (pool, task, g_variant_new_parsed ("[uint32 60000]"), NULL, wpool_test_map_done, &outcome);
  while (pid == 0)
    {
      g_usleep (G_TIME_SPAN_MILLISECOND);
      pid = wpool_shared_array_get_int64 (pids, 0, NULL);
    }

  killed = g_get_monotonic_time ();
  g_assert_no_errno (kill ((pid_t)pid, SIGKILL));
  wpool_test_wait_for (&outcome.done);
  g_test_message ("noticed %.1f ms after the kill", (g_get_monotonic_time () - killed) / 1000.0);
  g_assert_cmpint (g_get_monotonic_time () - killed, <, bound);
  g_assert_error (outcome.error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  g_assert_nonnull (strstr (outcome.error->message, "killed by signal 9"));
  wpool_test_outcome_clear (&outcome);
}

/* An item past the task timeout fails its map, naming it, without the
 * map waiting for it; the worker is replaced and the next map works. A
 * worker thread cannot be killed: it finishes the item on its own, and
 * goes away then, even once the pool is gone. */
static void
test_task_timeout (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  double timeout = wpool_test_under_valgrind () ? 2.0 : 0.4;
  guint32 hang_ms = (guint32)(timeout * 4000);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  guint base_children = wpool_test_count_children ();
  guint base_threads = wpool_test_count_threads ();
  guint32 items[] = { 10, 10, hang_ms, 10, 10, 10 };
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  gint64 started;
  gint64 elapsed;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_task_timeout (pool, timeout);
  g_assert_cmpfloat (wpool_pool_get_task_timeout (pool), ==, timeout);

  started = g_get_monotonic_time ();
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            NULL, &error);
  elapsed = g_get_monotonic_time () - started;
  g_assert_null (results);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_test_message ("%s (after %.3f s)", error->message, elapsed / (double)G_USEC_PER_SEC);
  g_assert_true (g_str_has_prefix (error->message, "Item 2: worker "));
  g_assert_nonnull (strstr (error->message, "task timeout"));
  /* Not waited for: a bound far from both the timeout and the item. */
  g_assert_cmpint (elapsed, <, hang_ms * G_TIME_SPAN_MILLISECOND * 3 / 4);
  g_clear_error (&error);

  /* Items within the timeout run as before, on two workers again. */
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, 2, sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[uint32 10, 10]"));
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children + wpool_test_expected_children (method, 2));

  /* Disposing does not wait for a thread still in the item either. */
  started = g_get_monotonic_time ();
  g_clear_object (&pool);
  g_assert_cmpint (g_get_monotonic_time () - started, <, hang_ms * G_TIME_SPAN_MILLISECOND / 2);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);

  /* The abandoned thread ends with its item. (GSubprocess starts GLib's
   * worker thread for good: only threads are counted.) */
  if (method != WPOOL_START_METHOD_THREADING)
    return;
  for (guint tries = 0; tries < 100 && wpool_test_count_threads () != base_threads; tries++)
    g_usleep (hang_ms * G_TIME_SPAN_MILLISECOND / 20);
  g_assert_cmpuint (wpool_test_count_threads (), ==, base_threads);
}

/* Insights count every item on the worker that ran it, find the slowest,
 * and the pool's ETA ends at 0. */
static void
test_insights (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  const guint32 items[] = { 5, 5, 60, 5, 5, 5 };
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) insights = NULL;
  g_autoptr(GVariant) workers = NULL;
  g_autoptr(GVariant) slowest = NULL;
  g_autoptr(GVariantDict) dict = NULL;
  g_autofree char *summary = NULL;
  g_autoptr(GError) error = NULL;
  guint64 n_completed = 0;
  guint64 sum = 0;
  guint32 n_maps = 0;
  guint32 map;
  guint32 item;
  double duration;
  double working = 0;
  double per_item = 0;
  double overhead = -1;
  gint64 started;
  GVariantIter iter;
  GVariant *worker;

  wpool_pool_set_chunk_size (pool, 1);
  g_assert_cmpfloat (wpool_pool_get_eta (pool), ==, -1);

  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (2, 1), NULL, &error);
  g_assert_no_error (error);
  g_assert_null (wpool_pool_get_insights (pool));
  g_assert_null (wpool_pool_get_insights_summary (pool));
  g_assert_cmpfloat (wpool_pool_get_eta (pool), ==, 0);
  g_clear_pointer (&results, g_variant_unref);

  wpool_pool_set_enable_insights (pool, TRUE);
  g_assert_true (wpool_pool_get_enable_insights (pool));
  started = g_get_monotonic_time ();
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);

  insights = wpool_pool_get_insights (pool);
  g_assert_nonnull (insights);
  dict = g_variant_dict_new (insights);
  g_assert_true (g_variant_dict_lookup (dict, "n-maps", "u", &n_maps));
  g_assert_cmpuint (n_maps, ==, 1);
  g_assert_true (g_variant_dict_lookup (dict, "n-completed", "t", &n_completed));
  g_assert_cmpuint (n_completed, ==, G_N_ELEMENTS (items));
  g_assert_true (g_variant_dict_lookup (dict, "working-time", "d", &working));
  g_assert_cmpfloat (working, >=, 0.08);
  g_assert_true (g_variant_dict_lookup (dict, "working-time-per-item", "d", &per_item));
  g_assert_cmpfloat_with_epsilon (per_item, working / G_N_ELEMENTS (items), 1e-9);
  g_assert_true (g_variant_dict_lookup (dict, "overhead-per-item", "d", &overhead));
  g_assert_cmpfloat (overhead, >=, 0);
  /* Two workers had at most the map's time each. */
  g_assert_cmpfloat ((per_item + overhead) * G_N_ELEMENTS (items), <=, 2 * (g_get_monotonic_time () - started) / 1e6);

  workers = g_variant_dict_lookup_value (dict, "workers", G_VARIANT_TYPE ("aa{sv}"));
  g_assert_cmpuint (g_variant_n_children (workers), ==, 2);
  g_variant_iter_init (&iter, workers);
  while ((worker = g_variant_iter_next_value (&iter)))
    {
      guint64 n = 0;

      g_variant_lookup (worker, "n-completed", "t", &n);
      sum += n;
      g_variant_unref (worker);
    }
  g_assert_cmpuint (sum, ==, G_N_ELEMENTS (items));

  slowest = g_variant_dict_lookup_value (dict, "slowest-items", G_VARIANT_TYPE ("a(uud)"));
  g_assert_cmpuint (g_variant_n_children (slowest), ==, 5);
  g_variant_get_child (slowest, 0, "(uud)", &map, &item, &duration);
  g_assert_cmpuint (map, ==, 0);
  g_assert_cmpuint (item, ==, 2);
  g_assert_cmpfloat (duration, >=, 0.055);

  summary = wpool_pool_get_insights_summary (pool);
  g_test_message ("%s", summary);
  g_assert_true (g_str_has_prefix (summary, "Insights: 1 map, 6 items\n"));
  g_assert_nonnull (strstr (summary, "µs overhead\n"));
  g_assert_cmpfloat (wpool_pool_get_eta (pool), ==, 0);
}

/* Big chunks of a chunk task cross to worker processes through a shared
 * transfer area rather than the socket: results as through the socket,
 * when chunks grow, when a chunk fails or its worker dies (the new worker
 * gets the area anew), and nothing left once the pool is gone. */
static void
test_chunk_task_transfer (gconstpointer data)
{
  guint base_fds = wpool_test_count_fds ();
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_task_new_for_chunk_symbol (wpool_test_module_path (),
                                                               "wpool_test_square_plus_one_chunk",
                                                               G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE, NULL);
  guint n = 200000;
  g_autofree double *values = g_new (double, n);
  g_autofree double *out = g_new0 (double, n);
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  GError *item_error = NULL;
  GVariant *result = NULL;
  guint index;
  guint n_failed = 0;

  wpool_pool_set_keep_alive (pool, TRUE);
  for (guint i = 0; i < n; i++)
    values[i] = i;

  /* 20 000 doubles a chunk: 160 KB, above WPOOL_TRANSFER_MIN_SIZE; then
   * 60 000, which grows the areas. */
  for (guint chunk_size = 20000; chunk_size <= 60000; chunk_size += 40000)
    {
      g_autoptr(GVariant) results = NULL;
      const double *computed;
      gsize n_results;

      wpool_pool_set_chunk_size (pool, chunk_size);
      results = wpool_pool_map (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)),
                                NULL, &error);
      g_assert_no_error (error);
      computed = g_variant_get_fixed_array (results, &n_results, sizeof (double));
      g_assert_cmpuint (n_results, ==, n);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (computed[i], ==, (double)i * i + 1);

      g_assert_true (wpool_pool_map_chunks (pool, task, values, n, out, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (out, n * sizeof (double), computed, n * sizeof (double));
    }
  g_assert_cmpuint (wpool_test_count_mappings ("wpool-transfer"), ==, 2);

  /* A failed chunk under keep-going: its items fail, the others' results
   * come from the area. */
  values[70000] = -1;
  stream = wpool_pool_imap (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)),
                            WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      if (item_error != NULL)
        {
          g_assert_error (item_error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
          g_assert_cmpuint (index / 60000, ==, 1);
          g_clear_error (&item_error);
          n_failed++;
        }
      else
        {
          g_assert_cmpfloat (g_variant_get_double (result), ==, values[index] * values[index] + 1);
        }
      g_clear_pointer (&result, g_variant_unref);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n_failed, ==, 60000);
  g_clear_object (&stream);

  /* A worker dying in the middle of a chunk fails the map; the worker
   * that replaces it is given the area again. */
  values[70000] = -2;
  wpool_test_assert_map_fails (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)),
                               NULL, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                               /* valgrind's forked children exit with their own status */
                               wpool_test_under_valgrind () ? "exited with status" : "exited with status 3");
  values[70000] = 70000;
  g_assert_true (wpool_pool_map_chunks (pool, task, values, n, out, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    g_assert_cmpfloat (out[i], ==, (double)i * i + 1);

  g_clear_object (&pool);
  g_assert_cmpuint (wpool_test_count_mappings ("wpool-transfer"), ==, 0);
  wpool_test_assert_fds (base_fds);
}

/* A chunk task in this program, which a new process cannot find. */
static gboolean
not_exported_chunk (WpoolWorker   *worker,
                    GVariant      *shared_objects,
                    gconstpointer  items,
                    gsize          n_items,
                    gpointer       results,
                    gpointer       user_data,
                    GError       **error)
{
  return TRUE;
}

/* A chunk task runs whole chunks from the items' buffer into the
 * results', on the start methods that can run it. */
static void
test_chunk_task (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_task_new_for_chunk_symbol (wpool_test_module_path (),
                                                               "wpool_test_square_plus_one_chunk",
                                                               G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE, NULL);
  g_autoptr(WpoolTask) unfindable = wpool_task_new_for_chunks (G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE,
                                                               not_exported_chunk, NULL, NULL);
  g_autofree double *values = g_new (double, 10000);
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  const double *computed;
  GError *item_error = NULL;
  GVariant *result = NULL;
  guint index;
  guint n_failed = 0;
  gsize n;

  g_assert_true (g_variant_type_equal (wpool_task_get_item_type (task), G_VARIANT_TYPE_DOUBLE));
  wpool_pool_set_chunk_size (pool, 100);
  for (guint i = 0; i < 10000; i++)
    values[i] = i;

  /* New programs find chunk tasks by symbol only. */
  if (method == WPOOL_START_METHOD_SPAWN || method == WPOOL_START_METHOD_FORKSERVER)
    wpool_test_assert_map_fails (pool, unfindable, wpool_test_range_doubles (4), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, "cannot find the task's function");

  results = wpool_pool_map (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 10000, sizeof (double)),
                            NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (results), ==, "ad");
  computed = g_variant_get_fixed_array (results, &n, sizeof (double));
  g_assert_cmpuint (n, ==, 10000);
  for (guint i = 0; i < 10000; i++)
    g_assert_cmpfloat (computed[i], ==, (double)i * i + 1);

  /* Plain arrays in and out, as an OpenMP loop. */
  {
    g_autofree double *out = g_new0 (double, 10000);

    g_assert_true (wpool_pool_map_chunks (pool, task, values, 10000, out, NULL, &error));
    g_assert_no_error (error);
    for (guint i = 0; i < 10000; i++)
      g_assert_cmpfloat (out[i], ==, (double)i * i + 1);
    g_assert_true (wpool_pool_map_chunks (pool, task, NULL, 0, NULL, NULL, &error));
    g_assert_no_error (error);
  }

  /* A failed chunk: the map fails naming it; under keep-going its items
   * fail, and only they. */
  values[150] = -1;
  wpool_test_assert_map_fails (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 10000, sizeof (double)),
                               NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Items 100 to 199 on worker ");
  stream = wpool_pool_imap (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 1000, sizeof (double)),
                            WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      if (index >= 100 && index < 200)
        {
          g_assert_error (item_error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
          g_clear_error (&item_error);
          n_failed++;
        }
      else
        {
          g_assert_no_error (item_error);
          g_assert_cmpfloat (g_variant_get_double (result), ==, values[index] * values[index] + 1);
        }
      g_clear_pointer (&result, g_variant_unref);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n_failed, ==, 100);

  g_assert_false (wpool_pool_map_chunks (pool, task, values, 10000, (double[10000]) { 0 }, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* Items of another type than the task's are refused, and map_chunks()
   * runs chunk tasks only. */
  wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("[1, 2]"), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "takes items of type “d”, not “i”");
  {
    g_autoptr(WpoolTask) item_task = wpool_test_module_task ("wpool_test_square");

    g_assert_false (wpool_pool_map_chunks (pool, item_task, values, 1, values, NULL, &error));
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }

  g_assert_null (wpool_task_new_for_chunk_symbol (wpool_test_module_path (), "wpool_test_square_plus_one_chunk",
                                                  G_VARIANT_TYPE_STRING, G_VARIANT_TYPE_DOUBLE, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
}

/* Whether @pid ended: reaped, as a subreaper gets orphans, or gone. */
static gboolean
process_gone (GPid pid)
{
  return waitpid (pid, NULL, WNOHANG) == pid || (kill (pid, 0) < 0 && errno == ESRCH);
}

/* Workers die with the process of their pool, even one killed outright:
 * no orphan keeps running. */
static void
test_no_orphans (gconstpointer data)
{
  g_autoptr(GEnumClass) methods = g_type_class_ref (WPOOL_TYPE_START_METHOD);
  const char *nick = g_enum_get_value (methods, GPOINTER_TO_INT (data))->value_nick;
  g_autofree char *program = g_test_build_filename (G_TEST_BUILT, "wpool-orphans", NULL);
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer pid;
  char *line;

  subprocess = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, program, nick, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (subprocess));
  while ((line = g_data_input_stream_read_line (out, NULL, NULL, &error)) && !g_str_equal (line, "ready"))
    {
      g_hash_table_add (pids, GUINT_TO_POINTER (atoi (line)));
      g_free (line);
    }
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_free (line);
  g_assert_cmpuint (g_hash_table_size (pids), >=, 1);

  g_subprocess_force_exit (subprocess);
  g_assert_true (g_subprocess_wait (subprocess, NULL, NULL));

  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    {
      for (guint tries = 0; tries < 300 && !process_gone (GPOINTER_TO_INT (pid)); tries++)
        g_usleep (10 * G_TIME_SPAN_MILLISECOND);
      g_assert_true (process_gone (GPOINTER_TO_INT (pid)));
    }
}

/* Whether the heap's figures say anything: valgrind's and ASan's own
 * allocators keep what the program frees, and do not report it. */
static gboolean
heap_is_measured (void)
{
#ifdef __SANITIZE_ADDRESS__
  return FALSE;
#else
  return !wpool_test_under_valgrind ();
#endif
}

/* The bytes this process has allocated and not freed, in KiB: unlike the
 * resident memory, it does not depend on when malloc gives memory back. */
static guint64
heap_in_use_kib (void)
{
  struct mallinfo2 info = mallinfo2 ();

  return (info.uordblks + info.hblkhd) / 1024;
}

/* Maps of 20 items cancelled in the middle, @n times. */
static void
soak_cancel (WpoolPool *pool,
             WpoolTask *sleep,
             guint      n)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GThread) canceller = wpool_test_cancel_later (cancellable, 2);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;

      wpool_pool_set_chunk_size (pool, 1);
      results = wpool_pool_map (pool, sleep, wpool_test_repeat_uint32 (20, 1), cancellable, &error);
      g_thread_join (g_steal_pointer (&canceller));
      g_assert_true (results != NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
      wpool_pool_set_chunk_size (pool, 0);
    }
}

/* Two maps of @n items, then a small one, which replaces the workers a
 * cancellation killed. */
static void
soak_big_maps (WpoolPool *pool,
               WpoolTask *task,
               guint      n)
{
  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GVariant) results = wpool_pool_map (pool, task, wpool_test_range_doubles (round < 2 ? n : 100),
                                                    NULL, NULL);

      g_assert_cmpuint (g_variant_n_children (results), ==, round < 2 ? n : 100);
    }
}

/* A thousand maps on a kept-alive pool, a hundred cancelled in the
 * middle, and two of a million items leave the heap, fds, threads and
 * children as they were. */
static void
test_soak (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) sleep = wpool_test_module_task ("wpool_test_sleep_ms");
  guint n_maps = wpool_test_under_valgrind () ? 100 : 1000;
  guint n_cancels = wpool_test_under_valgrind () ? 10 : 100;
  guint n_big = wpool_test_under_valgrind () ? 100000 : 1000000;
  guint base_fds;
  guint base_threads;
  guint base_children;
  guint64 base_heap;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_keep_alive (pool, TRUE);

  /* Warm: workers started, GLib's caches filled, a few cancellations
   * and a big map seen. */
  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(GVariant) results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, NULL);
      g_assert_nonnull (results);
    }
  soak_cancel (pool, sleep, 10);
  soak_big_maps (pool, task, n_big);

  base_fds = wpool_test_count_fds ();
  base_threads = wpool_test_count_threads ();
  base_children = wpool_test_count_children ();
  base_heap = heap_in_use_kib ();

  for (guint i = 0; i < n_maps; i++)
    {
      g_autoptr(GVariant) results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, NULL);
      g_assert_nonnull (results);
    }

  soak_cancel (pool, sleep, n_cancels);
  soak_big_maps (pool, task, n_big);

  g_test_message ("heap in use %" G_GUINT64_FORMAT " → %" G_GUINT64_FORMAT " KiB", base_heap, heap_in_use_kib ());
  wpool_test_assert_fds (base_fds);
  wpool_test_assert_threads (base_threads);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
  if (heap_is_measured ())
    g_assert_cmpuint (heap_in_use_kib (), <, base_heap + 256);
}

typedef struct
{
  GCancellable *cancellable;
  gulong        us;
} CancelAfter;

static gpointer
cancel_after (gpointer data)
{
  CancelAfter *after = data;

  g_usleep (after->us);
  g_cancellable_cancel (after->cancellable);

  return NULL;
}

/* The pids of the workers that ran @task's items in a map of @n_items. */
static void
add_worker_pids (WpoolPool  *pool,
                 WpoolTask  *task,
                 guint       n_items,
                 GHashTable *pids)
{
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  guint32 pid;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (n_items), NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uut)", NULL, &pid, NULL))
    g_hash_table_add (pids, GUINT_TO_POINTER (pid));
}

/* A worker is sent its next chunk before it answers the one it runs.
 * When that one fails the map, the chunk ahead is still answered, and
 * its answers are not taken for those of the next map on the same
 * worker, which lives on. Whether the worker dies in the chunk ahead or
 * in the one before, only that chunk's item fails under keep-going. */
static void
test_chunk_ahead (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 1);
  g_autoptr(WpoolTask) failing = wpool_test_module_task ("wpool_test_fail_on_negative");
  g_autoptr(WpoolTask) dying = wpool_test_module_task ("wpool_test_die");
  double values[] = { 1, -2, 3, 4, 5, 6 };

  wpool_task_set_result_type (failing, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);

  for (guint round = 0; round < 20; round++)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      /* Item 1 fails as item 2 waits in the worker. */
      wpool_test_assert_map_fails (pool, failing,
                                   g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 6, sizeof (double)),
                                   NULL, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Item 1 on worker ");
      results = wpool_pool_map (pool, failing, wpool_test_range_doubles (5), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_variant (results, g_variant_new_parsed ("[0.0, 1.0, 2.0, 3.0, 4.0]"));
    }

  /* A death in a chunk, the next one sent ahead: only its item fails,
   * the chunk ahead runs on the replacement. */
  for (guint dead = 0; dead < 4; dead++)
    {
      const char *items[] = { "a", "b", "c", "d" };
      GError *errors[G_N_ELEMENTS (items)] = { NULL, };
      g_autoptr(GPtrArray) results = NULL;

      items[dead] = "exit";
      results = wpool_test_keep_going_map (pool, dying, items, G_N_ELEMENTS (items), 0, errors);
      wpool_test_assert_keep_going (results, errors, items, G_N_ELEMENTS (items), 1 << dead);
    }
}

/* The workers of a kept-alive pool wait for its next map however long it
 * takes. A FORK template and its workers once inherited the watch of the
 * worker start that forked them: they ended when idle for longer than the
 * worker-start-timeout, or 100 ms after that start's map was cancelled,
 * so that a worker dying in a later map could not be restarted ("its
 * FORK template died": /fork/task-switch/cancelled under valgrind). */
static void
test_idle_beyond_start_timeout (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  gdouble timeout = wpool_test_under_valgrind () ? 2 : 0.3;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uut)"));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_worker_start_timeout (pool, timeout);

  add_worker_pids (pool, task, 64, pids);
  g_usleep ((gulong)(timeout * 2.5 * G_USEC_PER_SEC));
  add_worker_pids (pool, task, 64, pids);

  /* The same two processes ran both maps. */
  g_assert_cmpuint (g_hash_table_size (pids), <=, 2);
}

/* A kept-alive pool switching tasks restarts its workers; a map cancelled
 * as they restart leaves some still on the old task. The next map of the
 * new task restarts those too: none runs the old task on the new task's
 * items (before, about one round in 25 under FORK: a square worker given
 * uint32 items failed a GLib assertion and died). The cancellation comes
 * 0 to 900 µs into the map, to land in the restart on any machine. */
static void
test_task_switch_cancelled (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) sleep = wpool_test_module_task ("wpool_test_sleep_ms");
  guint n_rounds = wpool_test_under_valgrind () ? 3 : 50;

  wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
  wpool_task_set_result_type (sleep, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_keep_alive (pool, TRUE);

  for (guint round = 0; round < n_rounds; round++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      CancelAfter after = { cancellable, (round % 10) * 100 };
      g_autoptr(GThread) canceller = NULL;
      g_autoptr(GVariant) squares = NULL;
      g_autoptr(GVariant) cancelled = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      squares = wpool_pool_map (pool, square, wpool_test_range_doubles (4), NULL, &error);
      g_assert_no_error (error);

      canceller = g_thread_new ("canceller", cancel_after, &after);
      cancelled = wpool_pool_map (pool, sleep, wpool_test_repeat_uint32 (4, 1), cancellable, &error);
      g_thread_join (g_steal_pointer (&canceller));
      g_assert_true (cancelled != NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
      g_clear_error (&error);

      results = wpool_pool_map (pool, sleep, wpool_test_repeat_uint32 (4, 1), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_variant (results, wpool_test_repeat_uint32 (4, 1));
    }
}

/* A map queued behind one in which every worker dies never returns
 * results that nobody computed: it fails, or a worker that survived
 * computed them all. Once no map runs, the dead are replaced. */
static void
test_all_workers_died_before (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  g_autoptr(GVariant) third = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome first = { 0 };
  WpoolTestOutcome second = { 0 };
  const char *dying[] = { "exit", "exit" };
  const char *living[] = { "a", "b", "c", "d" };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_keep_alive (pool, TRUE);

  wpool_pool_map_async (pool, task, g_variant_new_strv (dying, 2), NULL, wpool_test_map_done, &first);
  wpool_pool_map_async (pool, task, g_variant_new_strv (living, 4), NULL, wpool_test_map_done, &second);
  wpool_test_wait_for (&first.done);
  wpool_test_wait_for (&second.done);

  g_assert_null (first.results);
  g_assert_error (first.error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);

  if (second.error != NULL)
    {
      g_test_message ("queued map: %s", second.error->message);
      g_assert_error (second.error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
      g_assert_null (second.results);
    }
  else
    {
      g_test_message ("queued map: computed by a worker that survived");
      wpool_test_assert_variant (second.results, g_variant_new_parsed ("['a', 'b', 'c', 'd']"));
    }

  third = wpool_pool_map (pool, task, g_variant_new_strv (living, 4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (third, g_variant_new_parsed ("['a', 'b', 'c', 'd']"));

  g_clear_error (&first.error);
  g_clear_error (&second.error);
  g_clear_pointer (&second.results, g_variant_unref);
}

/* Disposing a pool leaves no thread, fd or process behind. */
static void
test_no_leftovers (gconstpointer data)
{
  guint base_fds = wpool_test_count_fds ();
  guint base_threads = wpool_test_count_threads ();
  guint base_children = wpool_test_count_children ();

  for (guint round = 0; round < 5; round++)
    {
      g_autoptr(WpoolPool) pool = new_pool (data, 3);
      g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
      g_autoptr(WpoolTask) dying = wpool_test_module_task ("wpool_test_die");
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      wpool_pool_set_keep_alive (pool, TRUE);
      results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error);
      g_assert_no_error (error);

      if (WPOOL_TEST_IS_PROCESS (GPOINTER_TO_INT (data)))
        {
          /* A dead worker, not replaced yet, when the pool goes. */
          g_assert_null (wpool_pool_map (pool, dying, g_variant_new_parsed ("['exit']"), NULL, &error));
          g_clear_error (&error);
        }
    }

  wpool_test_assert_fds (base_fds);
  wpool_test_assert_threads (base_threads);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
}

/* MPIRE's promise for a big dataset, measured from /proc/PID/smaps_rollup:
 * 2 workers, 200 tasks that together read every byte of 512 MiB. */
#define DATASET_MIB 512

static void
test_memory (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_read_shared_slice");
  g_autoptr(GVariantBuilder) slices = g_variant_builder_new (G_VARIANT_TYPE ("a(uu)"));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) pids = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) whoami = wpool_test_module_task ("wpool_test_whoami");
  gsize size = (gsize)DATASET_MIB << 20;
  guint8 *bytes = g_malloc (size);
  guint64 expected = 0;
  guint64 total = 0;

  for (gsize i = 0; i < size; i++)
    bytes[i] = i % 251;
  for (gsize i = 0; i < size; i++)
    expected += bytes[i];

  g_assert_true (wpool_pool_set_shared_objects (pool,
                                                g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, size,
                                                                         TRUE, g_free, bytes),
                                                NULL));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  /* Under valgrind a new worker takes in 512 MiB at valgrind's pace. */
  if (wpool_test_under_valgrind ())
    wpool_pool_set_worker_start_timeout (pool, 0);

  for (guint k = 0; k < 200; k++)
    g_variant_builder_add (slices, "(uu)", k, 200);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT64);
  results = wpool_pool_map (pool, task, g_variant_builder_end (slices), NULL, &error);
  g_assert_no_error (error);
  for (guint k = 0; k < 200; k++)
    {
      g_autoptr(GVariant) sum = g_variant_get_child_value (results, k);
      total += g_variant_get_uint64 (sum);
    }
  g_assert_cmpuint (total, ==, expected);

  if (!WPOOL_TEST_IS_PROCESS (method))
    {
      g_test_message ("%s: the workers are threads of this process: no copy to measure",
                      "threading");
      return;
    }

  wpool_task_set_result_type (whoami, G_VARIANT_TYPE ("(uut)"));
  pids = wpool_pool_map (pool, whoami, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < g_variant_n_children (pids); i++)
    {
      guint32 id, pid;
      guint64 address;
      guint64 dirty_kib;

      g_variant_get_child (pids, i, "(uut)", &id, &pid, &address);
      dirty_kib = wpool_test_private_dirty_kib (pid);
      g_test_message ("worker %u (pid %u): Private_Dirty %" G_GUINT64_FORMAT " KiB for a %u MiB dataset",
                      id, pid, dirty_kib, DATASET_MIB);

      if (wpool_test_under_valgrind ())
        continue;

      if (method == WPOOL_START_METHOD_SPAWN)
        g_assert_cmpuint (dirty_kib, >=, (guint64)DATASET_MIB * 1024 * 9 / 10);
      else
        g_assert_cmpuint (dirty_kib, <, (guint64)DATASET_MIB * 1024 / 20);
    }
}

static void
test_async (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  WpoolTestOutcome outcome = { 0 };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_map_async (pool, task, wpool_test_range_doubles (100), NULL, wpool_test_map_done, &outcome);
  wpool_test_wait_for (&outcome.done);
  g_assert_no_error (outcome.error);
  g_assert_true (outcome.thread == g_thread_self ());
  g_assert_cmpuint (g_variant_n_children (outcome.results), ==, 100);
  wpool_test_outcome_clear (&outcome);
}

/* Maps queue up on the same workers; a map with another task while the
 * worker processes run one is refused rather than mixed. */
static void
test_concurrent_maps (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) other = wpool_test_module_task ("wpool_test_square");
  WpoolTestOutcome outcomes[4] = { { 0 } };

  wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
  wpool_task_set_result_type (other, G_VARIANT_TYPE_DOUBLE);

  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    wpool_pool_map_async (pool, square, wpool_test_range_doubles (100 * (i + 1)), NULL,
                          wpool_test_map_done, &outcomes[i]);

  if (WPOOL_TEST_IS_PROCESS (method))
    wpool_test_assert_map_fails (pool, other, wpool_test_range_doubles (3), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING, "another task");

  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    {
      gsize n;
      const double *values;

      wpool_test_wait_for (&outcomes[i].done);
      g_assert_no_error (outcomes[i].error);
      values = g_variant_get_fixed_array (outcomes[i].results, &n, sizeof (double));
      g_assert_cmpuint (n, ==, 100 * (i + 1));
      g_assert_cmpfloat (values[n - 1], ==, (double)(n - 1) * (n - 1));
      wpool_test_outcome_clear (&outcomes[i]);
    }
}

/* One-item maps in flight together spread over the workers instead of
 * queueing on the first one. */
static void
test_small_maps_spread (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GHashTable) ids = g_hash_table_new (NULL, NULL);
  WpoolTestOutcome outcomes[6] = { { 0 } };

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uut)"));
  wpool_pool_set_keep_alive (pool, TRUE);

  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    wpool_pool_map_async (pool, task, wpool_test_range_doubles (1), NULL, wpool_test_map_done, &outcomes[i]);

  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    {
      guint32 id, pid;
      guint64 address;

      wpool_test_wait_for (&outcomes[i].done);
      g_assert_no_error (outcomes[i].error);
      g_variant_get_child (outcomes[i].results, 0, "(uut)", &id, &pid, &address);
      g_hash_table_add (ids, GUINT_TO_POINTER (id));
      wpool_test_outcome_clear (&outcomes[i]);
    }

  g_assert_cmpuint (g_hash_table_size (ids), ==, 2);
}

/* MPIRE's apply(): one item, its result as the task returned it. */
static void
test_apply (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) failing = wpool_test_module_task ("wpool_test_fail_on_negative");
  g_autoptr(GVariant) boxed = NULL;
  g_autoptr(GVariant) typed = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome outcomes[8] = { { 0 } };

  boxed = wpool_pool_apply (pool, square, g_variant_new_double (3), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (boxed, g_variant_new_double (9));

  wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
  typed = wpool_pool_apply (pool, square, g_variant_new_double (4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (typed, g_variant_new_double (16));

  g_assert_null (wpool_pool_apply (pool, failing, g_variant_new_double (-1), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "Item 0 on worker "));

  /* Many in flight, each with its own result. */
  wpool_pool_set_keep_alive (pool, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    wpool_pool_apply_async (pool, square, g_variant_new_double (i), NULL, wpool_test_apply_done, &outcomes[i]);
  for (guint i = 0; i < G_N_ELEMENTS (outcomes); i++)
    {
      wpool_test_wait_for (&outcomes[i].done);
      g_assert_no_error (outcomes[i].error);
      g_assert_cmpfloat (g_variant_get_double (outcomes[i].results), ==, (double)i * i);
      g_variant_unref (outcomes[i].results);
    }
}

/* Better than MPIRE: a worker killed under apply_async fails exactly its
 * own apply, and no finished result is lost. */
static void
test_apply_dead_worker (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  const char *items[] = { "a", "b", "segv", "c", "d", "e" };
  WpoolTestOutcome outcomes[G_N_ELEMENTS (items)] = { { 0 } };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_keep_alive (pool, TRUE);

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    wpool_pool_apply_async (pool, task, g_variant_new_string (items[i]), NULL, wpool_test_apply_done, &outcomes[i]);

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      wpool_test_wait_for (&outcomes[i].done);

      if (g_str_equal (items[i], "segv"))
        {
          g_assert_error (outcomes[i].error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
          g_clear_error (&outcomes[i].error);
        }
      else
        {
          /* Those queued on the worker that died went to the other one. */
          g_assert_no_error (outcomes[i].error);
          g_assert_cmpstr (g_variant_get_string (outcomes[i].results, NULL), ==, items[i]);
          g_variant_unref (outcomes[i].results);
        }
    }

  /* Replaced, the next apply works. */
  {
    g_autoptr(GVariant) result = NULL;
    g_autoptr(GError) error = NULL;

    result = wpool_pool_apply (pool, task, g_variant_new_string ("after"), NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (g_variant_get_string (result, NULL), ==, "after");
  }
}

typedef struct
{
  GArray  *completed;
  guint64  total;
  GThread *thread;
  gboolean wrong_thread;
} Progress;

static void
on_progress (WpoolPool *pool,
             guint64    n_completed,
             guint64    n_total,
             gpointer   data)
{
  Progress *progress = data;

  g_array_append_val (progress->completed, n_completed);
  progress->total = n_total;
  if (g_thread_self () != progress->thread)
    progress->wrong_thread = TRUE;
}

/* Progress is reported on the caller's context, in order, at most 20
 * times a second, and ends at the total. */
static void
test_progress (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) completed = g_array_new (FALSE, FALSE, sizeof (guint64));
  Progress progress = { completed, 0, g_thread_self (), FALSE };
  WpoolTestOutcome outcome = { 0 };
  gint64 start;
  gint64 elapsed_ms;

  g_signal_connect (pool, "progress", G_CALLBACK (on_progress), &progress);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);

  start = g_get_monotonic_time ();
  wpool_pool_map_async (pool, task, wpool_test_repeat_uint32 (100, 5), NULL, wpool_test_map_done, &outcome);
  wpool_test_wait_for (&outcome.done);
  g_assert_cmpuint (wpool_pool_get_n_total (pool), ==, 100);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  g_assert_no_error (outcome.error);
  g_clear_pointer (&outcome.results, g_variant_unref);

  g_assert_false (progress.wrong_thread);
  g_assert_cmpuint (completed->len, >=, 1);
  g_assert_cmpuint (completed->len, <=, elapsed_ms / 50 + 2);
  for (guint i = 1; i < completed->len; i++)
    g_assert_cmpuint (g_array_index (completed, guint64, i), >, g_array_index (completed, guint64, i - 1));
  g_assert_cmpuint (g_array_index (completed, guint64, completed->len - 1), ==, 100);
  g_assert_cmpuint (progress.total, ==, 100);
  g_assert_cmpuint (wpool_pool_get_n_completed (pool), ==, 100);
  g_test_message ("%u progress reports in %" G_GINT64_FORMAT " ms", completed->len, elapsed_ms);

  /* A blocking map reports once, when it returns; the count starts anew. */
  g_array_set_size (completed, 0);
  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (10, 1), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (completed->len, ==, 1);
  g_assert_cmpuint (g_array_index (completed, guint64, 0), ==, 10);
  g_assert_cmpuint (wpool_pool_get_n_total (pool), ==, 10);
}

/* FORK's copy-on-write, for the C pointer shared with set_shared_data():
 * each worker reads the caller's memory and writes into its own copy. */
static GVariant *
read_and_scribble (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  guint32 *numbers = wpool_worker_get_shared_data (worker);
  guint32 i = g_variant_get_uint32 (item);
  guint32 seen = numbers[i];

  numbers[i] = 0xdead;

  return g_variant_new_uint32 (seen);
}

static void
test_fork_shared_data (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolTask) task = wpool_task_new (read_and_scribble, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint32 *numbers = g_new (guint32, 64);
  guint32 indexes[64];
  const guint32 *seen;
  gsize n;

  for (guint i = 0; i < 64; i++)
    numbers[i] = indexes[i] = i;

  g_assert_true (wpool_pool_set_shared_data (pool, numbers, g_free, &error));
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, indexes, 64, sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);

  seen = g_variant_get_fixed_array (results, &n, sizeof (guint32));
  for (guint i = 0; i < 64; i++)
    {
      g_assert_cmpuint (seen[i], ==, i);
      /* The workers' writes stayed in their copies. */
      g_assert_cmpuint (numbers[i], ==, i);
    }
}

/* wpool_set_fork_func(): a binding's own fork makes the template and
 * the workers (every fork of the pool's), and its failure is the map's,
 * with the errno it gave. */
static int
counting_fork (gpointer data)
{
  /* In the parent only, as the template forks the workers. */
  g_atomic_int_inc ((int *) data);
  return fork ();
}

static int
failing_fork (gpointer data)
{
  return -EAGAIN;
}

static void
test_fork_func (void)
{
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  int forks = 0;

  wpool_set_fork_func (counting_fork, &forks, NULL);
  {
    g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);

    results = wpool_pool_map (pool, task, wpool_test_range_doubles (10), NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_variant_n_children (results), ==, 10);
    /* The template, in this process; its workers are its own forks. */
    g_assert_cmpint (g_atomic_int_get (&forks), ==, 1);
  }

  wpool_set_fork_func (failing_fork, NULL, NULL);
  {
    g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
    g_autoptr(GVariant) failed = wpool_pool_map (pool, task, wpool_test_range_doubles (10), NULL, &error);

    g_assert_null (failed);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, g_strerror (EAGAIN)));
    g_clear_error (&error);
  }

  wpool_set_fork_func (NULL, NULL, NULL);
  {
    g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
    g_autoptr(GVariant) again = wpool_pool_map (pool, task, wpool_test_range_doubles (10), NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpint (g_atomic_int_get (&forks), ==, 1);
  }
}

/* The reference page's copy-on-write alternative: two float arrays
 * without locks as the shared objects, a map over (index, value) pairs
 * that stores x*x and x+x at index and returns x % 2. */
static void
test_shared_array_reference (gconstpointer data)
{
  guint base_fds = wpool_test_count_fds ();
  guint base_mappings = wpool_test_count_mappings ("memfd:wpool-shared");

  {
    g_autoptr(WpoolPool) pool = new_pool (data, 2);
    g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square_add_and_modulo_with_index");
    g_autoptr(WpoolSharedArray) square_results = NULL;
    g_autoptr(WpoolSharedArray) add_results = NULL;
    g_autoptr(GVariantBuilder) pairs = g_variant_builder_new (G_VARIANT_TYPE ("a(ui)"));
    g_autoptr(GVariant) modulo = NULL;
    GVariant *handles[2];
    g_autoptr(GError) error = NULL;

    square_results = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_FLOAT, 100, FALSE, &error);
    g_assert_no_error (error);
    add_results = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_FLOAT, 100, FALSE, &error);
    g_assert_no_error (error);

    handles[0] = wpool_shared_array_get_handle (square_results);
    handles[1] = wpool_shared_array_get_handle (add_results);
    g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_tuple (handles, 2), &error));

    for (guint i = 0; i < 100; i++)
      g_variant_builder_add (pairs, "(ui)", i, (gint32)i);

    wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);
    wpool_pool_set_chunk_size (pool, 7);
    modulo = wpool_pool_map (pool, task, g_variant_builder_end (pairs), NULL, &error);
    g_assert_no_error (error);

    for (guint i = 0; i < 100; i++)
      {
        g_autoptr(GVariant) m = g_variant_get_child_value (modulo, i);

        g_assert_cmpfloat (wpool_shared_array_get_double (square_results, i, NULL), ==, (double)(i * i));
        g_assert_cmpfloat (wpool_shared_array_get_double (add_results, i, NULL), ==, (double)(i + i));
        g_assert_cmpint (g_variant_get_int32 (m), ==, i % 2);
      }
  }

  /* Neither the pool nor the arrays leave a memfd or a mapping behind. */
  wpool_test_assert_fds (base_fds);
  g_assert_cmpuint (wpool_test_count_mappings ("memfd:wpool-shared"), ==, base_mappings);
}

/* With the array's lock, 100 000 increments across workers end exact. */
static void
test_shared_array_locked_counter (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_locked_increments");
  g_autoptr(WpoolSharedArray) counter = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  counter = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 1, TRUE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (wpool_shared_array_get_lock (counter));

  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (counter), NULL));
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (100, 1000), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (wpool_shared_array_get_int64 (counter, 0, NULL), ==, 100000);
}

/* A worker killed while it holds the lock does not hang the others. */
static void
test_lock_dead_holder (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_hold_lock");
  g_autoptr(WpoolLock) lock = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  const char *dying[] = { "a", "die", "b" };
  const char *living[] = { "c", "d", "e", "f" };

  lock = wpool_lock_new (&error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_lock_get_handle (lock), NULL));
  g_object_set (pool, "chunk-size", 1, "keep-alive", TRUE, NULL);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);

  wpool_test_assert_map_fails (pool, task, g_variant_new_strv (dying, 3), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED, "Item 1: worker");

  results = wpool_pool_map (pool, task, g_variant_new_strv (living, 4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("['c', 'd', 'e', 'f']"));

  /* And the caller can take it too. */
  wpool_lock_acquire (lock);
  wpool_lock_release (lock);
}

/* A bad index is an error, never a write out of bounds; a member that is
 * not a handle is an error too. */
static void
test_shared_array_bad_access (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (data, 2);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_store_at");
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GError) error = NULL;

  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 10, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (array), NULL));

  wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("[(uint32 3, 1.5), (10, 2.5)]"), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "Index 10 is out of the shared array");
  g_assert_cmpfloat (wpool_shared_array_get_double (array, 3, NULL), ==, 1.5);

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("no handle"), NULL));
  wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("[(uint32 0, 1.0)]"), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "is not the handle of a shared array");
}

/* An MPI pool needs its program started by mpirun, and says so, as it
 * says so when libwpool was built without MPI (test-mpi-pool.c runs it
 * under mpirun). */
static void
test_mpi_outside_mpirun (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_MPI);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  double items[] = { 1, 2 };

  results = wpool_pool_map (pool, task, g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, 2, sizeof (double)),
                            NULL, &error);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
  g_assert_null (results);
  g_assert_true (strstr (error->message, "started by mpirun") != NULL ||
                 strstr (error->message, "built without") != NULL);
  g_assert_false (wpool_pool_get_workers_running (pool));
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "results", test_results, FALSE },
    { "shared-objects/where", test_shared_objects_where, FALSE },
    { "shared-objects/tuple", test_shared_objects_tuple, FALSE },
    { "errors", test_errors, FALSE },
    { "cancel", test_cancel, FALSE },
    { "keep-alive", test_keep_alive, FALSE },
    { "worker-death", test_worker_death, TRUE },
    { "worker-death/queued-map", test_all_workers_died_before, TRUE },
    { "worker-death/detection", test_death_detection, TRUE },
    { "task-timeout", test_task_timeout, FALSE },
    { "no-leftovers", test_no_leftovers, FALSE },
    { "memory", test_memory, FALSE },
    { "async", test_async, FALSE },
    { "concurrent-maps", test_concurrent_maps, FALSE },
    { "small-maps-spread", test_small_maps_spread, FALSE },
    { "apply", test_apply, FALSE },
    { "progress", test_progress, FALSE },
    { "insights", test_insights, FALSE },
    { "chunk-task", test_chunk_task, FALSE },
    { "chunk-task/transfer", test_chunk_task_transfer, TRUE },
    { "no-orphans", test_no_orphans, TRUE },
    { "soak", test_soak, FALSE },
    { "task-switch/cancelled", test_task_switch_cancelled, TRUE },
    { "idle/beyond-start-timeout", test_idle_beyond_start_timeout, TRUE },
    { "chunk-ahead", test_chunk_ahead, TRUE },
    { "apply/dead-worker", test_apply_dead_worker, TRUE },
    { "shared-array/reference", test_shared_array_reference, FALSE },
    { "shared-array/locked-counter", test_shared_array_locked_counter, FALSE },
    { "shared-array/bad-access", test_shared_array_bad_access, FALSE },
    { "lock/dead-holder", test_lock_dead_holder, TRUE },
  };

  g_test_init (&argc, &argv, NULL);

  /* Workers orphaned by their fork server come to this process, and are
   * counted as left over. */
  prctl (PR_SET_CHILD_SUBREAPER, 1);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  g_test_add_func ("/fork/shared-data", test_fork_shared_data);
  g_test_add_func ("/fork/fork-func", test_fork_func);
  g_test_add_func ("/mpi/outside-mpirun", test_mpi_outside_mpirun);

  return g_test_run ();
}
