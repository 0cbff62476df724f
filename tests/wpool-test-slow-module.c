/* wpool-test-slow-module.c: a task module whose constructor blocks for a
 * minute in any process but the one named by WPOOL_TEST_SLOW_START_PARENT
 * (the test, which loads it to make the task): a worker process that
 * loads it takes that long to start.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>
#include <unistd.h>
#include <wpool.h>

#define WPOOL_TEST_EXPORT __attribute__((visibility("default")))

WPOOL_TEST_EXPORT GVariant *wpool_test_slow_identity (WpoolWorker *, GVariant *, GVariant *, gpointer, GError **);

__attribute__((constructor)) static void
block_in_workers (void)
{
  const char *parent = getenv ("WPOOL_TEST_SLOW_START_PARENT");

  if (parent != NULL && atoi (parent) != getpid ())
    sleep (60);
}

/* any → any: the item. */
GVariant *
wpool_test_slow_identity (WpoolWorker  *worker,
                          GVariant     *shared_objects,
                          GVariant     *item,
                          gpointer      user_data,
                          GError      **error)
{
  return g_variant_ref (item);
}
