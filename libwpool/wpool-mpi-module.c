/* wpool-mpi-module.c: libwpool-mpi.so, the MPI module that libwpool
 * opens for its MPI start method (wpool-mpi-module-private.h).
 *
 * The pool's side. Under `mpirun -np 1` the program is a world of one:
 * each pool spawns its workers (MPI_Comm_spawn of the worker program),
 * which serve it until it frees them. Under `mpirun -np N` ranks 1 to
 * N-1 are the workers, started with the program and serving from
 * wpool_worker_serve(); rank 0 runs the pools, one at a time, each on the
 * first n-jobs of them. Either way the pool's rank and its workers share
 * one intracommunicator, on which the node copies of the shared objects
 * are made (wpool-mpi-node.c) and frames travel (wpool-mpi-channel.c).
 *
 * A conversation is one task's: SETUP to every worker of the
 * communicator, the node copies, READY from each, frames, then the end,
 * after which the workers free their node's copy together and wait for
 * the next SETUP. A second end with no conversation (QUIT) lets them go.
 *
 * Spawned workers outlive their pool: they wait, idle, for the next pool
 * of the same program and at most their number of workers, and go when
 * MPI finalizes. Open MPI 4.1.4 with PMIx 4 (Debian 12's) hangs now and
 * then in MPI_Comm_spawn() when processes it spawned earlier are ending
 * (a plain C program that spawns 2 processes and lets them end, 40
 * times, hung in 3 runs of 3, within 10 to 30 spawns; with the earlier
 * ones still running, 75 spawns never hung: open-mpi/ompi#9713,
 * openpmix/openpmix#2735). Keeping them avoids that, and the cost of a
 * spawn per pool; a spawn that hangs all the same fails at its deadline.
 *
 * Open MPI 4.1 cannot lose a rank: a dead one ends the job, and a rank
 * that never answers (an item past its timeout, which cannot be killed
 * without ending the job) keeps every collective call, MPI_Finalize's
 * included, waiting for it. A pool that lost one therefore ends the job
 * when MPI finalizes, with MPI_Abort() and a message that says why,
 * rather than hang there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "wpool-error.h"
#include "wpool-mpi-channel-private.h"
#include "wpool-mpi-module-private.h"
#include "wpool-mpi-node-private.h"
#include "wpool-mpi-worker-private.h"

struct _WpoolMpiWorkers
{
  /* The pool's rank (0) and every worker's, in order. */
  MPI_Comm          comm;
  /* Spawned: the intercommunicator to disconnect at the end, and the
   * program, for the next pool that needs the same. */
  MPI_Comm          spawned;
  char            **argv;
  /* Ranks 1 to n_ranks - 1 of @comm take part in each conversation;
   * the pool's n-jobs first of them work. */
  int               n_ranks;
  WpoolMpiNodeCopy *copy;
  gboolean          talking;
  gboolean          lost;
  /* Spawned, it serves a pool; or waits for one. */
  gboolean          in_use;
};

/* Under @lock: whether this module started MPI (and so finalizes it at
 * exit), and whether MPI finalized (no MPI call may follow); a
 * duplicate of MPI_COMM_SELF to spawn from; the job's ranks, duplicated
 * for the pools, once, and the pool that has them; the spawned groups;
 * why the job cannot end normally (a lost worker), or why no process
 * may be spawned any more (a spawn that hung). */
static GMutex            lock;
static gboolean          started_mpi;
/* Also read without @lock, by send() and recv(). */
static gint              finalized;
static MPI_Comm          self_comm = MPI_COMM_NULL;
static MPI_Comm          world = MPI_COMM_NULL;
static WpoolMpiWorkers  *world_user;
static GSList           *spawned_groups;
static char             *lost_reason;
static char             *spawn_hung;

/* How long a spawn may take when the pool sets no worker-start-timeout:
 * a few hundred milliseconds is usual. */
