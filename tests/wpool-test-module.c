/* wpool-test-module.c: task functions exported for symbol tasks, used by
 * the C, PyGObject and GJS tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <wpool.h>

/* For wpool_test_clobber_header(), which plays a buggy worker. */
#include "wpool-shared-memory-private.h"

#define WPOOL_TEST_EXPORT __attribute__((visibility("default")))

WPOOL_TEST_EXPORT GVariant *wpool_test_square (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_nested_map (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_scaled (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_shared_address (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_fail_on_negative (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_sleep_ms (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_whoami (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_die (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_read_shared_slice (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_square_add_and_modulo_with_index (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_locked_increments (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_hold_lock (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_store_at (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_init_state (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_count_in_state (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_exit_report (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_fail_always (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_cpus (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_exit_mark (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT gboolean wpool_test_square_plus_one_chunk (WpoolWorker *, GVariant *, gconstpointer, gsize, gpointer, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_clobber_header (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_fd_targets (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_hang (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);
WPOOL_TEST_EXPORT GVariant *wpool_test_shared_mapping (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);

/* d → d: x * x */
GVariant *
wpool_test_square (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  double x = g_variant_get_double (item);

  return g_variant_new_double (x * x);
}

/* u → d: maps x * x over 0, 1, 2, 3 on a new pool of two workers of
 * start method u, made in the worker (a nested pool), and sums. */
GVariant *
wpool_test_nested_map (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (2, (WpoolStartMethod) g_variant_get_uint32 (item));
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) results = NULL;
  double items[] = { 0, 1, 2, 3 };
  const double *squares;
  double sum = 0;
  gsize n;
  Dl_info self;

  /* This module, where it is: in the build tree, or installed. */
  if (!dladdr ((void *) wpool_test_square, &self) ||
      !(task = wpool_task_new_for_symbol (self.dli_fname, "wpool_test_square", error)))
    return NULL;
  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  if (!(results = wpool_pool_map (pool, task,
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, items, 4, sizeof (double)),
                                  NULL, error)))
    return NULL;

  squares = g_variant_get_fixed_array (results, &n, sizeof (double));
  for (gsize i = 0; i < n; i++)
    sum += squares[i];

  return g_variant_new_double (sum);
}

/* d → d: x * factor + offset, with shared objects “(dd)” = (factor, offset). */
GVariant *
wpool_test_scaled (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  double factor;
  double offset;

  if (shared_objects == NULL || !g_variant_is_of_type (shared_objects, G_VARIANT_TYPE ("(dd)")))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "shared objects must be (factor, offset) as “(dd)”");
      return NULL;
    }

  g_variant_get (shared_objects, "(dd)", &factor, &offset);

  return g_variant_new_double (g_variant_get_double (item) * factor + offset);
}

/* any → (ut): the worker's id and the address of the shared objects'
 * data as the worker sees it. */
GVariant *
wpool_test_shared_address (WpoolWorker  *worker,
                           GVariant     *shared_objects,
                           GVariant     *item,
                           gpointer      user_data,
                           GError      **error)
{
  gconstpointer data = shared_objects ? g_variant_get_data (shared_objects) : NULL;

  return g_variant_new ("(ut)", wpool_worker_get_id (worker), (guint64)(gsize)data);
}

/* d → d: fails with G_IO_ERROR_INVALID_ARGUMENT on a negative item. */
GVariant *
wpool_test_fail_on_negative (WpoolWorker  *worker,
                             GVariant     *shared_objects,
                             GVariant     *item,
                             gpointer      user_data,
                             GError      **error)
{
  double x = g_variant_get_double (item);

  if (x < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "negative item %g", x);
      return NULL;
    }

  return g_variant_new_double (x);
}

/* u → u: sleeps that many milliseconds, returns the item. With a shared
 * int64 array first in the shared objects, it first stores its pid there
 * at the worker's id: an item to be killed in the middle. */
GVariant *
wpool_test_sleep_ms (WpoolWorker  *worker,
                     GVariant     *shared_objects,
                     GVariant     *item,
                     gpointer      user_data,
                     GError      **error)
{
  guint32 ms = g_variant_get_uint32 (item);
  WpoolSharedArray *pids = shared_objects ? wpool_worker_get_shared_array (worker, 0, NULL) : NULL;

  if (pids != NULL)
    wpool_shared_array_set_int64 (pids, wpool_worker_get_id (worker), getpid (), NULL);
  g_usleep (ms * G_TIME_SPAN_MILLISECOND);

  return g_variant_new_uint32 (ms);
}

/* any → (uut): the worker's id, its process id, and the address of the
 * shared objects' data as the worker sees it; of a tuple's first member,
 * reached as a task should, without serializing the tuple. */
GVariant *
wpool_test_whoami (WpoolWorker  *worker,
                   GVariant     *shared_objects,
                   GVariant     *item,
                   gpointer      user_data,
                   GError      **error)
{
  g_autoptr(GVariant) first = NULL;
  gconstpointer data = NULL;

  if (shared_objects != NULL && g_variant_is_of_type (shared_objects, G_VARIANT_TYPE_TUPLE) &&
      g_variant_n_children (shared_objects) > 0)
    data = g_variant_get_data ((first = g_variant_get_child_value (shared_objects, 0)));
  else if (shared_objects != NULL)
    data = g_variant_get_data (shared_objects);

  return g_variant_new ("(uut)", wpool_worker_get_id (worker), (guint32)getpid (), (guint64)(gsize)data);
}

/* s → s: "segv", "abort" and "exit" end the worker that way (exit
 * status 3), "close" (closes its socket and lingers), "close-exit"
 * (closes its fds and exits with 3), "close-return" (closes its fds and
 * returns), "orphan" (exits with 3 leaving a
 * child that holds its socket for 5 s); anything else comes back. */
GVariant *
wpool_test_die (WpoolWorker  *worker,
                GVariant     *shared_objects,
                GVariant     *item,
                gpointer      user_data,
                GError      **error)
{
  const char *how = g_variant_get_string (item, NULL);

  if (g_str_equal (how, "segv"))
    raise (SIGSEGV);
  else if (g_str_equal (how, "abort"))
    abort ();
  else if (g_str_equal (how, "exit"))
    _exit (3);
  else if (g_str_equal (how, "close"))
    {
      /* Closes its socket (every fd past stdio), then lingers. */
      close_range (3, ~0U, 0);
      g_usleep (30 * G_USEC_PER_SEC);
    }
  else if (g_str_equal (how, "close-return"))
    {
      /* Closes every fd past stdio and returns: its worker cannot answer. */
      close_range (3, ~0U, 0);
    }
  else if (g_str_equal (how, "close-exit"))
    {
      /* Closes every fd past stdio, then exits at once or a little later. */
      close_range (3, ~0U, 0);
      g_usleep (g_random_int_range (0, 3) * 10 * G_TIME_SPAN_MILLISECOND);
      _exit (3);
    }
  else if (g_str_equal (how, "orphan"))
    {
      /* Leaves a child holding every fd, its socket too, for 5 s. */
      if (fork () == 0)
        {
          g_usleep (5 * G_USEC_PER_SEC);
          _exit (0);
        }
      _exit (3);
    }

  return g_variant_new_string (how);
}

/* (uu) → t: reads slice k of n of the shared `ay` and sums its bytes,
 * so that n items together read all of it. */
GVariant *
wpool_test_read_shared_slice (WpoolWorker  *worker,
                              GVariant     *shared_objects,
                              GVariant     *item,
                              gpointer      user_data,
                              GError      **error)
{
  const guint8 *data;
  gsize size;
  guint32 k;
  guint32 n;
  guint64 sum = 0;

  g_variant_get (item, "(uu)", &k, &n);
  data = g_variant_get_fixed_array (shared_objects, &size, 1);

  for (gsize i = size / n * k; i < (k + 1 == n ? size : size / n * (k + 1)); i++)
    sum += data[i];

  return g_variant_new_uint64 (sum);
}

/* The reference page's example. Shared objects: (square results, add
 * results), two float arrays without locks. Item: (index, x) as "(ui)".
 * Stores x*x and x+x at index; returns x % 2. */
GVariant *
wpool_test_square_add_and_modulo_with_index (WpoolWorker  *worker,
                                             GVariant     *shared_objects,
                                             GVariant     *item,
                                             gpointer      user_data,
                                             GError      **error)
{
  WpoolSharedArray *square_results = wpool_worker_get_shared_array (worker, 0, error);
  WpoolSharedArray *add_results = square_results ? wpool_worker_get_shared_array (worker, 1, error) : NULL;
  guint32 idx;
  gint32 x;

  if (add_results == NULL)
    return NULL;

  g_variant_get (item, "(ui)", &idx, &x);

  if (!wpool_shared_array_set_double (square_results, idx, x * x, error) ||
      !wpool_shared_array_set_double (add_results, idx, x + x, error))
    return NULL;

  return g_variant_new_int32 (x % 2);
}

/* u → u: adds 1 that many times to element 0 of the shared int64 array
 * (shared objects member 0), each time under the array's lock. */
GVariant *
wpool_test_locked_increments (WpoolWorker  *worker,
                              GVariant     *shared_objects,
                              GVariant     *item,
                              gpointer      user_data,
                              GError      **error)
{
  WpoolSharedArray *counter = wpool_worker_get_shared_array (worker, 0, error);
  guint32 n = g_variant_get_uint32 (item);
  WpoolLock *lock;
  gint64 *value;

  if (counter == NULL)
    return NULL;

  lock = wpool_shared_array_get_lock (counter);
  value = wpool_shared_array_get_data (counter, NULL);

  for (guint32 i = 0; i < n; i++)
    {
      wpool_lock_acquire (lock);
      *value = *value + 1;
      wpool_lock_release (lock);
    }

  return g_variant_new_uint32 (n);
}

/* s → s: takes the lock (shared objects member 0); "die" ends the worker
 * while it holds it, anything else releases it and comes back. */
GVariant *
wpool_test_hold_lock (WpoolWorker  *worker,
                      GVariant     *shared_objects,
                      GVariant     *item,
                      gpointer      user_data,
                      GError      **error)
{
  WpoolLock *lock = wpool_worker_get_lock (worker, 0, error);

  if (lock == NULL)
    return NULL;

  wpool_lock_acquire (lock);
  if (g_str_equal (g_variant_get_string (item, NULL), "die"))
    _exit (9);
  wpool_lock_release (lock);

  return g_variant_ref (item);
}

/* (ud) → b: stores the value at the index of the shared array (member 0). */
GVariant *
wpool_test_store_at (WpoolWorker  *worker,
                     GVariant     *shared_objects,
                     GVariant     *item,
                     gpointer      user_data,
                     GError      **error)
{
  WpoolSharedArray *array = wpool_worker_get_shared_array (worker, 0, error);
  guint32 index;
  double value;

  g_variant_get (item, "(ud)", &index, &value);

  if (array == NULL || !wpool_shared_array_set_double (array, index, value, error))
    return NULL;

  return g_variant_new_boolean (TRUE);
}

/* A worker-init: the worker's state gets "items" = 0 and "pid". */
GVariant *
wpool_test_init_state (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  GVariantDict *state = wpool_worker_get_state (worker);

  g_variant_dict_insert (state, "items", "u", 0);
  g_variant_dict_insert (state, "pid", "u", (guint32)getpid ());

  return g_variant_new ("()");
}

/* any → (uuu): counts the item in the worker's state, set by
 * wpool_test_init_state; returns the worker's id, the count so far, and
 * the pid the init saw. */
GVariant *
wpool_test_count_in_state (WpoolWorker  *worker,
                           GVariant     *shared_objects,
                           GVariant     *item,
                           gpointer      user_data,
                           GError      **error)
{
  GVariantDict *state = wpool_worker_get_state (worker);
  guint32 items;
  guint32 pid;

  if (!g_variant_dict_lookup (state, "items", "u", &items) ||
      !g_variant_dict_lookup (state, "pid", "u", &pid))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, "the worker-init did not run");
      return NULL;
    }

  g_variant_dict_insert (state, "items", "u", ++items);

  return g_variant_new ("(uuu)", wpool_worker_get_id (worker), items, pid);
}

/* A worker-exit → (uu): the worker's id and the items it counted. */
GVariant *
wpool_test_exit_report (WpoolWorker  *worker,
                        GVariant     *shared_objects,
                        GVariant     *item,
                        gpointer      user_data,
                        GError      **error)
{
  guint32 items = 0;

  g_variant_dict_lookup (wpool_worker_get_state (worker), "items", "u", &items);

  return g_variant_new ("(uu)", wpool_worker_get_id (worker), items);
}

/* Fails with G_IO_ERROR_PERMISSION_DENIED, whatever it is given. */
GVariant *
wpool_test_fail_always (WpoolWorker  *worker,
                        GVariant     *shared_objects,
                        GVariant     *item,
                        gpointer      user_data,
                        GError      **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "refused on purpose");
  return NULL;
}

/* Sleeps 4 s, for timeouts to catch, then returns its item. */
GVariant *
wpool_test_hang (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  g_usleep (4 * G_USEC_PER_SEC);

  return g_variant_ref (item);
}

/* any → (uau): the worker's id and the CPUs its thread may run on. */
GVariant *
wpool_test_cpus (WpoolWorker  *worker,
                 GVariant     *shared_objects,
                 GVariant     *item,
                 gpointer      user_data,
                 GError      **error)
{
  GVariantBuilder cpus;
  cpu_set_t set;

  g_assert (sched_getaffinity (0, sizeof set, &set) == 0);
  g_variant_builder_init (&cpus, G_VARIANT_TYPE ("au"));
  for (guint32 cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET (cpu, &set))
      g_variant_builder_add (&cpus, "u", cpu);

  return g_variant_new ("(uau)", wpool_worker_get_id (worker), &cpus);
}

/* A worker-exit: sets element <worker id> of shared array 0 to 1, so that
 * the caller sees the exit ran even after the pool is gone. */
GVariant *
wpool_test_exit_mark (WpoolWorker  *worker,
                      GVariant     *shared_objects,
                      GVariant     *item,
                      gpointer      user_data,
                      GError      **error)
{
  WpoolSharedArray *marks = wpool_worker_get_shared_array (worker, 0, error);

  if (marks == NULL || !wpool_shared_array_set_double (marks, wpool_worker_get_id (worker), 1, error))
    return NULL;

  return g_variant_new ("()");
}

/* A chunk task, d → d: x*x + 1; a chunk holding -1 fails, one holding -2
 * ends its worker process (process start methods only). */
gboolean
wpool_test_square_plus_one_chunk (WpoolWorker   *worker,
                                  GVariant      *shared_objects,
                                  gconstpointer  items,
                                  gsize          n_items,
                                  gpointer       results,
                                  gpointer       user_data,
                                  GError       **error)
{
  const double *x = items;
  double *y = results;

  for (gsize i = 0; i < n_items; i++)
    {
      if (x[i] == -1)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "-1 in the chunk");
          return FALSE;
        }
      if (x[i] == -2)
        _exit (3);
      y[i] = x[i] * x[i] + 1;
    }

  return TRUE;
}

/* * → (bt): a buggy worker, which writes garbage over the header of the
 * shared array (member 0): a length and an element size that reach far
 * past the memory, another element type and another id. Then whether
 * the array still refuses index 4, and the length it says it has. */
GVariant *
wpool_test_clobber_header (WpoolWorker  *worker,
                           GVariant     *shared_objects,
                           GVariant     *item,
                           gpointer      user_data,
                           GError      **error)
{
  WpoolSharedArray *array = wpool_worker_get_shared_array (worker, 0, error);
  WpoolSharedMemoryHeader *header;

  if (array == NULL)
    return NULL;

  header = (WpoolSharedMemoryHeader *)((guint8 *)wpool_shared_array_get_data (array, NULL) -
                                       WPOOL_SHARED_MEMORY_DATA_OFFSET);
  header->length = (guint64)1 << 40;
  header->element_size = 1 << 20;
  header->element_type = 1000;
  header->id = 42;

  return g_variant_new ("(bt)", !wpool_shared_array_set_double (array, 4, 1, NULL),
                        (guint64)wpool_shared_array_get_length (array));
}

/* * → as: where this process's file descriptors lead, from /proc/self/fd
 * ("socket:[…]", "/memfd:NAME (deleted)", …). */
GVariant *
wpool_test_fd_targets (WpoolWorker  *worker,
                       GVariant     *shared_objects,
                       GVariant     *item,
                       gpointer      user_data,
                       GError      **error)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, error);
  GVariantBuilder targets;
  const char *name;

  if (dir == NULL)
    return NULL;

  g_variant_builder_init (&targets, G_VARIANT_TYPE_STRING_ARRAY);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      /* The directory's own descriptor is gone by now. */
      if (target != NULL)
        g_variant_builder_add (&targets, "s", target);
    }

  return g_variant_builder_end (&targets);
}

/* * → (uuttt): the worker's id and pid; the inode of the mapping that
 * holds the shared objects' data, and its proportional and resident size
 * in KiB (/proc/self/smaps), once a byte of every page of the data was
 * read. */
GVariant *
wpool_test_shared_mapping (WpoolWorker  *worker,
                           GVariant     *shared_objects,
                           GVariant     *item,
                           gpointer      user_data,
                           GError      **error)
{
  g_autofree char *smaps = NULL;
  g_auto(GStrv) lines = NULL;
  const guint8 *data = g_variant_get_data (shared_objects);
  gsize size = g_variant_get_size (shared_objects);
  volatile guint8 sum = 0;
  guint64 inode = 0;
  guint64 pss = 0;
  guint64 rss = 0;
  gboolean inside = FALSE;

  for (gsize i = 0; i < size; i += 4096)
    sum += data[i];

  if (!g_file_get_contents ("/proc/self/smaps", &smaps, NULL, error))
    return NULL;

  lines = g_strsplit (smaps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 start;
      guint64 end;
      guint64 value;
      char name[32];

      /* A mapping's first line: "start-end perms offset dev inode path". */
      if (sscanf (lines[i], "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %*s %*s %*s %" G_GUINT64_FORMAT,
                  &start, &end, &value) == 3)
        {
          inside = start <= (guint64)(gsize)data && (guint64)(gsize)data < end;
          if (inside)
            inode = value;
        }
      else if (inside && sscanf (lines[i], "%31[A-Za-z]: %" G_GUINT64_FORMAT " kB", name, &value) == 2)
        {
          if (g_str_equal (name, "Pss"))
            pss = value;
          else if (g_str_equal (name, "Rss"))
            rss = value;
        }
    }

  return g_variant_new ("(uuttt)", wpool_worker_get_id (worker), (guint32)getpid (), inode, pss, rss);
}
