/* wpool-test-util.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wpool-test-util.h"

static guint
count_entries (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  return n;
}

static guint
count_fds_now (void)
{
  /* Less the fd of the GDir that reads it. */
  return count_entries ("/proc/self/fd") - 1;
}

static gpointer
do_nothing (gpointer data)
{
  return NULL;
}

static guint
count_threads_now (void)
{
  static gsize warmed_up;

  /* ThreadSanitizer starts a thread of its own with the process's first
   * one: let that happen before anything is counted. */
  if (g_once_init_enter (&warmed_up))
    {
      g_thread_join (g_thread_new ("wpool-test-warm-up", do_nothing, NULL));
      g_once_init_leave (&warmed_up, 1);
    }

  return count_entries ("/proc/self/task");
}

/* A count once it held for 20 ms: a thread just joined may still be
 * listed for a moment while it exits, and GLib may close an fd a moment
 * after the call that let it go (a GSubprocess wait's GTask, finalized on
 * GLib's worker thread, releases its main context there). */
static guint
count_steady (guint (*count_now) (void))
{
  guint count = count_now ();

  for (guint steady = 0; steady < 4; )
    {
      guint now;

      g_usleep (5 * G_TIME_SPAN_MILLISECOND);
      now = count_now ();
      steady = now == count ? steady + 1 : 0;
      count = now;
    }

  return count;
}

/* The count reaching @expected, within 2 s. */
static void
assert_count (guint (*count_now) (void),
              guint   expected)
{
  for (guint tries = 0; tries < 400 && count_now () != expected; tries++)
    g_usleep (5 * G_TIME_SPAN_MILLISECOND);

  g_assert_cmpuint (count_now (), ==, expected);
}

guint
wpool_test_count_fds (void)
{
  return count_steady (count_fds_now);
}

void
wpool_test_assert_fds (guint expected)
{
  assert_count (count_fds_now, expected);
}

guint
wpool_test_count_threads (void)
{
  return count_steady (count_threads_now);
}

void
wpool_test_assert_threads (guint expected)
{
  assert_count (count_threads_now, expected);
}

guint
wpool_test_count_mappings (const char *name)
{
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], name) != NULL)
      n++;

  return n;
}

guint
wpool_test_count_children (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", name, "stat", NULL);
      g_autofree char *stat = NULL;
      const char *after_comm;
      int ppid;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (path, &stat, NULL, NULL))
        continue;

      /* pid (comm) state ppid …; comm may hold spaces and parentheses. */
      if ((after_comm = strrchr (stat, ')')) != NULL &&
          sscanf (after_comm + 1, " %*c %d", &ppid) == 1 &&
          ppid == getpid ())
        n++;
    }

  return n;
}

/* Waits up to @timeout_ms for the children of this process to be
 * @expected (a killed worker is reaped on GLib's worker thread, a fork
 * server ends a moment after its pool let it go), then asserts it. */
void
wpool_test_assert_children_soon (guint expected,
                                 guint timeout_ms)
{
  for (guint waited = 0; waited < timeout_ms && wpool_test_count_children () != expected; waited += 5)
    g_usleep (5 * G_TIME_SPAN_MILLISECOND);

  g_assert_cmpuint (wpool_test_count_children (), ==, expected);
}

guint64
wpool_test_private_dirty_kib (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/smaps_rollup", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL) ||
      !(line = strstr (contents, "\nPrivate_Dirty:")))
    g_error ("cannot read Private_Dirty from %s", path);

  return g_ascii_strtoull (line + strlen ("\nPrivate_Dirty:"), NULL, 10);
}

GVariant *
wpool_test_range_doubles (guint n)
{
  g_autofree double *values = g_new (double, n);

  for (guint i = 0; i < n; i++)
    values[i] = i;

  return g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double));
}

GVariant *
wpool_test_repeat_uint32 (guint   n,
                          guint32 value)
{
  g_autofree guint32 *values = g_new (guint32, n);

  for (guint i = 0; i < n; i++)
    values[i] = value;

  return g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, values, n, sizeof (guint32));
}

typedef struct
{
  GCancellable *cancellable;
  guint         ms;
} CancelLater;

static gpointer
cancel_later_main (gpointer data)
{
  CancelLater *later = data;

  g_usleep (later->ms * G_TIME_SPAN_MILLISECOND);
  g_cancellable_cancel (later->cancellable);
  g_object_unref (later->cancellable);
  g_free (later);

  return NULL;
}

GThread *
wpool_test_cancel_later (GCancellable *cancellable,
                         guint         ms)
{
  CancelLater *later = g_new (CancelLater, 1);

  later->cancellable = g_object_ref (cancellable);
  later->ms = ms;

  return g_thread_new ("canceller", cancel_later_main, later);
}

void
wpool_test_map_done (GObject      *object,
                     GAsyncResult *result,
                     gpointer      data)
{
  WpoolTestOutcome *outcome = data;

  outcome->results = wpool_pool_map_finish (WPOOL_POOL (object), result, &outcome->error);
  outcome->thread = g_thread_self ();
  outcome->done = TRUE;
}

void
wpool_test_apply_done (GObject      *object,
                       GAsyncResult *result,
                       gpointer      data)
{
  WpoolTestOutcome *outcome = data;

  outcome->results = wpool_pool_apply_finish (WPOOL_POOL (object), result, &outcome->error);
  outcome->thread = g_thread_self ();
  outcome->done = TRUE;
}

