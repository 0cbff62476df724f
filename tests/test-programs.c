/* test-programs.c: program tasks, which run in a worker program of their
 * own (tests/wpool-test-program, which calls wpool_worker_serve() with a
 * resolver), as a language runtime's functions do: under SPAWN and
 * FORKSERVER they map, fail and recover as C tasks do; FORK and THREADING
 * refuse them; wpool_worker_serve() refuses to run outside a pool.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wpool-test-util.h"

#define MODULE "wpool-test-program"

static const char *
program_path (void)
{
  const char *path = g_getenv ("WPOOL_TEST_PROGRAM");

  g_assert_nonnull (path);
  return path;
}

/* The command line of the test program reporting @marker. */
static GStrv
program_argv (const char *marker,
              gboolean    no_fork)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *marker_arg = g_strdup_printf ("--marker=%s", marker);

  g_strv_builder_add_many (builder, program_path (), marker_arg, NULL);
  if (no_fork)
    g_strv_builder_add (builder, "--no-fork");

  return g_strv_builder_end (builder);
}

/* Task @name of the test program reporting @marker. */
static WpoolTask *
program_task (const char *marker,
              const char *name)
{
  g_auto(GStrv) argv = program_argv (marker, FALSE);
  WpoolTask *task = wpool_task_new_for_program ((const char * const *)argv, MODULE, name);

  g_assert_true (WPOOL_IS_TASK (task));
  return task;
}

/* `ai` of 0, 1, …, n - 1. */
static GVariant *
range_int32 (guint n)
{
  g_autofree gint32 *values = g_new (gint32, n);

  for (guint i = 0; i < n; i++)
    values[i] = i;

  return g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, values, n, sizeof (gint32));
}

static gboolean
is_forkserver (gconstpointer data)
{
  return GPOINTER_TO_INT (data) == WPOOL_START_METHOD_FORKSERVER;
}

/* The program a process runs, from /proc. */
static char *
exe_of (guint32 pid)
{
  g_autofree char *link = g_strdup_printf ("/proc/%u/exe", pid);
  g_autoptr(GError) error = NULL;
  char *exe = g_file_read_link (link, &error);

  g_assert_no_error (error);
  return exe;
}

/* Within 2 s: a killed start is reaped within a second or so. */
static void
assert_children_soon (guint expected)
{
  wpool_test_assert_children_soon (expected, 2000);
}

/* Maps whoami over 0 … n - 1 and checks what it says, for every start
 * method that runs programs: the squares in order, from the test
 * program's processes, with @marker. Returns the result, `a(issuuu)`. */
static GVariant *
map_whoami (WpoolPool  *pool,
            WpoolTask  *task,
            const char *marker,
            guint       n)
{
  g_autoptr(GError) error = NULL;
  GVariant *results;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(issuuu)"));
  results = wpool_pool_map (pool, task, range_int32 (n), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, n);

  for (guint i = 0; i < n; i++)
    {
      const char *seen_marker;
      const char *exe;
      gint32 square;
      guint32 pid;

      g_variant_get_child (results, i, "(i&s&suuu)", &square, &seen_marker, &exe, NULL, &pid, NULL);
      g_assert_cmpint (square, ==, (gint32)(i * i));
      g_assert_cmpstr (seen_marker, ==, marker);
      g_assert_true (g_str_has_suffix (exe, "/wpool-test-program"));
      g_assert_cmpuint (pid, !=, getpid ());
    }

  return results;
}

/* The pids of the workers, and of the processes that resolved their
 * task, that whoami's @results name. */
static void
collect_pids (GVariant   *results,
              GHashTable *pids,
              GHashTable *resolver_pids)
{
  for (guint i = 0; i < g_variant_n_children (results); i++)
    {
      guint32 pid;
      guint32 resolver_pid;

      g_variant_get_child (results, i, "(i&s&suuu)", NULL, NULL, NULL, NULL, &pid, &resolver_pid);
      g_hash_table_add (pids, GUINT_TO_POINTER (pid));
      if (resolver_pids != NULL)
        g_hash_table_add (resolver_pids, GUINT_TO_POINTER (resolver_pid));
    }
}

/* The tasks run in the test program, in order; a SPAWN worker resolves
 * its own task, the fork server resolves it once, before it forks, for
 * every worker. */
