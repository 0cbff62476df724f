/* wpool-test-util.h: helpers shared by the GTest programs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <wpool.h>

G_BEGIN_DECLS

/* Entries of a /proc/self directory: open fds, threads. */
guint      wpool_test_count_fds      (void);
void       wpool_test_assert_fds     (guint expected);
guint      wpool_test_count_threads  (void);
/* Asserts that this process has @expected threads once exiting ones are
 * gone: a joined thread may still be listed in /proc for a moment. */
void       wpool_test_assert_threads (guint expected);
/* Mappings of this process whose name contains @name (/proc/self/maps). */
guint      wpool_test_count_mappings (const char *name);
/* Processes whose parent is this one, zombies included. */
guint      wpool_test_count_children (void);
void       wpool_test_assert_children_soon (guint expected,
                                            guint timeout_ms);
/* Private_Dirty of @pid from /proc/PID/smaps_rollup, in KiB. */
guint64    wpool_test_private_dirty_kib (int pid);

/* `ad` with 0, 1, …, n - 1. */
GVariant  *wpool_test_range_doubles  (guint n);
/* `au` of n copies of value. */
GVariant  *wpool_test_repeat_uint32  (guint n,
                                      guint32 value);

/* Cancels @cancellable @ms milliseconds from now, from another thread,
 * which the caller joins. */
GThread   *wpool_test_cancel_later   (GCancellable *cancellable,
                                      guint         ms);

/* What an async map or apply came to, and on which thread. */
typedef struct
{
  GVariant *results;
  GError   *error;
  GThread  *thread;
  gboolean  done;
} WpoolTestOutcome;

/* GAsyncReadyCallbacks of wpool_pool_map_async() and
 * wpool_pool_apply_async() that fill the WpoolTestOutcome given. */
void       wpool_test_map_done       (GObject          *object,
                                      GAsyncResult     *result,
                                      gpointer          outcome);
void       wpool_test_apply_done     (GObject          *object,
                                      GAsyncResult     *result,
                                      gpointer          outcome);
void       wpool_test_outcome_clear  (WpoolTestOutcome *outcome);

/* Runs the thread-default main context until *flag is set. */
void       wpool_test_wait_for       (gboolean *flag);

/* g_assert_cmpvariant() against an expected value, which it sinks. */
#define wpool_test_assert_variant(actual, expected) \
  G_STMT_START { \
    g_autoptr(GVariant) wpool_test_expected_ = g_variant_ref_sink (expected); \
    g_assert_cmpvariant ((actual), wpool_test_expected_); \
  } G_STMT_END

/* Maps @task over @items (consumed if floating) and asserts that the map
 * fails with @domain and @code and a message containing @needle. */
void       wpool_test_assert_map_fails (WpoolPool    *pool,
                                        WpoolTask    *task,
                                        GVariant     *items,
                                        GCancellable *cancellable,
                                        GQuark        domain,
                                        int           code,
                                        const char   *needle);

/* Runs a keep-going map of @task (string results) over @items through a
 * stream with @flags added: per item its result or NULL, and its error in
 * @errors. */
GPtrArray *wpool_test_keep_going_map   (WpoolPool    *pool,
                                        WpoolTask    *task,
                                        const char  **items,
                                        guint         n_items,
                                        WpoolMapFlags flags,
                                        GError      **errors);
/* Asserts that the items whose bit is set in @died failed with
 * WPOOL_ERROR_WORKER_DIED, naming the item, and that every other one
 * returned itself; clears @errors. */
void       wpool_test_assert_keep_going (GPtrArray   *results,
                                         GError     **errors,
                                         const char **items,
                                         guint        n_items,
                                         guint64      died);

#define WPOOL_TEST_IS_PROCESS(method) ((method) != WPOOL_START_METHOD_THREADING)

/* Under valgrind a worker process's exit status is valgrind's, its memory
 * mostly valgrind's own, and everything slower. */
gboolean   wpool_test_under_valgrind (void);

/* The processes a pool of @n_jobs adds to this one's children: its
 * workers, or the fork server or FORK template whose children they are. */
guint      wpool_test_expected_children (WpoolStartMethod method,
                                         guint            n_jobs);

/* A test run once per start method, as /METHOD/NAME, with the method as
 * its data; or for the process start methods only. */
typedef struct
{
  const char    *name;
  GTestDataFunc  func;
  gboolean       process_only;
} WpoolTestCase;

void       wpool_test_add_for_start_methods (const WpoolTestCase *tests,
                                             guint                n_tests);
/* Whether the start method named @name (as in test paths) is tested:
 * WPOOL_TEST_START_METHODS may name a few only. */
gboolean   wpool_test_start_method_enabled  (const char          *name);

/* The path of the test module built beside the tests. */
const char *wpool_test_module_path   (void);
/* A task running @symbol of the test module. */
WpoolTask  *wpool_test_module_task   (const char *symbol);

G_END_DECLS
