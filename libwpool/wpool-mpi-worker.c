/* wpool-mpi-worker.c: an MPI rank as a pool's worker.
 *
 * What wpool_worker_serve() is to a worker program started by a pool,
 * over MPI: the pool's rank sends SETUP as a frame (wpool-mpi-channel.c);
 * the shared objects come as this node's one copy, made by every rank of
 * the communicator together (wpool-mpi-node.c); the tasks are resolved as
 * a worker program resolves them; READY answers, then the worker's loop
 * runs on an MPI port until the pool ends the conversation.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-mpi-channel-private.h"
#include "wpool-mpi-node-private.h"
#include "wpool-mpi-worker-private.h"
#include "wpool-private.h"

/* Sends READY: "" once ready, else why not. */
static gboolean
send_ready (MPI_Comm       comm,
            int            pool_rank,
            const GError  *setup_error,
            GError       **error)
{
  return wpool_mpi_frame_send (comm, pool_rank, WPOOL_FRAME_READY,
                               g_variant_new ("(s)", setup_error != NULL ? setup_error->message : ""),
                               -1, NULL, error);
}

/**
 * wpool_mpi_worker_serve:
 * @comm: the pool's communicator: its rank and its workers'
 * @pool_rank: the pool's rank in @comm
 * @resolve: (nullable): turns what the pool names into tasks, as for
 *   wpool_worker_serve(); %NULL for C symbols only
 * @user_data: data for @resolve
 * @error: return location for a #GError
 *
 * Serves the pool at @pool_rank from this rank for one conversation,
 * until the pool ends it. When SETUP names shared objects, every rank of
 * @comm makes this node's copy together, the pool's rank with the value:
 * the pool sends SETUP to all its workers before it does. An end with no
 * SETUP lets the rank go.
 *
 * Returns: how it ended; @error is set for %WPOOL_MPI_SERVE_SETUP_FAILED
 *   (the pool was told why) and %WPOOL_MPI_SERVE_BROKEN
 */
WpoolMpiServeEnd
wpool_mpi_worker_serve (MPI_Comm               comm,
                        int                    pool_rank,
                        WpoolTaskResolveFunc   resolve,
                        gpointer               user_data,
                        GError               **error)
{
  const WpoolPrivateVTable *priv = wpool__private__ ();
  g_autoptr(GVariant) setup = NULL;
  g_autoptr(GVariant) locations = NULL;
  g_autoptr(GError) setup_error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolTask) init = NULL;
  g_autoptr(WpoolTask) exit = NULL;
  g_autoptr(WpoolWorker) worker = NULL;
  g_autofree WpoolFramePort *port = NULL;
  WpoolMpiNodeCopy *copy = NULL;
  GVariant *shared_objects = NULL;
  WpoolRunning running = { 0 };
  WpoolFrameKind kind = 0;
  const char *shared_type;
  guint32 id;
  int status;

  if (!(setup = wpool_mpi_frame_recv (comm, pool_rank, NULL, &kind, -1, NULL, &setup_error)) ||
      kind != WPOOL_FRAME_SETUP)
    {
      if (setup == NULL && setup_error == NULL)
        return WPOOL_MPI_SERVE_QUIT;
      if (setup_error == NULL)
        g_set_error_literal (&setup_error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Expected the setup first");
      g_propagate_error (error, g_steal_pointer (&setup_error));
      return WPOOL_MPI_SERVE_BROKEN;
    }
  g_variant_get (setup, "(u@a(ssss)&s)", &id, &locations, &shared_type);

  /* Collective: made, or failed, on every rank alike. */
  if (*shared_type != '\0')
    {
      if (!g_variant_type_string_is_valid (shared_type) || !g_variant_type_is_definite (G_VARIANT_TYPE (shared_type)))
        g_set_error (&setup_error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "Bad type of shared objects “%s”", shared_type);
      else if ((copy = wpool_mpi_node_copy_new (comm, pool_rank, NULL, G_VARIANT_TYPE (shared_type), &setup_error)))
        shared_objects = wpool_mpi_node_copy_get (copy);
    }

  if (setup_error == NULL)
    priv->worker_load_tasks (resolve, user_data, shared_objects, locations, &task, &init, &exit, &setup_error);

  if (setup_error != NULL)
    {
      send_ready (comm, pool_rank, setup_error, NULL);
      g_clear_pointer (&copy, wpool_mpi_node_copy_free);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Cannot serve the pool: %s", setup_error->message);
      return WPOOL_MPI_SERVE_SETUP_FAILED;
    }

  if (!send_ready (comm, pool_rank, NULL, error))
    {
      g_clear_pointer (&copy, wpool_mpi_node_copy_free);
      return WPOOL_MPI_SERVE_BROKEN;
    }

  worker = priv->worker_new (id, shared_objects, NULL);
  priv->worker_set_lifecycle (worker, init, exit);
  port = wpool_mpi_frame_port_new (comm, pool_rank);
  status = priv->serve_port (worker, task, port, &running);

  /* The worker's values may point into the node's window: gone first. */
  g_clear_object (&worker);
  g_clear_object (&task);
  g_clear_object (&init);
  g_clear_object (&exit);
  g_clear_pointer (&copy, wpool_mpi_node_copy_free);

  if (status != 0)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "The conversation with the pool broke, or the pool spoke out of turn");
      return WPOOL_MPI_SERVE_BROKEN;
    }

  return WPOOL_MPI_SERVE_ENDED;
}
