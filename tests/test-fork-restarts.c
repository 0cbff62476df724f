/* test-fork-restarts.c: workers restarted in the middle of maps while
 * other threads of the caller allocate, on every start method, and the
 * FORK template that forks them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wpool-test-util.h"

#define N_MAPS 20
#define N_ITEMS 13
#define N_CHURNERS 4

/* A hang fails the test, rather than blocking the run until the harness
 * kills it with nothing said. */
typedef struct
{
  GMutex   lock;
  GCond    cond;
  gboolean done;
  guint    seconds;
  GThread *thread;
} Watchdog;

static gpointer
watchdog_main (gpointer data)
{
  Watchdog *watchdog = data;
  gint64 deadline = g_get_monotonic_time () + watchdog->seconds * G_USEC_PER_SEC;

  g_mutex_lock (&watchdog->lock);
  while (!watchdog->done)
    if (!g_cond_wait_until (&watchdog->cond, &watchdog->lock, deadline) && !watchdog->done)
      {
        fprintf (stderr, "%s did not finish within %u s: hung\n", g_test_get_path (), watchdog->seconds);
        g_test_fail ();
        abort ();
      }
  g_mutex_unlock (&watchdog->lock);

  return NULL;
}

static Watchdog *
watchdog_start (guint seconds)
{
  Watchdog *watchdog = g_new0 (Watchdog, 1);

  g_mutex_init (&watchdog->lock);
  g_cond_init (&watchdog->cond);
  watchdog->seconds = seconds;
  watchdog->thread = g_thread_new ("watchdog", watchdog_main, watchdog);

  return watchdog;
}

static void
watchdog_stop (Watchdog *watchdog)
{
  g_mutex_lock (&watchdog->lock);
  watchdog->done = TRUE;
  g_cond_signal (&watchdog->cond);
  g_mutex_unlock (&watchdog->lock);
  g_thread_join (watchdog->thread);
  g_mutex_clear (&watchdog->lock);
  g_cond_clear (&watchdog->cond);
  g_free (watchdog);
}

/* Threads of the caller that allocate and free all along, with GSlice
 * and GVariant, and start short-lived threads, whose first allocations
 * take GSlice's global locks: a child forked while one holds them hangs
 * at its first allocation that needs them. */
typedef struct
{
  gint     stop;
  guint    n_threads;
  /* Between rounds, or 0: a thread that works in bursts, as GLib's
   * worker thread reaping a child, or an ending thread, does. */
  gulong   pause_us;
  GThread *threads[N_CHURNERS];
} Churn;

static void
churn_slices (guint32 *seed,
              guint    n)
{
  gpointer blocks[128];
  gsize sizes[128];

  n = MIN (n, G_N_ELEMENTS (blocks));
  for (guint i = 0; i < n; i++)
    {
      /* xorshift: g_random_int() takes a lock of its own. */
      *seed ^= *seed << 13;
      *seed ^= *seed >> 17;
      *seed ^= *seed << 5;
      sizes[i] = 8 + *seed % 500;
      blocks[i] = g_slice_alloc (sizes[i]);
    }
  for (guint i = 0; i < n; i++)
    g_slice_free1 (sizes[i], blocks[i]);
}

static gpointer
churn_briefly (gpointer data)
{
  guint32 seed = GPOINTER_TO_UINT (data) | 1;

  churn_slices (&seed, 64);

  return NULL;
}

static gpointer
churn_main (gpointer data)
{
  Churn *churn = data;
  guint32 seed = (guint32)(gsize)g_thread_self () | 1;

  for (guint round = 0; !g_atomic_int_get (&churn->stop); round++)
    {
      g_autoptr(GVariant) value = NULL;

      churn_slices (&seed, 128);
      value = g_variant_ref_sink (g_variant_new ("(usav)", round, "churn", NULL));
      if (round % 16 == 0)
        g_thread_join (g_thread_new ("churn-brief", churn_briefly, GUINT_TO_POINTER (round)));
      if (churn->pause_us > 0)
        {
          /* A burst: short threads, and GVariants parsed from text. */
          for (guint i = 0; i < 3; i++)
            g_thread_join (g_thread_new ("churn-brief", churn_briefly, GUINT_TO_POINTER (round + i)));
          for (guint i = 0; i < 50; i++)
            g_variant_unref (g_variant_ref_sink (g_variant_new_parsed ("[(%u, 'a'), (2, 'b')]", i)));
          g_usleep (churn->pause_us + seed % churn->pause_us);
        }
    }

  return NULL;
}