#define SPAWN_TIMEOUT (60 * G_USEC_PER_SEC)

static int
world_rank_and_size (int *size)
{
  int rank = 0;

  MPI_Comm_rank (MPI_COMM_WORLD, &rank);
  MPI_Comm_size (MPI_COMM_WORLD, size);
  return rank;
}

/* The end of the conversation with the ranks that are in it (@ready,
 * or all): a worker frees its node's copy as it ends, and so does the
 * pool, with them. */
static void
end_with (WpoolMpiWorkers *self,
          const gboolean  *ready)
{
  for (int rank = 1; rank < self->n_ranks; rank++)
    if (ready == NULL || ready[rank])
      wpool_mpi_frame_end (self->comm, rank, -1, NULL, NULL);
  g_clear_pointer (&self->copy, wpool_mpi_node_copy_free);
  self->talking = FALSE;
}

/* Ends a conversation still open, and lets ranks 1 to @n_ranks - 1 of
 * @comm go: an end outside any conversation. */
static void
quit_ranks (WpoolMpiWorkers *group,
            MPI_Comm         comm,
            int              n_ranks)
{
  if (group != NULL && group->talking)
    end_with (group, NULL);
  for (int rank = 1; rank < n_ranks; rank++)
    wpool_mpi_frame_end (comm, rank, -1, NULL, NULL);
}

static void
workers_destroy (WpoolMpiWorkers *self)
{
  g_strfreev (self->argv);
  g_free (self);
}

/* Run by MPI_Finalize, whoever calls it, while MPI still works (it
 * frees MPI_COMM_SELF's attributes first): the workers are let go, so
 * that they finalize too, or the job is ended if one of them is lost,
 * whose collective calls would never come. Pools that outlive MPI make
 * no more MPI calls. */
static int
on_finalize (MPI_Comm  comm,
             int       keyval,
             void     *value,
             void     *extra)
{
  int size;

  g_mutex_lock (&lock);
  if (lost_reason != NULL)
    {
      fprintf (stderr, "wpool: ending the MPI job: %s\n", lost_reason);
      fflush (stderr);
      MPI_Abort (MPI_COMM_WORLD, 1);
    }

  for (GSList *l = spawned_groups; l != NULL; l = l->next)
    {
      WpoolMpiWorkers *group = l->data;

      quit_ranks (group, group->comm, group->n_ranks);
      MPI_Comm_free (&group->comm);
      MPI_Comm_disconnect (&group->spawned);
      /* A pool still holds it, and frees it. */
      if (!group->in_use)
        workers_destroy (group);
    }
  g_clear_pointer (&spawned_groups, g_slist_free);

  /* Ranks waiting in wpool_worker_serve() duplicate the world first. */
  if (world_rank_and_size (&size) == 0 && size > 1)
    {
      if (world == MPI_COMM_NULL)
        MPI_Comm_dup (MPI_COMM_WORLD, &world);
      quit_ranks (world_user, world, size);
      MPI_Comm_free (&world);
    }
  if (self_comm != MPI_COMM_NULL)
    MPI_Comm_free (&self_comm);
  g_atomic_int_set (&finalized, TRUE);
  g_mutex_unlock (&lock);

  return MPI_SUCCESS;
}

static void
finalize_at_exit (void)
{
  int done = 0;

  MPI_Finalized (&done);
  if (!done)
    MPI_Finalize ();
}

/* Has MPI_Finalize() run on_finalize(): in the process that runs the
 * pools only. Under @lock. */
static void
hook_finalize (void)
{
  static gboolean hooked;
  int keyval;

  if (hooked)
    return;
  MPI_Comm_create_keyval (MPI_COMM_NULL_COPY_FN, on_finalize, &keyval, NULL);
  MPI_Comm_set_attr (MPI_COMM_SELF, keyval, NULL);
  hooked = TRUE;
}

