/* wpool-private.c: the table of wpool-private.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-private.h"
#include "wpool-worker-private.h"

const WpoolPrivateVTable *
wpool__private__ (void)
{
  static const WpoolPrivateVTable table = {
    wpool_frame_check_header,
    wpool_frame_decode,
    wpool_worker_new,
    wpool_serve_port,
    wpool_worker_set_lifecycle,
    wpool_worker_load_tasks,
  };

  return &table;
}
