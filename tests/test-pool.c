/* test-pool.c: WpoolPool's properties, worker lifecycle and shared-object
 * rules.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "wpool-test-util.h"

static GVariant *
identity (WpoolWorker  *worker,
          GVariant     *shared_objects,
          GVariant     *item,
          gpointer      user_data,
          GError      **error)
{
  return g_variant_ref (item);
}

static GVariant *
return_shared_objects (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  return shared_objects ? g_variant_ref (shared_objects) : g_variant_new_string ("none");
}

static void
test_pool_defaults (void)
{
  g_autoptr(WpoolPool) pool = g_object_new (WPOOL_TYPE_POOL, NULL);
  g_autoptr(GVariant) shared = NULL;
  WpoolStartMethod start_method;
  guint n_jobs;
  guint chunk_size;
  gboolean keep_alive;
  gboolean running;

  g_object_get (pool,
                "n-jobs", &n_jobs,
                "start-method", &start_method,
                "shared-objects", &shared,
                "keep-alive", &keep_alive,
                "chunk-size", &chunk_size,
                "workers-running", &running,
                NULL);

  g_assert_cmpuint (n_jobs, ==, g_get_num_processors ());
  g_assert_cmpuint (wpool_pool_get_n_jobs (pool), ==, g_get_num_processors ());
  g_assert_cmpint (start_method, ==, WPOOL_START_METHOD_FORK);
  g_assert_cmpint (wpool_pool_get_start_method (pool), ==, WPOOL_START_METHOD_FORK);
  g_assert_null (shared);
  g_assert_null (wpool_pool_get_shared_objects (pool));
  g_assert_false (keep_alive);
  g_assert_false (wpool_pool_get_keep_alive (pool));
  g_assert_cmpuint (chunk_size, ==, 0);
  g_assert_cmpuint (wpool_pool_get_chunk_size (pool), ==, 0);
  g_assert_false (running);
  g_assert_false (wpool_pool_get_workers_running (pool));
}

static void
test_pool_new (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (3, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) automatic = wpool_pool_new (0, WPOOL_START_METHOD_SPAWN);

  g_assert_cmpuint (wpool_pool_get_n_jobs (pool), ==, 3);
  g_assert_cmpint (wpool_pool_get_start_method (pool), ==, WPOOL_START_METHOD_THREADING);
  g_assert_cmpuint (wpool_pool_get_n_jobs (automatic), ==, g_get_num_processors ());
  g_assert_cmpint (wpool_pool_get_start_method (automatic), ==, WPOOL_START_METHOD_SPAWN);
}

static void
test_pool_construct_properties (void)
{
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(GVariant) shared = g_variant_ref_sink (g_variant_new_parsed ("(1.5, 'x')"));

  pool = g_object_new (WPOOL_TYPE_POOL,
                       "n-jobs", 5,
                       "start-method", WPOOL_START_METHOD_FORKSERVER,
                       "shared-objects", shared,
                       "keep-alive", TRUE,
                       "chunk-size", 7,
                       NULL);

  g_assert_cmpuint (wpool_pool_get_n_jobs (pool), ==, 5);
  g_assert_cmpint (wpool_pool_get_start_method (pool), ==, WPOOL_START_METHOD_FORKSERVER);
  g_assert_true (wpool_pool_get_shared_objects (pool) == shared);
  g_assert_true (wpool_pool_get_keep_alive (pool));
  g_assert_cmpuint (wpool_pool_get_chunk_size (pool), ==, 7);
}

static void
test_pool_n_jobs_out_of_range (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(WpoolPool) pool = NULL;

      pool = g_object_new (WPOOL_TYPE_POOL, "n-jobs", WPOOL_MAX_N_JOBS + 1, NULL);
      return;
    }

  /* GObject refuses a value out of the property's range. */
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*n-jobs*");
}

static void
test_pool_new_n_jobs_too_many (void)
{
  if (g_test_subprocess ())
    {
      g_assert_null (wpool_pool_new (WPOOL_MAX_N_JOBS + 1, WPOOL_START_METHOD_THREADING));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*WPOOL_MAX_N_JOBS*");
}

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    data)
{
  (*(guint *)data)++;
}

