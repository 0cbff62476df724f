/* test-task.c: WpoolTask and WpoolWorker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "wpool-test-util.h"

static GVariant *
double_it (WpoolWorker  *worker,
           GVariant     *shared_objects,
           GVariant     *item,
           gpointer      user_data,
           GError      **error)
{
  return g_variant_new_double (2 * g_variant_get_double (item));
}

typedef struct
{
  guint    n_calls;
  GThread *thread;
} DestroyRecord;

static void
record_destroy (gpointer data)
{
  DestroyRecord *record = data;

  record->n_calls++;
  record->thread = g_thread_self ();
}

static void
test_task_new (void)
{
  DestroyRecord record = { 0 };
  WpoolTask *task = wpool_task_new (double_it, &record, record_destroy);

  g_assert_true (WPOOL_IS_TASK (task));
  g_assert_null (wpool_task_get_symbol (task));
  g_assert_null (wpool_task_get_module_path (task));
  g_assert_null (wpool_task_get_result_type (task));

  g_object_unref (task);
  g_assert_cmpuint (record.n_calls, ==, 1);
}

static void
test_task_new_null_func (void)
{
  if (g_test_subprocess ())
    {
      WpoolTask *task = wpool_task_new (NULL, NULL, NULL);
      g_assert_null (task);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*func != NULL*");
}

static void
notify_count (GObject    *object,
              GParamSpec *pspec,
              gpointer    data)
{
  (*(guint *)data)++;
}

static void
test_task_result_type (void)
{
  g_autoptr(WpoolTask) task = wpool_task_new (double_it, NULL, NULL);
  g_autoptr(GVariantType) from_property = NULL;
  guint n_notify = 0;

  g_signal_connect (task, "notify::result-type", G_CALLBACK (notify_count), &n_notify);

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  g_assert_true (g_variant_type_equal (wpool_task_get_result_type (task), G_VARIANT_TYPE_DOUBLE));
  g_assert_cmpuint (n_notify, ==, 1);

  /* The same type again does not notify. */
  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  g_assert_cmpuint (n_notify, ==, 1);

  g_object_get (task, "result-type", &from_property, NULL);
  g_assert_true (g_variant_type_equal (from_property, G_VARIANT_TYPE_DOUBLE));

  g_object_set (task, "result-type", G_VARIANT_TYPE ("(ut)"), NULL);
  g_assert_true (g_variant_type_equal (wpool_task_get_result_type (task), G_VARIANT_TYPE ("(ut)")));
  g_assert_cmpuint (n_notify, ==, 2);

  wpool_task_set_result_type (task, NULL);
  g_assert_null (wpool_task_get_result_type (task));
  g_assert_cmpuint (n_notify, ==, 3);
}

static void
test_task_result_type_indefinite (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(WpoolTask) task = wpool_task_new (double_it, NULL, NULL);
      wpool_task_set_result_type (task, G_VARIANT_TYPE ("a*"));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*g_variant_type_is_definite*");
}

static void
test_task_for_symbol (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autofree char *module_path = NULL;
  g_autofree char *symbol = NULL;

  task = wpool_task_new_for_symbol (wpool_test_module_path (), "wpool_test_square", &error);
  g_assert_no_error (error);
  g_assert_true (WPOOL_IS_TASK (task));
  g_assert_cmpstr (wpool_task_get_symbol (task), ==, "wpool_test_square");
  g_assert_cmpstr (wpool_task_get_module_path (task), ==, wpool_test_module_path ());

  g_object_get (task, "module-path", &module_path, "symbol", &symbol, NULL);
  g_assert_cmpstr (module_path, ==, wpool_test_module_path ());
  g_assert_cmpstr (symbol, ==, "wpool_test_square");
}

static void
test_task_for_symbol_missing_module (void)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task;

  task = wpool_task_new_for_symbol ("/nonexistent/libnothing.so", "anything", &error);
  g_assert_null (task);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "/nonexistent/libnothing.so"));
}

static void
test_task_for_symbol_missing_symbol (void)
{
  g_autoptr(GError) error = NULL;
  WpoolTask *task;

  task = wpool_task_new_for_symbol (wpool_test_module_path (), "wpool_test_no_such_task", &error);
  g_assert_null (task);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "wpool_test_no_such_task"));
}

