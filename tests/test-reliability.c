/* test-reliability.c: faults that once broke a map, run per start method:
 * deaths under keep-going, deaths hidden by a worker's own children,
 * workers outliving the thread that started them, nested pools, a dead
 * fork server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wpool-test-util.h"

/* A keep-going map of wpool_test_die over @items. */
static GPtrArray *
keep_going_map (WpoolPool   *pool,
                const char **items,
                guint        n_items,
                GError     **errors)
{
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");

  return wpool_test_keep_going_map (pool, task, items, n_items, WPOOL_MAP_FLAGS_UNORDERED, errors);
}

/* Two items that kill their worker on a two-worker pool fail alone: new
 * workers take the dead ones' slots mid-map, and every later item runs. */
static void
test_keep_going_replaces (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  const char *items[] = { "exit", "segv", "a", "b", "c", "d", "e", "f", "g", "h" };
  GError *errors[G_N_ELEMENTS (items)] = { NULL, };
  g_autoptr(GPtrArray) results = NULL;
  guint base_children = wpool_test_count_children ();

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  results = keep_going_map (pool, items, G_N_ELEMENTS (items), errors);

  wpool_test_assert_keep_going (results, errors, items, G_N_ELEMENTS (items), 0x3);

  /* The slots hold live workers, and nothing dead is left behind. */
  g_assert_cmpuint (wpool_test_count_children (), ==,
                    base_children + wpool_test_expected_children (method, 2));
}

/* A worker whose task closes its own fds, and then dies or returns,
 * fails that item only: the other items of its chunk all run, whenever
 * the worker dies. */
static void
test_keep_going_closed_fds (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  const char *items[] = { "a", "b", "c", "close-exit", "e", "f", "close-return", "h" };

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 8);

  for (guint run = 0; run < 5; run++)
    {
      GError *errors[G_N_ELEMENTS (items)] = { NULL, };
      g_autoptr(GPtrArray) results = keep_going_map (pool, items, G_N_ELEMENTS (items), errors);

      wpool_test_assert_keep_going (results, errors, items, G_N_ELEMENTS (items),
                                    1 << 3 | 1 << 6);
    }
}

/* A worker that dies leaving a child that holds its socket is seen dead
 * at once, from the process itself, and not taken for a timeout. */
static void
test_death_behind_child (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  gint64 started;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_task_timeout (pool, 3);

  started = g_get_monotonic_time ();
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("['orphan']"), NULL, &error);
  g_assert_null (results);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  /* Under valgrind the status is valgrind's. */
  if (!wpool_test_under_valgrind ())
    g_assert_nonnull (strstr (error->message, "exited with status 3"));
  /* The child holds the socket for 5 s, the timeout is 3 s. */
  g_assert_cmpint (g_get_monotonic_time () - started, <, 2 * G_USEC_PER_SEC);
  g_clear_error (&error);

  /* The pool goes on with a new worker. */
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("['a']"), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("['a']"));
}

static gint
compare_pids (gconstpointer a,
              gconstpointer b)
{
  return atoi (*(char * const *)a) - atoi (*(char * const *)b);
}

/* The live processes below this one: its children and theirs (a fork
 * server's workers), as a sorted list of pids; a zombie counts as dead. */
static char *
live_descendants (void)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) queue = g_array_new (FALSE, FALSE, sizeof (int));
  int self = getpid ();

  g_array_append_val (queue, self);
  for (guint q = 0; q < queue->len; q++)
    {
      g_autofree char *task_dir = g_strdup_printf ("/proc/%d/task", g_array_index (queue, int, q));
      g_autoptr(GDir) dir = g_dir_open (task_dir, 0, NULL);
      const char *tid;

      while (dir != NULL && (tid = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (task_dir, tid, "children", NULL);
          g_autofree char *children = NULL;
          g_auto(GStrv) pids = NULL;

          if (!g_file_get_contents (path, &children, NULL, NULL))
            continue;
          pids = g_strsplit (g_strstrip (children), " ", -1);
          for (guint i = 0; pids[i] != NULL && *pids[i] != '\0'; i++)
            {
              g_autofree char *stat_path = g_strdup_printf ("/proc/%s/stat", pids[i]);
              g_autofree char *stat = NULL;
              const char *state;
              int pid = atoi (pids[i]);

              if (!g_file_get_contents (stat_path, &stat, NULL, NULL) ||
                  (state = strrchr (stat, ')')) == NULL || state[2] == 'Z')
                continue;
              g_ptr_array_add (found, g_strdup (pids[i]));
              g_array_append_val (queue, pid);
            }
        }
    }

  g_ptr_array_sort (found, compare_pids);
  g_ptr_array_add (found, NULL);

  return g_strjoinv (" ", (char **)found->pdata);
}

