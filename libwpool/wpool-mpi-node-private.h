/* wpool-mpi-node-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>
#include <mpi.h>

G_BEGIN_DECLS

/* One copy of a value per node for the ranks of a communicator: the
 * first rank of each node holds it in an MPI-3 shared-memory window
 * (MPI_Win_allocate_shared), which every rank of that node reads in place
 * as a GVariant. The value crosses the network once per node, not once
 * per rank (the MPI start method's shared objects). */
typedef struct _WpoolMpiNodeCopy WpoolMpiNodeCopy;

gboolean          wpool_mpi_failed            (int                 rc,
                                               const char         *what,
                                               GError            **error);

WpoolMpiNodeCopy *wpool_mpi_node_copy_new     (MPI_Comm            comm,
                                               int                 root,
                                               GVariant           *value,
                                               const GVariantType *type,
                                               GError            **error);
GVariant         *wpool_mpi_node_copy_get     (WpoolMpiNodeCopy   *self);
int               wpool_mpi_node_copy_n_ranks (WpoolMpiNodeCopy   *self);
MPI_Comm          wpool_mpi_node_copy_node    (WpoolMpiNodeCopy   *self);
void              wpool_mpi_node_copy_free    (WpoolMpiNodeCopy   *self);

G_END_DECLS
