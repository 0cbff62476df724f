/* wpool-worker.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib-object.h>

#include "wpool-lock.h"
#include "wpool-shared-array.h"
#include "wpool-version-macros.h"

G_BEGIN_DECLS

#define WPOOL_TYPE_WORKER (wpool_worker_get_type ())

WPOOL_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (WpoolWorker, wpool_worker, WPOOL, WORKER, GObject)

/**
 * WpoolServeFlags:
 * @WPOOL_SERVE_FLAGS_NONE: no flags
 * @WPOOL_SERVE_FLAGS_NO_FORK: the program's runtime does not survive
 *   fork(), as GJS's does not: it refuses to be a fork server, and the
 *   pool reports that it needs %WPOOL_START_METHOD_SPAWN
 * @WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS: the resolver makes the shared
 *   objects values of the program's own (Python unpickles them, GJS
 *   converts them) and keeps a reference to the [struct@GLib.Variant] if it
 *   still needs it: the worker keeps none of its own once its setup's tasks
 *   are resolved, and gives its tasks, and later resolves, %NULL. A worker
 *   then holds one copy of big shared objects, not two
 * @WPOOL_SERVE_FLAGS_MPI_RANKS: in a job that `mpirun -np N` started,
 *   ranks 1 to N-1 serve the MPI pools of rank 0 (see
 *   %WPOOL_START_METHOD_MPI), and rank 0 makes sure they are let go when
 *   it ends, whether it made an MPI pool or not. Since: 0.2
 *
 * How a worker program can serve a pool, for [func@Wpool.Worker.serve].
 *
 * Since: 0.2
 */
typedef enum
{
  WPOOL_SERVE_FLAGS_NONE    = 0,
  WPOOL_SERVE_FLAGS_NO_FORK = 1 << 0,
  WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS = 1 << 1,
  WPOOL_SERVE_FLAGS_MPI_RANKS = 1 << 2,
} WpoolServeFlags;

WPOOL_AVAILABLE_IN_0_1
guint     wpool_worker_get_id             (WpoolWorker *self);
WPOOL_AVAILABLE_IN_0_1
GVariant *wpool_worker_get_shared_objects (WpoolWorker *self);
WPOOL_AVAILABLE_IN_0_1
gpointer  wpool_worker_get_shared_data    (WpoolWorker *self);
WPOOL_AVAILABLE_IN_0_1
WpoolSharedArray *wpool_worker_get_shared_array (WpoolWorker  *self,
                                                 guint         index,
                                                 GError      **error);
WPOOL_AVAILABLE_IN_0_1
WpoolLock        *wpool_worker_get_lock         (WpoolWorker  *self,
                                                 guint         index,
                                                 GError      **error);
WPOOL_AVAILABLE_IN_0_1
GVariantDict     *wpool_worker_get_state        (WpoolWorker  *self);
WPOOL_AVAILABLE_IN_0_1
void      wpool_worker_report_error       (WpoolWorker *self,
                                           GQuark       domain,
                                           int          code,
                                           const char  *message);

G_END_DECLS