static void
test_results (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = program_task ("results", "whoami");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) resolver_pids = g_hash_table_new (NULL, NULL);
  guint base_children = wpool_test_count_children ();

  wpool_pool_set_chunk_size (pool, 1);
  results = map_whoami (pool, task, "results", 40);
  collect_pids (results, pids, resolver_pids);
  g_assert_cmpuint (g_hash_table_size (pids), <=, 2);

  for (guint i = 0; i < g_variant_n_children (results); i++)
    {
      guint32 pid;
      guint32 resolver_pid;

      g_variant_get_child (results, i, "(i&s&suuu)", NULL, NULL, NULL, NULL, &pid, &resolver_pid);
      if (is_forkserver (data))
        g_assert_cmpuint (resolver_pid, !=, pid);
      else
        g_assert_cmpuint (resolver_pid, ==, pid);
    }
  if (is_forkserver (data))
    g_assert_cmpuint (g_hash_table_size (resolver_pids), ==, 1);

  /* Without keep-alive nothing is left. */
  assert_children_soon (base_children);
}

/* The results of the test program's "shared" task: the resolver saw
 * @resolver_expected, the task @task_expected (NULL: none), neither
 * floating. */
static void
assert_shared_seen (GVariant *results,
                    GVariant *resolver_expected,
                    GVariant *task_expected)
{
  for (guint i = 0; i < g_variant_n_children (results); i++)
    {
      g_autoptr(GVariant) resolver_saw = NULL;
      g_autoptr(GVariant) task_saw = NULL;
      gboolean resolver_floating;
      gboolean task_floating;

      g_variant_get_child (results, i, "(bbmvmv)", &resolver_floating, &task_floating,
                           &resolver_saw, &task_saw);
      g_assert_false (resolver_floating);
      g_assert_false (task_floating);
      if (resolver_expected == NULL)
        g_assert_null (resolver_saw);
      else
        g_assert_cmpvariant (resolver_saw, resolver_expected);
      if (task_expected == NULL)
        g_assert_null (task_saw);
      else
        g_assert_cmpvariant (task_saw, task_expected);
    }
}

/* The shared objects reach the resolver and the task as the pool's, not
 * floating (a binding would sink them as its own), and both may keep a
 * reference: a plain value, and a tuple sent member by member. */
static void
test_shared_objects (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = program_task ("shared", "shared");
  GVariant *values[] = {
    g_variant_new_string ("plain"),
    g_variant_new_parsed ("([1.5, 2.5], 'label', uint32 7)"),
    NULL,
  };

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(bbmvmv)"));
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_keep_alive (pool, TRUE);

  for (guint v = 0; v < G_N_ELEMENTS (values); v++)
    {
      g_autoptr(GVariant) expected = values[v] ? g_variant_ref_sink (values[v]) : NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_true (wpool_pool_set_shared_objects (pool, expected, &error));
      g_assert_no_error (error);
      results = wpool_pool_map (pool, task, range_int32 (6), NULL, &error);
      g_assert_no_error (error);

      assert_shared_seen (results, expected, expected);

      /* The workers stop, to take other shared objects. */
      g_assert_true (wpool_pool_stop_and_join (pool, &error));
      g_assert_no_error (error);
    }
}

/* WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS: the resolver sees the shared
 * objects, which the worker then drops: its tasks see none (a binding's
 * converted values are their only copy). */
static void
test_take_shared_objects (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_auto(GStrv) argv = program_argv ("take", FALSE);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new_parsed ("([1.5, 2.5], 'label')"));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) taking = NULL;

  g_strv_builder_addv (builder, (const char **)argv);
  g_strv_builder_add (builder, "--take-shared-objects");
  taking = g_strv_builder_end (builder);
  task = wpool_task_new_for_program ((const char * const *)taking, MODULE, "shared");

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(bbmvmv)"));
  wpool_pool_set_chunk_size (pool, 1);
  g_assert_true (wpool_pool_set_shared_objects (pool, expected, &error));
  results = wpool_pool_map (pool, task, range_int32 (6), NULL, &error);
  g_assert_no_error (error);

  assert_shared_seen (results, expected, NULL);
}

/* A resolver that returns NULL without an error leaves the name to
 * libwpool, which loads the C symbol in the program: a worker-init of
 * the test module before a program task, and a program task that names
 * a C symbol. A program worker-init of the same program runs too. */