static void
test_pool_notify (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  guint n_keep_alive = 0;
  guint n_chunk_size = 0;
  guint n_shared = 0;

  g_signal_connect (pool, "notify::keep-alive", G_CALLBACK (count_notify), &n_keep_alive);
  g_signal_connect (pool, "notify::chunk-size", G_CALLBACK (count_notify), &n_chunk_size);
  g_signal_connect (pool, "notify::shared-objects", G_CALLBACK (count_notify), &n_shared);

  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_keep_alive (pool, TRUE);
  g_object_set (pool, "keep-alive", FALSE, NULL);
  g_assert_cmpuint (n_keep_alive, ==, 2);

  wpool_pool_set_chunk_size (pool, 10);
  wpool_pool_set_chunk_size (pool, 10);
  g_assert_cmpuint (n_chunk_size, ==, 1);

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_int32 (1), NULL));
  g_assert_true (wpool_pool_set_shared_objects (pool, NULL, NULL));
  g_assert_cmpuint (n_shared, ==, 2);
  g_assert_null (wpool_pool_get_shared_objects (pool));
}

/* Workers start at the first map; without keep-alive they are joined
 * after it; with it they stay, thread count and all. */
static void
test_pool_worker_lifecycle (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (3, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (identity, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint n_running_notify = 0;
  guint base_threads = wpool_test_count_threads ();

  g_signal_connect (pool, "notify::workers-running", G_CALLBACK (count_notify), &n_running_notify);

  g_assert_false (wpool_pool_get_workers_running (pool));
  wpool_test_assert_threads (base_threads);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);
  g_assert_false (wpool_pool_get_workers_running (pool));
  wpool_test_assert_threads (base_threads);
  g_assert_cmpuint (n_running_notify, ==, 2);

  wpool_pool_set_keep_alive (pool, TRUE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);
  g_assert_true (wpool_pool_get_workers_running (pool));
  wpool_test_assert_threads (base_threads + 3);

  /* The next map reuses them. */
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);
  wpool_test_assert_threads (base_threads + 3);
  g_assert_cmpuint (n_running_notify, ==, 3);

  wpool_pool_set_keep_alive (pool, FALSE);
  g_assert_false (wpool_pool_get_workers_running (pool));
  wpool_test_assert_threads (base_threads);
  g_assert_cmpuint (n_running_notify, ==, 4);
}

static void
test_pool_dispose_joins_workers (void)
{
  guint base_threads = wpool_test_count_threads ();
  guint base_fds = wpool_test_count_fds ();

  for (guint round = 0; round < 20; round++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (4, WPOOL_START_METHOD_THREADING);
      g_autoptr(WpoolTask) task = wpool_task_new (identity, NULL, NULL);
      g_autoptr(GVariant) results = NULL;

      wpool_pool_set_keep_alive (pool, TRUE);
      results = wpool_pool_map (pool, task, wpool_test_range_doubles (50), NULL, NULL);
      g_assert_nonnull (results);
      wpool_test_assert_threads (base_threads + 4);
    }

  wpool_test_assert_threads (base_threads);
  wpool_test_assert_fds (base_fds);
}

/* MPIRE's rule: shared objects are given to the workers when they start.
 * Set before the first map they apply; with keep-alive and running
 * workers a change is refused, not silently ignored. */
