/* test-map.c: wpool_pool_map() and wpool_pool_map_async() under THREADING,
 * and the item counts every start method refuses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>
#include <sys/mman.h>

#include "wpool-test-util.h"

typedef struct
{
  gint      n_calls;
  GThread  *caller;
  gint      on_caller_thread;
  gint      max_concurrent;
  gint      concurrent;
} Counter;

static GVariant *
square_counting (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  Counter *counter = user_data;
  double x = g_variant_get_double (item);

  if (counter != NULL)
    {
      g_atomic_int_inc (&counter->n_calls);
      if (g_thread_self () == counter->caller)
        g_atomic_int_inc (&counter->on_caller_thread);
    }

  return g_variant_new_double (x * x);
}

static void
assert_squares (GVariant *results,
                guint     n,
                gboolean  boxed)
{
  g_assert_cmpstr (g_variant_get_type_string (results), ==, boxed ? "av" : "ad");
  g_assert_cmpuint (g_variant_n_children (results), ==, n);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = boxed ? g_variant_get_variant (child) : g_variant_ref (child);

      g_assert_cmpfloat (g_variant_get_double (value), ==, (double)i * i);
    }
}

static void
test_map_typed_results (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  Counter counter = { .caller = g_thread_self () };
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, &counter, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, &error);
  g_assert_no_error (error);
  assert_squares (results, 1000, FALSE);
  g_assert_cmpint (counter.n_calls, ==, 1000);
  g_assert_cmpint (counter.on_caller_thread, ==, 0);
}

static void
test_map_boxed_results (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (3, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (777), NULL, &error);
  g_assert_no_error (error);
  assert_squares (results, 777, TRUE);
}

/* Items of any type, variable-sized ones included, in a non-floating
 * array that the caller keeps. */
static GVariant *
string_length (WpoolWorker  *worker,
               GVariant     *shared_objects,
               GVariant     *item,
               gpointer      user_data,
               GError      **error)
{
  const char *name;
  gint32 n;

  g_variant_get (item, "(&si)", &name, &n);

  return g_variant_new ("(su)", name, (guint32)(strlen (name) * n));
}

static void
test_map_variable_sized_items (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (string_length, NULL, NULL);
  g_autoptr(GVariant) items = g_variant_ref_sink (g_variant_new_parsed ("[('a', 1), ('bb', 2), ('ccc', 3), ('', 4)]"));
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(su)"));
  results = wpool_pool_map (pool, task, items, NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[('a', uint32 1), ('bb', 4), ('ccc', 9), ('', 0)]"));
  g_assert_false (g_variant_is_floating (items));
}

/* A value of @type derived from @i, for any type made of basic types,
 * tuples, dict entries, arrays and strings. */
static GVariant *
make_value (const GVariantType *type,
            guint32             i)
{
  if (g_variant_type_is_tuple (type) || g_variant_type_is_dict_entry (type))
    {
      g_autoptr(GPtrArray) children = g_ptr_array_new ();

      for (const GVariantType *member = g_variant_type_first (type);
           member != NULL;
           member = g_variant_type_next (member))
        g_ptr_array_add (children, make_value (member, i + children->len));

      if (g_variant_type_is_dict_entry (type))
        return g_variant_new_dict_entry (children->pdata[0], children->pdata[1]);

      return g_variant_new_tuple ((GVariant **)children->pdata, children->len);
    }

  if (g_variant_type_is_array (type))
    {
      GVariant *elements[2];
      guint n = i % 3;

      for (guint k = 0; k < n; k++)
        elements[k] = make_value (g_variant_type_element (type), i + k);

      return g_variant_new_array (g_variant_type_element (type), elements, n);
    }

  switch (g_variant_type_peek_string (type)[0])
    {
    case 'b': return g_variant_new_boolean (i % 2);
    case 'y': return g_variant_new_byte (i);
    case 'n': return g_variant_new_int16 (-(gint16)i);
    case 'q': return g_variant_new_uint16 (i);
    case 'i': return g_variant_new_int32 (-(gint32)i);
    case 'u': return g_variant_new_uint32 (i);
    case 'h': return g_variant_new_handle (i);
    case 'x': return g_variant_new_int64 (-(gint64)i * 1000000007);
    case 't': return g_variant_new_uint64 ((guint64)i << 40);
    case 'd': return g_variant_new_double (i / 3.0);
    case 's': return g_variant_new_take_string (g_strdup_printf ("item %u", i));
    default: g_assert_not_reached ();
    }
}

static GVariant *
make_value_task (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  GVariant *value = make_value (user_data, g_variant_get_uint32 (item));

  /* Half of the results in tree form, half already serialized. */
  if (g_variant_get_uint32 (item) % 2 == 0)
    {
      g_autoptr(GVariant) sunk = g_variant_ref_sink (value);
      gpointer data = g_memdup2 (g_variant_get_data (sunk), g_variant_get_size (sunk));

      return g_variant_new_from_data (g_variant_get_type (sunk), data, g_variant_get_size (sunk),
                                      TRUE, g_free, data);
    }

  return value;
}

static GVariant *
return_item (WpoolWorker  *worker,
             GVariant     *shared_objects,
             GVariant     *item,
             gpointer      user_data,
             GError      **error)
{
  return g_variant_ref (item);
}

/* Typed results are laid out as GVariant lays out `a<T>`, and items are
 * sliced from it: padding, alignment and nesting included, for fixed- and
 * variable-sized T. */
static void
test_map_typed_layouts (void)
{
  const char *types[] = {
    "b", "y", "n", "q", "i", "u", "h", "x", "t", "d",
    "(yd)", "(dy)", "(ynqiuxtdh)", "(b(yq)u)", "((y)(y))", "()", "(y())", "{yd}", "(ut)",
    "s", "(sd)", "ay", "a(yd)", "(uas)",
  };

  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
      const GVariantType *type = G_VARIANT_TYPE (types[t]);
      g_autoptr(WpoolTask) task = wpool_task_new (make_value_task, (gpointer)type, NULL);
      g_autoptr(GPtrArray) expected = g_ptr_array_new ();
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;
      guint n = 257;

      g_test_message ("result type %s", types[t]);

      for (guint i = 0; i < n; i++)
        g_ptr_array_add (expected, make_value (type, i));

      wpool_task_set_result_type (task, type);
      wpool_pool_set_chunk_size (pool, 10);
      /* No item at all. */
      results = wpool_pool_map (pool, task, wpool_test_repeat_uint32 (0, 0), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (results), ==, 0);
      g_clear_pointer (&results, g_variant_unref);

      {
        g_autofree guint32 *indexes = g_new (guint32, n);

        for (guint i = 0; i < n; i++)
          indexes[i] = i;
        results = wpool_pool_map (pool, task,
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, indexes, n, sizeof (guint32)),
                                  NULL, &error);
      }
      g_assert_no_error (error);
      g_assert_true (g_variant_is_normal_form (results));
      wpool_test_assert_variant (results, g_variant_new_array (type, (GVariant **)expected->pdata, n));

      /* The same values as items: each task gets its own element back. */
      {
        g_autoptr(WpoolTask) identity = wpool_task_new (return_item, NULL, NULL);
        g_autoptr(GVariant) echoed = NULL;

        wpool_task_set_result_type (identity, type);
        echoed = wpool_pool_map (pool, identity, results, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpvariant (echoed, results);
      }
    }
}

