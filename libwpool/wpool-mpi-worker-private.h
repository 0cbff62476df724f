/* wpool-mpi-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <mpi.h>

#include "wpool-task.h"

G_BEGIN_DECLS

gboolean wpool_mpi_worker_serve (MPI_Comm               comm,
                                 int                    pool_rank,
                                 WpoolTaskResolveFunc   resolve,
                                 gpointer               user_data,
                                 GError               **error);

G_END_DECLS
