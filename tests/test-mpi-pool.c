/* test-mpi-pool.c: WPOOL_START_METHOD_MPI through the public API, under
 * mpirun.
 *
 * Run as `mpirun -np 1` it spawns its workers (the wpool-worker helper);
 * as `mpirun -np N` ranks 1 to N-1 serve from wpool_worker_serve(), the
 * first thing main() does, and rank 0 runs the tests; with
 * `mpirun -np 1 test-mpi-pool : -np N wpool-worker` the helper serves.
 * WPOOL_MPI_TEST_NODE_SIZE splits the ranks into simulated nodes, each
 * with its own copy of the shared objects.
 *
 * --expect-timeout runs one map whose item overruns its timeout instead:
 * the worker is lost, and the job must end, with a message, when MPI
 * finalizes; --die, a map whose worker dies, which ends the job at once
 * (test-mpi-ends.sh checks what mpirun says of both).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <wpool.h>

#include "wpool-test-util.h"

static guint n_workers;

static WpoolTask *
symbol_task (const char         *symbol,
             const GVariantType *result_type)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_MODULE"), symbol, &error);

  g_assert_no_error (error);
  wpool_task_set_result_type (task, result_type);
  return task;
}

static WpoolTask *
square_plus_one_chunk_task (void)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task = wpool_task_new_for_chunk_symbol (g_getenv ("WPOOL_TEST_MODULE"), "wpool_test_square_plus_one_chunk",
                                                     G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE, &error);

  g_assert_no_error (error);
  return task;
}

static WpoolPool *
mpi_pool (void)
{
  return wpool_pool_new (n_workers, WPOOL_START_METHOD_MPI);
}

/* Results in order, through the shared objects, on a pool kept alive
 * across maps: the same workers (pids) serve the second map. */
static void
test_map (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(WpoolTask) scaled = symbol_task ("wpool_test_scaled", G_VARIANT_TYPE_DOUBLE);
  g_autoptr(WpoolTask) whoami = symbol_task ("wpool_test_whoami", G_VARIANT_TYPE ("(uut)"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);

  wpool_pool_set_keep_alive (pool, TRUE);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new ("(dd)", 2.0, 0.5), &error));

  for (int round = 0; round < 2; round++)
    {
      g_autoptr(GVariant) results = wpool_pool_map (pool, scaled, wpool_test_range_doubles (1000), NULL, &error);
      const double *values;
      gsize n;

      g_assert_no_error (error);
      values = g_variant_get_fixed_array (results, &n, sizeof (double));
      g_assert_cmpuint (n, ==, 1000);
      for (guint i = 0; i < n; i++)
        g_assert_cmpfloat (values[i], ==, i * 2.0 + 0.5);
    }

  /* A new task: a new conversation with the same processes. */
  for (int round = 0; round < 2; round++)
    {
      g_autoptr(GVariant) items = wpool_test_range_doubles (64);
      g_autoptr(GVariant) results = wpool_pool_map (pool, whoami, g_variant_ref_sink (items), NULL, &error);

      g_assert_no_error (error);
      for (gsize i = 0; i < g_variant_n_children (results); i++)
        {
          guint32 id;
          guint32 pid;

          g_variant_get_child (results, i, "(uut)", &id, &pid, NULL);
          g_assert_cmpuint (id, <, n_workers);
          g_hash_table_add (pids, GUINT_TO_POINTER (pid));
        }
    }
  g_assert_cmpuint (g_hash_table_size (pids), <=, n_workers);
}

