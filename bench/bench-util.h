/* bench-util.h: what the benchmark programs share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <math.h>
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

/* The benchmarks' two bodies, the same in every program and module that
 * measures them: a trivial one, x*x + 1, and about 20 µs of arithmetic
 * on this kind of machine. */
static inline double
bench_trivial (double x)
{
  return x * x + 1;
}

static inline double
bench_cpu_bound (double x)
{
  for (guint i = 0; i < 850; i++)
    x = sin (x) + cos (x) * 0.5;

  return x;
}

/* @body over @n items of @x into @y: a chunk task's loop, or a serial
 * one; inlined with its body where @body is one of the above. */
static inline void
bench_apply (double        (*body) (double),
             const double   *x,
             double         *y,
             gsize           n)
{
  for (gsize i = 0; i < n; i++)
    y[i] = body (x[i]);
}

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