static void
test_c_fallback (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) c_init = wpool_test_module_task ("wpool_test_init_state");
  g_autoptr(WpoolTask) program_init = program_task ("fallback", "init");
  g_autoptr(WpoolTask) state = program_task ("fallback", "state");
  g_auto(GStrv) argv = program_argv ("fallback", FALSE);
  g_autoptr(WpoolTask) square = wpool_task_new_for_program ((const char * const *)argv,
                                                            wpool_test_module_path (), "wpool_test_square");
  g_autoptr(GError) error = NULL;
  WpoolTask *inits[] = { c_init, program_init };

  wpool_pool_set_chunk_size (pool, 1);
  wpool_task_set_result_type (state, G_VARIANT_TYPE ("(uu)"));

  for (guint n = 0; n < G_N_ELEMENTS (inits); n++)
    {
      g_autoptr(GVariant) results = NULL;

      g_assert_true (wpool_pool_set_worker_init (pool, inits[n], &error));
      g_assert_no_error (error);
      results = wpool_pool_map (pool, state, range_int32 (8), NULL, &error);
      g_assert_no_error (error);

      /* The init ran in the worker that runs the items. */
      for (guint i = 0; i < g_variant_n_children (results); i++)
        {
          guint32 init_pid;
          guint32 pid;

          g_variant_get_child (results, i, "(uu)", &init_pid, &pid);
          g_assert_cmpuint (init_pid, ==, pid);
          g_assert_cmpuint (pid, !=, getpid ());
        }
    }

  {
    g_autoptr(GVariant) results = NULL;

    g_assert_true (wpool_pool_set_worker_init (pool, NULL, &error));
    wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
    results = wpool_pool_map (pool, square, wpool_test_range_doubles (4), NULL, &error);
    g_assert_no_error (error);
    wpool_test_assert_variant (results, g_variant_new_parsed ("[0.0, 1.0, 4.0, 9.0]"));
  }
}

/* A resolver's error fails the worker's start, which the caller sees
 * with the resolver's message; so does a resolver that gives a task no
 * worker can run. Nothing is left running, and the pool maps again. Kept
 * alive, a pool's workers (and fork server) of the same program, started
 * for another task, do not hide the message. */
static void
test_resolver_error (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) fail = program_task ("error", "fail");
  g_autoptr(WpoolTask) bad = program_task ("error", "bad");
  g_autoptr(WpoolTask) whoami = program_task ("error", "whoami");
  g_autofree char *expected = NULL;
  g_autofree char *expected_bad = NULL;
  const char *prefix = is_forkserver (data) ? "The fork server cannot start: " : "";
  g_autoptr(GVariant) warm_up = NULL;
  guint base_children;
  guint base_fds;
  g_autoptr(GError) error = NULL;

  /* GLib keeps a few fds from the first program it starts. */
  warm_up = map_whoami (pool, whoami, "error", 2);
  base_children = wpool_test_count_children ();
  base_fds = wpool_test_count_fds ();

  expected = g_strdup_printf ("%s%s cannot start: no task “fail” in " MODULE, prefix, program_path ());
  expected_bad = g_strdup_printf ("%s%s cannot start: The worker program's resolver gave no task it "
                                  "can run for “bad” of “" MODULE "”", prefix, program_path ());

  for (guint keep_alive = 0; keep_alive < 2; keep_alive++)
    {
      g_autoptr(GVariant) results = NULL;

      wpool_pool_set_keep_alive (pool, keep_alive);
      if (keep_alive)
        {
          results = map_whoami (pool, whoami, "error", 4);
          g_clear_pointer (&results, g_variant_unref);
        }

      wpool_test_assert_map_fails (pool, fail, range_int32 (4), NULL, WPOOL_ERROR, WPOOL_ERROR_FAILED, expected);
      if (!keep_alive)
        {
          assert_children_soon (base_children);
          wpool_test_assert_fds (base_fds);
        }

      wpool_test_assert_map_fails (pool, bad, range_int32 (4), NULL, WPOOL_ERROR, WPOOL_ERROR_FAILED, expected_bad);
      if (!keep_alive)
        assert_children_soon (base_children);

      results = map_whoami (pool, whoami, "error", 4);
    }

  assert_children_soon (base_children + wpool_test_expected_children (method, 2));
  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_no_error (error);
  assert_children_soon (base_children);
  wpool_test_assert_fds (base_fds);
}

