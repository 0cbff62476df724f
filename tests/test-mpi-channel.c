/* test-mpi-channel.c: frames between MPI ranks, under mpirun -np 3.
 *
 * Rank 0 sends frames of every size class to ranks 1 and 2 (inline,
 * large in pieces, empty), which send each one back: every payload comes
 * back equal. Then frames from any rank, a receive that times out, one
 * cancelled from another thread, a large send that times out and is read
 * later all the same, and messages that are not libwpool's frames,
 * refused with the channel still working after. Last, ranks 1 and 2
 * run a worker's loop (wpool-serve.c) over MPI, which serves rank 0's
 * chunks of a C task, errors and large chunks included. The test runs
 * with WPOOL_MPI_TEST_PIECE_SIZE small, so that a large frame crosses in
 * many pieces. Each rank asserts; mpirun fails if any does.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <gio/gio.h>

#include "wpool-error.h"
#include "wpool-mpi-channel-private.h"
#include "wpool-private.h"

#define N_LARGE 300000
#define TAG_GO 1

/* The frames' own communicator; the tests' orders go on MPI_COMM_WORLD. */
static MPI_Comm frames;

static GVariant *
make_chunk (guint n)
{
  g_autofree double *values = g_new (double, n);

  for (guint i = 0; i < n; i++)
    values[i] = i * 0.25;

  return g_variant_new ("(uusuv)", 7, n, "d", 0,
                        g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, n, sizeof (double)));
}

static gint64
in_seconds (int seconds)
{
  return g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
}

/* Ranks 1 and 2: send back what comes, until an EXIT frame. */
static void
echo (void)
{
  for (;;)
    {
      g_autoptr(GVariant) payload = NULL;
      g_autoptr(GError) error = NULL;
      WpoolFrameKind kind = 0;
      int source = -1;

      payload = wpool_mpi_frame_recv (frames, 0, &source, &kind, in_seconds (60), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (source, ==, 0);
      if (kind == WPOOL_FRAME_EXIT)
        return;
      g_assert_true (wpool_mpi_frame_send (frames, 0, kind, payload, in_seconds (60), NULL, &error));
      g_assert_no_error (error);
    }
}

static void
assert_round_trip (int             peer,
                   WpoolFrameKind  kind,
                   GVariant       *payload)
{
  g_autoptr(GVariant) sent = g_variant_ref_sink (payload);
  g_autoptr(GVariant) back = NULL;
  g_autoptr(GError) error = NULL;
  WpoolFrameKind kind_back = 0;
  int source = -1;

  g_assert_true (wpool_mpi_frame_send (frames, peer, kind, sent, in_seconds (60), NULL, &error));
  g_assert_no_error (error);
  back = wpool_mpi_frame_recv (frames, peer, &source, &kind_back, in_seconds (60), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (source, ==, peer);
  g_assert_cmpint (kind_back, ==, kind);
  g_assert_true (g_variant_equal (back, sent));
}

static gpointer
cancel_later (gpointer data)
{
  g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  g_cancellable_cancel (data);

  return NULL;
}

static void
assert_refused (const void *message,
                int         size,
                const char *expected)
{
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GError) error = NULL;
  WpoolFrameKind kind = 0;
  int source = -1;

  /* Rank 1 sends it raw when told to. */
  MPI_Send (&size, 1, MPI_INT, 1, TAG_GO, MPI_COMM_WORLD);
  MPI_Send (message, size, MPI_BYTE, 1, TAG_GO, MPI_COMM_WORLD);
  payload = wpool_mpi_frame_recv (frames, 1, &source, &kind, in_seconds (60), NULL, &error);
  g_assert_null (payload);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, expected));
}