static void
test_map_empty (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  Counter counter = { 0 };
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, &counter, NULL);
  g_autoptr(GVariant) boxed = NULL;
  g_autoptr(GVariant) typed = NULL;
  guint base_threads = wpool_test_count_threads ();

  boxed = wpool_pool_map (pool, task, g_variant_new_array (G_VARIANT_TYPE_DOUBLE, NULL, 0), NULL, NULL);
  wpool_test_assert_variant (boxed, g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0));

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  typed = wpool_pool_map (pool, task, g_variant_new_array (G_VARIANT_TYPE_DOUBLE, NULL, 0), NULL, NULL);
  wpool_test_assert_variant (typed, g_variant_new_array (G_VARIANT_TYPE_DOUBLE, NULL, 0));

  g_assert_cmpint (counter.n_calls, ==, 0);
  wpool_test_assert_threads (base_threads);
}

/* Every chunk size, explicit or automatic, covers every item once. */
static void
test_map_chunk_sizes (void)
{
  const guint chunk_sizes[] = { 0, 1, 2, 3, 7, 64, 1000, 5000 };
  const guint n_items[] = { 1, 2, 5, 999, 1000 };

  for (guint c = 0; c < G_N_ELEMENTS (chunk_sizes); c++)
    for (guint n = 0; n < G_N_ELEMENTS (n_items); n++)
      {
        g_autoptr(WpoolPool) pool = wpool_pool_new (3, WPOOL_START_METHOD_THREADING);
        Counter counter = { 0 };
        g_autoptr(WpoolTask) task = wpool_task_new (square_counting, &counter, NULL);
        g_autoptr(GVariant) results = NULL;
        g_autoptr(GError) error = NULL;

        wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
        wpool_pool_set_chunk_size (pool, chunk_sizes[c]);
        results = wpool_pool_map (pool, task, wpool_test_range_doubles (n_items[n]), NULL, &error);
        g_assert_no_error (error);
        assert_squares (results, n_items[n], FALSE);
        g_assert_cmpint (counter.n_calls, ==, n_items[n]);
      }
}

/* Workers take work in chunks: with chunk-size N, consecutive runs of N
 * items go to the same worker. */
static GVariant *
worker_id (WpoolWorker  *worker,
           GVariant     *shared_objects,
           GVariant     *item,
           gpointer      user_data,
           GError      **error)
{
  return g_variant_new_uint32 (wpool_worker_get_id (worker));
}