void
wpool_test_outcome_clear (WpoolTestOutcome *outcome)
{
  g_clear_pointer (&outcome->results, g_variant_unref);
  g_clear_error (&outcome->error);
  outcome->done = FALSE;
}

void
wpool_test_wait_for (gboolean *flag)
{
  GMainContext *context = g_main_context_get_thread_default ();

  while (!*flag)
    g_main_context_iteration (context, TRUE);
}

const char *
wpool_test_module_path (void)
{
  return g_test_get_filename (G_TEST_BUILT, "libwpool-test-module.so", NULL);
}

WpoolTask *
wpool_test_module_task (const char *symbol)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task = wpool_task_new_for_symbol (wpool_test_module_path (), symbol, &error);

  g_assert_no_error (error);
  g_assert_true (WPOOL_IS_TASK (task));

  return task;
}

void
wpool_test_assert_map_fails (WpoolPool    *pool,
                             WpoolTask    *task,
                             GVariant     *items,
                             GCancellable *cancellable,
                             GQuark        domain,
                             int           code,
                             const char   *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = wpool_pool_map (pool, task, items, cancellable, &error);

  g_assert_null (results);
  g_assert_error (error, domain, code);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("“%s” is not in the error message “%s”", needle, error->message);
}

static void
clear_result (gpointer result)
{
  g_clear_pointer (&result, g_variant_unref);
}

GPtrArray *
wpool_test_keep_going_map (WpoolPool    *pool,
                           WpoolTask    *task,
                           const char  **items,
                           guint         n_items,
                           WpoolMapFlags flags,
                           GError      **errors)
{
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *results = g_ptr_array_new_full (n_items, clear_result);
  GVariant *result = NULL;
  GError *item_error = NULL;
  guint index;

  g_ptr_array_set_size (results, n_items);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_STRING);
  stream = wpool_pool_imap (pool, task, g_variant_new_strv (items, n_items),
                            flags | WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error);
  g_assert_no_error (error);

  while (wpool_map_stream_next (stream, &index, &result, &item_error, &error))
    {
      g_assert_cmpuint (index, <, n_items);
      g_assert_true (results->pdata[index] == NULL && errors[index] == NULL);
      results->pdata[index] = g_steal_pointer (&result);
      errors[index] = g_steal_pointer (&item_error);
    }
  g_assert_no_error (error);

  return results;
}

void
wpool_test_assert_keep_going (GPtrArray   *results,
                              GError     **errors,
                              const char **items,
                              guint        n_items,
                              guint64      died)
{
  g_assert_cmpuint (n_items, <=, 64);

  for (guint i = 0; i < n_items; i++)
    {
      if (died & ((guint64)1 << i))
        {
          g_autofree char *prefix = g_strdup_printf ("Item %u: worker ", i);

          g_assert_error (errors[i], WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
          g_assert_true (g_str_has_prefix (errors[i]->message, prefix));
          g_assert_null (results->pdata[i]);
        }
      else
        {
          g_assert_no_error (errors[i]);
          g_assert_cmpstr (g_variant_get_string (results->pdata[i], NULL), ==, items[i]);
        }
      g_clear_error (&errors[i]);
    }
}

gboolean
wpool_test_under_valgrind (void)
{
  return g_getenv ("WPOOL_TEST_UNDER_VALGRIND") != NULL;
}

guint
wpool_test_expected_children (WpoolStartMethod method,
                              guint            n_jobs)
{
  switch (method)
    {
    case WPOOL_START_METHOD_THREADING:
      return 0;
    case WPOOL_START_METHOD_FORK:
    case WPOOL_START_METHOD_FORKSERVER:
      return 1;
    default:
      return n_jobs;
    }
}

gboolean
wpool_test_start_method_enabled (const char *name)
{
  g_auto(GStrv) only = g_getenv ("WPOOL_TEST_START_METHODS")
                       ? g_strsplit (g_getenv ("WPOOL_TEST_START_METHODS"), ",", -1) : NULL;

  return only == NULL || g_strv_contains ((const char * const *)only, name);
}

void
wpool_test_add_for_start_methods (const WpoolTestCase *tests,
                                  guint                n_tests)
{
  const struct { WpoolStartMethod method; const char *name; } methods[] = {
    { WPOOL_START_METHOD_THREADING, "threading" },
    { WPOOL_START_METHOD_FORK, "fork" },
    { WPOOL_START_METHOD_SPAWN, "spawn" },
    { WPOOL_START_METHOD_FORKSERVER, "forkserver" },
  };

  /* WPOOL_TEST_START_METHODS, a comma-separated list of names, runs
   * those only (the ThreadSanitizer build runs THREADING: TSan does not
   * follow forked workers). */
  for (guint m = 0; m < G_N_ELEMENTS (methods); m++)
    for (guint t = 0; t < n_tests; t++)
      {
        g_autofree char *path = NULL;

        if ((tests[t].process_only && !WPOOL_TEST_IS_PROCESS (methods[m].method)) ||
            !wpool_test_start_method_enabled (methods[m].name))
          continue;

        path = g_strdup_printf ("/%s/%s", methods[m].name, tests[t].name);
        g_test_add_data_func (path, GINT_TO_POINTER (methods[m].method), tests[t].func);
      }
}