/* Rank 1: sends raw messages as rank 0 asks, until one of size -1. */
static void
send_raw (void)
{
  for (;;)
    {
      g_autofree guint8 *message = NULL;
      int size;

      MPI_Recv (&size, 1, MPI_INT, 0, TAG_GO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (size < 0)
        return;
      message = g_malloc (MAX (size, 1));
      MPI_Recv (message, size, MPI_BYTE, 0, TAG_GO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send (message, size, MPI_BYTE, 0, WPOOL_MPI_TAG_FRAME, frames);
    }
}

static void
test_caller (int n_ranks)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) payload = NULL;
  gboolean seen[3] = { FALSE, FALSE, FALSE };
  WpoolFrameKind kind = 0;
  gint64 start;
  int source = -1;
  GThread *canceller;
  int stop = -1;

  g_assert_cmpint (n_ranks, ==, 3);

  /* Every size class, to each peer. */
  for (int peer = 1; peer < n_ranks; peer++)
    {
      assert_round_trip (peer, WPOOL_FRAME_READY, g_variant_new ("(s)", "ready"));
      assert_round_trip (peer, WPOOL_FRAME_READY, g_variant_new ("(s)", ""));
      assert_round_trip (peer, WPOOL_FRAME_RUN_CHUNK, make_chunk (10));
      /* 64 KiB of data and a little: the first size sent in pieces. */
      assert_round_trip (peer, WPOOL_FRAME_RUN_CHUNK, make_chunk (WPOOL_MPI_FRAME_INLINE_SIZE / sizeof (double)));
      assert_round_trip (peer, WPOOL_FRAME_RUN_CHUNK, make_chunk (N_LARGE));
      assert_round_trip (peer, WPOOL_FRAME_SETUP,
                         g_variant_new_parsed ("(uint32 3, [('m', 's', 'd', 'd')], '(sad)')"));
    }

  /* From any rank: each peer answers once, and says who it is. */
  for (int peer = 1; peer < n_ranks; peer++)
    g_assert_true (wpool_mpi_frame_send (frames, peer, WPOOL_FRAME_STARTED, g_variant_new ("(i)", peer),
                                         in_seconds (60), NULL, &error));
  for (int i = 1; i < n_ranks; i++)
    {
      gint32 who = -1;

      g_clear_pointer (&payload, g_variant_unref);
      payload = wpool_mpi_frame_recv (frames, MPI_ANY_SOURCE, &source, &kind, in_seconds (60), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (kind, ==, WPOOL_FRAME_STARTED);
      g_variant_get (payload, "(i)", &who);
      g_assert_cmpint (who, ==, source);
      g_assert_false (seen[source]);
      seen[source] = TRUE;
    }

  /* Nothing comes: the deadline ends the wait, which never blocks in MPI. */
  start = g_get_monotonic_time ();
  g_clear_pointer (&payload, g_variant_unref);
  payload = wpool_mpi_frame_recv (frames, 1, &source, &kind,
                                  g_get_monotonic_time () + 200 * G_TIME_SPAN_MILLISECOND, NULL, &error);
  g_assert_null (payload);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, "Rank 1 did not send a frame in time");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 200 * G_TIME_SPAN_MILLISECOND);
  g_clear_error (&error);

  /* A rank that does not exist: MPI's error, at once, with no deadline. */
  payload = wpool_mpi_frame_recv (frames, n_ranks + 5, &source, &kind, -1, NULL, &error);
  g_assert_null (payload);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "MPI failed as this rank waited for a frame");
  g_clear_error (&error);

  /* Cancelled from another thread. */
  canceller = g_thread_new ("canceller", cancel_later, cancellable);
  payload = wpool_mpi_frame_recv (frames, MPI_ANY_SOURCE, &source, &kind, -1, cancellable, &error);
  g_assert_null (payload);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_thread_join (canceller);

  /* Messages that are not frames of libwpool's: the peers stop echoing,
   * and rank 1 sends them. */
  for (int peer = 1; peer < n_ranks; peer++)
    {
      g_assert_true (wpool_mpi_frame_send (frames, peer, WPOOL_FRAME_EXIT, g_variant_new ("(s)", ""),
                                           in_seconds (60), NULL, &error));
      MPI_Send (&peer, 1, MPI_INT, peer, TAG_GO, MPI_COMM_WORLD);
    }

  /* A large frame rank 2 takes only after a second: the send times out,
   * and MPI still reads its data later, from memory kept for it. */
  {
    g_autoptr(GVariant) large = g_variant_ref_sink (make_chunk (N_LARGE));

    g_assert_false (wpool_mpi_frame_send (frames, 2, WPOOL_FRAME_RUN_CHUNK, large,
                                          g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND, NULL, &error));
    g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
    g_assert_cmpstr (error->message, ==, "Rank 2 did not receive a frame in time");
    g_clear_error (&error);
    g_clear_pointer (&payload, g_variant_unref);
    payload = wpool_mpi_frame_recv (frames, 2, &source, &kind, in_seconds (60), NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (kind, ==, WPOOL_FRAME_RUN_CHUNK);
    g_assert_true (g_variant_equal (payload, large));
  }

  {
    struct { guint32 kind; guint32 reserved; guint64 size; } header = { 99, 0, 0 };
    guint8 message[16 + 8] = { 0 };

    assert_refused ("abc", 3, "a message of 3 bytes");
    assert_refused (&header, sizeof header, "Received a bad frame (kind 99, 0 bytes)");
    /* A header whose size is not what follows it. */
    header.kind = WPOOL_FRAME_READY;
    header.size = 100;
    memcpy (message, &header, sizeof header);
    assert_refused (message, sizeof message, "kind 6, 100 bytes in a message of 24");
    /* Large data announced, the header alone: must be over the inline size. */
    header.size = 8;
    assert_refused (&header, sizeof header, "kind 6, 8 bytes in a message of 16");
    /* A small frame that is not in normal form: "(s)" without its nul. */
    header.size = 2;
    memcpy (message, &header, sizeof header);
    memcpy (message + sizeof header, "ab", 2);
    assert_refused (message, sizeof header + 2, "Received a malformed frame (kind 6, 2 bytes)");
  }
  MPI_Send (&stop, 1, MPI_INT, 1, TAG_GO, MPI_COMM_WORLD);

  /* And the channel goes on. */
  for (int peer = 1; peer < n_ranks; peer++)
    {
      assert_round_trip (peer, WPOOL_FRAME_EXIT_RESULT, g_variant_new ("(v)", g_variant_new_string ("after")));
      g_assert_true (wpool_mpi_frame_send (frames, peer, WPOOL_FRAME_EXIT, g_variant_new ("(s)", ""),
                                           in_seconds (60), NULL, &error));
      g_assert_no_error (error);
    }
}

