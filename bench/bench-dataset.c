/* bench-dataset.c: the memory a shared dataset costs per worker, under
 * every start method. A 1 GiB dataset (`ay`) is the pool's shared
 * objects, as a GVariant and as a byte WpoolSharedArray (memfd-backed:
 * mapped, never copied); 200 tasks on 2 workers read every page of it. Reports, per
 * worker, its private dirty memory and the PSS the pool added (the sum of
 * the PSS of this process, the workers and a fork server, less this
 * process's before the pool, per worker), from /proc/PID/smaps_rollup.
 *
 *   bench-dataset [MIB] [N_JOBS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wpool.h>

#include "bench-util.h"

#define N_TASKS 200

/* The parent of process @pid, or 0. */
static int
parent_of (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *stat = NULL;
  const char *end;
  int ppid = 0;

  /* After the command, which may hold spaces: state, then the parent. */
  if (!g_file_get_contents (path, &stat, NULL, NULL) || !(end = strrchr (stat, ')')) ||
      sscanf (end + 2, "%*c %d", &ppid) != 1)
    return 0;

  return ppid;
}

/* The PSS of this process, its children (workers, a fork server) and
 * their children (a fork server's workers). */
static double
family_pss_kib (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  double pss = bench_smaps_kib (getpid (), "\nPss:");

  while ((name = g_dir_read_name (dir)))
    {
      int pid = atoi (name);
      int ppid = pid > 0 && pid != getpid () ? parent_of (pid) : 0;

      if (ppid > 0 && (ppid == getpid () || parent_of (ppid) == getpid ()))
        pss += bench_smaps_kib (pid, "\nPss:");
    }

  return pss;
}

int
main (int   argc,
      char *argv[])
{
  const struct { WpoolStartMethod method; const char *name; gboolean array; } methods[] = {
    { WPOOL_START_METHOD_THREADING, "THREADING", FALSE },
    { WPOOL_START_METHOD_FORK, "FORK", FALSE },
    { WPOOL_START_METHOD_FORKSERVER, "FORKSERVER", FALSE },
    { WPOOL_START_METHOD_SPAWN, "SPAWN", FALSE },
    { WPOOL_START_METHOD_FORKSERVER, "FORKSERVER, shared array", TRUE },
    { WPOOL_START_METHOD_SPAWN, "SPAWN, shared array", TRUE },
  };
  gsize mib = argc > 1 ? (gsize)g_ascii_strtoull (argv[1], NULL, 10) : 1024;
  guint n_jobs = argc > 2 ? (guint)g_ascii_strtoull (argv[2], NULL, 10) : 2;
  const char *module = g_getenv ("WPOOL_BENCH_MODULE");
  g_autoptr(GVariant) dataset = NULL;
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) items = NULL;
  g_autofree guint32 *indexes = g_new (guint32, N_TASKS);
  guint8 *bytes;

  setlocale (LC_ALL, "");

  /* Written, so that its pages are this process's before any pool. */
  bytes = g_malloc (mib << 20);
  for (gsize i = 0; i < mib << 20; i += 4096)
    bytes[i] = (guint8)(i >> 12);
  dataset = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, mib << 20,
                                                         TRUE, g_free, bytes));
  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_UINT8, mib << 20, FALSE, &error);
  g_assert_no_error (error);
  memcpy (wpool_shared_array_get_data (array, NULL), bytes, mib << 20);
  for (guint i = 0; i < N_TASKS; i++)
    indexes[i] = i;
  items = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, indexes, N_TASKS, sizeof (guint32)));

  g_print ("%zu MiB dataset as the shared objects, %u tasks reading every page, %u jobs\n",
           mib, N_TASKS, n_jobs);
  g_print ("  %-26s %22s %20s %12s\n", "", "private dirty/worker", "extra PSS/worker", "vs dataset");

  for (guint m = 0; m < G_N_ELEMENTS (methods); m++)
    {
      g_autoptr(WpoolPool) pool = wpool_pool_new (n_jobs, methods[m].method);
      g_autoptr(WpoolTask) task = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
      double before = family_pss_kib ();
      double dirty = 0;
      double extra;
      GHashTableIter iter;
      gpointer pid;

      task = wpool_task_new_for_symbol (module ? module : "libwpool-bench-tasks.so", "bench_sum_slice", &error);
      g_assert_no_error (error);
      wpool_task_set_result_type (task, G_VARIANT_TYPE ("(ut)"));
      wpool_pool_set_keep_alive (pool, TRUE);
      wpool_pool_set_shared_objects (pool, methods[m].array ? wpool_shared_array_get_handle (array) : dataset, &error);
      g_assert_no_error (error);
      results = wpool_pool_map (pool, task, items, NULL, &error);
      g_assert_no_error (error);

      /* Measured while the workers are alive, with all pages read. */
      extra = (family_pss_kib () - before) / n_jobs;
      for (guint i = 0; i < N_TASKS; i++)
        {
          guint32 worker_pid;

          g_variant_get_child (results, i, "(ut)", &worker_pid, NULL);
          g_hash_table_add (pids, GUINT_TO_POINTER (worker_pid));
        }
      g_hash_table_iter_init (&iter, pids);
      while (g_hash_table_iter_next (&iter, &pid, NULL))
        if (GPOINTER_TO_INT (pid) != getpid ())
          dirty += bench_smaps_kib (GPOINTER_TO_INT (pid), "\nPrivate_Dirty:");

      if (methods[m].method == WPOOL_START_METHOD_THREADING)
        g_print ("  %-26s %22s %16.1f MiB %11.2f%%\n", methods[m].name, "(threads)",
                 extra / 1024, 100 * extra / 1024 / mib);
      else
        g_print ("  %-26s %18.1f MiB %16.1f MiB %11.2f%%\n", methods[m].name,
                 dirty / g_hash_table_size (pids) / 1024, extra / 1024, 100 * extra / 1024 / mib);
    }

  return 0;
}
