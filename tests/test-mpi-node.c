/* test-mpi-node.c: shared objects once per node, under mpirun.
 *
 * Run by `mpirun -np 4` three ways: on this one node, and split by the
 * test-only WPOOL_MPI_TEST_NODE_SIZE into 2 simulated nodes of 2 ranks
 * and 4 of 1. Every rank reads the root's value; each node's ranks read
 * one copy, which no other node's ranks see and whose PSS over the
 * node's ranks adds up to one value's size; a bad value fails on every
 * rank without a hang. Each rank asserts; mpirun fails if any does.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "wpool-error.h"
#include "wpool-mpi-node-private.h"

#define N_DOUBLES (1 << 20)

static GVariant *
make_value (void)
{
  g_autofree double *values = g_new (double, N_DOUBLES);

  for (guint i = 0; i < N_DOUBLES; i++)
    values[i] = i * 0.5;

  return g_variant_new ("(s@ad)", "shared text",
                        g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, N_DOUBLES, sizeof (double)));
}

/* The proportional set size, in KiB, of the mapping that holds @address:
 * a page shared by n processes counts 1/n in each. */
static double
pss_kib_of (gconstpointer address)
{
  g_autofree char *smaps = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean inside = FALSE;

  g_assert_true (g_file_get_contents ("/proc/self/smaps", &smaps, NULL, NULL));
  lines = g_strsplit (smaps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 start;
      guint64 end;
      char *rest;

      if (g_ascii_isxdigit (lines[i][0]) && strchr (lines[i], '-') != NULL)
        {
          start = g_ascii_strtoull (lines[i], &rest, 16);
          end = g_ascii_strtoull (rest + 1, NULL, 16);
          inside = start <= (guint64)(gsize)address && (guint64)(gsize)address < end;
        }
      else if (inside && g_str_has_prefix (lines[i], "Pss:"))
        return g_ascii_strtod (lines[i] + 4, NULL);
    }

  g_assert_not_reached ();
}

/* The node (or simulated node) this rank is on, as the library splits. */
static int
expected_node (int rank)
{
  const char *test_size = g_getenv ("WPOOL_MPI_TEST_NODE_SIZE");

  return test_size != NULL ? rank / atoi (test_size) : 0;
}

static void
test_one_copy_per_node (int rank,
                        int n_ranks)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) expected = g_variant_ref_sink (make_value ());
  g_autoptr(GVariant) text = NULL;
  g_autoptr(GVariant) array = NULL;
  WpoolMpiNodeCopy *copy;
  const double *values;
  gsize n_values;
  int node_rank;
  int node_size;

  copy = wpool_mpi_node_copy_new (MPI_COMM_WORLD, 0, rank == 0 ? g_variant_ref (expected) : NULL,
                                  G_VARIANT_TYPE ("(sad)"), &error);
  g_assert_no_error (error);
  g_assert_nonnull (copy);

  /* Every rank reads the root's value. */
  g_assert_true (g_variant_equal (wpool_mpi_node_copy_get (copy), expected));

  MPI_Comm_rank (wpool_mpi_node_copy_node (copy), &node_rank);
  node_size = wpool_mpi_node_copy_n_ranks (copy);
  if (g_getenv ("WPOOL_MPI_TEST_NODE_SIZE") != NULL)
    {
      int k = atoi (g_getenv ("WPOOL_MPI_TEST_NODE_SIZE"));

      /* The last group may be short. */
      g_assert_cmpint (node_size, ==, MIN (k, n_ranks - expected_node (rank) * k));
    }
  else
    g_assert_cmpint (node_size, ==, n_ranks);

  /* One copy per node in memory too: once every rank read all of it,
   * the node's ranks' PSS of the window adds up to one value's size. (A
   * rank alone on its node may get its window from the heap, which holds
   * other things: nothing to measure there.) */
  if (node_size > 1)
    {
      double pss = pss_kib_of (g_variant_get_data (wpool_mpi_node_copy_get (copy)));
      double node_pss = 0;
      double kib = g_variant_get_size (expected) / 1024.0;

      MPI_Allreduce (&pss, &node_pss, 1, MPI_DOUBLE, MPI_SUM, wpool_mpi_node_copy_node (copy));
      if (node_pss < kib * 0.99 || node_pss > kib * 1.01 + 8)
        g_error ("Rank %d: its node's %d ranks hold %.0f KiB of a %.0f KiB value", rank, node_size, node_pss, kib);
    }

  /* One copy per node: what the node's first rank writes into it, every
   * rank of that node reads, and no rank of another node. */
  array = g_variant_get_child_value (wpool_mpi_node_copy_get (copy), 1);
  values = g_variant_get_fixed_array (array, &n_values, sizeof (double));
  g_assert_cmpuint (n_values, ==, N_DOUBLES);
  MPI_Barrier (MPI_COMM_WORLD);
  if (node_rank == 0)
    ((double *)values)[N_DOUBLES - 1] = -1.0 - expected_node (rank);
  MPI_Barrier (MPI_COMM_WORLD);
  g_assert_cmpfloat (values[N_DOUBLES - 1], ==, -1.0 - expected_node (rank));
  MPI_Barrier (MPI_COMM_WORLD);

  wpool_mpi_node_copy_free (copy);
}

/* A root without a value, or with one of another type, fails on every
 * rank, and the next copy works. */
static void
test_bad_value (int rank)
{
  g_autoptr(GError) error = NULL;
  WpoolMpiNodeCopy *copy;

  copy = wpool_mpi_node_copy_new (MPI_COMM_WORLD, 0, rank == 0 ? g_variant_new_int32 (1) : NULL,
                                  G_VARIANT_TYPE ("(sad)"), &error);
  g_assert_null (copy);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "not of type “(sad)”"));
  g_clear_error (&error);

  copy = wpool_mpi_node_copy_new (MPI_COMM_WORLD, 0, NULL, G_VARIANT_TYPE ("s"), &error);
  g_assert_null (copy);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A root other than 0, an empty value. */
  copy = wpool_mpi_node_copy_new (MPI_COMM_WORLD, 1, rank == 1 ? g_variant_new ("()") : NULL,
                                  G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (wpool_mpi_node_copy_get (copy), G_VARIANT_TYPE_UNIT));
  wpool_mpi_node_copy_free (copy);
}

int
main (int    argc,
      char **argv)
{
  int rank;
  int n_ranks;

  MPI_Init (&argc, &argv);
  MPI_Comm_rank (MPI_COMM_WORLD, &rank);
  MPI_Comm_size (MPI_COMM_WORLD, &n_ranks);

  test_one_copy_per_node (rank, n_ranks);
  test_bad_value (rank);
  /* Twice: windows and communicators are freed and made again. */
  test_one_copy_per_node (rank, n_ranks);

  if (rank == 0)
    g_print ("ok: %d ranks, node size %s\n", n_ranks, g_getenv ("WPOOL_MPI_TEST_NODE_SIZE") ?: "(this node)");

  MPI_Finalize ();
  return 0;
}