static WpoolTask *square_task;

static gpointer
start_workers (gpointer data)
{
  g_autoptr(GError) error = NULL;
  GVariant *results = wpool_pool_map (data, square_task, wpool_test_range_doubles (4), NULL, &error);

  g_assert_no_error (error);

  return results;
}

/* Workers live as long as their pool, whatever thread started them: a
 * thread that started them and ended takes none with it. */
static void
test_starting_thread_exits (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = square_task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) before = NULL;
  g_autoptr(GVariant) after = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *started = NULL;
  g_autofree char *later = NULL;
  g_autofree char *at_end = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);
  before = g_thread_join (g_thread_new ("starter", start_workers, pool));
  started = live_descendants ();
  g_assert_cmpstr (started, !=, "");

  /* Time for a death signal to land, had it been sent. */
  g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  later = live_descendants ();
  g_assert_cmpstr (later, ==, started);

  after = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpvariant (after, before);
  at_end = live_descendants ();
  g_assert_cmpstr (at_end, ==, started);
}

/* A task may make a pool of its own in any worker: a forked worker does
 * not inherit the locks of the pool's process. A FORK worker, which lacks
 * GLib's worker thread, refuses SPAWN and FORKSERVER pools, saying why. A
 * FORK pool in a worker thread forks a process whose other threads are
 * busy, which FORK never makes safe: not tried there. */
static void
test_nested_pools (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_nested_map");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  WpoolStartMethod inner[6] = {
    WPOOL_START_METHOD_FORK, WPOOL_START_METHOD_THREADING, WPOOL_START_METHOD_SPAWN,
    WPOOL_START_METHOD_FORKSERVER, WPOOL_START_METHOD_FORK, WPOOL_START_METHOD_FORK,
  };
  GVariantBuilder items;

  if (method == WPOOL_START_METHOD_FORK)
    inner[2] = inner[3] = WPOOL_START_METHOD_THREADING;
  else if (method == WPOOL_START_METHOD_THREADING)
    inner[0] = inner[4] = inner[5] = WPOOL_START_METHOD_SPAWN;

  g_variant_builder_init (&items, G_VARIANT_TYPE ("au"));
  for (guint i = 0; i < G_N_ELEMENTS (inner); i++)
    g_variant_builder_add (&items, "u", inner[i]);

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_pool_map (pool, task, g_variant_builder_end (&items), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[14.0, 14.0, 14.0, 14.0, 14.0, 14.0]"));

  if (method == WPOOL_START_METHOD_FORK)
    wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("[%u]", WPOOL_START_METHOD_SPAWN), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, "cannot run in a FORK worker");
}

/* A forked worker that frees its copy of a pool of the caller's (as a
 * language's garbage collector may, collecting what the caller left for
 * it): the pool's threads and workers are the caller's, and the worker
 * leaves them alone. It crashed joining a control thread it does not
 * have. */
static GVariant *
free_inherited_pool (WpoolWorker  *worker,
                     GVariant     *shared_objects,
                     GVariant     *item,
                     gpointer      data,
                     GError      **error)
{
  /* Once per worker process: its copy holds the caller's one reference. */
  static gboolean freed;

  if (!freed)
    g_object_unref (data);
  freed = TRUE;
  return g_variant_new_int32 (g_variant_get_int32 (item) + 1);
}

static void
test_inherited_pool_freed (void)
{
  WpoolPool *inherited = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) task = wpool_task_new (free_inherited_pool, inherited, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome outcome = { 0, };

  /* Its control thread and its worker threads run. */
  wpool_pool_set_keep_alive (inherited, TRUE);
  wpool_pool_map_async (inherited, square, wpool_test_range_doubles (10), NULL, wpool_test_map_done, &outcome);
  wpool_test_wait_for (&outcome.done);
  g_assert_no_error (outcome.error);
  g_assert_true (wpool_pool_get_workers_running (inherited));

  wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1, 2, 3, 4]"), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[2, 3, 4, 5]"));

  /* The caller's own is untouched. */
  g_assert_true (wpool_pool_get_workers_running (inherited));
  wpool_test_outcome_clear (&outcome);
  g_object_unref (inherited);
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "reliability/keep-going/replaces-dead-workers", test_keep_going_replaces, TRUE },
    { "reliability/keep-going/closed-fds", test_keep_going_closed_fds, TRUE },
    { "reliability/death-behind-child", test_death_behind_child, TRUE },
    { "reliability/starting-thread-exits", test_starting_thread_exits, TRUE },
    { "reliability/nested-pools", test_nested_pools, FALSE },
  };

  g_test_init (&argc, &argv, NULL);
  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));
  g_test_add_func ("/fork/reliability/inherited-pool-freed", test_inherited_pool_freed);

  return g_test_run ();
}