/* A chunk task's chunks, large enough to go in pieces. */
static void
test_chunk_task (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = square_plus_one_chunk_task ();
  guint n = 400000;
  g_autofree double *items = g_new (double, n);
  g_autofree double *results = g_new0 (double, n);

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    items[i] = i % 1000;

  wpool_pool_set_chunk_size (pool, 100000);
  g_assert_true (wpool_pool_map_chunks (pool, task, items, n, results, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    g_assert_cmpfloat (results[i], ==, items[i] * items[i] + 1);
}

/* Which simulated node rank @rank is on, and how many of the pool's
 * ranks share it (the pool's rank 0 is one of the first node's). */
static guint
node_of (guint rank,
         guint *n_ranks)
{
  const char *test_size = g_getenv ("WPOOL_MPI_TEST_NODE_SIZE");
  guint size = test_size != NULL && atoi (test_size) > 0 ? (guint)atoi (test_size) : n_workers + 1;
  guint node = rank / size;

  *n_ranks = MIN (size, n_workers + 1 - node * size);
  return node;
}

/* One copy of the shared objects per node: the workers of a node read
 * one mapping (one inode), whose pages they share with the node's other
 * ranks (the pool's too, on the first); workers on other nodes read
 * another. (bench-mpi's dataset part measures the memory of each node.) */
static void
test_shared_per_node (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(WpoolTask) task = symbol_task ("wpool_test_shared_mapping", G_VARIANT_TYPE ("(uuttt)"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autofree guint64 *inodes = g_new0 (guint64, n_workers);
  gsize size = 32 << 20;
  g_autofree guint8 *data = g_malloc (size);
  g_autofree double *items = g_new0 (double, n_workers * 8);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8)(i * 7);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, size, 1),
                                                &error));
  wpool_pool_set_chunk_size (pool, 1);

  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, n_workers * 8, sizeof (double)),
                            NULL, &error);
  g_assert_no_error (error);

  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      guint32 id;
      guint64 inode;
      guint64 pss;
      guint64 rss;
      guint n_ranks;

      g_variant_get_child (results, i, "(uuttt)", &id, NULL, &inode, &pss, &rss);
      g_assert_cmpuint (id, <, n_workers);
      node_of (id + 1, &n_ranks);

      /* A node of one rank holds its copy alone, in memory of its own
       * (where MPI's allocator puts it, in mappings of its own). */
      if (n_ranks == 1)
        continue;
      g_assert_cmpuint (inode, !=, 0);

      /* All of it in this worker's memory, shared with those of the
       * node's ranks that read it by now: at least an n_ranks-th its
       * own. On the pool's node, the pool wrote it there: at most half. */
      g_assert_cmpuint (rss, >=, size / 1024);
      g_assert_cmpfloat ((double)pss * n_ranks, >=, size / 1024.0 * 0.98);
      if (node_of (id + 1, &n_ranks) == 0)
        g_assert_cmpfloat ((double)pss, <=, size / 1024.0 / 2 * 1.02);

      if (inodes[id] != 0)
        g_assert_cmpuint (inodes[id], ==, inode);
      inodes[id] = inode;
    }

  for (guint a = 0; a < n_workers; a++)
    for (guint b = 0; b < n_workers; b++)
      {
        guint n_ranks;

        if (inodes[a] == 0 || inodes[b] == 0)
          continue;
        if (node_of (a + 1, &n_ranks) == node_of (b + 1, &n_ranks))
          g_assert_cmpuint (inodes[a], ==, inodes[b]);
        else
          g_assert_cmpuint (inodes[a], !=, inodes[b]);
      }
}

/* 0 to @n - 1, but -1 at 7 and 300. */
static GVariant *
negative_at_seven (guint n)
{
  g_autofree double *items = g_new (double, n);

  for (guint i = 0; i < n; i++)
    items[i] = i == 7 || i == 300 ? -1.0 : i;

  return g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, n, sizeof (double));
}

/* A task's error fails the map with its domain and code; under
 * keep-going, the item alone. The workers serve on after both. */
static void
test_errors (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(WpoolTask) task = symbol_task ("wpool_test_fail_on_negative", G_VARIANT_TYPE_DOUBLE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(WpoolMapStream) stream = NULL;
  guint n_failed = 0;
  guint n_ok = 0;
  guint index;
  GVariant *result;
  GError *item_error = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);
  results = wpool_pool_map (pool, task, negative_at_seven (500), NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (results);
  g_assert_nonnull (strstr (error->message, "negative item -1"));
  g_clear_error (&error);

  stream = wpool_pool_imap (pool, task, negative_at_seven (500), WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      if (item_error != NULL)
        {
          g_assert_true (index == 7 || index == 300);
          g_assert_error (item_error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
          g_clear_error (&item_error);
          n_failed++;
        }
      else
        {
          g_assert_cmpfloat (g_variant_get_double (result), ==, index);
          g_variant_unref (result);
          n_ok++;
        }
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n_failed, ==, 2);
  g_assert_cmpuint (n_ok, ==, 498);

  g_clear_pointer (&results, g_variant_unref);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error);
  g_assert_no_error (error);
}

/* What MPI cannot do is refused before any worker starts, with words
 * that say why; a task no worker can find fails the start. */
static void
test_refused (void)
{
  g_autoptr(WpoolTask) task = symbol_task ("wpool_test_square", G_VARIANT_TYPE_DOUBLE);
  g_autoptr(GError) error = NULL;

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(WpoolSharedArray) array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 4, FALSE, &error);
    g_autoptr(GVariant) results = NULL;

    g_assert_no_error (error);
    g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (array), &error));
    results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
    g_assert_nonnull (strstr (error->message, "several"));
    g_clear_error (&error);
  }

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) results = NULL;

    wpool_pool_set_worker_lifespan (pool, 2);
    results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
    g_clear_error (&error);
  }

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) results = NULL;

    wpool_pool_set_cpu_ids (pool, g_variant_new_parsed ("[[uint32 0]]"), &error);
    g_assert_no_error (error);
    results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
    g_assert_nonnull (strstr (error->message, "mpirun"));
    g_clear_error (&error);
  }
}