/* A program that cannot fork (GJS) serves SPAWN pools, and tells a
 * FORKSERVER pool to use SPAWN: it reads the setup (1 MiB of shared
 * objects) first, for the pool to be able to read its answer. */
static void
test_no_fork (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_auto(GStrv) argv = program_argv ("no-fork", TRUE);
  g_autoptr(WpoolTask) task = wpool_task_new_for_program ((const char * const *)argv, MODULE, "whoami");
  g_autoptr(GVariant) results = NULL;
  g_autofree char *expected = NULL;
  guint base_children = wpool_test_count_children ();

  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_test_range_doubles (1 << 17), NULL));
  if (!is_forkserver (data))
    {
      results = map_whoami (pool, task, "no-fork", 6);
      return;
    }

  expected = g_strdup_printf ("The fork server cannot start: %s cannot start: This worker program (%s) "
                              "cannot fork its workers: use SPAWN", program_path (), program_path ());
  wpool_test_assert_map_fails (pool, task, range_int32 (6), NULL, WPOOL_ERROR, WPOOL_ERROR_FAILED, expected);
  assert_children_soon (base_children);
}

/* A worker runs one program: a worker-init of another program than the
 * task's is refused, and so is a program worker-init before a C task. */
static void
test_one_program (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = program_task ("one", "state");
  g_autoptr(WpoolTask) other_init = program_task ("other", "init");
  g_autoptr(WpoolTask) c_task = wpool_test_module_task ("wpool_test_square");
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();

  /* Accepted as such: only the task it comes with decides. */
  g_assert_true (wpool_pool_set_worker_init (pool, other_init, &error));
  g_assert_no_error (error);

  expected = g_strdup_printf ("The worker-init runs in the worker program “%s”, but the task in %s: "
                              "a worker runs one program", program_path (), program_path ());
  wpool_test_assert_map_fails (pool, task, range_int32 (2), NULL, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, expected);

  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("The worker-init runs in the worker program “%s”, but the task in "
                              "libwpool's helper", program_path ());
  wpool_test_assert_map_fails (pool, c_task, wpool_test_range_doubles (2), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, expected);

  g_assert_true (wpool_pool_set_worker_exit (pool, other_init, &error));
  g_assert_true (wpool_pool_set_worker_init (pool, NULL, &error));
  wpool_test_assert_map_fails (pool, task, range_int32 (2), NULL, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                               "The worker-exit runs in the worker program");
  assert_children_soon (base_children);
}

/* On a kept-alive pool a program task, a C task, another program's task
 * and the first program's again each get workers of their own program:
 * new processes, and under FORKSERVER a new server for each program. */
static void
test_switch_programs (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) one = program_task ("one", "whoami");
  g_autoptr(WpoolTask) two = program_task ("two", "whoami");
  g_autoptr(WpoolTask) c_task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) resolver_pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();
  guint n_workers = 0;
  guint n_resolvers = 0;
  const struct { WpoolTask *task; const char *marker; } runs[] = {
    { one, "one" }, { NULL, NULL }, { two, "two" }, { one, "one" },
  };

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_task_set_result_type (c_task, G_VARIANT_TYPE ("(uut)"));

  for (guint r = 0; r < G_N_ELEMENTS (runs); r++)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GHashTable) run_pids = g_hash_table_new (NULL, NULL);
      g_autoptr(GHashTable) run_resolvers = g_hash_table_new (NULL, NULL);
      GHashTableIter iter;
      gpointer pid;

      if (runs[r].task != NULL)
        {
          results = map_whoami (pool, runs[r].task, runs[r].marker, 12);
          collect_pids (results, run_pids, run_resolvers);
        }
      else
        {
          results = wpool_pool_map (pool, c_task, wpool_test_range_doubles (12), NULL, &error);
          g_assert_no_error (error);
          for (guint i = 0; i < g_variant_n_children (results); i++)
            {
              guint32 c_pid;

              g_variant_get_child (results, i, "(uut)", NULL, &c_pid, NULL);
              g_hash_table_add (run_pids, GUINT_TO_POINTER (c_pid));
            }
        }

      /* New processes each time, of the task's program. */
      g_hash_table_iter_init (&iter, run_pids);
      while (g_hash_table_iter_next (&iter, &pid, NULL))
        {
          g_autofree char *exe = exe_of (GPOINTER_TO_UINT (pid));

          g_assert_false (g_hash_table_contains (pids, pid));
          g_hash_table_add (pids, pid);
          n_workers++;
          g_assert_true (g_str_has_suffix (exe, runs[r].task != NULL ? "/wpool-test-program" : "/wpool-worker"));
        }

      /* A new fork server for each program. */
      g_hash_table_iter_init (&iter, run_resolvers);
      while (g_hash_table_iter_next (&iter, &pid, NULL))
        {
          g_assert_false (g_hash_table_contains (resolver_pids, pid));
          g_hash_table_add (resolver_pids, pid);
          n_resolvers++;
        }

      /* The old workers, and the old server, are gone. */
      assert_children_soon (base_children + wpool_test_expected_children (method, 2));
    }

  g_assert_cmpuint (g_hash_table_size (pids), ==, n_workers);
  if (is_forkserver (data))
    g_assert_cmpuint (n_resolvers, ==, 3);

  g_assert_true (wpool_pool_stop_and_join (pool, &error));
  g_assert_no_error (error);
  assert_children_soon (base_children);
}