static void
test_map_chunks_stay_on_one_worker (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (worker_id, NULL, NULL);
  g_autoptr(GVariant) results = NULL;
  gsize n;
  const guint32 *ids;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 50);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, NULL);
  ids = g_variant_get_fixed_array (results, &n, sizeof (guint32));
  g_assert_cmpuint (n, ==, 1000);

  for (guint chunk = 0; chunk < 20; chunk++)
    for (guint i = chunk * 50; i < (chunk + 1) * 50; i++)
      g_assert_cmpuint (ids[i], ==, ids[chunk * 50]);
  g_clear_pointer (&results, g_variant_unref);

  /* With an automatic chunk size, n-splits chunks: 3 of 334, 334, 332. */
  wpool_pool_set_chunk_size (pool, 0);
  wpool_pool_set_n_splits (pool, 3);
  g_assert_cmpuint (wpool_pool_get_n_splits (pool), ==, 3);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, NULL);
  ids = g_variant_get_fixed_array (results, &n, sizeof (guint32));
  for (guint i = 0; i < 1000; i++)
    g_assert_cmpuint (ids[i], ==, ids[i / 334 * 334]);
}

/* With chunk-size and n-splits automatic, chunks are guided: each a
 * share of the items left, shrinking to a floor, so that uneven items end
 * together. A chunk task records where each chunk started and its size. */
typedef struct
{
  GMutex  mutex;
  GArray *chunks;
} ChunkLog;

static gboolean
log_chunk (WpoolWorker   *worker,
           GVariant      *shared_objects,
           gconstpointer  items,
           gsize          n_items,
           gpointer       results,
           gpointer       user_data,
           GError       **error)
{
  ChunkLog *log = user_data;
  guint chunk[2] = { (guint)((const double *)items)[0], (guint)n_items };

  memcpy (results, items, n_items * sizeof (double));
  g_mutex_lock (&log->mutex);
  g_array_append_vals (log->chunks, chunk, 2);
  g_mutex_unlock (&log->mutex);

  return TRUE;
}

static int
compare_chunks (gconstpointer a,
                gconstpointer b)
{
  guint first_a = ((const guint *)a)[0];
  guint first_b = ((const guint *)b)[0];

  return first_a < first_b ? -1 : first_a > first_b;
}

static void
test_map_guided_chunks (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  ChunkLog log = { .chunks = g_array_new (FALSE, FALSE, sizeof (guint)) };
  g_autoptr(WpoolTask) task = wpool_task_new_for_chunks (G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE,
                                                         log_chunk, &log, NULL);
  g_autoptr(GVariant) results = NULL;
  guint *chunks;
  guint n_chunks;

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, NULL);
  g_assert_nonnull (results);
  g_qsort_with_data (log.chunks->data, log.chunks->len / 2, 2 * sizeof (guint),
                     (GCompareDataFunc) compare_chunks, NULL);
  chunks = (guint *)(gpointer)log.chunks->data;
  n_chunks = log.chunks->len / 2;

  /* A quarter of the items (half the share of each of 2 workers) first,
   * then never more than the chunk before, never below 1000 / 32 but for
   * the rest at the end, and every item once. */
  g_assert_cmpuint (chunks[0], ==, 0);
  g_assert_cmpuint (chunks[1], ==, 250);
  for (guint c = 1; c < n_chunks; c++)
    {
      g_assert_cmpuint (chunks[2 * c], ==, chunks[2 * c - 2] + chunks[2 * c - 1]);
      g_assert_cmpuint (chunks[2 * c + 1], <=, chunks[2 * c - 1]);
      if (c < n_chunks - 1)
        g_assert_cmpuint (chunks[2 * c + 1], >=, 32);
    }
  g_assert_cmpuint (chunks[2 * n_chunks - 2] + chunks[2 * n_chunks - 1], ==, 1000);
  g_assert_cmpuint (n_chunks, >, 8);
  g_assert_cmpuint (n_chunks, <, 20);

  /* An explicit n-splits gives even chunks, as MPIRE. */
  g_array_set_size (log.chunks, 0);
  g_clear_pointer (&results, g_variant_unref);
  wpool_pool_set_n_splits (pool, 8);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (1000), NULL, NULL);
  g_assert_nonnull (results);
  g_assert_cmpuint (log.chunks->len, ==, 16);
  for (guint c = 0; c < 8; c++)
    g_assert_cmpuint (g_array_index (log.chunks, guint, 2 * c + 1), ==, 125);

  g_array_unref (log.chunks);
}

static void
test_map_items_not_array (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);

  wpool_test_assert_map_fails (pool, task, g_variant_new_double (1), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "“d”");
  wpool_test_assert_map_fails (pool, task, g_variant_new_parsed ("(1, 2)"), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "“(ii)”");
  g_assert_false (wpool_pool_get_workers_running (pool));
}

