/* wpool-mpi-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <mpi.h>

#include "wpool-task.h"

G_BEGIN_DECLS

/* How a conversation with the pool went. */
typedef enum
{
  /* The pool ended it: the next one may follow. */
  WPOOL_MPI_SERVE_ENDED,
  /* The pool let this rank go, with no conversation. */
  WPOOL_MPI_SERVE_QUIT,
  /* The setup failed, and the pool was told why. */
  WPOOL_MPI_SERVE_SETUP_FAILED,
  /* The pool spoke out of turn, or MPI failed. */
  WPOOL_MPI_SERVE_BROKEN,
} WpoolMpiServeEnd;

WpoolMpiServeEnd wpool_mpi_worker_serve (MPI_Comm               comm,
                                         int                    pool_rank,
                                         WpoolTaskResolveFunc   resolve,
                                         gpointer               user_data,
                                         GError               **error);

G_END_DECLS
