/* wpool-worker-helper.c: the wpool-worker program, which SPAWN and
 * FORKSERVER pools start to run their tasks in a fresh process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-serve-private.h"

int
main (int    argc,
      char **argv)
{
  return _wpool_worker_main (argc, argv);
}
