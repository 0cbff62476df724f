/* test-startup.c: starting workers, per start method: an async map that
 * never blocks its caller, starts that are cancelled or time out, and one
 * pool shared by several threads.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "wpool-test-util.h"

static gboolean
runs_new_program (WpoolStartMethod method)
{
  return method == WPOOL_START_METHOD_SPAWN || method == WPOOL_START_METHOD_FORKSERVER;
}

static WpoolTask *
slow_task (void)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_SLOW_MODULE"), "wpool_test_slow_identity",
                                               &error);

  g_assert_no_error (error);

  return task;
}

/* Within 5 s: a killed start is reaped within a second or so. */
static void
assert_children_soon (guint expected)
{
  wpool_test_assert_children_soon (expected, 5000);
}

/* Cancelling a map ends the start of its workers at once, even when their
 * task's module takes a minute to load: the starting workers are killed. */
static void
test_cancel_start (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = slow_task ();
  guint base_children = wpool_test_count_children ();

  if (!runs_new_program (method))
    {
      g_test_skip ("Only a new program loads the task's module as it starts");
      return;
    }

  for (guint async = 0; async < 2; async++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GThread) canceller = wpool_test_cancel_later (cancellable, 300);
      WpoolTestOutcome outcome = { 0, };
      gint64 started = g_get_monotonic_time ();

      if (async)
        {
          wpool_pool_map_async (pool, task, g_variant_new_parsed ("[1, 2, 3]"), cancellable,
                                wpool_test_map_done, &outcome);
          wpool_test_wait_for (&outcome.done);
        }
      else
        outcome.results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1, 2, 3]"), cancellable,
                                          &outcome.error);

      g_assert_null (outcome.results);
      g_assert_error (outcome.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      /* The module blocks for 60 s. */
      g_assert_cmpint (g_get_monotonic_time () - started, <, 10 * G_USEC_PER_SEC);
      g_clear_pointer (&canceller, g_thread_join);
      wpool_test_outcome_clear (&outcome);
      g_assert_false (wpool_pool_get_workers_running (pool));
      assert_children_soon (base_children);
    }
}

/* A worker that does not start within worker-start-timeout fails the
 * map, named, and is killed. */
static void
test_start_timeout (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = slow_task ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  guint base_children = wpool_test_count_children ();
  gint64 started;

  g_assert_cmpfloat (wpool_pool_get_worker_start_timeout (pool), ==, 60);
  if (!runs_new_program (method))
    {
      g_test_skip ("Only a new program loads the task's module as it starts");
      return;
    }

  wpool_pool_set_worker_start_timeout (pool, 0.5);
  started = g_get_monotonic_time ();
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1, 2, 3]"), NULL, &error);
  g_assert_null (results);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_assert_true (g_str_has_prefix (error->message, "Worker 0 made no progress starting within the worker-start-timeout (0.5 s)"));
  g_assert_cmpint (g_get_monotonic_time () - started, <, 10 * G_USEC_PER_SEC);
  assert_children_soon (base_children);
}

/* A helper program that never answers is a start that times out, not a
 * map that hangs. */
static void
test_silent_helper (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autofree char *helper = g_strdup (g_getenv ("WPOOL_WORKER"));
  g_autofree char *script = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  guint base_children = wpool_test_count_children ();
  int fd;

  if (!runs_new_program (method))
    {
      g_test_skip ("Only SPAWN and FORKSERVER start a helper program");
      return;
    }

  fd = g_file_open_tmp ("wpool-silent-XXXXXX", &script, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (script, "#!/bin/sh\nexec sleep 600\n", -1, &error));
  g_assert_no_error (error);
  close (fd);
  g_assert_cmpint (g_chmod (script, 0700), ==, 0);

  g_setenv ("WPOOL_WORKER", script, TRUE);
  wpool_pool_set_worker_start_timeout (pool, 0.5);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);
  g_setenv ("WPOOL_WORKER", helper, TRUE);
  g_unlink (script);

  g_assert_null (results);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  assert_children_soon (base_children);

  /* The real helper starts again. */
  g_clear_error (&error);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);
  g_assert_no_error (error);
}

/* Maps on a pool of @method whose worker program runs @script, which
 * ends before it is ready, and checks the error says @expected. */
