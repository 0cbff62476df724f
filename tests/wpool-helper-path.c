/* wpool-helper-path.c: prints the wpool-worker helper a pool would start,
 * for test-hardening, which runs it setuid. Built from the library's
 * objects: a setuid program ignores LD_LIBRARY_PATH and $ORIGIN.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>

#include "wpool-process-private.h"

int
main (void)
{
  printf ("%s\n", wpool_process_helper_path ());

  return 0;
}
