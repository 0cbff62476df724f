/* test-lifecycle.c: worker state, worker-init and worker-exit, their
 * timeouts and result types, stop_and_join and terminate, on every start
 * method; the death of a fork server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "wpool-test-util.h"

static WpoolPool *
new_pool_with_lifecycle (gconstpointer  data,
                         const char    *init,
                         const char    *exit)
{
  WpoolPool *pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(GError) error = NULL;

  if (init != NULL)
    {
      g_autoptr(WpoolTask) task = wpool_test_module_task (init);

      g_assert_true (wpool_pool_set_worker_init (pool, task, &error));
      g_assert_no_error (error);
      g_assert_true (wpool_pool_get_worker_init (pool) == task);
    }

  if (exit != NULL)
    {
      g_autoptr(WpoolTask) task = wpool_test_module_task (exit);

      wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uu)"));
      g_assert_true (wpool_pool_set_worker_exit (pool, task, &error));
      g_assert_no_error (error);
      g_assert_true (wpool_pool_get_worker_exit (pool) == task);
    }

  return pool;
}

/* The counts each worker reached in @results of wpool_test_count_in_state,
 * checked to grow one by one from @counts, which they update. */
static void
check_counts (GVariant *results,
              guint32   counts[2])
{
  GVariantIter iter;
  guint32 id;
  guint32 items;
  guint32 pid;

  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uuu)", &id, &items, &pid))
    {
      g_assert_cmpuint (id, <, 2);
      g_assert_cmpuint (items, >, counts[id]);
      counts[id] = items;
    }
}

/* The last exit results: one per worker, in order, whose counts make
 * @total. */
static void
assert_exits (WpoolPool *pool,
              guint      total)
{
  g_autoptr(GVariant) exits = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  guint32 id;
  guint32 items;
  guint n = 0;
  guint sum = 0;

  exits = wpool_pool_get_exit_results (pool, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (exits), ==, "a(uu)");
  g_variant_iter_init (&iter, exits);
  while (g_variant_iter_next (&iter, "(uu)", &id, &items))
    {
      g_assert_cmpuint (id, ==, n);
      sum += items;
      n++;
    }
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (sum, ==, total);
}

/* The init fills the state, every item of a kept-alive worker sees it,
 * across maps, and the exit reports it when the workers stop. */
static void
test_state (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_init_state", "wpool_test_exit_report");
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_count_in_state");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint32 counts[2] = { 0, 0 };

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uuu)"));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);

  g_assert_null (wpool_pool_get_exit_results (pool, &error));
  g_assert_no_error (error);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (20), NULL, &error);
  g_assert_no_error (error);
  check_counts (results, counts);
  g_clear_pointer (&results, g_variant_unref);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (10), NULL, &error);
  g_assert_no_error (error);
  check_counts (results, counts);
  g_assert_cmpuint (counts[0] + counts[1], ==, 30);

  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_no_error (error);
  g_assert_false (wpool_pool_get_workers_running (pool));

  assert_exits (pool, 30);

  /* Workers that stop without a worker-exit leave no exit results, not
   * those of the workers before them. */
  g_assert_true (wpool_pool_set_worker_exit (pool, NULL, &error));
  g_clear_pointer (&results, g_variant_unref);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_null (wpool_pool_get_exit_results (pool, &error));
  g_assert_no_error (error);
}

/* Workers stopped after a map, by unsetting keep-alive, or by disposal
 * run their exit; terminate does not. */
static void
test_exit_when (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_init_state", "wpool_test_exit_report");
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_count_in_state");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  assert_exits (pool, 4);
  g_clear_pointer (&results, g_variant_unref);

  wpool_pool_set_keep_alive (pool, TRUE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);
  g_assert_true (wpool_pool_terminate (pool, &error));
  g_assert_no_error (error);
  g_assert_false (wpool_pool_get_workers_running (pool));

  /* Terminated: the last exits are still those of the first map. */
  assert_exits (pool, 4);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);
  g_assert_no_error (error);
  wpool_pool_set_keep_alive (pool, FALSE);
  assert_exits (pool, 3);
}

