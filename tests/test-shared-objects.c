/* test-shared-objects.c: MPIRE's shared-objects semantics under THREADING,
 * measured: the very same memory in every worker, several objects as one
 * tuple, and results written into shared arrays instead of returned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "wpool-test-util.h"

#define N_DATASET (1u << 20)

/* A task returning (worker id, address of the shared objects' data) shows
 * every THREADING worker reading the caller's own buffer: no copy. */
static void
test_shared_objects_no_copy (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (4, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) dataset = g_variant_ref_sink (wpool_test_range_doubles (N_DATASET));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint64 caller_address = (guint64)(gsize)g_variant_get_data (dataset);
  GVariantIter iter;
  guint32 id;
  guint64 address;
  guint seen_ids = 0;

  task = wpool_test_module_task ("wpool_test_shared_address");
  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(ut)"));

  g_assert_true (wpool_pool_set_shared_objects (pool, dataset, &error));
  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (400), NULL, &error);
  g_assert_no_error (error);

  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(ut)", &id, &address))
    {
      g_assert_cmpuint (address, ==, caller_address);
      g_assert_cmpuint (id, <, 4);
      seen_ids |= 1u << id;
    }
  g_assert_cmpuint (seen_ids, !=, 0);
}

/* Several objects travel as one tuple; the task unpacks them. */
static GVariant *
use_tuple (WpoolWorker  *worker,
           GVariant     *shared_objects,
           GVariant     *item,
           gpointer      user_data,
           GError      **error)
{
  g_autoptr(GVariant) table = NULL;
  const char *label;
  double scale;
  guint32 i = g_variant_get_uint32 (item);
  gsize n;
  const double *values;

  g_variant_get (shared_objects, "(@ad&sd)", &table, &label, &scale);
  values = g_variant_get_fixed_array (table, &n, sizeof (double));

  if (i >= n)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "index %u out of range", i);
      return NULL;
    }

  return g_variant_new ("(sd)", label, values[i] * scale);
}

static void
test_shared_objects_tuple (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (use_tuple, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  guint32 indexes[] = { 3, 0, 2 };

  g_assert_true (wpool_pool_set_shared_objects (pool, g_variant_new_parsed ("([1.0, 2.0, 3.0, 4.0], 'x', 10.0)"),
                                                NULL));
  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(sd)"));

  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, indexes, 3, sizeof (guint32)),
                            NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[('x', 40.0), ('x', 10.0), ('x', 30.0)]"));
}

/* The reference page's copy-on-write alternative, with THREADING's
 * writable shared memory: a map over (index, value) pairs stores x*x and
 * x+x at index in two result containers, without a lock since every task
 * writes its own index, and returns x % 2. */
typedef struct
{
  float square_results[100];
  float add_results[100];
} Containers;

static GVariant *
square_add_and_modulo_with_index (WpoolWorker  *worker,
                                  GVariant     *shared_objects,
                                  GVariant     *item,
                                  gpointer      user_data,
                                  GError      **error)
{
  Containers *containers = wpool_worker_get_shared_data (worker);
  guint32 idx;
  gint32 x;

  g_variant_get (item, "(ui)", &idx, &x);
  containers->square_results[idx] = x * x;
  containers->add_results[idx] = x + x;

  return g_variant_new_int32 (x % 2);
}

static void
test_shared_objects_result_containers (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (4, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_add_and_modulo_with_index, NULL, NULL);
  g_autoptr(GVariantBuilder) pairs = g_variant_builder_new (G_VARIANT_TYPE ("a(ui)"));
  g_autoptr(GVariant) modulo_results = NULL;
  g_autoptr(GError) error = NULL;
  Containers *containers = g_new0 (Containers, 1);
  gsize n;
  const gint32 *modulo;

  for (guint i = 0; i < 100; i++)
    g_variant_builder_add (pairs, "(ui)", i, (gint32)i);

  g_assert_true (wpool_pool_set_shared_data (pool, containers, g_free, &error));
  wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);
  modulo_results = wpool_pool_map (pool, task, g_variant_builder_end (pairs), NULL, &error);
  g_assert_no_error (error);

  modulo = g_variant_get_fixed_array (modulo_results, &n, sizeof (gint32));
  g_assert_cmpuint (n, ==, 100);
  for (guint i = 0; i < 100; i++)
    {
      g_assert_cmpfloat (containers->square_results[i], ==, (float)(i * i));
      g_assert_cmpfloat (containers->add_results[i], ==, (float)(i + i));
      g_assert_cmpint (modulo[i], ==, i % 2);
    }
}

/* As in MPIRE, shared objects come in the argument after the worker, and
 * the worker sees the same thing. */
static GVariant *
shared_objects_argument (WpoolWorker  *worker,
                         GVariant     *shared_objects,
                         GVariant     *item,
                         gpointer      user_data,
                         GError      **error)
{
  return g_variant_new_boolean (shared_objects == wpool_worker_get_shared_objects (worker) &&
                                shared_objects == user_data);
}

static void
test_shared_objects_argument (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(GVariant) shared = g_variant_ref_sink (g_variant_new_parsed ("('a', 'b')"));
  g_autoptr(WpoolTask) task = wpool_task_new (shared_objects_argument, shared, NULL);
  g_autoptr(GVariant) results = NULL;

  wpool_pool_set_shared_objects (pool, shared, NULL);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_BOOLEAN);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (20), NULL, NULL);
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GVariant) ok = g_variant_get_child_value (results, i);
      g_assert_true (g_variant_get_boolean (ok));
    }
}

/* No shared objects: the task gets NULL. */
static void
test_shared_objects_none (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (shared_objects_argument, NULL, NULL);
  g_autoptr(GVariant) results = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_BOOLEAN);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (3), NULL, NULL);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[true, true, true]"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shared-objects/no-copy", test_shared_objects_no_copy);
  g_test_add_func ("/shared-objects/tuple", test_shared_objects_tuple);
  g_test_add_func ("/shared-objects/result-containers", test_shared_objects_result_containers);
  g_test_add_func ("/shared-objects/argument", test_shared_objects_argument);
  g_test_add_func ("/shared-objects/none", test_shared_objects_none);

  return g_test_run ();
}
