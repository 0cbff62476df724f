/* wpool-worker-helper.c: the wpool-worker program, which SPAWN and
 * FORKSERVER pools start to run C tasks in a fresh process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>

#include "wpool.h"

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;

  if (wpool_worker_serve ((const char * const *)argv, WPOOL_SERVE_FLAGS_NONE, NULL, NULL, &error))
    return 0;

  fprintf (stderr, "wpool-worker: %s\n", error->message);
  /* 2 for a misuse, as command-line tools do. */
  return g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT) ? 2 : 1;
}