static void
churn_start (Churn  *churn,
             guint   n_threads,
             gulong  pause_us)
{
  churn->stop = FALSE;
  churn->n_threads = MIN (n_threads, N_CHURNERS);
  churn->pause_us = pause_us;
  for (guint i = 0; i < churn->n_threads; i++)
    churn->threads[i] = g_thread_new ("churn", churn_main, churn);
}

static void
churn_stop (Churn *churn)
{
  g_atomic_int_set (&churn->stop, TRUE);
  for (guint i = 0; i < churn->n_threads; i++)
    g_thread_join (churn->threads[i]);
}

/* d → (uud): the worker's id, its process and the item squared. */
static GVariant *
whoami_square (WpoolWorker  *worker,
               GVariant     *shared_objects,
               GVariant     *item,
               gpointer      user_data,
               GError      **error)
{
  double x = g_variant_get_double (item);

  return g_variant_new ("(uud)", wpool_worker_get_id (worker), (guint32)getpid (), x * x);
}

/* A C function with its closure under THREADING and FORK, a symbol of
 * the test module elsewhere ((uut): id, process, an address). */
static WpoolTask *
new_whoami_task (WpoolStartMethod method)
{
  if (method == WPOOL_START_METHOD_THREADING || method == WPOOL_START_METHOD_FORK)
    return wpool_task_new (whoami_square, NULL, NULL);

  return wpool_test_module_task ("wpool_test_whoami");
}

/* Reads every outcome of @stream: each item once, none failed, their
 * processes added to @pids. */
static void
drain_stream (WpoolMapStream *stream,
              guint           n_items,
              GHashTable     *pids)
{
  g_autofree gboolean *seen = g_new0 (gboolean, n_items);
  guint n = 0;
  guint index;
  GVariant *result;
  GError *item_error = NULL;
  GError *error = NULL;

  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      guint32 id;
      guint32 pid;

      g_assert_no_error (item_error);
      g_assert_cmpuint (index, <, n_items);
      g_assert_false (seen[index]);
      seen[index] = TRUE;
      n++;

      g_variant_get_child (result, 1, "u", &pid);
      g_variant_get_child (result, 0, "u", &id);
      g_assert_cmpuint (id, <, 2);
      if (g_variant_is_of_type (result, G_VARIANT_TYPE ("(uud)")))
        {
          double square;

          g_variant_get_child (result, 2, "d", &square);
          g_assert_cmpfloat (square, ==, (double)index * index);
        }
      g_hash_table_add (pids, GUINT_TO_POINTER (pid));
      g_variant_unref (result);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, n_items);
}

/* 20 maps whose every chunk ends its worker's lifespan, a few hundred
 * restarts in all, while four threads of the caller allocate: every map
 * completes, right, and no restart hangs in a lock another thread held. */
static void
test_restarts_under_churn (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = new_whoami_task (method);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint n_maps = wpool_test_under_valgrind () ? 3 : N_MAPS;
  Watchdog *watchdog = watchdog_start (wpool_test_under_valgrind () ? 600 : 60);
  Churn churn;
  gint64 started;

  wpool_pool_set_worker_lifespan (pool, 1);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_keep_alive (pool, TRUE);

  /* The first workers start before the churn does, and are kept: forking
   * the caller is only as safe as the caller's state at that moment,
   * which is the application's to make safe; the restarts are
   * libwpool's. */
  {
    g_autoptr(WpoolMapStream) stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (2),
                                                        WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);

    g_assert_no_error (error);
    drain_stream (stream, 2, pids);
  }

  churn_start (&churn, N_CHURNERS, 0);
  started = g_get_monotonic_time ();

  for (guint m = 0; m < n_maps; m++)
    {
      g_autoptr(WpoolMapStream) stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (N_ITEMS),
                                                          WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);

      g_assert_no_error (error);
      drain_stream (stream, N_ITEMS, pids);
    }

  g_test_message ("%u maps of %u items with worker-lifespan 1: %.3f s", n_maps, N_ITEMS,
                  (g_get_monotonic_time () - started) / (double)G_USEC_PER_SEC);
  churn_stop (&churn);
  watchdog_stop (watchdog);

  /* Every chunk in a worker of its own: a restart after each (a process
   * id may come again, rarely). */
  if (WPOOL_TEST_IS_PROCESS (method))
    g_assert_cmpuint (g_hash_table_size (pids), >=, (n_maps * N_ITEMS) * 9 / 10);
}