/* Whether process @pid runs, not ended nor a zombie. */
static gboolean
process_runs (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *stat = NULL;
  const char *after_comm;

  if (!g_file_get_contents (path, &stat, NULL, NULL) || !(after_comm = strrchr (stat, ')')))
    return FALSE;

  return after_comm[1] == ' ' && after_comm[2] != 'Z' && after_comm[2] != 'X';
}

/* Kept-alive workers of a program serve map after map: the same process
 * for each worker id, resolved once, alive between maps and gone with
 * the pool. */
static void
test_keep_alive (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = program_task ("kept", "whoami");
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GHashTable) resolvers = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  guint32 pid_of[2] = { 0, 0 };
  guint base_children = wpool_test_count_children ();
  GHashTableIter iter;
  gpointer pid;

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  first = map_whoami (pool, task, "kept", 30);
  assert_children_soon (base_children + wpool_test_expected_children (method, 2));
  second = map_whoami (pool, task, "kept", 30);

  /* A worker id is one process in both maps. */
  for (guint m = 0; m < 2; m++)
    for (guint i = 0; i < 30; i++)
      {
        guint32 id;
        guint32 worker_pid;

        g_variant_get_child (m == 0 ? first : second, i, "(i&s&suuu)", NULL, NULL, NULL, &id, &worker_pid, NULL);
        g_assert_cmpuint (id, <, 2);
        if (pid_of[id] == 0)
          pid_of[id] = worker_pid;
        g_assert_cmpuint (worker_pid, ==, pid_of[id]);
      }

  collect_pids (first, pids, resolvers);
  collect_pids (second, pids, resolvers);
  g_assert_cmpuint (g_hash_table_size (pids), <=, 2);
  g_assert_cmpuint (g_hash_table_size (resolvers), <=, is_forkserver (data) ? 1 : 2);

  /* The first map's workers outlived it, and run still. */
  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    g_assert_true (process_runs (GPOINTER_TO_UINT (pid)));

  g_clear_object (&pool);
  assert_children_soon (base_children);
  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    g_assert_false (process_runs (GPOINTER_TO_UINT (pid)));
}

/* A worker program killed in the middle of an item fails that item only
 * under keep-going: a new worker of the program takes its slot, and
 * every other item runs. */
static void
test_worker_death (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = program_task ("death", "die");
  const char *items[] = { "a", "kill", "b", "c", "kill", "d", "e", "f" };
  GError *errors[G_N_ELEMENTS (items)] = { NULL, };
  g_autoptr(GPtrArray) results = NULL;
  guint base_children = wpool_test_count_children ();

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_test_keep_going_map (pool, task, items, G_N_ELEMENTS (items), 0, errors);
  wpool_test_assert_keep_going (results, errors, items, G_N_ELEMENTS (items), 1 << 1 | 1 << 4);

  /* The slots hold live workers, and nothing dead is left behind. */
  assert_children_soon (base_children + wpool_test_expected_children (method, 2));
}

/* A program's item past the task timeout fails the map, naming it; the
 * worker is replaced and the next map runs. */