static void
assert_program_ends_early (WpoolStartMethod  method,
                           const char       *script,
                           const char       *expected)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  g_autoptr(WpoolTask) task = wpool_task_new_for_program (argv, "a-module", "a-task");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  guint base_children = wpool_test_count_children ();

  if (!runs_new_program (method))
    {
      g_test_skip ("Only SPAWN and FORKSERVER start a worker program");
      return;
    }

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);
  g_assert_null (results);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, expected));
  if (method == WPOOL_START_METHOD_FORKSERVER)
    g_assert_true (g_str_has_prefix (error->message, "The fork server cannot start: "));
  assert_children_soon (base_children);
}

/* A worker program that ends before it is ready (a language runtime that
 * cannot start, a helper that cannot load libwpool) is reported by how it
 * ended, not by the bare socket error its end caused. */
static void
test_program_exits_early (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);

  if (!runs_new_program (method))
    {
      g_test_skip ("Only SPAWN and FORKSERVER start a worker program");
      return;
    }

  /* What it wrote reaches the caller's standard error too, whole. */
  if (g_test_subprocess ())
    {
      assert_program_ends_early (method, "echo 'wpool-test: first' >&2; echo 'wpool-test: cannot start' >&2; exit 3",
                                 "/bin/sh exited with status 3 before it was ready: its standard error ends "
                                 "with “wpool-test: cannot start”");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*wpool-test: first\nwpool-test: cannot start\n*");

  /* One that says nothing is told by how it ended alone. */
  assert_program_ends_early (method, "exit 3",
                             "/bin/sh exited with status 3 before it was ready: its standard error says why");
}

/* One the dynamic loader cannot start (a library missing: status 127),
 * the commonest failure of an installed helper, is named so. */
static void
test_program_cannot_load (gconstpointer data)
{
  assert_program_ends_early (GPOINTER_TO_INT (data), "echo 'wpool-test: libwpool-1.so.0: cannot open' >&2; exit 127",
                             "exited with status 127 before it was ready (127: a library it needs could not be "
                             "loaded, or it was not found): its standard error ends with "
                             "“wpool-test: libwpool-1.so.0: cannot open”");
}

static gboolean
count_tick (gpointer data)
{
  (*(guint *)data)++;

  return G_SOURCE_CONTINUE;
}

/* map_async() returns at once however big the shared objects are, and the
 * caller's main loop runs while the workers start. */
static void
test_async_returns_at_once (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_read_shared_slice");
  gsize size = (wpool_test_under_valgrind () ? 32 : 256) << 20;
  g_autofree guint8 *bytes = g_malloc (size);
  g_autoptr(GSource) ticker = g_timeout_source_new (5);
  WpoolTestOutcome outcome = { 0, };
  guint ticks = 0;
  gint64 started;
  gint64 returned;
  gint64 done;

  memset (bytes, 1, size);
  wpool_pool_set_shared_objects (pool, g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, size, TRUE, NULL, NULL),
                                 NULL);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT64);
  g_source_set_callback (ticker, count_tick, &ticks, NULL);
  g_source_attach (ticker, NULL);

  started = g_get_monotonic_time ();
  wpool_pool_map_async (pool, task, g_variant_new_parsed ("[(uint32 0, uint32 2), (1, 2)]"), NULL,
                        wpool_test_map_done, &outcome);
  returned = g_get_monotonic_time ();
  wpool_test_wait_for (&outcome.done);
  done = g_get_monotonic_time ();
  g_source_destroy (ticker);

  g_assert_no_error (outcome.error);
  wpool_test_assert_variant (outcome.results, g_variant_new_parsed ("[@t %t, %t]", (guint64)(size / 2),
                                                                    (guint64)(size - size / 2)));
  g_test_message ("map_async() returned after %" G_GINT64_FORMAT " µs; the map took %" G_GINT64_FORMAT
                  " µs, %u ticks of the main loop", returned - started, done - started, ticks);

  /* Generous: the machines are shared. FORK forks on the caller's thread,
   * which copies no data, but under valgrind takes most of this. */
  g_assert_cmpint (returned - started, <, wpool_test_under_valgrind () ? G_USEC_PER_SEC : G_USEC_PER_SEC / 4);
  if (runs_new_program (method) && done - returned > G_USEC_PER_SEC / 10)
    g_assert_cmpuint (ticks, >, 0);
  wpool_test_outcome_clear (&outcome);
}