/* New FORK pools, each forking its template from the caller, beside a
 * thread that allocates, makes GVariants and starts threads in bursts
 * every 5 to 10 ms: a template forked while that thread held a lock (of
 * GVariant's type cache, GSlice, a sanitizer's allocator) hung at its
 * first use of it: this test, against the library before the fix, under
 * ASan, hung in 2 runs of 3. The fork waits for the other threads to be
 * still (wpool_process_fork()), and a template that waits in a lock all
 * the same is forked again (wpool_fork_server_fork()). */
static void
test_template_beside_bursts (void)
{
  g_autoptr(WpoolTask) task = new_whoami_task (WPOOL_START_METHOD_FORK);
  g_autoptr(GError) error = NULL;
  guint n_maps = wpool_test_under_valgrind () ? 5 : 150;
  Watchdog *watchdog = watchdog_start (wpool_test_under_valgrind () ? 600 : 120);
  Churn churn;
  gint64 started;

  churn_start (&churn, 1, 5000);
  started = g_get_monotonic_time ();

  for (guint m = 0; m < n_maps; m++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
      g_autoptr(GVariant) results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (results), ==, 3);
    }

  g_test_message ("%u new FORK pools beside a thread in bursts: %.3f s", n_maps,
                  (g_get_monotonic_time () - started) / (double)G_USEC_PER_SEC);
  churn_stop (&churn);
  watchdog_stop (watchdog);
}

/* The caller's memory, which FORK workers see as it was when their
 * template was forked. */
static gint caller_generation;

/* d → (uusdii): the worker's process and its parent, the shared string,
 * element 0 of the shared array, the caller's generation as the worker
 * sees it, and what the closure holds. */
static GVariant *
report_sharing (WpoolWorker  *worker,
                GVariant     *shared_objects,
                GVariant     *item,
                gpointer      user_data,
                GError      **error)
{
  g_autoptr(GVariant) text = g_variant_get_child_value (shared_objects, 0);
  WpoolSharedArray *array = wpool_worker_get_shared_array (worker, 1, error);

  if (array == NULL)
    return NULL;

  return g_variant_new ("(uusdii)", (guint32)getpid (), (guint32)getppid (), g_variant_get_string (text, NULL),
                        wpool_shared_array_get_double (array, 0, NULL), caller_generation,
                        *(const gint *)user_data);
}

/* Maps @task over @n items: every worker answered that it sees @text,
 * @element in the array, @generation of the caller and @magic in the
 * closure; their processes are added to @pids, and their parent, the
 * same for all, is returned. */
static guint32
map_sharing (WpoolPool  *pool,
             WpoolTask  *task,
             guint       n,
             double      element,
             gint        generation,
             gint        magic,
             GHashTable *pids)
{
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint32 parent = 0;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (n), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, n);

  for (guint i = 0; i < n; i++)
    {
      const char *text;
      guint32 pid;
      guint32 ppid;
      double value;
      gint seen_generation;
      gint seen_magic;

      g_variant_get_child (results, i, "(uu&sdii)", &pid, &ppid, &text, &value, &seen_generation, &seen_magic);
      g_assert_cmpstr (text, ==, "shared text");
      g_assert_cmpfloat (value, ==, element);
      g_assert_cmpint (seen_generation, ==, generation);
      g_assert_cmpint (seen_magic, ==, magic);
      /* Forked by the template, not by the caller. */
      g_assert_cmpuint (ppid, !=, (guint32)getpid ());
      g_assert_cmpuint (pid, !=, (guint32)getpid ());
      if (parent == 0)
        parent = ppid;
      g_assert_cmpuint (ppid, ==, parent);
      g_hash_table_add (pids, GUINT_TO_POINTER (pid));
    }

  return parent;
}

