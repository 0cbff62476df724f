/* test-mpi-worker.c: MPI ranks as a pool's workers, under mpirun -np 3.
 *
 * Rank 0 plays the pool by hand: SETUP to ranks 1 and 2, the shared
 * objects as each node's one copy, READY back, chunks of a C task that
 * reads the shared objects, then the end. A second round names a symbol
 * that does not exist: each worker tells the pool why in READY, and its
 * wpool_mpi_worker_serve() fails with the same words. An end with no
 * conversation then lets each worker go. Each rank asserts;
 * mpirun fails if any does.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <gio/gio.h>

#include "wpool-error.h"
#include "wpool-mpi-channel-private.h"
#include "wpool-mpi-node-private.h"
#include "wpool-mpi-worker-private.h"

static MPI_Comm comm;

static gint64
in_seconds (int seconds)
{
  return g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
}

static void
send_setup (int         rank,
            const char *symbol,
            const char *shared_type)
{
  g_autoptr(GError) error = NULL;
  const char *module = g_getenv ("WPOOL_TEST_MODULE");

  g_assert_true (wpool_mpi_frame_send (comm, rank, WPOOL_FRAME_SETUP,
                                       g_variant_new_parsed ("(%u, [(%s, %s, '', ''), ('', '', '', ''), ('', '', '', '')], %s)",
                                                             (guint32)(rank - 1), module, symbol, shared_type),
                                       in_seconds (60), NULL, &error));
  g_assert_no_error (error);
}

/* The READY of @rank: its message ("" once ready). */
static char *
receive_ready (int rank)
{
  g_autoptr(GVariant) ready = NULL;
  g_autoptr(GError) error = NULL;
  WpoolFrameKind kind = 0;
  char *message = NULL;

  ready = wpool_mpi_frame_recv (comm, rank, NULL, &kind, in_seconds (60), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kind, ==, WPOOL_FRAME_READY);
  g_variant_get (ready, "(s)", &message);

  return message;
}

static void
test_pool (int n_ranks)
{
  g_autoptr(GError) error = NULL;
  WpoolMpiNodeCopy *copy;

  /* Round 1: every worker set up, then the shared objects, together. */
  for (int rank = 1; rank < n_ranks; rank++)
    send_setup (rank, "wpool_test_scaled", "(dd)");
  copy = wpool_mpi_node_copy_new (comm, 0, g_variant_new ("(dd)", 2.0, 0.5), G_VARIANT_TYPE ("(dd)"), &error);
  g_assert_no_error (error);
  for (int rank = 1; rank < n_ranks; rank++)
    {
      g_autofree char *message = receive_ready (rank);

      g_assert_cmpstr (message, ==, "");
    }

  for (int rank = 1; rank < n_ranks; rank++)
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new_parsed ("[2.5, 4.5, 6.5]"));
      WpoolFrameKind kind = 0;
      guint32 first;

      g_assert_true (wpool_mpi_frame_send (comm, rank, WPOOL_FRAME_RUN_CHUNK,
                                           g_variant_new ("(uusuv)", 3, 3, "d", 0,
                                                          g_variant_new_parsed ("[1.0, 2.0, 3.0]")),
                                           in_seconds (60), NULL, &error));
      reply = wpool_mpi_frame_recv (comm, rank, NULL, &kind, in_seconds (60), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (kind, ==, WPOOL_FRAME_RESULTS);
      g_variant_get (reply, "(uv@at)", &first, &results, NULL);
      g_assert_cmpuint (first, ==, 3);
      g_assert_true (g_variant_equal (results, expected));
    }

  for (int rank = 1; rank < n_ranks; rank++)
    {
      g_assert_true (wpool_mpi_frame_end (comm, rank, in_seconds (60), NULL, &error));
      g_assert_no_error (error);
    }
  /* Collective with the workers' copies, as they end. */
  wpool_mpi_node_copy_free (copy);

  /* Round 2: a task that cannot be found, and no shared objects. */
  for (int rank = 1; rank < n_ranks; rank++)
    {
      g_autofree char *message = NULL;

      send_setup (rank, "wpool_test_no_such_symbol", "");
      message = receive_ready (rank);
      g_assert_nonnull (strstr (message, "wpool_test_no_such_symbol"));
    }

  /* Let go. */
  for (int rank = 1; rank < n_ranks; rank++)
    {
      g_assert_true (wpool_mpi_frame_end (comm, rank, in_seconds (60), NULL, &error));
      g_assert_no_error (error);
    }
}

static void
test_worker (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (wpool_mpi_worker_serve (comm, 0, NULL, NULL, &error), ==, WPOOL_MPI_SERVE_ENDED);
  g_assert_no_error (error);

  g_assert_cmpint (wpool_mpi_worker_serve (comm, 0, NULL, NULL, &error), ==, WPOOL_MPI_SERVE_SETUP_FAILED);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "Cannot serve the pool: "));
  g_assert_nonnull (strstr (error->message, "wpool_test_no_such_symbol"));
  g_clear_error (&error);

  g_assert_cmpint (wpool_mpi_worker_serve (comm, 0, NULL, NULL, &error), ==, WPOOL_MPI_SERVE_QUIT);
  g_assert_no_error (error);
}

int
main (int    argc,
      char **argv)
{
  int rank;
  int n_ranks;

  MPI_Init (&argc, &argv);
  MPI_Comm_dup (MPI_COMM_WORLD, &comm);
  MPI_Comm_set_errhandler (comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank (comm, &rank);
  MPI_Comm_size (comm, &n_ranks);
  g_assert_cmpint (n_ranks, >=, 2);

  if (rank == 0)
    test_pool (n_ranks);
  else
    test_worker ();

  if (rank == 0)
    g_print ("ok: %d workers served over MPI, node size %s\n", n_ranks - 1,
             g_getenv ("WPOOL_MPI_TEST_NODE_SIZE") ?: "(this node)");

  MPI_Comm_free (&comm);
  MPI_Finalize ();
  return 0;
}