/* Starts MPI at @level unless the program did, at a level that is
 * enough, and finalizes it at exit if it started it. Under @lock. */
static gboolean
start_mpi (int       level,
           GError  **error)
{
  int initialized = 0;
  int done = 0;
  int provided = MPI_THREAD_SINGLE;

  MPI_Finalized (&done);
  if (done)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "MPI was finalized already: nothing can use it after MPI_Finalize()");
      return FALSE;
    }

  MPI_Initialized (&initialized);
  if (initialized)
    MPI_Query_thread (&provided);
  else if (wpool_mpi_failed (MPI_Init_thread (NULL, NULL, level, &provided), "Starting MPI", error))
    return FALSE;
  else
    {
      started_mpi = TRUE;
      atexit (finalize_at_exit);
      /* Errors come back as codes, which become GErrors, rather than
       * end the job. A program that started MPI keeps its own handlers:
       * libwpool sets them on communicators of its own only. */
      MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }

  if (provided < level)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                   "MPI runs at thread level %d, and this needs %d: an MPI pool talks to its "
                   "workers from a thread each (MPI_THREAD_MULTIPLE). Call MPI_Init_thread() "
                   "with MPI_THREAD_MULTIPLE, or let libwpool start MPI", provided, level);
      return FALSE;
    }

  return TRUE;
}

static gboolean
under_mpirun (void)
{
  return g_getenv ("OMPI_COMM_WORLD_SIZE") != NULL || g_getenv ("PMIX_RANK") != NULL;
}

/* A spawn on a thread of its own, which the pool waits for until its
 * deadline only: if MPI never returns, the thread stays behind, and so
 * does this, which it frees. */
typedef struct
{
  char       *command;
  char      **args;
  int         n;
  MPI_Comm    inter;
  int         rc;
  gboolean    done;
  gboolean    abandoned;
  GCond       cond;
} Spawn;

static gpointer
spawn_thread (gpointer data)
{
  Spawn *spawn = data;
  g_autofree int *codes = g_new0 (int, spawn->n);
  int rc;

  rc = MPI_Comm_spawn (spawn->command, spawn->args, spawn->n, MPI_INFO_NULL, 0, self_comm, &spawn->inter, codes);
  for (int i = 0; rc == MPI_SUCCESS && i < spawn->n; i++)
    rc = codes[i];

  g_mutex_lock (&lock);
  spawn->rc = rc;
  spawn->done = TRUE;
  g_cond_signal (&spawn->cond);
  if (spawn->abandoned)
    {
      g_free (spawn->command);
      g_strfreev (spawn->args);
      g_cond_clear (&spawn->cond);
      g_free (spawn);
    }
  g_mutex_unlock (&lock);

  return NULL;
}

/* @n_jobs new processes of @argv, with the pool, by @deadline. Under
 * @lock, which the wait releases. */