static void
test_pool_shared_objects_rules (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (return_shared_objects, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_pool_set_keep_alive (pool, TRUE);

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("first"), &error));
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("second"), &error));
  g_assert_no_error (error);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[<'second'>, <'second'>, <'second'>, <'second'>]"));
  g_clear_pointer (&results, g_variant_unref);

  /* Running, kept alive: refused, and the old objects stay. */
  g_assert_false (wpool_pool_set_shared_objects (pool, g_variant_new_string ("third"), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_assert_nonnull (strstr (error->message, "keep-alive"));
  g_clear_error (&error);
  g_assert_false (wpool_pool_set_shared_objects (pool, NULL, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_clear_error (&error);
  g_assert_cmpstr (g_variant_get_string (wpool_pool_get_shared_objects (pool), NULL), ==, "second");

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[<'second'>, <'second'>]"));
  g_clear_pointer (&results, g_variant_unref);

  /* Stopping the workers lets the change through. */
  wpool_pool_set_keep_alive (pool, FALSE);
  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("third"), &error));
  g_assert_no_error (error);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[<'third'>, <'third'>]"));
}

/* The properties whose change can fail are construct-only: a write
 * afterwards is GObject's warning and changes nothing (bindings refuse
 * it as GObject does), and the methods say why a change fails. */
static void
test_pool_fallible_properties_construct_only (void)
{
  const char *names[] = { "shared-objects", "worker-init", "worker-exit", "cpu-ids" };
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(WpoolTask) task = wpool_task_new (identity, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) two = g_variant_ref_sink (g_variant_new_int32 (2));
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      GParamSpec *pspec = g_object_class_find_property (g_type_class_peek (WPOOL_TYPE_POOL), names[i]);

      g_assert_cmpint (pspec->flags & (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY), ==,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY);
    }

  pool = g_object_new (WPOOL_TYPE_POOL, "n-jobs", 2, "keep-alive", TRUE,
                       "shared-objects", g_variant_new_int32 (1), NULL);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, NULL);
  g_assert_nonnull (results);

  /* Refused, GObject does not sink the value: the caller keeps it. */
  g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*shared-objects*can't be set after construction*");
  g_object_set (pool, "shared-objects", two, NULL);
  g_test_assert_expected_messages ();
  g_assert_cmpint (g_variant_get_int32 (wpool_pool_get_shared_objects (pool)), ==, 1);

  g_assert_false (wpool_pool_set_shared_objects (pool, two, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_assert_cmpint (g_variant_get_int32 (wpool_pool_get_shared_objects (pool)), ==, 1);
}

/* A value a pool cannot take at construction, where no error can be
 * returned, is not lost: every map fails with the reason. */
static void
test_pool_construct_error (void)
{
  g_autoptr(WpoolTask) task = wpool_task_new (identity, NULL, NULL);
  g_autoptr(WpoolTask) closure = wpool_task_new (identity, NULL, NULL);
  struct {
    const char *property;
    WpoolStartMethod start_method;
    GValue value;
    int code;
  } cases[] = {
    { "cpu-ids", WPOOL_START_METHOD_THREADING, G_VALUE_INIT, WPOOL_ERROR_INVALID_ARGUMENT },
    { "worker-init", WPOOL_START_METHOD_SPAWN, G_VALUE_INIT, WPOOL_ERROR_NOT_SUPPORTED },
    { "worker-exit", WPOOL_START_METHOD_SPAWN, G_VALUE_INIT, WPOOL_ERROR_NOT_SUPPORTED },
  };

  g_value_init (&cases[0].value, G_TYPE_VARIANT);
  g_value_set_variant (&cases[0].value, g_variant_new_parsed ("@aau [[0], [0], [0]]"));
  for (guint i = 1; i < G_N_ELEMENTS (cases); i++)
    {
      g_value_init (&cases[i].value, WPOOL_TYPE_TASK);
      /* A closure cannot reach a spawned process. */
      g_value_set_object (&cases[i].value, closure);
    }

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *names[] = { "n-jobs", "start-method", cases[i].property };
      GValue values[3] = { G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT };
      g_autoptr(WpoolPool) pool = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *expected = g_strdup_printf ("The pool was constructed with a “%s” it cannot take: ",
                                                   cases[i].property);

      g_value_init (&values[0], G_TYPE_UINT);
      g_value_set_uint (&values[0], 2);
      g_value_init (&values[1], WPOOL_TYPE_START_METHOD);
      g_value_set_enum (&values[1], cases[i].start_method);
      values[2] = cases[i].value;
      pool = WPOOL_POOL (g_object_new_with_properties (WPOOL_TYPE_POOL, 3, names, values));

      for (guint attempt = 0; attempt < 2; attempt++)
        {
          results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
          g_assert_null (results);
          g_assert_error (error, WPOOL_ERROR, cases[i].code);
          g_assert_true (g_str_has_prefix (error->message, expected));
          g_clear_error (&error);
        }

      g_assert_false (wpool_pool_set_shared_objects (pool, NULL, &error));
      g_assert_error (error, WPOOL_ERROR, cases[i].code);

      g_value_unset (&values[0]);
      g_value_unset (&values[1]);
      g_value_unset (&cases[i].value);
    }
}

typedef struct
{
  guint n_destroyed;
  gpointer last;
} DataRecord;

static void
data_destroy (gpointer data)
{
  DataRecord *record = *(DataRecord **)data;

  record->n_destroyed++;
  record->last = data;
}