/* The test program is linked with -rdynamic: NULL names the main program. */
G_MODULE_EXPORT GVariant *wpool_test_main_program_task (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);

G_MODULE_EXPORT GVariant *
wpool_test_main_program_task (WpoolWorker  *worker,
                              GVariant     *shared_objects,
                              GVariant     *item,
                              gpointer      user_data,
                              GError      **error)
{
  return g_variant_new_double (-g_variant_get_double (item));
}

static void
test_task_for_symbol_main_program (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(GVariant) results = NULL;

  task = wpool_task_new_for_symbol (NULL, "wpool_test_main_program_task", &error);
  g_assert_no_error (error);
  g_assert_null (wpool_task_get_module_path (task));

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (5), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[-0.0, -1.0, -2.0, -3.0, -4.0]"));
}

/* The user data's destroy notify runs on the caller's thread, even when
 * the caller drops its reference while a map is in flight. */
static void
map_done (GObject      *object,
          GAsyncResult *result,
          gpointer      data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = wpool_pool_map_finish (WPOOL_POOL (object), result, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 64);
  *(gboolean *)data = TRUE;
}

static void
test_task_destroy_on_caller_thread (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  DestroyRecord record = { 0 };
  WpoolTask *task = wpool_task_new (double_it, &record, record_destroy);
  gboolean done = FALSE;

  wpool_pool_map_async (pool, task, wpool_test_range_doubles (64), NULL, map_done, &done);
  g_object_unref (task);
  g_assert_cmpuint (record.n_calls, ==, 0);

  wpool_test_wait_for (&done);
  /* Released with the finished map's state, on this thread. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (record.n_calls, ==, 1);
  g_assert_true (record.thread == g_thread_self ());
}

static GVariant *
report_instead_of_gerror (WpoolWorker  *worker,
                          GVariant     *shared_objects,
                          GVariant     *item,
                          gpointer      user_data,
                          GError      **error)
{
  if (g_variant_get_double (item) == 3)
    {
      wpool_worker_report_error (worker, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "reported by the binding");
      return NULL;
    }

  return g_variant_new_double (g_variant_get_double (item));
}

static void
test_worker_report_error (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (report_instead_of_gerror, NULL, NULL);

  wpool_pool_set_chunk_size (pool, 1);
  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (8), NULL,
                               G_IO_ERROR, G_IO_ERROR_NOT_FOUND, ": reported by the binding");
  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (8), NULL,
                               G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "Item 3 on worker ");
}

/* A reported error is not left over for the worker's next item. */
static GVariant *
report_once (WpoolWorker  *worker,
             GVariant     *shared_objects,
             GVariant     *item,
             gpointer      user_data,
             GError      **error)
{
  wpool_worker_report_error (worker, G_IO_ERROR, G_IO_ERROR_FAILED, "ignored: the GError wins");
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "set through the GError");
  return NULL;
}

static void
test_worker_report_error_gerror_wins (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) failing = wpool_task_new (report_once, NULL, NULL);
  g_autoptr(WpoolTask) doubling = wpool_task_new (double_it, NULL, NULL);
  g_autoptr(GVariant) results = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_test_assert_map_fails (pool, failing, wpool_test_range_doubles (1), NULL,
                               G_IO_ERROR, G_IO_ERROR_EXISTS, "set through the GError");

  /* Same worker, next map: nothing left over. */
  results = wpool_pool_map (pool, doubling, wpool_test_range_doubles (3), NULL, NULL);
  g_assert_nonnull (results);
  g_assert_cmpuint (g_variant_n_children (results), ==, 3);
}

typedef struct
{
  GMutex    mutex;
  GVariant *shared_objects;
  gpointer  shared_data;
  guint     seen_ids;
  gboolean  properties_ok;
} WorkerRecord;

static GVariant *
record_worker (WpoolWorker  *worker,
               GVariant     *shared_objects,
               GVariant     *item,
               gpointer      user_data,
               GError      **error)
{
  WorkerRecord *record = user_data;
  g_autoptr(GVariant) from_property = NULL;
  guint id_from_property;

  g_object_get (worker, "id", &id_from_property, "shared-objects", &from_property, NULL);

  g_mutex_lock (&record->mutex);
  record->shared_objects = wpool_worker_get_shared_objects (worker);
  record->shared_data = wpool_worker_get_shared_data (worker);
  record->seen_ids |= 1u << wpool_worker_get_id (worker);
  record->properties_ok = id_from_property == wpool_worker_get_id (worker) &&
                          from_property == shared_objects &&
                          shared_objects == wpool_worker_get_shared_objects (worker);
  g_mutex_unlock (&record->mutex);

  g_usleep (G_TIME_SPAN_MILLISECOND);

  return g_variant_new_uint32 (wpool_worker_get_id (worker));
}