static WpoolMpiWorkers *
spawn_workers (guint               n_jobs,
               const char * const *argv,
               gint64              deadline,
               GError            **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  WpoolMpiWorkers *self;
  Spawn *spawn;
  MPI_Comm inter;
  int rc;

  if (spawn_hung != NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "MPI cannot spawn workers any more: %s", spawn_hung);
      return NULL;
    }

  if (self_comm == MPI_COMM_NULL &&
      wpool_mpi_failed (MPI_Comm_dup (MPI_COMM_SELF, &self_comm), "Preparing to spawn workers", error))
    return NULL;
  MPI_Comm_set_errhandler (self_comm, MPI_ERRORS_RETURN);

  g_strv_builder_addv (builder, (const char **)argv + 1);
  g_strv_builder_add (builder, "--mode=mpi");
  spawn = g_new0 (Spawn, 1);
  spawn->command = g_strdup (argv[0]);
  spawn->args = g_strv_builder_end (builder);
  spawn->n = (int)n_jobs;
  g_cond_init (&spawn->cond);
  g_thread_unref (g_thread_new ("wpool-mpi-spawn", spawn_thread, spawn));

  while (!spawn->done)
    if (!g_cond_wait_until (&spawn->cond, &lock, deadline) && !spawn->done)
      {
        spawn->abandoned = TRUE;
        spawn_hung = g_strdup_printf ("MPI_Comm_spawn() of %s did not return in time. Open MPI 4.1 with PMIx 4 "
                                      "hangs now and then as it spawns (open-mpi/ompi#9713): run the workers "
                                      "as the job's ranks instead (mpirun -np N)", argv[0]);
        /* MPI_Finalize() would wait for it too. */
        if (lost_reason == NULL)
          lost_reason = g_strdup (spawn_hung);
        g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT, spawn_hung);
        return NULL;
      }

  rc = spawn->rc;
  inter = spawn->inter;
  g_free (spawn->command);
  g_strfreev (spawn->args);
  g_cond_clear (&spawn->cond);
  g_free (spawn);

  if (rc != MPI_SUCCESS)
    {
      g_autoptr(GError) spawn_error = NULL;

      wpool_mpi_failed (rc, "MPI_Comm_spawn", &spawn_error);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Cannot start %u MPI workers of %s: %s",
                   n_jobs, argv[0], spawn_error->message);
      return NULL;
    }

  self = g_new0 (WpoolMpiWorkers, 1);
  self->spawned = inter;
  self->argv = g_strdupv ((char **)argv);
  self->n_ranks = (int)n_jobs + 1;
  MPI_Comm_set_errhandler (inter, MPI_ERRORS_RETURN);
  if (wpool_mpi_failed (MPI_Intercomm_merge (inter, 0, &self->comm), "Joining the spawned workers", error))
    {
      MPI_Comm_disconnect (&self->spawned);
      workers_destroy (self);
      return NULL;
    }
  MPI_Comm_set_errhandler (self->comm, MPI_ERRORS_RETURN);
  spawned_groups = g_slist_prepend (spawned_groups, self);

  return self;
}

/* Spawned workers of @argv that no pool uses, at least @n_jobs of
 * them, or %NULL. Under @lock. */
static WpoolMpiWorkers *
take_idle (guint               n_jobs,
           const char * const *argv)
{
  for (GSList *l = spawned_groups; l != NULL; l = l->next)
    {
      WpoolMpiWorkers *group = l->data;

      if (!group->in_use && !group->lost && (guint)group->n_ranks - 1 >= n_jobs &&
          g_strv_equal ((const char * const *)group->argv, argv))
        return group;
    }

  return NULL;
}

/* Ranks 1 to @n_jobs of the job, if no other pool has them. Under @lock. */
static WpoolMpiWorkers *
take_world (guint     n_jobs,
            int       size,
            GError  **error)
{
  WpoolMpiWorkers *self;

  if (lost_reason != NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "The MPI workers cannot serve another pool: %s", lost_reason);
      return NULL;
    }
  if (world_user != NULL)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
                           "The ranks of this MPI job serve another MPI pool: under mpirun -np N, "
                           "one MPI pool at a time has them (free the other one first)");
      return NULL;
    }
  if (n_jobs > (guint)size - 1)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "The MPI pool asks for %u workers, and the %d other ranks of this job serve: "
                   "give the pool n-jobs %d at most, or run more ranks", n_jobs, size - 1, size - 1);
      return NULL;
    }

  /* Collective: the serving ranks do it as they start. */
  if (world == MPI_COMM_NULL)
    {
      if (wpool_mpi_failed (MPI_Comm_dup (MPI_COMM_WORLD, &world), "Joining the job's ranks", error))
        return NULL;
      MPI_Comm_set_errhandler (world, MPI_ERRORS_RETURN);
    }

  self = g_new0 (WpoolMpiWorkers, 1);
  self->comm = world;
  self->spawned = MPI_COMM_NULL;
  self->n_ranks = size;
  world_user = self;

  return self;
}