static void
test_map_task_without_func (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = g_object_new (WPOOL_TYPE_TASK, NULL);

  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (3), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "wpool_task_new");
}

/* A task's own error keeps its domain and code, names the item and the
 * worker, stops the map, and leaves the pool usable. */
static void
test_map_task_error (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  double values[] = { 1, 2, 3, -4, 5, 6 };

  task = wpool_test_module_task ("wpool_test_fail_on_negative");

  g_assert_null (wpool_pool_map (pool, task,
                                 g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 6, sizeof (double)),
                                 NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "Item 3 on worker "));
  g_assert_true (g_str_has_suffix (error->message, ": negative item -4"));
  g_clear_error (&error);

  results = wpool_pool_map (pool, task, wpool_test_range_doubles (10), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 10);
}

/* The first error stops the hand-out: with one worker and chunks of one,
 * nothing after the failing item runs. */
static GVariant *
fail_at_five (WpoolWorker  *worker,
              GVariant     *shared_objects,
              GVariant     *item,
              gpointer      user_data,
              GError      **error)
{
  Counter *counter = user_data;

  g_atomic_int_inc (&counter->n_calls);

  if (g_variant_get_double (item) == 5)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "five");
      return NULL;
    }

  return g_variant_new_boolean (TRUE);
}

static void
test_map_first_error_stops (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, WPOOL_START_METHOD_THREADING);
  Counter counter = { 0 };
  g_autoptr(WpoolTask) task = wpool_task_new (fail_at_five, &counter, NULL);
  g_autoptr(GError) error = NULL;

  wpool_pool_set_chunk_size (pool, 1);
  g_assert_null (wpool_pool_map (pool, task, wpool_test_range_doubles (100), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "Item 5 on worker 0: five");
  g_assert_cmpint (counter.n_calls, ==, 6);
}

static GVariant *
return_null (WpoolWorker  *worker,
             GVariant     *shared_objects,
             GVariant     *item,
             gpointer      user_data,
             GError      **error)
{
  return NULL;
}

static void
test_map_null_without_error (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (return_null, NULL, NULL);

  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (3), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_FAILED, "returned NULL without setting an error");
}

static void
test_map_wrong_result_type (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);

  wpool_task_set_result_type (task, G_VARIANT_TYPE_INT32);
  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (3), NULL,
                               WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT,
                               "returned a result of type “d”, but declares “i”");
}

static void
test_map_cancelled_before (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  Counter counter = { 0 };
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, &counter, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  g_cancellable_cancel (cancellable);
  wpool_test_assert_map_fails (pool, task, wpool_test_range_doubles (10), cancellable,
                               G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
  g_assert_cmpint (counter.n_calls, ==, 0);
  g_assert_false (wpool_pool_get_workers_running (pool));
}

typedef struct
{
  GCancellable *cancellable;
  gint          started;
  gint          n_calls;
} CancelState;

/* Cancels the map from inside its third item: no item is handed out
 * after that. */
static GVariant *
cancel_at_third (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  CancelState *state = user_data;

  if (g_atomic_int_add (&state->n_calls, 1) == 2)
    g_cancellable_cancel (state->cancellable);

  return g_variant_new_boolean (TRUE);
}

static void
test_map_cancelled_during (void)
{
  /* One worker, so that exactly the items before the cancellation run. */
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, WPOOL_START_METHOD_THREADING);
  CancelState state = { .cancellable = g_cancellable_new () };
  g_autoptr(WpoolTask) task = wpool_task_new (cancel_at_third, &state, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_pool_set_chunk_size (pool, 1);
  g_assert_null (wpool_pool_map (pool, task, wpool_test_range_doubles (10000), state.cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (state.n_calls, ==, 3);

  /* The pool stays usable. */
  g_clear_error (&error);
  g_clear_object (&state.cancellable);
  state.cancellable = g_cancellable_new ();
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (2), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 2);
  g_object_unref (state.cancellable);
}

/* Cancelled from another thread while slow items run: the map returns
 * once the running items end, long before the whole map could. */
static void
test_map_cancelled_from_other_thread (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *canceller;
  gint64 start = g_get_monotonic_time ();

  task = wpool_test_module_task ("wpool_test_sleep_ms");
  wpool_pool_set_chunk_size (pool, 1);

  /* 2 000 items of 10 ms on 2 workers: 10 s uncancelled. */
  canceller = wpool_test_cancel_later (cancellable, 50);
  g_assert_null (wpool_pool_map (pool, task, wpool_test_repeat_uint32 (2000, 10), cancellable, &error));
  g_thread_join (canceller);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* A generous bound: only proves it did not run to the end. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

/* Too many items */

/* 2^32 + 5: cut to 32 bits, the count would be 5. */
#define TOO_MANY_ITEMS (((gsize)1 << 32) + 5)

typedef struct
{
  gpointer data;
  gsize    size;
} Region;

static void
region_free (gpointer data)
{
  Region *region = data;

  g_assert_cmpint (munmap (region->data, region->size), ==, 0);
  g_free (region);
}

/* An `ay` of @n zero bytes that costs no memory: its pages are reserved,
 * never touched. */
static GVariant *
untouched_bytes (gsize n)
{
  Region *region = g_new (Region, 1);
  g_autoptr(GBytes) bytes = NULL;

  region->size = n;
  region->data = mmap (NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  g_assert_true (region->data != MAP_FAILED);
  bytes = g_bytes_new_with_free_func (region->data, n, region_free, region);

  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE));
}

static void
assert_too_many (GError *error,
                 gsize   n_items)
{
  g_autofree char *count = g_strdup_printf ("%" G_GSIZE_FORMAT, n_items);

  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, count));
  g_assert_nonnull (strstr (error->message, "G_MAXINT"));
}