typedef struct
{
  WpoolPool *pool;
  WpoolTask *task;
  guint      seed;
} Sharer;

static void
check_squares (GVariant *results,
               guint     n)
{
  gsize n_values;
  const double *values = g_variant_get_fixed_array (results, &n_values, sizeof (double));

  g_assert_cmpuint (n_values, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpfloat (values[i], ==, (double)i * i);
}

/* One thread's use of a shared pool: blocking maps, applies, streams and
 * async maps on a context of its own. */
static gpointer
share_pool (gpointer data)
{
  Sharer *sharer = data;
  g_autoptr(GMainContext) context = g_main_context_new ();

  g_main_context_push_thread_default (context);

  for (guint round = 0; round < 6; round++)
    {
      guint n = 10 + (sharer->seed * 7 + round * 13) % 50;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GVariant) one = NULL;
      g_autoptr(WpoolMapStream) stream = NULL;
      WpoolTestOutcome outcome = { 0, };
      GVariant *result = NULL;
      guint index;
      guint n_read = 0;

      results = wpool_pool_map (sharer->pool, sharer->task, wpool_test_range_doubles (n), NULL, &error);
      g_assert_no_error (error);
      check_squares (results, n);

      one = wpool_pool_apply (sharer->pool, sharer->task, g_variant_new_double (round), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpfloat (g_variant_get_double (one), ==, (double)round * round);

      stream = wpool_pool_imap (sharer->pool, sharer->task, wpool_test_range_doubles (n),
                                WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);
      g_assert_no_error (error);
      while (wpool_map_stream_next (stream, &index, &result, NULL, &error))
        {
          g_assert_cmpfloat (g_variant_get_double (result), ==, (double)index * index);
          g_variant_unref (result);
          n_read++;
        }
      g_assert_no_error (error);
      g_assert_cmpuint (n_read, ==, n);

      wpool_pool_map_async (sharer->pool, sharer->task, wpool_test_range_doubles (n), NULL,
                            wpool_test_map_done, &outcome);
      wpool_test_wait_for (&outcome.done);
      g_assert_no_error (outcome.error);
      g_assert_true (outcome.thread == g_thread_self ());
      check_squares (outcome.results, n);
      wpool_test_outcome_clear (&outcome);
    }

  g_main_context_pop_thread_default (context);

  return NULL;
}

/* Several threads map on one pool at once, each in every way, the pool's
 * workers kept alive or not. */
static void
test_threads_share_pool (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);

  for (guint keep_alive = 0; keep_alive < 2; keep_alive++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
      Sharer sharers[4];
      GThread *threads[G_N_ELEMENTS (sharers)];

      wpool_pool_set_keep_alive (pool, keep_alive);
      for (guint i = 0; i < G_N_ELEMENTS (sharers); i++)
        {
          sharers[i] = (Sharer) { pool, task, i };
          threads[i] = g_thread_new ("sharer", share_pool, &sharers[i]);
        }
      for (guint i = 0; i < G_N_ELEMENTS (sharers); i++)
        g_thread_join (threads[i]);

      /* The last map's end stops the workers on the control thread. */
      if (!keep_alive)
        for (guint i = 0; i < 500 && wpool_pool_get_workers_running (pool); i++)
          g_usleep (10 * G_TIME_SPAN_MILLISECOND);
      g_assert_cmpint (wpool_pool_get_workers_running (pool), ==, keep_alive);
    }
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "startup/cancel", test_cancel_start, TRUE },
    { "startup/timeout", test_start_timeout, TRUE },
    { "startup/silent-helper", test_silent_helper, TRUE },
    { "startup/async-returns-at-once", test_async_returns_at_once, FALSE },
    { "startup/threads-share-pool", test_threads_share_pool, FALSE },
    { "startup/program-exits-early", test_program_exits_early, TRUE },
    { "startup/program-cannot-load", test_program_cannot_load, TRUE },
  };
  g_autofree char *pid = g_strdup_printf ("%d", (int)getpid ());

  /* The slow module blocks in every process but this one. */
  g_setenv ("WPOOL_TEST_SLOW_START_PARENT", pid, TRUE);

  g_test_init (&argc, &argv, NULL);
  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  return g_test_run ();
}