static WpoolMpiWorkers *
workers_new (guint                n_jobs,
             const char * const  *argv,
             gint64               deadline,
             GError             **error)
{
  WpoolMpiWorkers *self = NULL;
  int size;
  int rank;

  /* A world of one cannot spawn under Open MPI 4.1 unless mpirun started
   * it; it would fail deep in its runtime, or abort. */
  if (!under_mpirun ())
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                   "An MPI pool needs its program started by mpirun: “mpirun -np 1 %s” spawns its "
                   "workers, “mpirun -np N %s” makes ranks 1 to N-1 its workers",
                   g_get_prgname () ? g_get_prgname () : "PROGRAM", g_get_prgname () ? g_get_prgname () : "PROGRAM");
      return NULL;
    }

  g_mutex_lock (&lock);
  if (g_atomic_int_get (&finalized))
    g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                         "MPI was finalized already: nothing can use it after MPI_Finalize()");
  else if (start_mpi (MPI_THREAD_MULTIPLE, error))
    {
      hook_finalize ();
      rank = world_rank_and_size (&size);
      if (rank != 0)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                     "This is rank %d of an MPI job of %d: rank 0 runs the MPI pools, and the other "
                     "ranks serve them (wpool_worker_serve() with WPOOL_SERVE_FLAGS_MPI_RANKS first "
                     "thing in main())", rank, size);
      else if (size > 1)
        self = take_world (n_jobs, size, error);
      else if (!(self = take_idle (n_jobs, argv)))
        self = spawn_workers (n_jobs, argv, deadline >= 0 ? deadline : g_get_monotonic_time () + SPAWN_TIMEOUT,
                              error);
      if (self != NULL)
        self->in_use = TRUE;
    }
  g_mutex_unlock (&lock);

  return self;
}

static int
worker_rank (WpoolMpiWorkers *self,
             guint            index)
{
  return (int)index + 1;
}

static gboolean
is_world (WpoolMpiWorkers *self)
{
  return self->spawned == MPI_COMM_NULL;
}

static void
lose (WpoolMpiWorkers *self,
      guint            index,
      const char      *what)
{
  g_mutex_lock (&lock);
  self->lost = TRUE;
  if (lost_reason == NULL)
    lost_reason = g_strdup_printf ("MPI worker rank %d (%s) %s, and Open MPI cannot end one rank alone",
                                   worker_rank (self, index),
                                   is_world (self) ? "a rank of this job" : "spawned for a pool", what);
  g_mutex_unlock (&lock);
}

/* READY from @rank by @deadline: TRUE if it is ready; FALSE with
 * @error set if it is not (and left the conversation), or with
 * @lost_error set if it did not answer. */
static gboolean
await_ready (WpoolMpiWorkers  *self,
             int               rank,
             gint64            deadline,
             GError          **error,
             GError          **lost_error)
{
  g_autoptr(GVariant) ready = NULL;
  WpoolFrameKind kind = 0;
  const char *message;

  if (!(ready = wpool_mpi_frame_recv (self->comm, rank, NULL, &kind, deadline, NULL, lost_error)) ||
      kind != WPOOL_FRAME_READY)
    {
      if (*lost_error == NULL)
        g_set_error (lost_error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "MPI worker rank %d did not answer its setup (frame kind %u)", rank, kind);
      return FALSE;
    }

  g_variant_get (ready, "(&s)", &message);
  if (*message == '\0')
    return TRUE;

  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "MPI worker rank %d cannot start: %s", rank, message);
  return FALSE;
}

/* Every rank of the communicator is in the conversation, to make the
 * node copies together; those past n-jobs get no work. READY is waited
 * for until @deadline, not for @cancellable: a worker that was set up
 * answers soon, and one that is not heard from cannot be told apart from
 * a hung one, which would keep the next conversation's collective calls
 * waiting. The caller looks at @cancellable once the workers are ready. */
