/* test-shared-array.c: WpoolSharedArray and WpoolLock on their own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wpool-test-util.h"

static void
test_shared_array_accessors (void)
{
  const struct { WpoolSharedArrayType type; const char *values; } types[] = {
    { WPOOL_SHARED_ARRAY_TYPE_INT32, "[0, -7, 0, 0]" },
    { WPOOL_SHARED_ARRAY_TYPE_INT64, "[int64 0, -7, 0, 0]" },
    { WPOOL_SHARED_ARRAY_TYPE_UINT8, "[byte 0, 249, 0, 0]" },
    { WPOOL_SHARED_ARRAY_TYPE_FLOAT, "[0.0, -7.0, 0.0, 2.5]" },
    { WPOOL_SHARED_ARRAY_TYPE_DOUBLE, "[0.0, -7.0, 0.0, 2.5]" },
  };

  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    {
      g_autoptr(WpoolSharedArray) array = NULL;
      g_autoptr(GVariant) values = NULL;
      g_autoptr(GError) error = NULL;
      gboolean is_float = types[t].type == WPOOL_SHARED_ARRAY_TYPE_FLOAT ||
                          types[t].type == WPOOL_SHARED_ARRAY_TYPE_DOUBLE;
      gsize length;

      array = wpool_shared_array_new (types[t].type, 4, FALSE, &error);
      g_assert_no_error (error);
      g_assert_cmpint (wpool_shared_array_get_element_type (array), ==, types[t].type);
      g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 4);
      g_assert_null (wpool_shared_array_get_lock (array));
      g_assert_nonnull (wpool_shared_array_get_data (array, &length));
      g_assert_cmpuint (length, ==, 4);

      /* All zero at first; every accessor converts. */
      g_assert_cmpfloat (wpool_shared_array_get_double (array, 2, &error), ==, 0);
      g_assert_true (wpool_shared_array_set_int64 (array, 1, -7, &error));
      g_assert_no_error (error);
      g_assert_cmpint (wpool_shared_array_get_int64 (array, 1, &error), ==,
                       types[t].type == WPOOL_SHARED_ARRAY_TYPE_UINT8 ? 249 : -7);
      g_assert_true (wpool_shared_array_set_double (array, 3, 2.5, &error));
      g_assert_cmpfloat (wpool_shared_array_get_double (array, 3, &error), ==, is_float ? 2.5 : 2);
      g_assert_no_error (error);

      if (!is_float)
        g_assert_true (wpool_shared_array_set_int64 (array, 3, 0, &error));
      values = wpool_shared_array_dup_values (array);
      wpool_test_assert_variant (values, g_variant_new_parsed (types[t].values));

      /* Out of bounds: an error, and nothing written. */
      g_assert_false (wpool_shared_array_set_double (array, 4, 1, &error));
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_cmpfloat (wpool_shared_array_get_double (array, 100, &error), ==, 0);
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_false (wpool_shared_array_set_int64 (array, G_MAXSIZE, 1, &error));
      g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_shared_array_bad_type (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (wpool_shared_array_new (42, 4, FALSE, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
}

static void
test_shared_array_empty (void)
{
  g_autoptr(WpoolSharedArray) array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 0, TRUE, NULL);
  g_autoptr(GVariant) values = NULL;

  g_assert_nonnull (array);
  g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 0);
  values = wpool_shared_array_dup_values (array);
  g_assert_cmpuint (g_variant_n_children (values), ==, 0);
}

static void
test_lock (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolLock) lock = wpool_lock_new (&error);
  g_autoptr(WpoolSharedArray) array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT32, 1, TRUE, &error);
  WpoolLock *array_lock;

  g_assert_no_error (error);

  g_assert_true (wpool_lock_try_acquire (lock));
  g_assert_false (wpool_lock_try_acquire (lock));
  wpool_lock_release (lock);
  wpool_lock_acquire (lock);
  wpool_lock_release (lock);

  /* An array's own lock is separate from any other. */
  array_lock = wpool_shared_array_get_lock (array);
  g_assert_true (WPOOL_IS_LOCK (array_lock));
  g_assert_true (wpool_lock_try_acquire (array_lock));
  g_assert_true (wpool_lock_try_acquire (lock));
  wpool_lock_release (lock);
  wpool_lock_release (array_lock);
}

static void
test_handles (void)
{
  g_autoptr(WpoolSharedArray) a = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT32, 1, FALSE, NULL);
  g_autoptr(WpoolSharedArray) b = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT32, 1, FALSE, NULL);
  g_autoptr(WpoolLock) lock = wpool_lock_new (NULL);
  g_autoptr(GVariant) ha = g_variant_ref_sink (wpool_shared_array_get_handle (a));
  g_autoptr(GVariant) hb = g_variant_ref_sink (wpool_shared_array_get_handle (b));
  g_autoptr(GVariant) hl = g_variant_ref_sink (wpool_lock_get_handle (lock));

  g_assert_cmpstr (g_variant_get_type_string (ha), ==, "(st)");
  g_assert_false (g_variant_equal (ha, hb));
  g_assert_false (g_variant_equal (ha, hl));
}