static WpoolPool *
new_sharing_pool (WpoolSharedArray **array)
{
  WpoolPool *pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
  g_autoptr(GError) error = NULL;

  *array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 4, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool,
                                                g_variant_new ("(s@(st))", "shared text",
                                                               wpool_shared_array_get_handle (*array)),
                                                &error));
  g_assert_no_error (error);
  wpool_pool_set_worker_lifespan (pool, 1);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_keep_alive (pool, TRUE);

  return pool;
}

/* Workers restarted by the template run C closures, see the shared
 * objects and what the caller writes in a shared array since, but the
 * caller's memory as it was when the template was forked: a new task
 * takes a new template, which sees the caller as it is then. */
static void
test_template_sharing (void)
{
  static const gint magic = 42;
  static const gint other_magic = 7;
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(WpoolPool) pool = new_sharing_pool (&array);
  g_autoptr(WpoolTask) task = wpool_task_new (report_sharing, (gpointer)&magic, NULL);
  g_autoptr(WpoolTask) other_task = wpool_task_new (report_sharing, (gpointer)&other_magic, NULL);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint32 template;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uusdii)"));
  wpool_task_set_result_type (other_task, G_VARIANT_TYPE ("(uusdii)"));

  caller_generation = 1;
  g_assert_true (wpool_shared_array_set_double (array, 0, 1.5, &error));
  template = map_sharing (pool, task, 6, 1.5, 1, magic, pids);

  /* Restarted from the same template: the array as the caller wrote it,
   * the caller's memory as it was. */
  caller_generation = 2;
  g_assert_true (wpool_shared_array_set_double (array, 0, 2.5, &error));
  g_assert_cmpuint (map_sharing (pool, task, 6, 2.5, 1, magic, pids), ==, template);
  /* Every chunk in a new worker. */
  g_assert_cmpuint (g_hash_table_size (pids), ==, 12);

  /* A new task, a new template. */
  g_assert_cmpuint (map_sharing (pool, other_task, 4, 2.5, 2, other_magic, pids), !=, template);
  g_assert_no_error (error);
}

/* Whether process @pid is gone, or a zombie nobody reaped yet. */
static gboolean
process_ended (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *stat = NULL;
  const char *after_comm;

  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return TRUE;

  return (after_comm = strrchr (stat, ')')) != NULL && after_comm[1] == ' ' && after_comm[2] == 'Z';
}

static void
wait_for_end (guint32 pid)
{
  for (guint tries = 0; tries < 1000 && !process_ended (pid); tries++)
    g_usleep (5 * G_TIME_SPAN_MILLISECOND);
  g_assert_true (process_ended (pid));
}

/* d → (uusdii), but item 1 kills its worker's parent, the template, and
 * waits to die with it. */
static GVariant *
kill_parent (WpoolWorker  *worker,
             GVariant     *shared_objects,
             GVariant     *item,
             gpointer      user_data,
             GError      **error)
{
  if (g_variant_get_double (item) == 1)
    {
      kill (getppid (), SIGKILL);
      g_usleep (30 * G_USEC_PER_SEC);
    }

  return report_sharing (worker, shared_objects, item, user_data, error);
}

/* A template killed between maps is forked anew at the next map; one
 * killed during a map fails it with a message that says so, and the next
 * map runs on a new one. Nothing is left once the pool is freed. */