/* A kept-alive pool that is disposed runs its workers' exit, where MPIRE
 * skips it when it leaves `with`. */
static void
test_exit_on_dispose (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) mark = wpool_test_module_task ("wpool_test_exit_mark");
  g_autoptr(WpoolSharedArray) marks = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) values = NULL;
  g_autoptr(GError) error = NULL;

  marks = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 2, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_tuple ((GVariant *[]) { wpool_shared_array_get_handle (marks) }, 1), &error));
  g_assert_true (wpool_pool_set_worker_exit (pool, mark, &error));
  wpool_pool_set_keep_alive (pool, TRUE);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_get_workers_running (pool));
  g_clear_object (&pool);

  values = wpool_shared_array_dup_values (marks);
  wpool_test_assert_variant (values, g_variant_new_parsed ("[1.0, 1.0]"));
}

/* A failed init fails the items of its worker, with the init's error;
 * the exit then does not run. */
static void
test_init_fails (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_fail_always", "wpool_test_exit_report");
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariant) exits = NULL;
  g_autoptr(GError) error = NULL;
  GError *item_error = NULL;
  GVariant *result = NULL;
  guint n = 0;

  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (4), NULL,
                               G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "its worker-init failed: refused on purpose");
  exits = wpool_pool_get_exit_results (pool, &error);
  g_assert_null (exits);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "did not run, as its worker-init failed"));
  g_clear_error (&error);

  stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (5), WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, NULL, &result, &item_error, &error))
    {
      g_assert_null (result);
      g_assert_error (item_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
      g_clear_error (&item_error);
      n++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 5);
}

/* An init past its timeout: a worker process is killed, a thread left. */
static void
test_init_timeout (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_hang", NULL);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  double timeout = wpool_test_under_valgrind () ? 1.0 : 0.3;
  gint64 started = g_get_monotonic_time ();

  wpool_pool_set_worker_init_timeout (pool, timeout);
  g_assert_cmpfloat (wpool_pool_get_worker_init_timeout (pool), ==, timeout);

  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (4), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT, "worker-init timeout");
  /* Not the 4 s of the init; a worker that got no chunk is killed as the
   * pool stops, after a second's grace. (valgrind runs one thread at a
   * time: no bound holds there.) */
  if (!wpool_test_under_valgrind ())
    g_assert_cmpint (g_get_monotonic_time () - started, <, (timeout + 2.5) * G_USEC_PER_SEC);
}

/* An exit past its timeout fails stop_and_join with a timeout, without
 * waiting for it. */