/* A map of more items than the engine can index is refused on its full
 * count, whichever way it starts, before any worker does: cut to 32
 * bits, 2^32 + 5 items would run as 5. */
static void
test_map_too_many_items (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_whoami");
  g_autoptr(GVariant) items = untouched_bytes (TOO_MANY_ITEMS);
  g_autoptr(GVariant) just_over = untouched_bytes ((gsize)G_MAXINT + 1);
  g_autoptr(WpoolMapStream) stream = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome outcome = { 0 };

  g_assert_cmpuint (g_variant_n_children (items), ==, TOO_MANY_ITEMS);

  g_assert_null (wpool_pool_map (pool, task, items, NULL, &error));
  assert_too_many (error, TOO_MANY_ITEMS);
  g_clear_error (&error);

  wpool_pool_map_async (pool, task, items, NULL, wpool_test_map_done, &outcome);
  wpool_test_wait_for (&outcome.done);
  g_assert_null (outcome.results);
  assert_too_many (outcome.error, TOO_MANY_ITEMS);
  wpool_test_outcome_clear (&outcome);

  g_assert_null (wpool_pool_map_unordered (pool, task, items, NULL, &error));
  assert_too_many (error, TOO_MANY_ITEMS);
  g_clear_error (&error);

  g_assert_null (wpool_pool_imap (pool, task, items, WPOOL_MAP_FLAGS_KEEP_GOING, NULL, &error));
  assert_too_many (error, TOO_MANY_ITEMS);
  g_clear_error (&error);

  /* The bound itself: G_MAXINT items would be taken. */
  g_assert_null (wpool_pool_map (pool, task, just_over, NULL, &error));
  assert_too_many (error, (gsize)G_MAXINT + 1);
  g_clear_error (&error);

  g_assert_false (wpool_pool_get_workers_running (pool));

  /* The pool maps as before. */
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("[byte 1, 2]"), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 2);
}

/* wpool_pool_map_chunks() takes a gsize count: it is refused whole, not
 * cut, and before the size of the items (count × item size) could wrap.
 * The arrays are never read. */
static void
test_map_chunks_too_many_items (gconstpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GError) error = NULL;
  const double items[5] = { 1, 2, 3, 4, 5 };
  double results[5] = { 0, };
  const gsize counts[] = { TOO_MANY_ITEMS, (gsize)G_MAXINT + 1, G_MAXSIZE / sizeof (double) + 2, G_MAXSIZE };

  task = wpool_task_new_for_chunk_symbol (wpool_test_module_path (), "wpool_test_square_plus_one_chunk",
                                          G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE_DOUBLE, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
    {
      g_assert_false (wpool_pool_map_chunks (pool, task, items, counts[i], results, NULL, &error));
      assert_too_many (error, counts[i]);
      g_clear_error (&error);
    }

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    g_assert_cmpfloat (results[i], ==, 0);
  g_assert_false (wpool_pool_get_workers_running (pool));

  g_assert_true (wpool_pool_map_chunks (pool, task, items, G_N_ELEMENTS (items), results, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (results[4], ==, 26);
}

/* Cancelling a hung item */

/* Items wait here until the test opens it. */
typedef struct
{
  GMutex   mutex;
  GCond    cond;
  guint    n_waiting;
  gboolean open;
  /* Items that left the gate, counted once its mutex is let go: clearing
   * it waits for this, which ThreadSanitizer sees (a thread's end it
   * does not, as the test reads it from /proc). */
  gint     n_left;
} Gate;

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->mutex);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->mutex);
}

/* u → u: item 0 waits at the gate, as long as it stays shut; the others
 * return at once. */
