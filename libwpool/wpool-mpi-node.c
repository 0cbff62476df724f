/* wpool-mpi-node.c: one copy of a value per node, in an MPI-3
 * shared-memory window.
 *
 * All the ranks of the communicator call wpool_mpi_node_copy_new()
 * together. The ranks are split by node (MPI_COMM_TYPE_SHARED), the root
 * first in its node; the first rank of each node allocates the window,
 * the root's bytes are broadcast among those first ranks only, straight
 * into their windows, and every other rank maps its node's window
 * (MPI_Win_shared_query) and reads the value there: one copy per node,
 * one transfer per node.
 *
 * Several nodes cannot be had on one machine: for tests only, the
 * environment variable WPOOL_MPI_TEST_NODE_SIZE=K splits the ranks into
 * groups of K consecutive ranks instead, each group with its own window.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "wpool-error.h"
#include "wpool-mpi-node-private.h"

/* MPI counts are ints: a value is broadcast in pieces of this size. */
#define PIECE ((gsize)1 << 30)

struct _WpoolMpiNodeCopy
{
  MPI_Comm  node;
  MPI_Win   win;
  GVariant *value;
};

/* Whether @rc is an MPI error, then set in @error as “@what failed: …”:
 * libwpool's MPI code runs with MPI_ERRORS_RETURN. */
gboolean
wpool_mpi_failed (int          rc,
                  const char  *what,
                  GError     **error)
{
  char message[MPI_MAX_ERROR_STRING] = "";
  int length = 0;

  if (rc == MPI_SUCCESS)
    return FALSE;

  MPI_Error_string (rc, message, &length);
  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "%s failed: %s", what, message);
  return TRUE;
}

/* The ranks of this node, the root first; or, for tests, of this group
 * of WPOOL_MPI_TEST_NODE_SIZE consecutive ranks. */
static int
split_nodes (MPI_Comm  comm,
             int       root,
             MPI_Comm *node)
{
  const char *test_size = g_getenv ("WPOOL_MPI_TEST_NODE_SIZE");
  int rank;
  int key;

  MPI_Comm_rank (comm, &rank);
  key = rank == root ? -1 : rank;

  if (test_size != NULL && atoi (test_size) > 0)
    {
      int size = atoi (test_size);

      /* The root leads its group, as it leads its node. */
      return MPI_Comm_split (comm, rank / size, key, node);
    }

  return MPI_Comm_split_type (comm, MPI_COMM_TYPE_SHARED, key, MPI_INFO_NULL, node);
}

/* Broadcasts @size bytes at @data from rank 0 of @comm, in pieces. */
static int
broadcast_bytes (guint8   *data,
                 gsize     size,
                 MPI_Comm  comm)
{
  for (gsize done = 0; done < size; done += PIECE)
    {
      int rc = MPI_Bcast (data + done, (int)MIN (PIECE, size - done), MPI_BYTE, 0, comm);

      if (rc != MPI_SUCCESS)
        return rc;
    }

  return MPI_SUCCESS;
}

/**
 * wpool_mpi_node_copy_new: (skip)
 * @comm: the communicator whose ranks all call this together
 * @root: the rank that has the value
 * @value: (nullable): on @root, the value (of @type, consumed if floating);
 *   ignored elsewhere
 * @type: the value's type, the same on every rank
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the node's copy, or %NULL with @error set on
 *   every rank
 */
WpoolMpiNodeCopy *
wpool_mpi_node_copy_new (MPI_Comm            comm,
                         int                 root,
                         GVariant           *value,
                         const GVariantType *type,
                         GError            **error)
{
  g_autoptr(GVariant) sunk = NULL;
  WpoolMpiNodeCopy *self;
  MPI_Comm leaders = MPI_COMM_NULL;
  long long size = -1;
  guint8 *base = NULL;
  int rank;
  int node_rank;
  int rc;

  MPI_Comm_rank (comm, &rank);
  if (rank == root && value != NULL)
    {
      sunk = g_variant_ref_sink (value);
      if (g_variant_is_of_type (sunk, type))
        size = (long long)g_variant_get_size (sunk);
    }

  /* The root's failure is everyone's, rather than a hang in the next
   * collective call. */
  if (wpool_mpi_failed (MPI_Bcast (&size, 1, MPI_LONG_LONG, root, comm), "Broadcasting the shared objects' size",
                        error))
    return NULL;
  if (size < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "The shared objects of rank %d are missing or not of type “%.*s”", root,
                   (int)g_variant_type_get_string_length (type), g_variant_type_peek_string (type));
      return NULL;
    }

  self = g_new0 (WpoolMpiNodeCopy, 1);
  self->node = MPI_COMM_NULL;
  self->win = MPI_WIN_NULL;

  if (wpool_mpi_failed (split_nodes (comm, root, &self->node), "Splitting the ranks by node", error))
    goto fail;
  MPI_Comm_set_errhandler (self->node, MPI_ERRORS_RETURN);
  MPI_Comm_rank (self->node, &node_rank);

  /* At least a byte: a window of none has no address to share. */
  rc = MPI_Win_allocate_shared (node_rank == 0 ? MAX (size, 1) : 0, 1, MPI_INFO_NULL, self->node, &base, &self->win);
  if (wpool_mpi_failed (rc, "Allocating the node's shared window", error))
    goto fail;
  if (node_rank != 0)
    {
      MPI_Aint window_size;
      int disp_unit;

      rc = MPI_Win_shared_query (self->win, 0, &window_size, &disp_unit, &base);
      if (wpool_mpi_failed (rc, "Mapping the node's shared window", error))
        goto fail;
    }

  rc = MPI_Win_fence (0, self->win);
  if (rc == MPI_SUCCESS)
    rc = MPI_Comm_split (comm, node_rank == 0 ? 0 : MPI_UNDEFINED, rank == root ? -1 : rank, &leaders);
  if (rc == MPI_SUCCESS && leaders != MPI_COMM_NULL)
    {
      if (rank == root)
        memcpy (base, g_variant_get_data (sunk), size);
      MPI_Comm_set_errhandler (leaders, MPI_ERRORS_RETURN);
      rc = broadcast_bytes (base, size, leaders);
      MPI_Comm_free (&leaders);
    }
  if (rc == MPI_SUCCESS)
    rc = MPI_Win_fence (0, self->win);
  if (wpool_mpi_failed (rc, "Sending the shared objects to each node", error))
    goto fail;

  /* Untrusted as any frame: GVariant checks before relying on it. */
  self->value = g_variant_ref_sink (g_variant_new_from_data (type, base, size, FALSE, NULL, NULL));

  return self;

fail:
  wpool_mpi_node_copy_free (self);
  return NULL;
}

/* The node's copy: valid until wpool_mpi_node_copy_free(). */
GVariant *
wpool_mpi_node_copy_get (WpoolMpiNodeCopy *self)
{
  return self->value;
}

/* How many ranks share this copy. */
int
wpool_mpi_node_copy_n_ranks (WpoolMpiNodeCopy *self)
{
  int size = 0;

  MPI_Comm_size (self->node, &size);
  return size;
}

MPI_Comm
wpool_mpi_node_copy_node (WpoolMpiNodeCopy *self)
{
  return self->node;
}

/* Collective over the node: every rank of it frees its copy together. */
void
wpool_mpi_node_copy_free (WpoolMpiNodeCopy *self)
{
  g_clear_pointer (&self->value, g_variant_unref);
  if (self->win != MPI_WIN_NULL)
    MPI_Win_free (&self->win);
  if (self->node != MPI_COMM_NULL)
    MPI_Comm_free (&self->node);
  g_free (self);
}