static void
test_exit_timeout (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) hang = wpool_test_module_task ("wpool_test_hang");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  gint64 started;

  g_assert_true (wpool_pool_set_worker_exit (pool, hang, &error));
  wpool_pool_set_worker_exit_timeout (pool, wpool_test_under_valgrind () ? 1.0 : 0.3);
  g_assert_cmpfloat (wpool_pool_get_worker_exit_timeout (pool), >, 0);
  wpool_pool_set_keep_alive (pool, TRUE);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);

  started = g_get_monotonic_time ();
  g_assert_false (wpool_pool_stop_and_join (pool, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "worker-exit timeout"));
  if (!wpool_test_under_valgrind ())
    g_assert_cmpint (g_get_monotonic_time () - started, <, 3 * G_USEC_PER_SEC);
  g_assert_false (wpool_pool_get_workers_running (pool));
  g_clear_error (&error);

  /* Said once: with no workers left to stop, it succeeds, and the exit
   * results still tell. */
  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_no_error (error);
  g_assert_null (wpool_pool_get_exit_results (pool, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
}

/* A task a new program cannot find. */
static GVariant *
not_exported (WpoolWorker  *worker,
              GVariant     *shared_objects,
              GVariant     *item,
              gpointer      user_data,
              GError      **error)
{
  return g_variant_ref (item);
}

/* The lifecycle tasks change only while no worker runs, and must suit
 * the start method; stop and terminate wait for no map. */
static void
test_bad_use (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(WpoolTask) init = wpool_test_module_task ("wpool_test_init_state");
  g_autoptr(WpoolTask) closure = wpool_task_new (not_exported, NULL, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  WpoolTestOutcome outcome = { 0, };
  g_autoptr(GError) error = NULL;

  if (method == WPOOL_START_METHOD_SPAWN || method == WPOOL_START_METHOD_FORKSERVER)
    {
      g_assert_false (wpool_pool_set_worker_init (pool, closure, &error));
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
      g_assert_true (g_str_has_prefix (error->message, "Cannot use this task as the worker-init: "));
      g_clear_error (&error);
    }

  wpool_pool_map_async (pool, task, wpool_test_repeat_uint32 (20, 10), cancellable, wpool_test_map_done, &outcome);
  g_assert_false (wpool_pool_set_worker_init (pool, init, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_clear_error (&error);
  g_assert_false (wpool_pool_stop_and_join (pool, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_clear_error (&error);
  g_assert_false (wpool_pool_terminate (pool, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  wpool_test_wait_for (&outcome.done);
  wpool_test_outcome_clear (&outcome);

  g_assert_true (wpool_pool_set_worker_init (pool, init, &error));
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_worker_init (pool, NULL, &error));
  g_assert_null (wpool_pool_get_worker_init (pool));
}

/* A worker restarts after its lifespan in chunks, in the middle of a map:
 * a new process (or worker) with a fresh state from its init, and its
 * exit result joins the others. */
static void
test_lifespan (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_init_state", "wpool_test_exit_report");
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_count_in_state");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) exits = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();
  GVariantIter iter;
  guint32 id;
  guint32 items;
  guint32 pid;
  guint sum = 0;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uuu)"));
  wpool_pool_set_chunk_size (pool, 2);
  wpool_pool_set_worker_lifespan (pool, 3);
  g_assert_cmpuint (wpool_pool_get_worker_lifespan (pool), ==, 3);

  /* 30 chunks of 2: a worker counts at most 6 items before it restarts. */
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (60), NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uuu)", &id, &items, &pid))
    {
      g_assert_cmpuint (items, >=, 1);
      g_assert_cmpuint (items, <=, 6);
      g_hash_table_add (pids, GUINT_TO_POINTER (pid));
    }
  if (WPOOL_TEST_IS_PROCESS (method))
    g_assert_cmpuint (g_hash_table_size (pids), >=, 10);

  /* Every worker that ended reported; together they counted every item. */
  exits = wpool_pool_get_exit_results (pool, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (exits), >=, 10);
  g_variant_iter_init (&iter, exits);
  while (g_variant_iter_next (&iter, "(uu)", &id, &items))
    sum += items;
  g_assert_cmpuint (sum, ==, 60);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
}

/* Workers run on the CPUs they are pinned to: all on one list, or each
 * on its own. */
static void
test_cpu_ids (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_cpus");
  guint last_cpu = MIN (g_get_num_processors (), 2) - 1;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  GVariantIter *cpus;
  guint32 id;
  guint32 cpu;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uau)"));
  wpool_pool_set_chunk_size (pool, 1);

  g_assert_true (wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[[uint32 0]]"), &error));
  g_assert_no_error (error);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (8), NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uau)", &id, &cpus))
    {
      g_assert_cmpuint (g_variant_iter_n_children (cpus), ==, 1);
      g_assert_true (g_variant_iter_next (cpus, "u", &cpu));
      g_assert_cmpuint (cpu, ==, 0);
      g_variant_iter_free (cpus);
    }
  g_clear_pointer (&results, g_variant_unref);

  g_assert_true (wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[[uint32 0], [%u]]", last_cpu), &error));
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (8), NULL, &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uau)", &id, &cpus))
    {
      g_assert_true (g_variant_iter_next (cpus, "u", &cpu));
      g_assert_cmpuint (cpu, ==, id == 0 ? 0 : last_cpu);
      g_variant_iter_free (cpus);
    }

  /* Bad lists are refused, clearly. */
  g_assert_false (wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[[uint32 0], [0], [0]]"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[@au []]"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[[uint32 100000]]"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "There is no CPU 100000"));
  g_clear_error (&error);

  g_assert_true (wpool_pool_set_cpu_ids (pool, NULL, &error));
  g_assert_null (wpool_pool_get_cpu_ids (pool));
}

/* The message of @error, checked to contain every one of the %NULL-ended
 * @needles. */
static void
assert_error_says (const GError *error,
                   ...)
{
  va_list args;
  const char *needle;

  g_assert_nonnull (error);
  va_start (args, error);
  while ((needle = va_arg (args, const char *)) != NULL)
    {
      if (strstr (error->message, needle) == NULL)
        g_error ("“%s” does not say “%s”", error->message, needle);
    }
  va_end (args);
}

/* Maps 4 items on fresh kept-alive workers, then stops them with the exit
 * declaring @declared: FALSE with @error set if stop_and_join fails. */
static gboolean
stop_with_exit_type (WpoolPool          *pool,
                     WpoolTask          *task,
                     const GVariantType *declared,
                     GError            **error)
{
  g_autoptr(GVariant) results = NULL;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, error);
  g_assert_nonnull (results);
  wpool_task_set_result_type (wpool_pool_get_worker_exit (pool), declared);

  return wpool_pool_stop_and_join (pool, error);
}

/* A worker-exit's result is checked against the type it declares as the
 * workers stop, wherever they run: one of another type fails
 * stop_and_join and get_exit_results() with an error naming the worker and
 * both types, never a critical nor NULL without an error; a type declared
 * or changed while the workers run holds. A worker-init's result is
 * dropped, and the type it declares is not checked, on any start method. */
static void
test_exit_result_type (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool_with_lifecycle (data, "wpool_test_init_state", "wpool_test_exit_report");
  WpoolTask *exit = wpool_pool_get_worker_exit (pool);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_count_in_state");
  g_autoptr(GVariant) exits = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (wpool_pool_get_worker_init (pool), G_VARIANT_TYPE_STRING);
  wpool_pool_set_keep_alive (pool, TRUE);

  /* Declared wrong before the workers started. */
  wpool_task_set_result_type (exit, G_VARIANT_TYPE ("(ud)"));
  g_assert_false (stop_with_exit_type (pool, task, G_VARIANT_TYPE ("(ud)"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "Worker 0: its worker-exit failed: "));
  assert_error_says (error, "“(uu)”", "“(ud)”", NULL);
  g_clear_error (&error);
  g_assert_null (wpool_pool_get_exit_results (pool, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT);
  g_clear_error (&error);

  /* Declared wrong while they run. */
  wpool_task_set_result_type (exit, G_VARIANT_TYPE ("(uu)"));
  g_assert_false (stop_with_exit_type (pool, task, G_VARIANT_TYPE_BOOLEAN, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT);
  assert_error_says (error, "Worker 0: ", "“(uu)”", "“b”", NULL);
  g_clear_error (&error);

  /* Put right while they run. */
  g_assert_true (stop_with_exit_type (pool, task, G_VARIANT_TYPE ("(uu)"), &error));
  g_assert_no_error (error);
  assert_exits (pool, 4);

  /* None: boxed. */
  g_assert_true (stop_with_exit_type (pool, task, NULL, &error));
  exits = wpool_pool_get_exit_results (pool, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (exits), ==, "av");
  g_assert_cmpuint (g_variant_n_children (exits), ==, 2);
}

/* The parent of process @pid, from /proc/PID/stat; 0 if it is gone. */
static GPid
parent_of (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *stat = NULL;
  const char *after_comm;
  int ppid = 0;

  /* pid (comm) state ppid …; comm may hold spaces and parentheses. */
  if (g_file_get_contents (path, &stat, NULL, NULL) && (after_comm = strrchr (stat, ')')) != NULL)
    sscanf (after_comm + 1, " %*c %d", &ppid);

  return ppid;
}

/* Whether @pid ended: reaped, as a subreaper gets orphans, or gone. */
static gboolean
process_gone (GPid pid)
{
  return waitpid (pid, NULL, WNOHANG) == pid || (kill (pid, 0) < 0 && errno == ESRCH);
}

/* Runs a map of sleeping items until both workers are in one, then
 * returns their fork server's pid, checked to be a child of this
 * process, and the workers' pids in @workers. */
static GPid
map_until_running (WpoolPool        *pool,
                   WpoolTask        *task,
                   WpoolSharedArray *pids,
                   WpoolTestOutcome *outcome,
                   GPid              workers[2])
{
  GPid server;

  for (guint i = 0; i < 2; i++)
    g_assert_true (wpool_shared_array_set_int64 (pids, i, 0, NULL));
  wpool_pool_map_async (pool, task, wpool_test_repeat_uint32 (20, 200), NULL, wpool_test_map_done, outcome);
  for (guint i = 0; i < 2; i++)
    while ((workers[i] = (GPid) wpool_shared_array_get_int64 (pids, i, NULL)) == 0)
      g_usleep (G_TIME_SPAN_MILLISECOND);

  server = parent_of (workers[0]);
  g_assert_cmpint (server, ==, parent_of (workers[1]));
  g_assert_cmpint (parent_of (server), ==, getpid ());

  return server;
}

/* A fork server killed in the middle of a map fails it as its workers die
 * with it, saying that the server died (not the status that no process
 * could wait for); the next map runs on a new server, and neither the
 * dead server nor its workers is left a zombie. */
static void
test_server_killed (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  g_autoptr(WpoolSharedArray) pids = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 2, FALSE, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();
  WpoolTestOutcome outcome = { 0, };
  GPid workers[2];
  GPid server;
  GPid new_server;

  if (GPOINTER_TO_INT (data) != WPOOL_START_METHOD_FORKSERVER)
    {
      g_test_skip ("Only FORKSERVER has a fork server");
      return;
    }

  pool = wpool_pool_new (2, WPOOL_START_METHOD_FORKSERVER);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (pids), &error));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);

  server = map_until_running (pool, task, pids, &outcome, workers);
  g_assert_no_errno (kill (server, SIGKILL));
  wpool_test_wait_for (&outcome.done);
  g_assert_null (outcome.results);
  g_assert_error (outcome.error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  g_test_message ("%s", outcome.error->message);
  assert_error_says (outcome.error, "its fork server died", NULL);
  wpool_test_outcome_clear (&outcome);

  /* The server was reaped by the pool; its orphans come to this process,
   * the subreaper, which reaps them here. */
  g_assert_true (process_gone (server));
  for (guint i = 0; i < 2; i++)
    {
      for (guint tries = 0; tries < 1000 && !process_gone (workers[i]); tries++)
        g_usleep (10 * G_TIME_SPAN_MILLISECOND);
      g_assert_true (process_gone (workers[i]));
    }

  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (4, 1), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 4);
  g_assert_cmpuint (wpool_test_count_children (), ==,
                    base_children + wpool_test_expected_children (WPOOL_START_METHOD_FORKSERVER, 2));

  /* A new server, which runs a map as long as the first. */
  new_server = map_until_running (pool, task, pids, &outcome, workers);
  g_assert_cmpint (new_server, !=, server);
  wpool_test_wait_for (&outcome.done);
  g_assert_no_error (outcome.error);
  g_assert_cmpuint (g_variant_n_children (outcome.results), ==, 20);
  wpool_test_outcome_clear (&outcome);

  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "lifecycle/state", test_state, FALSE },
    { "lifecycle/exit-when", test_exit_when, FALSE },
    { "lifecycle/exit-on-dispose", test_exit_on_dispose, FALSE },
    { "lifecycle/init-fails", test_init_fails, FALSE },
    { "lifecycle/init-timeout", test_init_timeout, FALSE },
    { "lifecycle/exit-timeout", test_exit_timeout, FALSE },
    { "lifecycle/bad-use", test_bad_use, FALSE },
    { "cpu-ids", test_cpu_ids, FALSE },
    { "lifecycle/lifespan", test_lifespan, FALSE },
    { "lifecycle/exit-result-type", test_exit_result_type, FALSE },
    { "lifecycle/server-killed", test_server_killed, TRUE },
  };

  g_test_init (&argc, &argv, NULL);

  /* Workers orphaned by their fork server come to this process. */
  prctl (PR_SET_CHILD_SUBREAPER, 1);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  return g_test_run ();
}
