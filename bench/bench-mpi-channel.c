/* bench-mpi-channel.c: what libwpool's MPI channel costs over plain MPI.
 *
 *   mpirun --allow-run-as-root -np 2 bench-mpi-channel [N_SMALL] [N_LARGE]
 *
 * Rank 0 and rank 1 bounce a message back and forth: a small frame (a
 * READY of a few bytes, what every chunk's answer costs at least) N_SMALL
 * times, and a chunk of 131 072 doubles (1 MiB of items, sent in pieces of
 * 1 GiB, so one) N_LARGE times. The peer is the same ping-pong with
 * MPI_Send and MPI_Recv of the same bytes; the channel adds its header,
 * its GVariant and its polling (no MPI call blocks). Median of 3 rounds,
 * µs per round trip and the channel's ratio to plain MPI.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>

#include <gio/gio.h>

#include "wpool-mpi-channel-private.h"

#define N_DOUBLES (1 << 17)
#define ROUNDS 3

static GVariant *
make_chunk (void)
{
  g_autofree double *values = g_new (double, N_DOUBLES);

  for (guint i = 0; i < N_DOUBLES; i++)
    values[i] = i;

  return g_variant_ref_sink (g_variant_new ("(uusuv)", 0, N_DOUBLES, "d", 0,
                                            g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, N_DOUBLES,
                                                                       sizeof (double))));
}

/* µs per round trip of @payload through the channel. */
static double
channel_round_trips (int             rank,
                     WpoolFrameKind  kind,
                     GVariant       *payload,
                     guint           n)
{
  gint64 start;

  MPI_Barrier (MPI_COMM_WORLD);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) back = NULL;
      WpoolFrameKind back_kind;

      if (rank == 0)
        {
          wpool_mpi_frame_send (MPI_COMM_WORLD, 1, kind, payload, -1, NULL, NULL);
          back = wpool_mpi_frame_recv (MPI_COMM_WORLD, 1, NULL, &back_kind, -1, NULL, NULL);
        }
      else
        {
          back = wpool_mpi_frame_recv (MPI_COMM_WORLD, 0, NULL, &back_kind, -1, NULL, NULL);
          wpool_mpi_frame_send (MPI_COMM_WORLD, 0, back_kind, back, -1, NULL, NULL);
        }
      g_assert (back != NULL);
    }

  return (g_get_monotonic_time () - start) / (double) n;
}

/* µs per round trip of @size bytes with MPI_Send and MPI_Recv. */
static double
mpi_round_trips (int    rank,
                 gsize  size,
                 guint  n)
{
  g_autofree guint8 *buffer = g_malloc0 (size);
  gint64 start;

  MPI_Barrier (MPI_COMM_WORLD);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      int peer = 1 - rank;

      if (rank == 0)
        {
          MPI_Send (buffer, (int) size, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
          MPI_Recv (buffer, (int) size, MPI_BYTE, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
      else
        {
          MPI_Recv (buffer, (int) size, MPI_BYTE, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send (buffer, (int) size, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
        }
    }

  return (g_get_monotonic_time () - start) / (double) n;
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (double values[ROUNDS])
{
  qsort (values, ROUNDS, sizeof (double), compare_doubles);

  return values[ROUNDS / 2];
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GVariant) small = NULL;
  g_autoptr(GVariant) large = NULL;
  guint n_small;
  guint n_large;
  double channel[2][ROUNDS];
  double plain[2][ROUNDS];
  int rank;
  int n_ranks;

  MPI_Init (&argc, &argv);
  MPI_Comm_rank (MPI_COMM_WORLD, &rank);
  MPI_Comm_size (MPI_COMM_WORLD, &n_ranks);
  if (n_ranks != 2)
    {
      if (rank == 0)
        g_printerr ("Run with mpirun -np 2\n");
      MPI_Finalize ();
      return 1;
    }

  n_small = argc > 1 ? (guint) atoi (argv[1]) : 20000;
  n_large = argc > 2 ? (guint) atoi (argv[2]) : 500;
  small = g_variant_ref_sink (g_variant_new ("(s)", ""));
  large = make_chunk ();

  /* Taking turns, after one warm-up round each. */
  channel_round_trips (rank, WPOOL_FRAME_READY, small, n_small / 10);
  mpi_round_trips (rank, 16 + g_variant_get_size (small), n_small / 10);
  for (guint r = 0; r < ROUNDS; r++)
    {
      channel[0][r] = channel_round_trips (rank, WPOOL_FRAME_READY, small, n_small);
      plain[0][r] = mpi_round_trips (rank, 16 + g_variant_get_size (small), n_small);
      channel[1][r] = channel_round_trips (rank, WPOOL_FRAME_RUN_CHUNK, large, n_large);
      plain[1][r] = mpi_round_trips (rank, g_variant_get_size (large), n_large);
    }

  if (rank == 0)
    {
      const char *names[2] = { "small frame (READY, 1 byte)", "1 MiB chunk of doubles" };

      g_print ("round trip between 2 ranks, median of %d    channel us   MPI_Send/Recv us   channel vs MPI\n", ROUNDS);
      for (guint k = 0; k < 2; k++)
        {
          double c = median (channel[k]);
          double p = median (plain[k]);

          g_print ("  %-40s %10.2f %18.2f %15.2fx\n", names[k], c, p, c / p);
        }
    }

  MPI_Finalize ();
  return 0;
}