/* Ranks 1 and 2: a worker's loop over MPI, as an MPI worker runs it,
 * until rank 0 ends the conversation. */
static void
serve (int rank)
{
  const WpoolPrivateVTable *priv = wpool__private__ ();
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_MODULE"),
                                                         "wpool_test_fail_on_negative", &error);
  g_autoptr(WpoolWorker) worker = NULL;
  g_autofree WpoolFramePort *port = wpool_mpi_frame_port_new (frames, 0);
  WpoolRunning running = { 0 };

  g_assert_no_error (error);
  worker = priv->worker_new (rank - 1, NULL, NULL);
  g_assert_cmpint (priv->serve_port (worker, task, port, &running), ==, 0);
}

static GVariant *
run_chunk (int       peer,
           guint32   first,
           GVariant *items,
           WpoolFrameKind *kind)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;
  int source = -1;

  g_assert_true (wpool_mpi_frame_send (frames, peer, WPOOL_FRAME_RUN_CHUNK,
                                       g_variant_new ("(uusuv)", first, (guint32) g_variant_n_children (items),
                                                      "d", 0, items),
                                       in_seconds (60), NULL, &error));
  g_assert_no_error (error);
  reply = wpool_mpi_frame_recv (frames, peer, &source, kind, in_seconds (60), NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);

  return reply;
}

