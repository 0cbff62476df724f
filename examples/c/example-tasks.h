/* example-tasks.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <wpool.h>

G_BEGIN_DECLS

#define EXAMPLE_EXPORT __attribute__((visibility("default")))

/* Shared objects: (dataset `ad`, label `s`). Item: a slice (offset, length)
 * as `(tt)`. Result: (worker id, process id, address of the dataset as the
 * worker sees it, sum of the slice) as `(uutd)`. */
#define EXAMPLE_SLICE_SUM_RESULT_TYPE "(uutd)"

EXAMPLE_EXPORT
GVariant *wpool_example_slice_sum (WpoolWorker  *worker,
                                   GVariant     *shared_objects,
                                   GVariant     *item,
                                   gpointer      user_data,
                                   GError      **error);

/* The reference page's second example. Shared objects: (square results,
 * add results), two WpoolSharedArray handles. Item: (index, x) as "(ui)",
 * as wpool_items_enumerate() makes them. Stores x*x and x+x at index and
 * returns x % 2 as an int32. */
EXAMPLE_EXPORT
GVariant *wpool_example_square_add_and_modulo_with_index (WpoolWorker  *worker,
                                                          GVariant     *shared_objects,
                                                          GVariant     *item,
                                                          gpointer      user_data,
                                                          GError      **error);

/* Item: a number of milliseconds, "u". Works that long (sleeping, to stand
 * for real work without loading the machine) and returns the item. */
EXAMPLE_EXPORT
GVariant *wpool_example_work_ms (WpoolWorker  *worker,
                                 GVariant     *shared_objects,
                                 GVariant     *item,
                                 gpointer      user_data,
                                 GError      **error);

G_END_DECLS