static gboolean
begin (WpoolMpiWorkers  *self,
       GVariant         *locations,
       GVariant         *shared_objects,
       gint64            deadline,
       GCancellable     *cancellable,
       GError          **error)
{
  g_autofree char *shared_type = shared_objects ? g_variant_type_dup_string (g_variant_get_type (shared_objects))
                                                : g_strdup ("");
  g_autofree gboolean *ready = g_new0 (gboolean, self->n_ranks);
  g_autoptr(GError) copy_error = NULL;
  g_autoptr(GError) first_error = NULL;
  g_autoptr(GError) lost_error = NULL;
  int lost_rank = 1;

  g_variant_ref_sink (locations);
  if (self->lost || self->talking)
    {
      g_variant_unref (locations);
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                           "An MPI worker was lost, past a timeout: these workers serve no more tasks");
      return FALSE;
    }

  for (; lost_rank < self->n_ranks && lost_error == NULL; lost_rank++)
    wpool_mpi_frame_send (self->comm, lost_rank, WPOOL_FRAME_SETUP,
                          g_variant_new ("(u@a(ssss)s)", (guint32)(lost_rank - 1), locations, shared_type),
                          -1, NULL, &lost_error);
  g_variant_unref (locations);

  /* Collective: fails on every rank alike, each of which says so in
   * READY and leaves the conversation. */
  self->talking = TRUE;
  if (lost_error == NULL && shared_objects != NULL)
    self->copy = wpool_mpi_node_copy_new (self->comm, 0, shared_objects, g_variant_get_type (shared_objects),
                                          &copy_error);

  for (lost_rank = 1; lost_rank < self->n_ranks && lost_error == NULL; lost_rank++)
    ready[lost_rank] = await_ready (self, lost_rank, deadline, first_error == NULL ? &first_error : NULL,
                                    &lost_error);

  if (lost_error != NULL)
    {
      lose (self, lost_rank - 2, "did not answer its setup in time");
      g_propagate_error (error, g_steal_pointer (&lost_error));
      return FALSE;
    }

  if (first_error == NULL && copy_error == NULL)
    return TRUE;

  end_with (self, ready);
  g_propagate_error (error, copy_error != NULL ? g_steal_pointer (&copy_error) : g_steal_pointer (&first_error));
  return FALSE;
}

/* A pool that outlives MPI talks no more. */
static gboolean
check_not_finalized (GVariant  *payload,
                     GError   **error)
{
  if (!g_atomic_int_get (&finalized))
    return TRUE;

  if (payload != NULL)
    g_variant_unref (g_variant_ref_sink (payload));
  g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "MPI was finalized: the MPI workers were let go, and serve no more");
  return FALSE;
}

static gboolean
send (WpoolMpiWorkers  *self,
      guint             index,
      WpoolFrameKind    kind,
      GVariant         *payload,
      gint64            deadline,
      GCancellable     *cancellable,
      GError          **error)
{
  if (!check_not_finalized (payload, error))
    return FALSE;

  return wpool_mpi_frame_send (self->comm, worker_rank (self, index), kind, payload, deadline, cancellable, error);
}

static GVariant *
recv (WpoolMpiWorkers  *self,
      guint             index,
      WpoolFrameKind   *kind,
      gint64            deadline,
      GCancellable     *cancellable,
      GError          **error)
{
  int rank = worker_rank (self, index);
  GVariant *frame;

  if (!check_not_finalized (NULL, error))
    return NULL;

  frame = wpool_mpi_frame_recv (self->comm, rank, NULL, kind, deadline, cancellable, error);
  if (frame == NULL && error != NULL && *error == NULL)
    g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "MPI worker rank %d ended the conversation", rank);

  return frame;
}

static void
end (WpoolMpiWorkers *self)
{
  g_mutex_lock (&lock);
  if (self->talking && !self->lost && !g_atomic_int_get (&finalized))
    end_with (self, NULL);
  g_mutex_unlock (&lock);
}