static void
test_template_killed (void)
{
  static const gint magic = 42;
  guint base_children = wpool_test_count_children ();
  guint base_fds = wpool_test_count_fds ();
  g_autoptr(WpoolSharedArray) array = NULL;
  WpoolPool *pool = new_sharing_pool (&array);
  g_autoptr(WpoolTask) task = wpool_task_new (report_sharing, (gpointer)&magic, NULL);
  g_autoptr(WpoolTask) killer = wpool_task_new (kill_parent, (gpointer)&magic, NULL);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) templates = g_hash_table_new (NULL, NULL);
  GHashTableIter iter;
  gpointer pid;
  guint32 template;
  guint32 next;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uusdii)"));
  wpool_task_set_result_type (killer, G_VARIANT_TYPE ("(uusdii)"));
  wpool_pool_set_worker_lifespan (pool, 0);
  wpool_pool_set_keep_alive (pool, TRUE);

  /* Killed while no map runs: its workers die with it. */
  template = map_sharing (pool, task, 4, 0, caller_generation, magic, pids);
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children + 1);
  kill (template, SIGKILL);
  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    wait_for_end (GPOINTER_TO_UINT (pid));

  next = map_sharing (pool, task, 4, 0, caller_generation, magic, pids);
  g_assert_cmpuint (next, !=, template);
  g_hash_table_add (templates, GUINT_TO_POINTER (template));
  g_hash_table_add (templates, GUINT_TO_POINTER (next));

  /* Killed by one of its workers during a map, which fails. */
  wpool_test_assert_map_fails (pool, killer, wpool_test_range_doubles (2), NULL, WPOOL_ERROR,
                               WPOOL_ERROR_WORKER_DIED, "its FORK template died");

  template = map_sharing (pool, task, 4, 0, caller_generation, magic, pids);
  g_assert_false (g_hash_table_contains (templates, GUINT_TO_POINTER (template)));
  g_hash_table_add (templates, GUINT_TO_POINTER (template));
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children + 1);

  g_object_unref (pool);

  /* No process, zombie or descriptor left. */
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
  g_clear_object (&array);
  wpool_test_assert_fds (base_fds);
  g_hash_table_iter_init (&iter, templates);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    g_assert_true (process_ended (GPOINTER_TO_UINT (pid)));
  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    g_assert_true (process_ended (GPOINTER_TO_UINT (pid)));
}

/* d → d, 20 ms later: x. */
static GVariant *
slow_echo (WpoolWorker  *worker,
           GVariant     *shared_objects,
           GVariant     *item,
           gpointer      user_data,
           GError      **error)
{
  g_usleep (20 * G_TIME_SPAN_MILLISECOND);

  return g_variant_new ("(du)", g_variant_get_double (item), (guint32)getppid ());
}

static guint restart_warnings;

static gboolean
is_restart_warning (const char *message)
{
  return strstr (message, "Cannot start a new worker") != NULL &&
         strstr (message, "The FORK template (pid ") != NULL &&
         strstr (message, "ended: killed by signal 9") != NULL &&
         strstr (message, "new workers start when the next map does") != NULL;
}

/* The warnings of workers that cannot restart while the template is dead
 * are counted, neither printed nor fatal; any other is as usual. */
static void
count_restart_warnings (const char     *log_domain,
                        GLogLevelFlags  log_level,
                        const char     *message,
                        gpointer        data)
{
  if (is_restart_warning (message))
    g_atomic_int_inc (&restart_warnings);
  else
    g_log_default_handler (log_domain, log_level, message, data);
}

static gboolean
restart_warning_not_fatal (const char     *log_domain,
                           GLogLevelFlags  log_level,
                           const char     *message,
                           gpointer        data)
{
  return !is_restart_warning (message);
}

typedef struct
{
  guint32 pid;
  guint   ms;
} KillLater;

static gpointer
kill_later_main (gpointer data)
{
  KillLater *later = data;

  g_usleep (later->ms * G_TIME_SPAN_MILLISECOND);
  kill (later->pid, SIGKILL);

  return NULL;
}

/* A template killed in the middle of a keep-going map, whose workers
 * restart after every item: the workers die with it, their items fail
 * saying so, no worker can restart until the map ends (a warning says
 * why), and the map ends rather than hangs; the next map runs on a new
 * template. */