static void
test_pool_shared_data (void)
{
  DataRecord record = { 0 };
  DataRecord *first = &record;
  DataRecord *second = &record;
  g_autoptr(GError) error = NULL;
  WpoolPool *pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (identity, NULL, NULL);
  g_autoptr(GVariant) results = NULL;

  g_assert_true (wpool_pool_set_shared_data (pool, &first, data_destroy, &error));
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_data (pool, &second, data_destroy, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (record.n_destroyed, ==, 1);
  g_assert_true (record.last == &first);

  /* Refused while kept-alive workers run; the pool does not take it. */
  wpool_pool_set_keep_alive (pool, TRUE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);
  g_assert_false (wpool_pool_set_shared_data (pool, &first, data_destroy, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING);
  g_assert_cmpuint (record.n_destroyed, ==, 1);

  g_object_unref (pool);
  g_assert_cmpuint (record.n_destroyed, ==, 2);
  g_assert_true (record.last == &second);
}

static void
test_pool_shared_data_process_methods (void)
{
  const WpoolStartMethod refused[] = { WPOOL_START_METHOD_SPAWN, WPOOL_START_METHOD_FORKSERVER };
  static int data;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (2, refused[i]);
      g_autoptr(GError) error = NULL;

      g_assert_false (wpool_pool_set_shared_data (pool, &data, NULL, &error));
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
    }

  {
    g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
    g_autoptr(GError) error = NULL;

    g_assert_true (wpool_pool_set_shared_data (pool, &data, NULL, &error));
    g_assert_no_error (error);
  }
}

static void
test_pool_enums_and_error (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (WPOOL_TYPE_START_METHOD);

  g_assert_cmpstr (g_enum_get_value (klass, WPOOL_START_METHOD_FORK)->value_nick, ==, "fork");
  g_assert_cmpstr (g_enum_get_value (klass, WPOOL_START_METHOD_FORKSERVER)->value_nick, ==, "forkserver");
  g_assert_cmpstr (g_enum_get_value (klass, WPOOL_START_METHOD_SPAWN)->value_nick, ==, "spawn");
  g_assert_cmpstr (g_enum_get_value (klass, WPOOL_START_METHOD_THREADING)->value_nick, ==, "threading");

  g_assert_cmpstr (g_quark_to_string (WPOOL_ERROR), ==, "wpool-error-quark");
  g_assert_true (WPOOL_CHECK_VERSION (0, 2, 0));
  g_assert_false (WPOOL_CHECK_VERSION (WPOOL_MAJOR_VERSION + 1, 0, 0));
  g_assert_cmpstr (WPOOL_VERSION_S, ==, PACKAGE_VERSION);
}

/* A disposed pool (as a binding may leave one) let its shared objects go:
 * it refuses to map, rather than run tasks without them. */
static void
test_pool_disposed (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome outcome = { 0, };

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_string ("dataset"), NULL));
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&results, g_variant_unref);

  g_object_run_dispose (G_OBJECT (pool));
  g_assert_null (wpool_pool_get_shared_objects (pool));

  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (3), NULL,
                               G_IO_ERROR, G_IO_ERROR_CLOSED, "disposed");
  g_assert_false (wpool_pool_get_workers_running (pool));

  wpool_pool_map_async (pool, task, wpool_test_range_doubles (3), NULL, wpool_test_map_done, &outcome);
  wpool_test_wait_for (&outcome.done);
  g_assert_error (outcome.error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  wpool_test_outcome_clear (&outcome);

  g_assert_false (wpool_pool_set_shared_objects (pool, g_variant_new_string ("again"), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pool/defaults", test_pool_defaults);
  g_test_add_func ("/pool/new", test_pool_new);
  g_test_add_func ("/pool/construct-properties", test_pool_construct_properties);
  g_test_add_func ("/pool/n-jobs/out-of-range", test_pool_n_jobs_out_of_range);
  g_test_add_func ("/pool/n-jobs/too-many", test_pool_new_n_jobs_too_many);
  g_test_add_func ("/pool/notify", test_pool_notify);
  g_test_add_func ("/pool/worker-lifecycle", test_pool_worker_lifecycle);
  g_test_add_func ("/pool/dispose-joins-workers", test_pool_dispose_joins_workers);
  g_test_add_func ("/pool/shared-objects/rules", test_pool_shared_objects_rules);
  g_test_add_func ("/pool/fallible-properties-construct-only", test_pool_fallible_properties_construct_only);
  g_test_add_func ("/pool/construct-error", test_pool_construct_error);
  g_test_add_func ("/pool/shared-data", test_pool_shared_data);
  g_test_add_func ("/pool/shared-data/process-methods", test_pool_shared_data_process_methods);
  g_test_add_func ("/pool/enums-and-error", test_pool_enums_and_error);
  g_test_add_func ("/pool/disposed", test_pool_disposed);

  return g_test_run ();
}