static GVariant *
zero_waits_at_gate (WpoolWorker  *worker,
                    GVariant     *shared_objects,
                    GVariant     *item,
                    gpointer      user_data,
                    GError      **error)
{
  Gate *gate = user_data;

  if (g_variant_get_uint32 (item) != 0)
    return g_variant_ref (item);

  g_mutex_lock (&gate->mutex);
  gate->n_waiting++;
  g_cond_broadcast (&gate->cond);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->mutex);
  g_mutex_unlock (&gate->mutex);
  g_atomic_int_inc (&gate->n_left);

  return g_variant_ref (item);
}

typedef struct
{
  Gate         *gate;
  GCancellable *cancellable;
  gint64        cancelled_at;
} Canceller;

/* Cancels 100 ms after an item is seen waiting at the gate. */
static gpointer
cancel_once_waiting (gpointer data)
{
  Canceller *canceller = data;

  g_mutex_lock (&canceller->gate->mutex);
  while (canceller->gate->n_waiting == 0)
    g_cond_wait (&canceller->gate->cond, &canceller->gate->mutex);
  g_mutex_unlock (&canceller->gate->mutex);

  g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  canceller->cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (canceller->cancellable);

  return NULL;
}

/* `au` of 0, 1, …, n - 1. */
static GVariant *
range_uint32 (guint first,
              guint n)
{
  g_autofree guint32 *values = g_new (guint32, n);

  for (guint i = 0; i < n; i++)
    values[i] = first + i;

  return g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, values, n, sizeof (guint32));
}

/* Waits, for 10 s at most, until this process has @expected threads: a
 * worker thread left in an item ends once it returns. */
static void
wait_for_threads (guint expected)
{
  for (guint tries = 0; tries < 1000 && wpool_test_count_threads () != expected; tries++)
    g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpuint (wpool_test_count_threads (), ==, expected);
}

typedef enum
{
  CANCEL_MAP,
  CANCEL_MAP_ASYNC,
  CANCEL_IMAP,
} CancelHow;

/* A cancelled map on threads returns at once even when an item never
 * returns: the thread running it is left to finish on its own, its
 * result dropped, and a new thread takes its place. Once the item
 * returns, its thread ends and nothing is left behind. */
static void
test_map_cancel_hung_item (gconstpointer data)
{
  CancelHow how = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  Gate gate = { 0, };
  g_autoptr(WpoolTask) task = wpool_task_new (zero_waits_at_gate, &gate, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Canceller canceller = { &gate, cancellable, 0 };
  guint base_threads = wpool_test_count_threads ();
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  GThread *thread;
  gint64 returned;

  g_mutex_init (&gate.mutex);
  g_cond_init (&gate.cond);
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 1);

  thread = g_thread_new ("canceller", cancel_once_waiting, &canceller);
  if (how == CANCEL_MAP)
    {
      g_assert_null (wpool_pool_map (pool, task, range_uint32 (0, 100), cancellable, &error));
    }
  else if (how == CANCEL_MAP_ASYNC)
    {
      WpoolTestOutcome outcome = { 0 };

      wpool_pool_map_async (pool, task, range_uint32 (0, 100), cancellable, wpool_test_map_done, &outcome);
      wpool_test_wait_for (&outcome.done);
      g_assert_null (outcome.results);
      error = g_steal_pointer (&outcome.error);
      wpool_test_outcome_clear (&outcome);
    }
  else
    {
      g_autoptr(WpoolMapStream) stream = NULL;
      g_autoptr(GVariant) result = NULL;

      stream = wpool_pool_imap (pool, task, range_uint32 (0, 100), WPOOL_MAP_FLAGS_NONE, cancellable, &error);
      g_assert_no_error (error);
      g_assert_false (wpool_map_stream_next (stream, NULL, &result, NULL, &error));
      g_assert_null (result);
    }
  returned = g_get_monotonic_time ();
  g_thread_join (thread);

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_test_message ("returned %.1f ms after the cancel", (returned - canceller.cancelled_at) / 1000.0);
  /* Generous: the item never returns. */
  g_assert_cmpint (returned - canceller.cancelled_at, <, 2 * G_USEC_PER_SEC);
  g_clear_error (&error);

  /* Both workers run the next map, the hung item still waiting. */
  results = wpool_pool_map (pool, task, range_uint32 (1, 50), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 50);
  g_assert_cmpuint (gate.n_waiting, ==, 1);

  gate_open (&gate);
  wait_for_threads (base_threads);
  while (g_atomic_int_get (&gate.n_left) == 0)
    g_usleep (G_TIME_SPAN_MILLISECOND);
  g_mutex_clear (&gate.mutex);
  g_cond_clear (&gate.cond);
}

/* A task may map on another pool, but not on its own. */
static GVariant *
nested_map (WpoolWorker  *worker,
            GVariant     *shared_objects,
            GVariant     *item,
            gpointer      user_data,
            GError      **error)
{
  WpoolPool *pool = user_data;
  g_autoptr(WpoolTask) inner = wpool_task_new (square_counting, NULL, NULL);
  GVariant *results;

  wpool_task_set_result_type (inner, G_VARIANT_TYPE_DOUBLE);
  if (!(results = wpool_pool_map (pool, inner, wpool_test_range_doubles (4), NULL, error)))
    return NULL;

  return results;
}

