/* wpool-serve-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-task.h"
#include "wpool-version-macros.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

int wpool_serve      (WpoolWorker     *worker,
                      WpoolTask       *task,
                      int              fd,
                      WpoolRunning    *running);
int wpool_serve_port (WpoolWorker     *worker,
                      WpoolTask       *task,
                      WpoolFramePort  *port,
                      WpoolRunning    *running);


G_END_DECLS