static void
test_task_timeout (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  double timeout = wpool_test_under_valgrind () ? 2.0 : 0.4;
  guint32 hang_ms = (guint32)(timeout * 4000);
  guint32 items[] = { 10, 10, hang_ms, 10, 10, 10 };
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = program_task ("timeout", "sleep");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint base_children = wpool_test_count_children ();
  gint64 started;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_task_timeout (pool, timeout);

  started = g_get_monotonic_time ();
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            NULL, &error);
  g_assert_null (results);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_assert_true (g_str_has_prefix (error->message, "Item 2: worker "));
  g_assert_nonnull (strstr (error->message, "task timeout"));
  /* Not waited for: a bound far from both the timeout and the item. */
  g_assert_cmpint (g_get_monotonic_time () - started, <, hang_ms * G_TIME_SPAN_MILLISECOND * 3 / 4);
  g_clear_error (&error);

  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, 2, sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[uint32 10, 10]"));
  assert_children_soon (base_children + wpool_test_expected_children (method, 2));

  g_clear_object (&pool);
  assert_children_soon (base_children);
}

/* Cancelling a map of a program's long items ends it soon, and the pool
 * maps again. */
static void
test_cancel (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) sleeper = program_task ("cancel", "sleep");
  g_autoptr(WpoolTask) whoami = program_task ("cancel", "whoami");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GVariant) results = NULL;
  guint base_children = wpool_test_count_children ();
  gint64 start = g_get_monotonic_time ();
  GThread *canceller;

  wpool_pool_set_chunk_size (pool, 1);
  canceller = wpool_test_cancel_later (cancellable, 100);
  /* 2 000 items of 10 ms on 2 workers: 10 s uncancelled. */
  wpool_test_assert_map_fails (pool, sleeper, wpool_test_repeat_uint32 (2000, 10), cancellable,
                               G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
  g_thread_join (canceller);
  /* A generous bound: only proves it did not run to the end. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  assert_children_soon (base_children);

  results = map_whoami (pool, whoami, "cancel", 5);
}

/* wpool_worker_report_error() in a program's task fails the item with
 * that error, as a task's own GError does. */
static void
test_report_error (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = program_task ("report", "report");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);
  wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("[1, 2, -3, 4]"), NULL,
                               G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "a negative item");

  results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1, 2, 3]"), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[1, 2, 3]"));
}

/* FORK and THREADING run no program: they refuse a program task, as the
 * task and as a worker-init, and map C tasks still. */