/* The worker-init runs in each worker before its items, the worker-exit
 * as the pool stops it, with their results; a failed init fails the
 * items. */
static void
test_lifecycle (void)
{
  g_autoptr(WpoolTask) init = symbol_task ("wpool_test_init_state", NULL);
  g_autoptr(WpoolTask) exit = symbol_task ("wpool_test_exit_report", G_VARIANT_TYPE ("(uu)"));
  g_autoptr(WpoolTask) count = symbol_task ("wpool_test_count_in_state", G_VARIANT_TYPE ("(uuu)"));
  g_autoptr(WpoolTask) fail = symbol_task ("wpool_test_fail_always", NULL);
  g_autoptr(GError) error = NULL;

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) results = NULL;
    g_autoptr(GVariant) exits = NULL;
    guint32 total = 0;

    g_assert_true (wpool_pool_set_worker_init (pool, init, &error));
    g_assert_true (wpool_pool_set_worker_exit (pool, exit, &error));
    wpool_pool_set_keep_alive (pool, TRUE);
    results = wpool_pool_map (pool, count, wpool_test_range_doubles (50), NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_variant_n_children (results), ==, 50);

    g_assert_true (wpool_pool_stop_and_join (pool, &error));
    exits = wpool_pool_get_exit_results (pool, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_variant_n_children (exits), ==, n_workers);
    for (gsize i = 0; i < g_variant_n_children (exits); i++)
      {
        guint32 items;

        g_variant_get_child (exits, i, "(uu)", NULL, &items);
        total += items;
      }
    g_assert_cmpuint (total, ==, 50);
  }

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) results = NULL;

    g_assert_true (wpool_pool_set_worker_init (pool, fail, &error));
    results = wpool_pool_map (pool, count, wpool_test_range_doubles (10), NULL, &error);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
    g_assert_null (results);
  }
}

/* A cancelled map returns without waiting for its workers' items, which
 * MPI cannot stop: their answers are read and dropped before the next
 * map, which gets its own. */
static void
test_cancel (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(WpoolTask) task = symbol_task ("wpool_test_sleep_ms", G_VARIANT_TYPE_UINT32);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) expected = g_variant_ref_sink (wpool_test_repeat_uint32 (4, 10));
  GThread *thread;

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);

  /* Started first: the cancellation is of a map, not of the start. */
  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (1, 1), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);

  thread = wpool_test_cancel_later (cancellable, 200);
  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (64, 300), cancellable, &error);
  g_thread_join (thread);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (results);
  g_clear_error (&error);

  results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (4, 10), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (results, expected));
}

/* A map of large chunks cancelled while they travel: the chunks still
 * reach the workers, whose answers, large too, are read and dropped
 * before the next map's, which are right. */
static void
test_cancel_large (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = square_plus_one_chunk_task ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gsize n = 16 << 20;
  g_autofree double *items = g_new (double, n);
  g_autofree double *results = g_new0 (double, n);
  GThread *thread;

  g_assert_no_error (error);
  for (gsize i = 0; i < n; i++)
    items[i] = i % 7;
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, (guint)(n / n_workers));
  g_assert_true (wpool_pool_map_chunks (pool, task, items, 16, results, NULL, &error));
  g_assert_no_error (error);

  for (guint delay = 0; delay < 3; delay++)
    {
      thread = wpool_test_cancel_later (cancellable, 200);
      if (!wpool_pool_map_chunks (pool, task, items, n, results, cancellable, &error))
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
        }
      g_thread_join (thread);
      g_cancellable_reset (cancellable);

      for (gsize i = 0; i < 1000; i++)
        items[i] = (double)(i + delay);
      memset (results, 0, 1000 * sizeof (double));
      wpool_pool_set_chunk_size (pool, 100);
      g_assert_true (wpool_pool_map_chunks (pool, task, items, 1000, results, NULL, &error));
      g_assert_no_error (error);
      for (gsize i = 0; i < 1000; i++)
        g_assert_cmpfloat (results[i], ==, items[i] * items[i] + 1);
      wpool_pool_set_chunk_size (pool, (guint)(n / n_workers));
    }
}

/* An item past its timeout: the map fails at the timeout, saying the
 * worker is lost, and the pool runs no more maps; under keep-going, on a
 * new pool, the item fails alone (spawned workers: the job's ranks serve
 * no pool once one of them is lost). The job then ends as MPI
 * finalizes, at exit. */