/* What a binding does with dup_fd(): its own mapping of the memory is
 * the elements themselves, both ways; new_for_fd() makes an array of it
 * again, and refuses what is no array's memory. */
static void
test_shared_array_fd (void)
{
  g_autoptr(WpoolSharedArray) array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT64, 5, TRUE, NULL);
  g_autoptr(WpoolSharedArray) again = NULL;
  g_autoptr(GVariant) handle = NULL;
  g_autoptr(GVariant) handle_again = NULL;
  g_autoptr(GError) error = NULL;
  guint base_fds = wpool_test_count_fds ();
  gsize offset = 0;
  gint64 *elements;
  gsize size;
  int fd, pipe_fds[2];

  fd = wpool_shared_array_dup_fd (array, &offset, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (fcntl (fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  g_assert_cmpuint (offset % sizeof (gint64), ==, 0);
  size = offset + 5 * sizeof (gint64);
  elements = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  g_assert_true (elements != MAP_FAILED);
  elements = (gint64 *)((guint8 *)elements + offset);
  g_assert_true (wpool_shared_array_set_int64 (array, 4, 42, NULL));
  g_assert_cmpint (elements[4], ==, 42);
  elements[0] = -3;
  g_assert_cmpint (wpool_shared_array_get_int64 (array, 0, NULL), ==, -3);
  g_assert_cmpint (munmap ((guint8 *)elements - offset, size), ==, 0);

  /* The same elements and lock, and the same handle. */
  again = wpool_shared_array_new_for_fd (fd, &error);
  g_assert_no_error (error);
  g_assert_cmpint (wpool_shared_array_get_element_type (again), ==, WPOOL_SHARED_ARRAY_TYPE_INT64);
  g_assert_cmpuint (wpool_shared_array_get_length (again), ==, 5);
  g_assert_cmpint (wpool_shared_array_get_int64 (again, 4, NULL), ==, 42);
  g_assert_true (wpool_shared_array_set_int64 (again, 1, 7, NULL));
  g_assert_cmpint (wpool_shared_array_get_int64 (array, 1, NULL), ==, 7);
  g_assert_true (wpool_lock_try_acquire (wpool_shared_array_get_lock (again)));
  g_assert_false (wpool_lock_try_acquire (wpool_shared_array_get_lock (array)));
  wpool_lock_release (wpool_shared_array_get_lock (again));
  handle = g_variant_ref_sink (wpool_shared_array_get_handle (array));
  handle_again = g_variant_ref_sink (wpool_shared_array_get_handle (again));
  g_assert_true (g_variant_equal (handle, handle_again));
  g_clear_object (&again);
  g_assert_cmpuint (wpool_test_count_fds (), ==, base_fds);

  /* No array's memory: closed all the same. */
  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  g_assert_null (wpool_shared_array_new_for_fd (pipe_fds[0], &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_clear_error (&error);
  close (pipe_fds[1]);
  g_assert_null (wpool_shared_array_new_for_fd (memfd_create ("other", MFD_ALLOW_SEALING), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_cmpuint (wpool_test_count_fds (), ==, base_fds);
}

/* Creating and dropping arrays and locks leaves no memfd behind. */
static void
test_no_leak (void)
{
  guint base_fds = wpool_test_count_fds ();
  guint base_mappings = wpool_test_count_mappings ("memfd:wpool-shared");

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(WpoolSharedArray) array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 1000, TRUE, NULL);
      g_autoptr(WpoolLock) lock = wpool_lock_new (NULL);

      g_assert_nonnull (array);
      g_assert_nonnull (lock);
      g_assert_cmpuint (wpool_test_count_mappings ("memfd:wpool-shared"), ==, base_mappings + 2);
    }

  wpool_test_assert_fds (base_fds);
  g_assert_cmpuint (wpool_test_count_mappings ("memfd:wpool-shared"), ==, base_mappings);
}

static void
test_items_enumerate (void)
{
  g_autoptr(GVariant) pairs = NULL;
  g_autoptr(GVariant) empty = NULL;
  g_autoptr(GError) error = NULL;

  pairs = wpool_items_enumerate (g_variant_new_parsed ("[10, 20, 30]"), &error);
  g_assert_no_error (error);
  wpool_test_assert_variant (pairs, g_variant_new_parsed ("[(uint32 0, 10), (1, 20), (2, 30)]"));

  empty = wpool_items_enumerate (g_variant_new_array (G_VARIANT_TYPE_STRING, NULL, 0), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (empty), ==, "a(us)");
  g_assert_cmpuint (g_variant_n_children (empty), ==, 0);

  g_assert_null (wpool_items_enumerate (g_variant_new_int32 (3), &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shared-array/accessors", test_shared_array_accessors);
  g_test_add_func ("/shared-array/bad-type", test_shared_array_bad_type);
  g_test_add_func ("/shared-array/empty", test_shared_array_empty);
  g_test_add_func ("/shared-array/fd", test_shared_array_fd);
  g_test_add_func ("/lock/acquire-release", test_lock);
  g_test_add_func ("/shared-memory/handles", test_handles);
  g_test_add_func ("/shared-memory/no-leak", test_no_leak);
  g_test_add_func ("/items/enumerate", test_items_enumerate);

  return g_test_run ();
}