static void
test_template_killed_mid_map (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolTask) task = wpool_task_new (slow_echo, NULL, NULL);
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  Watchdog *watchdog = watchdog_start (wpool_test_under_valgrind () ? 600 : 60);
  KillLater later = { 0, 100 };
  GThread *killer;
  guint handler;
  guint32 template;
  guint index;
  GVariant *result;
  GError *item_error = NULL;
  guint n_done = 0;
  guint n_failed = 0;
  guint n_told = 0;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(du)"));
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_worker_lifespan (pool, 1);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);
  g_variant_get_child (results, 0, "(du)", NULL, &template);
  g_clear_pointer (&results, g_variant_unref);

  restart_warnings = 0;
  handler = g_log_set_handler ("Wpool", G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL, count_restart_warnings, NULL);
  g_test_log_set_fatal_handler (restart_warning_not_fatal, NULL);
  later.pid = template;
  stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (40), WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);
  killer = g_thread_new ("killer", kill_later_main, &later);

  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      if (item_error != NULL)
        {
          g_assert_error (item_error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
          /* Those that ran as it died, and those left with no worker. */
          if (strstr (item_error->message, "its FORK template died") != NULL)
            n_told++;
          else
            g_assert_nonnull (strstr (item_error->message, "no live worker was left to run it"));
          n_failed++;
          g_clear_error (&item_error);
        }
      else
        {
          n_done++;
          g_variant_unref (result);
        }
    }
  g_thread_join (killer);
  g_test_message ("killed mid-map: %u items done, %u failed (%u as it died), %u restarts refused",
                  n_done, n_failed, n_told, restart_warnings);
  g_test_log_set_fatal_handler (NULL, NULL);
  g_log_remove_handler ("Wpool", handler);

  /* The workers died with the template (in an item, which fails, or as
   * they restarted): the items left failed, with no worker left to run
   * them; the map itself did not fail. */
  g_assert_no_error (error);
  g_assert_cmpuint (n_done + n_failed, ==, 40);
  g_assert_cmpuint (n_failed, >, 0);
  g_assert_cmpuint (restart_warnings, >=, 1);
  g_assert_cmpuint (restart_warnings, <=, 2);

  /* The next map forks a new template. */
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 4; i++)
    {
      guint32 parent;

      g_variant_get_child (results, i, "(du)", NULL, &parent);
      g_assert_cmpuint (parent, !=, template);
      g_assert_cmpuint (parent, !=, (guint32)getpid ());
    }

  watchdog_stop (watchdog);
}

/* Hundreds of restarts leave no process, zombie or descriptor once the
 * pool is freed. */
static void
test_nothing_left (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  guint base_children = wpool_test_count_children ();
  guint base_fds = wpool_test_count_fds ();
  WpoolPool *pool = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) task = new_whoami_task (method);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  guint n_maps = wpool_test_under_valgrind () ? 2 : 10;
  GHashTableIter iter;
  gpointer pid;

  wpool_pool_set_worker_lifespan (pool, 1);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_keep_alive (pool, TRUE);

  for (guint m = 0; m < n_maps; m++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(WpoolMapStream) stream = wpool_pool_imap (pool, task, wpool_test_range_doubles (N_ITEMS),
                                                          WPOOL_MAP_FLAGS_UNORDERED, NULL, &error);

      g_assert_no_error (error);
      drain_stream (stream, N_ITEMS, pids);
    }
  g_assert_cmpuint (wpool_test_count_children (), ==, base_children + wpool_test_expected_children (method, 2));

  g_object_unref (pool);

  g_assert_cmpuint (wpool_test_count_children (), ==, base_children);
  wpool_test_assert_fds (base_fds);
  g_hash_table_iter_init (&iter, pids);
  while (g_hash_table_iter_next (&iter, &pid, NULL))
    g_assert_true (process_ended (GPOINTER_TO_UINT (pid)));
}

int
main (int    argc,
      char **argv)
{
  const WpoolTestCase tests[] = {
    { "restarts/under-churn", test_restarts_under_churn, FALSE },
    { "restarts/nothing-left", test_nothing_left, TRUE },
  };

  g_test_init (&argc, &argv, NULL);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));
  /* Not where only some start methods run (ThreadSanitizer's build). */
  if (wpool_test_start_method_enabled ("fork"))
    {
      g_test_add_func ("/fork/template/sharing", test_template_sharing);
      g_test_add_func ("/fork/template/beside-bursts", test_template_beside_bursts);
      g_test_add_func ("/fork/template/killed", test_template_killed);
      g_test_add_func ("/fork/template/killed-mid-map", test_template_killed_mid_map);
    }

  return g_test_run ();
}