static void
test_worker_accessors (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (3, WPOOL_START_METHOD_THREADING);
  WorkerRecord record = { 0 };
  g_autoptr(WpoolTask) task = wpool_task_new (record_worker, &record, NULL);
  g_autoptr(GVariant) shared = g_variant_ref_sink (g_variant_new_string ("shared"));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  static int shared_data;

  g_mutex_init (&record.mutex);
  g_assert_true (wpool_pool_set_shared_objects (pool, shared, NULL));
  g_assert_true (wpool_pool_set_shared_data (pool, &shared_data, NULL, NULL));
  wpool_pool_set_chunk_size (pool, 1);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (30), NULL, &error);
  g_assert_no_error (error);

  g_assert_true (record.shared_objects == shared);
  g_assert_true (record.shared_data == &shared_data);
  g_assert_true (record.properties_ok);
  g_assert_cmpuint (record.seen_ids & ~0x7u, ==, 0);

  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_cmpuint (g_variant_get_uint32 (value), <, 3);
    }

  g_mutex_clear (&record.mutex);
}

/* SPAWN runs what a new process can find, and says how to fix the rest. */
static void
test_task_spawnable (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_SPAWN);
  GModule *module = g_module_open (wpool_test_module_path (), G_MODULE_BIND_LAZY);
  gpointer square = NULL;
  int user_data;

  g_assert_nonnull (module);
  g_assert_true (g_module_symbol (module, "wpool_test_square", &square));

  /* A function pointer that dladdr() resolves to an exported symbol. */
  {
    g_autoptr(WpoolTask) task = wpool_task_new ((WpoolTaskFunc)square, NULL, NULL);
    g_autoptr(GVariant) results = NULL;
    g_autoptr(GError) error = NULL;

    wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
    results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
    g_assert_no_error (error);
    wpool_test_assert_variant (results, g_variant_new_parsed ("[0.0, 1.0, 4.0, 9.0]"));
  }

  /* With user data, which a new process cannot see. */
  {
    g_autoptr(WpoolTask) task = wpool_task_new ((WpoolTaskFunc)square, &user_data, NULL);

    wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (1), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, "give the task what it needs as shared objects");
  }

  /* A function of the program, not of a shared library. */
  {
    g_autoptr(WpoolTask) task = wpool_task_new (double_it, NULL, NULL);

    wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (1), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, "wpool_task_new_for_symbol()");
  }

  /* A symbol of the main program. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(WpoolTask) task = wpool_task_new_for_symbol (NULL, "wpool_test_main_program_task", &error);

    g_assert_no_error (error);
    wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (1), NULL,
                                 WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED, "comes from the main program");
  }

  g_assert_false (wpool_pool_get_workers_running (pool));
  g_module_close (module);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/task/new", test_task_new);
  g_test_add_func ("/task/new/null-func", test_task_new_null_func);
  g_test_add_func ("/task/result-type", test_task_result_type);
  g_test_add_func ("/task/result-type/indefinite", test_task_result_type_indefinite);
  g_test_add_func ("/task/for-symbol", test_task_for_symbol);
  g_test_add_func ("/task/for-symbol/missing-module", test_task_for_symbol_missing_module);
  g_test_add_func ("/task/for-symbol/missing-symbol", test_task_for_symbol_missing_symbol);
  g_test_add_func ("/task/for-symbol/main-program", test_task_for_symbol_main_program);
  g_test_add_func ("/task/destroy-on-caller-thread", test_task_destroy_on_caller_thread);
  g_test_add_func ("/task/spawnable", test_task_spawnable);
  g_test_add_func ("/worker/report-error", test_worker_report_error);
  g_test_add_func ("/worker/report-error/gerror-wins", test_worker_report_error_gerror_wins);
  g_test_add_func ("/worker/accessors", test_worker_accessors);

  return g_test_run ();
}