static void
test_map_reentrant (void)
{
  g_autoptr(WpoolPool) outer = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) other = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) on_own_pool = wpool_task_new (nested_map, outer, NULL);
  g_autoptr(WpoolTask) on_other_pool = wpool_task_new (nested_map, other, NULL);
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_null (wpool_pool_map (outer, on_own_pool, wpool_test_range_doubles (2), NULL, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "its own pool"));
  g_clear_error (&error);

  /* The other pool's map runs from the outer pool's worker threads. */
  wpool_pool_set_keep_alive (other, TRUE);
  wpool_task_set_result_type (on_other_pool, G_VARIANT_TYPE ("ad"));
  results = wpool_pool_map (outer, on_other_pool, wpool_test_range_doubles (1), NULL, &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (results, g_variant_new_parsed ("[[0.0, 1.0, 4.0, 9.0]]"));
}

/* Async */

static void
test_map_async (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  Counter counter = { .caller = g_thread_self () };
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, &counter, NULL);
  WpoolTestOutcome ar = { 0 };

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  wpool_pool_map_async (pool, task, wpool_test_range_doubles (500), NULL, wpool_test_map_done, &ar);
  /* Never called back from inside the call. */
  g_assert_false (ar.done);

  wpool_test_wait_for (&ar.done);
  g_assert_no_error (ar.error);
  assert_squares (ar.results, 500, FALSE);
  g_assert_true (ar.thread == g_thread_self ());
  g_assert_cmpint (counter.on_caller_thread, ==, 0);
  wpool_test_outcome_clear (&ar);
}

static void
test_map_async_empty (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);
  WpoolTestOutcome ar = { 0 };

  wpool_pool_map_async (pool, task, g_variant_new_array (G_VARIANT_TYPE_DOUBLE, NULL, 0), NULL, wpool_test_map_done, &ar);
  g_assert_false (ar.done);
  wpool_test_wait_for (&ar.done);
  g_assert_no_error (ar.error);
  g_assert_cmpuint (g_variant_n_children (ar.results), ==, 0);
  wpool_test_outcome_clear (&ar);
}

static void
test_map_async_errors (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) forkserver = wpool_pool_new (2, WPOOL_START_METHOD_FORKSERVER);
  /* A function of this program, which a fork server cannot load. */
  g_autoptr(WpoolTask) unlocatable = wpool_task_new (square_counting, NULL, NULL);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome ar = { 0 };
  double values[] = { 1, -2, 3 };

  task = wpool_test_module_task ("wpool_test_fail_on_negative");

  /* Bad arguments come back through the callback too. */
  wpool_pool_map_async (pool, task, g_variant_new_string ("no"), NULL, wpool_test_map_done, &ar);
  g_assert_false (ar.done);
  wpool_test_wait_for (&ar.done);
  g_assert_error (ar.error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  wpool_test_outcome_clear (&ar);

    wpool_pool_map_async (forkserver, unlocatable, wpool_test_range_doubles (3), NULL, wpool_test_map_done, &ar);
  wpool_test_wait_for (&ar.done);
  g_assert_error (ar.error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED);
  wpool_test_outcome_clear (&ar);

    wpool_pool_map_async (pool, task,
                        g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 3, sizeof (double)),
                        NULL, wpool_test_map_done, &ar);
  wpool_test_wait_for (&ar.done);
  g_assert_error (ar.error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (ar.error->message, "Item 1 on worker "));
  wpool_test_outcome_clear (&ar);
}