static gboolean
is_lost (WpoolMpiWorkers *self)
{
  gboolean lost;

  g_mutex_lock (&lock);
  lost = self->lost;
  g_mutex_unlock (&lock);

  return lost;
}

/* Spawned workers wait for the next pool; the job's ranks are free for
 * it. A lost group is kept, never used again: freeing its communicators
 * would wait for it. */
static void
workers_free (WpoolMpiWorkers *self)
{
  end (self);

  g_mutex_lock (&lock);
  if (is_world (self))
    {
      if (world_user == self)
        world_user = NULL;
      workers_destroy (self);
    }
  else if (g_atomic_int_get (&finalized))
    workers_destroy (self);
  else
    self->in_use = FALSE;
  g_mutex_unlock (&lock);
}

/* The worker's side. */
static gboolean
serve (gboolean               spawned,
       WpoolTaskResolveFunc   resolve,
       gpointer               user_data,
       GError               **error)
{
  WpoolMpiServeEnd how = WPOOL_MPI_SERVE_ENDED;
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  gboolean started;
  gboolean ok;
  int size;
  int rank;
  int rc;

  /* Rank 0 of a job may run pools: it talks from several threads. */
  g_mutex_lock (&lock);
  ok = start_mpi (spawned ? MPI_THREAD_SERIALIZED : MPI_THREAD_MULTIPLE, error);
  started = started_mpi;
  g_mutex_unlock (&lock);
  if (!ok)
    return FALSE;

  rank = world_rank_and_size (&size);
  if (spawned)
    {
      MPI_Comm_get_parent (&parent);
      if (parent == MPI_COMM_NULL)
        {
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                               "Not started by a pool: --mode=mpi is for the workers an MPI pool spawns");
          return FALSE;
        }
      MPI_Comm_set_errhandler (parent, MPI_ERRORS_RETURN);
      rc = MPI_Intercomm_merge (parent, 1, &comm);
    }
  else if (rank == 0)
    {
      /* MPI runs, and lets the other ranks go when it finalizes. */
      g_mutex_lock (&lock);
      hook_finalize ();
      g_mutex_unlock (&lock);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "This is rank 0 of an MPI job of %d: it runs the MPI pools, which ranks 1 to %d serve",
                   size, size - 1);
      return FALSE;
    }
  else
    rc = MPI_Comm_dup (MPI_COMM_WORLD, &comm);

  if (!wpool_mpi_failed (rc, "Joining the pool's ranks", error))
    {
      MPI_Comm_set_errhandler (comm, MPI_ERRORS_RETURN);

      /* One conversation per task, until the pool lets this rank go. A
       * failed setup was told to the pool, which goes on. */
      do
        {
          g_autoptr(GError) local_error = NULL;

          how = wpool_mpi_worker_serve (comm, 0, resolve, user_data, &local_error);
          if (how == WPOOL_MPI_SERVE_BROKEN)
            g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "MPI rank %d: ", rank);
        }
      while (how == WPOOL_MPI_SERVE_ENDED || how == WPOOL_MPI_SERVE_SETUP_FAILED);

      MPI_Comm_free (&comm);
    }
  if (parent != MPI_COMM_NULL)
    MPI_Comm_disconnect (&parent);

  /* The program's MPI is the program's to finalize. */
  if (started)
    MPI_Finalize ();

  return how == WPOOL_MPI_SERVE_QUIT;
}

_WPOOL_EXTERN const WpoolMpiModule *wpool_mpi_module_get (void);

const WpoolMpiModule *
wpool_mpi_module_get (void)
{
  static const WpoolMpiModule module = {
    sizeof (WpoolMpiModule),
    workers_new,
    worker_rank,
    begin,
    send,
    recv,
    end,
    lose,
    is_lost,
    workers_free,
    serve,
  };

  return &module;
}
