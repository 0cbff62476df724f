/* bench-util.h: what the benchmark programs share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <wpool.h>

/* Every start method, as the benchmarks name them. */
static const struct
{
  WpoolStartMethod  method;
  const char       *name;
} bench_start_methods[] G_GNUC_UNUSED = {
  { WPOOL_START_METHOD_THREADING, "THREADING" },
  { WPOOL_START_METHOD_FORK, "FORK" },
  { WPOOL_START_METHOD_SPAWN, "SPAWN" },
  { WPOOL_START_METHOD_FORKSERVER, "FORKSERVER" },
};

static int
bench_compare_doubles (const void *a,
                       const void *b)
{
  double x = *(const double *)a;
  double y = *(const double *)b;

  return (x > y) - (x < y);
}

/* The median of @n values, which it sorts. */
static inline double
bench_median (double *values,
              gsize   n)
{
  qsort (values, n, sizeof (double), bench_compare_doubles);

  return values[n / 2];
}

/* A field of /proc/PID/smaps_rollup, in KiB, or 0. */
static inline double
bench_smaps_kib (int         pid,
                 const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/smaps_rollup", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL) || !(line = strstr (contents, field)))
    return 0;

  return g_ascii_strtod (line + strlen (field), NULL);
}