static gboolean
cancel_idle (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_map_async_cancelled (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  WpoolTestOutcome ar = { 0 };

  task = wpool_test_module_task ("wpool_test_sleep_ms");
  wpool_pool_set_chunk_size (pool, 1);

  wpool_pool_map_async (pool, task, wpool_test_repeat_uint32 (2000, 10), cancellable, wpool_test_map_done, &ar);
  g_timeout_add (30, cancel_idle, cancellable);
  wpool_test_wait_for (&ar.done);
  g_assert_error (ar.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (ar.results);
  wpool_test_outcome_clear (&ar);

  /* Workers were stopped after the cancelled map (no keep-alive). */
  g_assert_false (wpool_pool_get_workers_running (pool));
}

/* Several maps in flight on one pool: the workers take them in order and
 * each gets its own results. */
static void
test_map_async_concurrent (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);
  WpoolTestOutcome ar[5] = { { 0 } };
  guint base_threads = wpool_test_count_threads ();

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  for (guint i = 0; i < G_N_ELEMENTS (ar); i++)
    wpool_pool_map_async (pool, task, wpool_test_range_doubles (100 * (i + 1)), NULL, wpool_test_map_done, &ar[i]);

  for (guint i = 0; i < G_N_ELEMENTS (ar); i++)
    {
      wpool_test_wait_for (&ar[i].done);
      g_assert_no_error (ar[i].error);
      assert_squares (ar[i].results, 100 * (i + 1), FALSE);
      wpool_test_outcome_clear (&ar[i]);
    }

  /* The last map to finish stopped the workers. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (wpool_pool_get_workers_running (pool));
  wpool_test_assert_threads (base_threads);
}

/* The callback runs on the thread-default main context of the caller,
 * here one pushed on another thread. */
static gpointer
map_in_thread (gpointer data)
{
  WpoolPool *pool = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);
  WpoolTestOutcome ar = { 0 };

  g_main_context_push_thread_default (context);
  wpool_pool_map_async (pool, task, wpool_test_range_doubles (50), NULL, wpool_test_map_done, &ar);
  wpool_test_wait_for (&ar.done);
  g_main_context_pop_thread_default (context);

  g_assert_no_error (ar.error);
  g_assert_true (ar.thread == g_thread_self ());
  wpool_test_outcome_clear (&ar);

  return NULL;
}

static void
test_map_async_thread_default_context (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  GThread *thread = g_thread_new ("caller", map_in_thread, pool);

  g_thread_join (thread);
}

/* Maps must not leak fds or threads, whatever their outcome. */
static void
test_map_no_leaks (void)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_task_new (square_counting, NULL, NULL);
  g_autoptr(WpoolTask) failing = NULL;
  guint base_fds = wpool_test_count_fds ();
  guint base_threads = wpool_test_count_threads ();
  double values[] = { 1, -2, 3 };

  failing = wpool_test_module_task ("wpool_test_fail_on_negative");

  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GError) error = NULL;

      if (i % 2 == 0)
        results = wpool_pool_map (pool, task, wpool_test_range_doubles (i), NULL, &error);
      else
        results = wpool_pool_map (pool, failing,
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, 3, sizeof (double)),
                                  NULL, &error);
      g_assert_true ((results == NULL) == (error != NULL));
    }

  wpool_test_assert_fds (base_fds);
  wpool_test_assert_threads (base_threads);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/map/typed-results", test_map_typed_results);
  g_test_add_func ("/map/guided-chunks", test_map_guided_chunks);
  g_test_add_func ("/map/boxed-results", test_map_boxed_results);
  g_test_add_func ("/map/variable-sized-items", test_map_variable_sized_items);
  g_test_add_func ("/map/typed-layouts", test_map_typed_layouts);
  g_test_add_func ("/map/empty", test_map_empty);
  g_test_add_func ("/map/chunk-sizes", test_map_chunk_sizes);
  g_test_add_func ("/map/chunks-stay-on-one-worker", test_map_chunks_stay_on_one_worker);
  g_test_add_func ("/map/error/items-not-array", test_map_items_not_array);
  g_test_add_func ("/map/error/task-without-func", test_map_task_without_func);
  g_test_add_func ("/map/error/task-error", test_map_task_error);
  g_test_add_func ("/map/error/first-error-stops", test_map_first_error_stops);
  g_test_add_func ("/map/error/null-without-error", test_map_null_without_error);
  g_test_add_func ("/map/error/wrong-result-type", test_map_wrong_result_type);
  g_test_add_func ("/map/error/reentrant", test_map_reentrant);
  g_test_add_func ("/map/cancel/before", test_map_cancelled_before);
  g_test_add_func ("/map/cancel/during", test_map_cancelled_during);
  g_test_add_func ("/map/cancel/from-other-thread", test_map_cancelled_from_other_thread);
  g_test_add_func ("/map/async", test_map_async);
  g_test_add_func ("/map/async/empty", test_map_async_empty);
  g_test_add_func ("/map/async/errors", test_map_async_errors);
  g_test_add_func ("/map/async/cancelled", test_map_async_cancelled);
  g_test_add_func ("/map/async/concurrent", test_map_async_concurrent);
  g_test_add_func ("/map/async/thread-default-context", test_map_async_thread_default_context);
  g_test_add_func ("/map/no-leaks", test_map_no_leaks);
  g_test_add_data_func ("/map/cancel/hung-item/map", GINT_TO_POINTER (CANCEL_MAP), test_map_cancel_hung_item);
  g_test_add_data_func ("/map/cancel/hung-item/map-async", GINT_TO_POINTER (CANCEL_MAP_ASYNC),
                        test_map_cancel_hung_item);
  g_test_add_data_func ("/map/cancel/hung-item/imap", GINT_TO_POINTER (CANCEL_IMAP), test_map_cancel_hung_item);

  {
    static const WpoolTestCase tests[] = {
      { "map/error/too-many-items", test_map_too_many_items, FALSE },
      { "map-chunks/error/too-many-items", test_map_chunks_too_many_items, FALSE },
    };

    wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));
  }

  return g_test_run ();
}
