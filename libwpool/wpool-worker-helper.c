/* wpool-worker-helper.c: the wpool-worker program, which SPAWN,
 * FORKSERVER and MPI pools start to run C tasks in a fresh process, and
 * which serves as ranks 1 to N-1 of an MPI job
 * (`mpirun -np 1 PROGRAM : -np N-1 wpool-worker`).
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

  if (wpool_worker_serve ((const char * const *)argv, WPOOL_SERVE_FLAGS_MPI_RANKS, NULL, NULL, &error))
    return 0;

  fprintf (stderr, "wpool-worker: %s\n", error->message);
  /* 2 for a misuse, as command-line tools do. */
  return g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT) ? 2 : 1;
}