/* Rank 0, as a pool: chunks of a C task, results and errors back. */
static void
test_serve (int n_ranks)
{
  g_autoptr(GError) error = NULL;

  for (int peer = 1; peer < n_ranks; peer++)
    {
      g_autoptr(GVariant) items = g_variant_ref_sink (make_chunk (N_LARGE));
      g_autoptr(GVariant) large = g_variant_get_child_value (items, 4);
      g_autoptr(GVariant) large_items = g_variant_get_variant (large);
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GVariant) expected = NULL;
      g_autofree char *expected_message = NULL;
      WpoolFrameKind kind = 0;
      const char *domain;
      const char *message;
      guint32 first;
      guint32 index;
      gint32 code;

      reply = run_chunk (peer, 10, g_variant_new_parsed ("[1.0, 2.0, 3.0, 4.0]"), &kind);
      g_assert_cmpint (kind, ==, WPOOL_FRAME_RESULTS);
      g_variant_get (reply, "(uv@at)", &first, &results, NULL);
      g_assert_cmpuint (first, ==, 10);
      expected = g_variant_ref_sink (g_variant_new_parsed ("[1.0, 2.0, 3.0, 4.0]"));
      g_assert_true (g_variant_equal (results, expected));
      g_clear_pointer (&reply, g_variant_unref);
      g_clear_pointer (&results, g_variant_unref);

      /* The task's error, for its item, ends the chunk. */
      reply = run_chunk (peer, 20, g_variant_new_parsed ("[5.0, -1.0, 6.0]"), &kind);
      g_assert_cmpint (kind, ==, WPOOL_FRAME_ERROR);
      g_variant_get (reply, "(u&si&s)", &index, &domain, &code, &message);
      g_assert_cmpuint (index, ==, 21);
      g_assert_cmpstr (domain, ==, g_quark_to_string (G_IO_ERROR));
      g_assert_cmpint (code, ==, G_IO_ERROR_INVALID_ARGUMENT);
      expected_message = g_strdup_printf ("Item 21 on worker %d: negative item -1", peer - 1);
      g_assert_cmpstr (message, ==, expected_message);
      g_clear_pointer (&reply, g_variant_unref);

      /* A chunk large enough to cross in pieces, both ways. */
      reply = run_chunk (peer, 0, g_variant_ref (large_items), &kind);
      g_assert_cmpint (kind, ==, WPOOL_FRAME_RESULTS);
      g_variant_get (reply, "(uv@at)", &first, &results, NULL);
      g_assert_true (g_variant_equal (results, large_items));

      g_assert_true (wpool_mpi_frame_end (frames, peer, in_seconds (60), NULL, &error));
      g_assert_no_error (error);
    }
}

int
main (int    argc,
      char **argv)
{
  int rank;
  int n_ranks;
  int go;

  MPI_Init (&argc, &argv);
  MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank (MPI_COMM_WORLD, &rank);
  MPI_Comm_size (MPI_COMM_WORLD, &n_ranks);
  MPI_Comm_dup (MPI_COMM_WORLD, &frames);
  MPI_Comm_set_errhandler (frames, MPI_ERRORS_RETURN);

  if (rank == 0)
    {
      test_caller (n_ranks);
      test_serve (n_ranks);
    }
  else
    {
      /* The round trips and the frames from any rank. */
      echo ();
      MPI_Recv (&go, 1, MPI_INT, 0, TAG_GO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (rank == 1)
        send_raw ();
      else
        g_usleep (G_USEC_PER_SEC);
      echo ();
      serve (rank);
    }

  if (rank == 0)
    g_print ("ok: frames between %d ranks, pieces of %s bytes\n", n_ranks,
             g_getenv ("WPOOL_MPI_TEST_PIECE_SIZE") ?: "(1 GiB)");

  MPI_Comm_free (&frames);
  MPI_Finalize ();
  return 0;
}