static int
expect_timeout (void)
{
  g_autoptr(WpoolTask) hang = symbol_task ("wpool_test_hang", G_VARIANT_TYPE_DOUBLE);
  g_autoptr(WpoolTask) sleeper = symbol_task ("wpool_test_sleep_ms", G_VARIANT_TYPE_UINT32);
  g_autoptr(GError) error = NULL;
  gboolean spawned = g_strcmp0 (g_getenv ("OMPI_COMM_WORLD_SIZE"), "1") == 0;

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) results = NULL;

    wpool_pool_set_keep_alive (pool, TRUE);
    wpool_pool_set_task_timeout (pool, 0.5);
    results = wpool_pool_map (pool, hang, wpool_test_range_doubles (4), NULL, &error);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
    g_assert_nonnull (strstr (error->message, "the worker is lost"));
    g_clear_error (&error);

    results = wpool_pool_map (pool, hang, wpool_test_range_doubles (4), NULL, &error);
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
    g_clear_error (&error);
  }

  {
    g_autoptr(WpoolPool) pool = mpi_pool ();
    g_autoptr(GVariant) items = g_variant_ref_sink (wpool_test_repeat_uint32 (21, 10));
    g_autofree guint32 *ms = g_memdup2 (g_variant_get_data (items), 21 * sizeof (guint32));
    g_autoptr(WpoolMapStream) stream = NULL;
    GError *item_error = NULL;
    GVariant *result;
    guint n_ok = 0;
    guint index;

    ms[0] = 3000;
    wpool_pool_set_task_timeout (pool, 1);
    stream = wpool_pool_imap (pool, sleeper,
                              g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, ms, 21, sizeof (guint32)),
                              WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
    while (stream != NULL && wpool_map_stream_next (stream, &index, &result, &item_error, &error))
      {
        if (item_error != NULL)
          {
            g_assert_cmpuint (index, ==, 0);
            g_assert_error (item_error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
            g_clear_error (&item_error);
          }
        else
          {
            g_assert_cmpuint (g_variant_get_uint32 (result), ==, 10);
            g_variant_unref (result);
            n_ok++;
          }
      }
    if (spawned)
      {
        g_assert_no_error (error);
        g_assert_cmpuint (n_ok, ==, 20);
      }
    else
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  }

  g_print ("the timeout was reported\n");

  return 0;
}

/* A pool still alive, in the middle of its conversation, when the
 * program ends: MPI finalizes at exit, lets the workers go, and the job
 * ends normally. */
static int
leak_pool (void)
{
  WpoolPool *pool = mpi_pool ();
  g_autoptr(WpoolTask) scaled = symbol_task ("wpool_test_scaled", G_VARIANT_TYPE_DOUBLE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new ("(dd)", 2.0, 0.5), &error));
  results = wpool_pool_map (pool, scaled, wpool_test_range_doubles (100), NULL, &error);
  g_assert_no_error (error);
  g_print ("the pool is left alive at exit\n");

  return 0;
}

/* A worker that dies ends the job (Open MPI's doing): the map never
 * returns. */
static int
die (void)
{
  g_autoptr(WpoolPool) pool = mpi_pool ();
  g_autoptr(WpoolTask) task = symbol_task ("wpool_test_die", G_VARIANT_TYPE_STRING);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;

  results = wpool_pool_map (pool, task, g_variant_new_parsed ("['a', 'abort', 'b']"), NULL, &error);
  g_print ("the map returned after a worker died\n");

  return 0;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *size = g_getenv ("OMPI_COMM_WORLD_SIZE");

  /* Ranks 1 to N-1 serve rank 0's pools, and return once it is done. */
  if (wpool_worker_serve ((const char * const *)argv, WPOOL_SERVE_FLAGS_MPI_RANKS, NULL, NULL, &error))
    return 0;
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);

  n_workers = size != NULL && atoi (size) > 1 ? (guint)atoi (size) - 1 : 2;
  if (argc > 1 && g_str_equal (argv[1], "--expect-timeout"))
    return expect_timeout ();
  if (argc > 1 && g_str_equal (argv[1], "--die"))
    return die ();
  if (argc > 1 && g_str_equal (argv[1], "--leak-pool"))
    return leak_pool ();

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/mpi/map", test_map);
  g_test_add_func ("/mpi/chunk-task", test_chunk_task);
  g_test_add_func ("/mpi/shared-per-node", test_shared_per_node);
  g_test_add_func ("/mpi/errors", test_errors);
  g_test_add_func ("/mpi/refused", test_refused);
  g_test_add_func ("/mpi/lifecycle", test_lifecycle);
  g_test_add_func ("/mpi/cancel", test_cancel);
  g_test_add_func ("/mpi/cancel/large", test_cancel_large);

  return g_test_run ();
}
