/* bench-util.h: what the benchmark programs share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <stdlib.h>
#include <glib.h>

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