static void
test_refused (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = program_task ("refused", "whoami");
  g_autoptr(WpoolTask) init = program_task ("refused", "init");
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;

  expected = g_strdup_printf ("The task runs in a worker program of its own (“%s”), which only SPAWN and "
                              "FORKSERVER pools start, not a %s one", program_path (),
                              method == WPOOL_START_METHOD_FORK ? "fork" : "threading");
  wpool_test_assert_map_fails (pool, task, range_int32 (3), NULL, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, expected);

  g_assert_false (wpool_pool_set_worker_init (pool, init, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
  g_assert_true (g_str_has_prefix (error->message, "Cannot use this task as the worker-init: "));
  g_assert_nonnull (strstr (error->message, expected));
  g_assert_null (wpool_pool_get_worker_init (pool));
  g_clear_error (&error);

  wpool_task_set_result_type (square, G_VARIANT_TYPE_DOUBLE);
  results = wpool_pool_map (pool, square, wpool_test_range_doubles (3), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[0.0, 1.0, 4.0]"));
}

/* A program task gives its command line back; other tasks have none. */
static void
test_task_program (void)
{
  g_auto(GStrv) argv = program_argv ("property", TRUE);
  g_autoptr(WpoolTask) task = wpool_task_new_for_program ((const char * const *)argv, MODULE, "whoami");
  g_autoptr(WpoolTask) symbol = wpool_test_module_task ("wpool_test_square");
  g_auto(GStrv) from_property = NULL;
  g_auto(GStrv) none = NULL;

  /* A copy: the caller's array may go. */
  g_assert_true (wpool_task_get_program (task) != (const char * const *)argv);
  g_assert_true (g_strv_equal (wpool_task_get_program (task), (const char * const *)argv));
  g_assert_cmpstr (wpool_task_get_module_path (task), ==, MODULE);
  g_assert_cmpstr (wpool_task_get_symbol (task), ==, "whoami");
  g_object_get (task, "program", &from_property, NULL);
  g_assert_true (g_strv_equal ((const char * const *)from_property, (const char * const *)argv));

  g_assert_null (wpool_task_get_program (symbol));
  g_object_get (symbol, "program", &none, NULL);
  g_assert_null (none);
}

static void
test_task_program_guards (void)
{
  const char *empty[] = { NULL };
  const char *empty_name[] = { "", NULL };
  const char *argv[] = { "program", NULL };
  const struct { const char * const *argv; const char *module; const char *name; const char *message; } bad[] = {
    { NULL, MODULE, "whoami", "*argv != NULL*" },
    { empty, MODULE, "whoami", "*argv[0] != NULL*" },
    { empty_name, MODULE, "whoami", "*argv[0] != '\\0'*" },
    { argv, NULL, "whoami", "*module != NULL*" },
    { argv, "", "whoami", "*module != '\\0'*" },
    { argv, MODULE, NULL, "*name != NULL*" },
    { argv, MODULE, "", "*name != '\\0'*" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_expect_message ("Wpool", G_LOG_LEVEL_CRITICAL, bad[i].message);
      g_assert_null (wpool_task_new_for_program (bad[i].argv, bad[i].module, bad[i].name));
      g_test_assert_expected_messages ();
    }

  g_test_expect_message ("Wpool", G_LOG_LEVEL_CRITICAL, "*WPOOL_IS_TASK*");
  g_assert_null (wpool_task_get_program (NULL));
  g_test_assert_expected_messages ();
}

/* A file descriptor still open, as before. */
static void
assert_fd_open (int fd)
{
  g_assert_cmpint (fcntl (fd, F_GETFD), >=, 0);
}

/* Command lines no pool gave: refused with INVALID_ARGUMENT before
 * anything is done (the descriptors named stay open). */
static void
test_serve_not_a_pool (void)
{
  g_autofree char *file = NULL;
  g_autofree char *file_fd_arg = NULL;
  g_autofree char *socket_fd_arg = NULL;
  g_autoptr(GError) error = NULL;
  guint base_fds;
  int fds[2];
  int file_fd;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  file_fd = g_file_open_tmp ("wpool-not-a-socket-XXXXXX", &file, &error);
  g_assert_no_error (error);
  g_unlink (file);
  file_fd_arg = g_strdup_printf ("--progress-fd=%d", file_fd);
  socket_fd_arg = g_strdup_printf ("--socket-fd=%d", fds[0]);
  base_fds = wpool_test_count_fds ();

  {
    g_autofree char *not_socket = g_strdup_printf ("--socket-fd=%d", file_fd);
    const char *none[] = { NULL };
    const char *own_only[] = { "program", "--marker=x", NULL };
    const char *file_socket[] = { "program", "--mode=worker", not_socket, file_fd_arg, NULL };
    const char *bad_mode[] = { "program", "--mode=bogus", socket_fd_arg, file_fd_arg, NULL };
    const char *no_progress[] = { "program", "--mode=worker", socket_fd_arg, NULL };
    const char *closed_socket[] = { "program", "--mode=server", "--socket-fd=999", file_fd_arg, NULL };
    const char * const *args[] = { NULL, none, own_only, file_socket, bad_mode, no_progress, closed_socket };

    for (guint i = 0; i < G_N_ELEMENTS (args); i++)
      {
        g_assert_false (wpool_worker_serve (args[i], WPOOL_SERVE_FLAGS_NONE, NULL, NULL, &error));
        g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull (strstr (error->message, "Not started by a pool"));
        g_clear_error (&error);

        /* Nothing closed, nothing opened, nothing written. */
        g_assert_cmpuint (wpool_test_count_fds (), ==, base_fds);
        assert_fd_open (file_fd);
        assert_fd_open (fds[0]);
      }
  }

  {
    char byte;

    g_assert_cmpint (recv (fds[1], &byte, 1, MSG_DONTWAIT), <, 0);
  }

  close (file_fd);
  close (fds[0]);
  close (fds[1]);
}

/* A socket, but a progress page that cannot be mapped: FAILED, and the
 * pool's end is told why. */
static void
test_serve_failed_setup (void)
{
  g_autofree char *file = NULL;
  g_autofree char *progress_arg = NULL;
  g_autofree char *socket_arg = NULL;
  g_autoptr(GError) error = NULL;
  const char *args[5] = { "program", "--mode=worker", NULL, NULL, NULL };
  char buffer[256];
  int fds[2];
  int progress_fd;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  /* Empty: no page to map. */
  progress_fd = g_file_open_tmp ("wpool-progress-XXXXXX", &file, &error);
  g_assert_no_error (error);
  g_unlink (file);
  args[2] = socket_arg = g_strdup_printf ("--socket-fd=%d", fds[0]);
  args[3] = progress_arg = g_strdup_printf ("--progress-fd=%d", progress_fd);
  /* No setup comes: it reads to the end before it answers. */
  g_assert_cmpint (shutdown (fds[1], SHUT_WR), ==, 0);

  g_assert_false (wpool_worker_serve (args, WPOOL_SERVE_FLAGS_NONE, NULL, NULL, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "Cannot serve the pool: Cannot map the progress page");

  /* Its READY frame says so; the progress fd was taken. */
  g_assert_cmpint (recv (fds[1], buffer, sizeof buffer, MSG_DONTWAIT), >, 0);
  g_assert_cmpint (fcntl (progress_fd, F_GETFD), <, 0);

  close (fds[0]);
  close (fds[1]);
}

/* Run by hand, the helper and the test program refuse, exit status 2. */
static void
test_run_alone (void)
{
  const char *programs[] = { g_getenv ("WPOOL_WORKER"), program_path () };

  for (guint i = 0; i < G_N_ELEMENTS (programs); i++)
    {
      const char *argv[] = { programs[i], "--mode=worker", NULL };
      g_autofree char *err = NULL;
      g_autoptr(GError) error = NULL;
      int status;

      g_assert_nonnull (programs[i]);
      g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                   NULL, &err, &status, &error));
      g_assert_no_error (error);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 2);
      g_assert_nonnull (strstr (err, "Not started by a pool"));
    }
}

int
main (int   argc,
      char *argv[])
{
  const struct { WpoolStartMethod method; const char *name; } runners[] = {
    { WPOOL_START_METHOD_SPAWN, "spawn" },
    { WPOOL_START_METHOD_FORKSERVER, "forkserver" },
  };
  const struct { WpoolStartMethod method; const char *name; } refusers[] = {
    { WPOOL_START_METHOD_THREADING, "threading" },
    { WPOOL_START_METHOD_FORK, "fork" },
  };
  const struct { const char *name; GTestDataFunc func; } tests[] = {
    { "results", test_results },
    { "shared-objects", test_shared_objects },
    { "take-shared-objects", test_take_shared_objects },
    { "c-fallback", test_c_fallback },
    { "resolver-error", test_resolver_error },
    { "no-fork", test_no_fork },
    { "one-program", test_one_program },
    { "switch-programs", test_switch_programs },
    { "keep-alive", test_keep_alive },
    { "worker-death", test_worker_death },
    { "task-timeout", test_task_timeout },
    { "cancel", test_cancel },
    { "report-error", test_report_error },
  };

  /* Not a child subreaper, as test-start-methods is: a worker program
   * killed as it exits (one that failed to start) may leave processes of
   * its own, such as LeakSanitizer's, which would come to this one. Its
   * workers are checked by pid instead. */
  g_test_init (&argc, &argv, NULL);

  for (guint m = 0; m < G_N_ELEMENTS (runners); m++)
    for (guint t = 0; t < G_N_ELEMENTS (tests) && wpool_test_start_method_enabled (runners[m].name); t++)
      {
        g_autofree char *path = g_strdup_printf ("/%s/program/%s", runners[m].name, tests[t].name);

        g_test_add_data_func (path, GINT_TO_POINTER (runners[m].method), tests[t].func);
      }

  for (guint m = 0; m < G_N_ELEMENTS (refusers); m++)
    if (wpool_test_start_method_enabled (refusers[m].name))
      {
        g_autofree char *path = g_strdup_printf ("/%s/program/refused", refusers[m].name);

        g_test_add_data_func (path, GINT_TO_POINTER (refusers[m].method), test_refused);
      }

  g_test_add_func ("/program/task", test_task_program);
  g_test_add_func ("/program/task/guards", test_task_program_guards);
  g_test_add_func ("/worker-serve/not-a-pool", test_serve_not_a_pool);
  g_test_add_func ("/worker-serve/failed-setup", test_serve_failed_setup);
  g_test_add_func ("/worker-serve/run-alone", test_run_alone);

  return g_test_run ();
}
