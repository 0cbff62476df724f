/* wpool-backend-mpi.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-mpi-module-private.h"
#include "wpool-shared-memory-private.h"
#include "wpool-task-private.h"

/* MPI: the workers are MPI processes, spawned for the pool or the other
 * ranks of its job, reached through libwpool's MPI module (which links
 * Open MPI; see wpool-mpi-module.c). They run what SPAWN's workers run,
 * found by module and symbol; the shared objects reach each node once,
 * where its workers read them in one shared window.
 *
 * A worker is one conversation for a task: set up as the pool starts,
 * or as a map brings a new task. It cannot be killed: Open MPI ends the
 * whole job when one rank dies. So a cancelled map stops waiting for its
 * workers, which finish their chunk, whose answer is read and dropped
 * before they are given another; and a worker past a timeout is lost for
 * good (the job ends as MPI finalizes: wpool-mpi-module.c). Where the
 * pool cannot see which item a worker runs, a map with a task timeout
 * hands out one item at a time, so that a chunk's deadline is its item's
 * (wpool_pool_resolve_chunk_size()). */

typedef struct
{
  /* A chunk it was given and whose answer was not read (its map was
   * cancelled): read and dropped before anything else is asked of it,
   * by the chunk's deadline (-1: none). */
  gboolean owes;
  gboolean owes_keep_going;
  gint64   owes_deadline;
  /* Its worker-init runs before it answers anything else. */
  gboolean init_pending;
  /* Past a timeout: it never answers in time, and takes nothing more. */
  gint     lost;
} MpiWorker;

struct _WpoolBackendMpi
{
  WpoolBackend           parent_instance;

  const WpoolMpiModule  *mpi;
  WpoolMpiWorkers       *workers;
  WpoolTask             *task;
  MpiWorker             *slots;
};

G_DECLARE_FINAL_TYPE (WpoolBackendMpi, wpool_backend_mpi, WPOOL, BACKEND_MPI, WpoolBackend)
G_DEFINE_FINAL_TYPE (WpoolBackendMpi, wpool_backend_mpi, WPOOL_TYPE_BACKEND)

/* What MPI cannot do, said before any worker starts. */
static gboolean
check_config (const WpoolBackendConfig  *config,
              GError                   **error)
{
  g_autoptr(GPtrArray) members = config->shared_objects ? wpool_shared_objects_members (config->shared_objects) : NULL;

  for (guint i = 0; members != NULL && i < members->len; i++)
    {
      const char *kind_name;
      guint64 id;

      if (wpool_shared_memory_parse_handle (members->pdata[i], &kind_name, &id))
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                       "A %s is memory that the workers share on one machine, and MPI workers may "
                       "run on several: under MPI, share read-only values (each node gets one copy), "
                       "and send back what workers write as their results", kind_name);
          return FALSE;
        }
    }

  if (config->worker_lifespan > 0)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A worker-lifespan restarts worker processes, which an MPI job cannot "
                           "do one by one: leave it 0 under MPI");
      return FALSE;
    }

  if (config->cpu_ids != NULL)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "MPI places its ranks itself: pin them with mpirun's --bind-to and "
                           "--map-by, not the pool's cpu-ids");
      return FALSE;
    }

  return TRUE;
}

/* A conversation with every worker for @task. */
static gboolean
begin_task (WpoolBackendMpi  *self,
            WpoolTask        *task,
            GError          **error)
{
  const WpoolBackendConfig *config = wpool_backend_get_config (WPOOL_BACKEND (self));
  GCancellable *cancellable = wpool_frame_watch_get_cancellable ();
  gint64 deadline = config->worker_start_timeout > 0 ? g_get_monotonic_time () + config->worker_start_timeout : -1;
  GVariant *locations;

  if (!(locations = wpool_backend_process_locate_tasks (WPOOL_BACKEND (self), task, error)))
    return FALSE;

  if (!self->mpi->begin (self->workers, locations, config->shared_objects, deadline, cancellable, error))
    {
      /* One that did not answer its setup may still: none is used again. */
      if (self->mpi->is_lost (self->workers))
        for (guint i = 0; i < config->n_jobs; i++)
          g_atomic_int_set (&self->slots[i].lost, TRUE);
      if (g_error_matches (*error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
        g_prefix_error (error, "An MPI worker made no progress starting within the worker-start-timeout "
                               "(%g s), and cannot be killed: ", config->worker_start_timeout / (double)G_USEC_PER_SEC);
      return FALSE;
    }

  g_set_object (&self->task, task);
  for (guint i = 0; i < config->n_jobs; i++)
    self->slots[i].init_pending = config->worker_init != NULL;

  /* Ready, it ends as it would have for a map cancelled a moment later. */
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* Every worker starts with the first: one conversation sets them all up. */
static gboolean
wpool_backend_mpi_start_worker (WpoolBackend  *backend,
                                guint          index,
                                WpoolTask     *task,
                                GError       **error)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);
  const WpoolBackendConfig *config = wpool_backend_get_config (backend);
  g_auto(GStrv) argv = NULL;
  gint64 deadline = config->worker_start_timeout > 0 ? g_get_monotonic_time () + config->worker_start_timeout : -1;

  if (self->slots != NULL && g_atomic_int_get (&self->slots[index].lost))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "MPI worker %u (rank %d) was lost, and an MPI job cannot start another in its place",
                   index, self->mpi->worker_rank (self->workers, index));
      return FALSE;
    }
  if (index > 0)
    return TRUE;

  if (self->mpi == NULL && (!check_config (config, error) || !(self->mpi = wpool_mpi_module_load (error))))
    return FALSE;

  if (self->workers == NULL)
    {
      argv = wpool_task_get_program (task) ? g_strdupv ((char **)wpool_task_get_program (task))
                                           : g_strdupv ((char *[]) { (char *)wpool_process_helper_path (), NULL });
      if (!(self->workers = self->mpi->workers_new (config->n_jobs, (const char * const *)argv, deadline, error)))
        return FALSE;
      self->slots = g_new0 (MpiWorker, config->n_jobs);
    }

  return begin_task (self, task, error);
}

/* Worker @index did not answer by its deadline, as it @what: lost for
 * good. @error says so, @format first. */
static void G_GNUC_PRINTF (5, 6)
lose (WpoolBackendMpi  *self,
      guint             index,
      const char       *what,
      GError          **error,
      const char       *format,
      ...)
{
  g_autofree char *description = NULL;
  va_list args;

  g_atomic_int_set (&self->slots[index].lost, TRUE);
  self->mpi->lose (self->workers, index, what);

  va_start (args, format);
  description = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
               "%s. An MPI rank cannot be killed without ending the job: the worker is lost, and the job "
               "ends when MPI finalizes", description);
}

/* Reads and drops the answer worker @index owes for a chunk of a
 * cancelled map: RESULTS, or the ERROR that ended it; by the chunk's own
 * deadline, past which the worker is lost. */
static gboolean
settle (WpoolBackendMpi  *self,
        guint             index,
        GCancellable     *cancellable,
        GError          **error)
{
  MpiWorker *slot = &self->slots[index];

  while (slot->owes)
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) local_error = NULL;
      WpoolFrameKind kind = 0;

      if (!(reply = self->mpi->recv (self->workers, index, &kind, slot->owes_deadline, cancellable, &local_error)))
        {
          if (g_error_matches (local_error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
            {
              lose (self, index, "runs an item of a cancelled map past its task timeout", error,
                    "MPI worker %u (rank %d) ran an item of a cancelled map for longer than the task timeout",
                    index, self->mpi->worker_rank (self->workers, index));
            }
          else
            g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      slot->owes = !(kind == WPOOL_FRAME_RESULTS || (kind == WPOOL_FRAME_ERROR && !slot->owes_keep_going));
    }

  return TRUE;
}

/* Fails with why the workers serve no more, if one was lost. */
static gboolean
check_none_lost (WpoolBackendMpi  *self,
                 GError          **error)
{
  for (guint i = 0; i < wpool_backend_get_n_jobs (WPOOL_BACKEND (self)); i++)
    if (g_atomic_int_get (&self->slots[i].lost))
      {
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                     "MPI worker %u (rank %d) was lost, past a timeout: an MPI pool that lost a worker "
                     "runs no more maps (the job ends when MPI finalizes)",
                     i, self->mpi->worker_rank (self->workers, i));
        return FALSE;
      }

  return TRUE;
}

static gboolean
wpool_backend_mpi_prepare (WpoolBackend  *backend,
                           WpoolTask     *task,
                           gboolean       idle,
                           GError       **error)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);
  guint n_jobs = wpool_backend_get_n_jobs (backend);

  /* A lost worker still holds its conversation open. */
  if (!check_none_lost (self, error))
    return FALSE;

  if (task == self->task)
    return TRUE;

  if (!idle)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
                           "The MPI workers were set up for another task and a map still runs on "
                           "them: wait for it to finish");
      return FALSE;
    }

  /* A worker knows the task its conversation began with only: a new task
   * is a new conversation, after the old one ended as a stop ends it. */
  wpool_backend_run_exits (backend);
  for (guint i = 0; i < n_jobs; i++)
    if (!settle (self, i, NULL, error))
      return FALSE;
  /* An exit past its timeout loses its worker too. */
  if (!check_none_lost (self, error))
    return FALSE;
  self->mpi->end (self->workers);
  g_clear_object (&self->task);

  return begin_task (self, task, error);
}

static gboolean
wpool_backend_mpi_is_alive (WpoolBackend *backend,
                            guint         index)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);

  return self->slots != NULL && !g_atomic_int_get (&self->slots[index].lost);
}


static gboolean
any_alive (WpoolBackendMpi *self)
{
  for (guint i = 0; i < wpool_backend_get_n_jobs (WPOOL_BACKEND (self)); i++)
    if (!g_atomic_int_get (&self->slots[i].lost))
      return TRUE;

  return FALSE;
}

/* Sends worker @index the chunk [first, last) of @job and takes its
 * answers: *@done says whether they came. */
static WpoolShareOutcome
run_chunk (WpoolBackendMpi    *self,
           guint               index,
           WpoolJob           *job,
           guint               first,
           guint               last,
           const char         *result_type_string,
           WpoolShareInsights *share,
           gboolean           *done)
{
  const WpoolBackendConfig *config = wpool_backend_get_config (WPOOL_BACKEND (self));
  MpiWorker *slot = &self->slots[index];
  GCancellable *cancellable = wpool_job_get_cancellable (job);
  gboolean keep_going = wpool_job_get_keep_going (job);
  gint64 timeout = wpool_job_get_task_timeout (job);
  gint64 started = g_get_monotonic_time ();
  gint64 deadline = -1;
  guint32 flags = (keep_going ? WPOOL_CHUNK_KEEP_GOING : 0) | (share != NULL ? WPOOL_CHUNK_TIMED : 0);
  g_autoptr(GVariant) items = wpool_job_dup_chunk_items (job, first, last);
  g_autoptr(GError) error = NULL;

  *done = FALSE;

  /* Its worker-init runs before its first chunk, under a deadline of its
   * own: both count. */
  if (timeout > 0)
    deadline = started + timeout + (slot->init_pending ? config->worker_init_timeout : 0);

  /* Not cancelled: a send given up on still reaches the worker, whose
   * answer would then be taken for the next chunk's. */
  if (!self->mpi->send (self->workers, index, WPOOL_FRAME_RUN_CHUNK,
                        g_variant_new ("(uusuv)", first, last - first, result_type_string, flags, items),
                        -1, NULL, &error))
    {
      wpool_job_fail (job, g_steal_pointer (&error));
      return WPOOL_SHARE_DONE;
    }

  for (;;)
    {
      g_autoptr(GVariant) reply = NULL;
      WpoolFrameKind kind = 0;

      if (!(reply = self->mpi->recv (self->workers, index, &kind, deadline, cancellable, &error)))
        {
          if (g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
            {
              g_clear_error (&error);
              lose (self, index, "runs an item past its task timeout", &error,
                    "Item %u: MPI worker %u (rank %d) ran it for longer than the task timeout (%g s%s)",
                    first, index, self->mpi->worker_rank (self->workers, index),
                    timeout / (double)G_USEC_PER_SEC, slot->init_pending ? ", after its worker-init's timeout" : "");
              /* Its item fails alone, and the other workers take the
               * rest: this one takes no more. */
              if (keep_going && !wpool_job_should_stop (job) && any_alive (self))
                {
                  wpool_job_fail_item (job, first, g_steal_pointer (&error));
                  wpool_job_add_completed (job, 1);
                  wpool_job_deliver (job, first, first + 1);
                  return WPOOL_SHARE_DONE;
                }
            }
          else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              slot->owes = TRUE;
              slot->owes_keep_going = keep_going;
              slot->owes_deadline = deadline;
            }
          wpool_job_fail (job, g_steal_pointer (&error));
          return WPOOL_SHARE_DONE;
        }

      slot->init_pending = FALSE;
      switch (wpool_backend_take_answer (job, index, first, last, kind, reply, NULL, share, started))
        {
        case WPOOL_ANSWER_DONE:
          *done = TRUE;
          return WPOOL_SHARE_DONE;
        case WPOOL_ANSWER_FAILED:
          return WPOOL_SHARE_DONE;
        case WPOOL_ANSWER_MORE:
          break;
        }
    }
}

static WpoolShareOutcome
wpool_backend_mpi_work (WpoolBackend *backend,
                        guint         index,
                        WpoolJob     *job)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);
  const GVariantType *result_type = wpool_job_get_result_type (job);
  g_autofree char *result_type_string = result_type ? g_variant_type_dup_string (result_type) : g_strdup ("");
  WpoolInsights *insights = wpool_job_get_insights (job);
  WpoolShareOutcome ret = WPOOL_SHARE_DONE;
  WpoolShareInsights share = { 0, };
  g_autoptr(GError) error = NULL;
  gboolean done = TRUE;
  guint first;
  guint last;

  if (g_atomic_int_get (&self->slots[index].lost))
    return WPOOL_SHARE_PASS_ON;

  if (!settle (self, index, wpool_job_get_cancellable (job), &error))
    {
      wpool_job_fail (job, g_steal_pointer (&error));
      return WPOOL_SHARE_DONE;
    }

  while (done && wpool_job_next_chunk (job, &first, &last))
    ret = run_chunk (self, index, job, first, last, result_type_string, insights ? &share : NULL, &done);

  if (insights != NULL)
    wpool_insights_share_end (insights, index, &share);

  return ret;
}

/* The worker-exit of worker @index, as its conversation ends. */
static GVariant *
wpool_backend_mpi_exit_worker (WpoolBackend  *backend,
                               guint          index,
                               GError       **error)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);
  const WpoolBackendConfig *config = wpool_backend_get_config (backend);
  const GVariantType *result_type = wpool_task_get_result_type (config->worker_exit);
  g_autofree char *result_type_string = result_type ? g_variant_type_dup_string (result_type) : g_strdup ("");
  gint64 deadline = config->worker_exit_timeout > 0 ? g_get_monotonic_time () + config->worker_exit_timeout : -1;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) local_error = NULL;
  WpoolFrameKind kind = 0;

  if (self->workers == NULL || g_atomic_int_get (&self->slots[index].lost))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "MPI worker %u was lost before it could run its worker-exit", index);
      return NULL;
    }
  if (self->task == NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "MPI worker %u did not run its worker-exit: its last setup failed", index);
      return NULL;
    }

  if (!settle (self, index, NULL, error) ||
      !self->mpi->send (self->workers, index, WPOOL_FRAME_EXIT, g_variant_new ("(s)", result_type_string),
                        -1, NULL, error))
    return NULL;

  if (!(reply = self->mpi->recv (self->workers, index, &kind, deadline, NULL, &local_error)))
    {
      if (g_error_matches (local_error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
        {
          lose (self, index, "runs its worker-exit past its timeout", error,
                "MPI worker %u (rank %d) ran its worker-exit for longer than the worker-exit timeout (%g s)",
                index, self->mpi->worker_rank (self->workers, index),
                config->worker_exit_timeout / (double)G_USEC_PER_SEC);
        }
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  return wpool_backend_take_exit_answer (index, kind, reply, result_type, error);
}

/* A worker stops with the others, as its conversation ends. */
static void
wpool_backend_mpi_stop_worker (WpoolBackend *backend,
                               guint         index)
{
}

/* Every worker stopped: the conversation ends, and the workers are let
 * go (spawned ones end; the job's ranks wait for the next pool). */
static void
wpool_backend_mpi_stopped (WpoolBackend *backend)
{
  WpoolBackendMpi *self = WPOOL_BACKEND_MPI (backend);

  if (self->workers == NULL)
    return;

  for (guint i = 0; i < wpool_backend_get_n_jobs (backend); i++)
    if (!g_atomic_int_get (&self->slots[i].lost))
      settle (self, i, NULL, NULL);
  self->mpi->workers_free (g_steal_pointer (&self->workers));
  g_clear_object (&self->task);
}

static void
wpool_backend_mpi_finalize (GObject *object)
{
  WpoolBackendMpi *self = (WpoolBackendMpi *)object;

  /* One that failed to start was never stopped. */
  if (self->workers != NULL)
    self->mpi->workers_free (g_steal_pointer (&self->workers));
  g_clear_object (&self->task);
  g_free (self->slots);

  G_OBJECT_CLASS (wpool_backend_mpi_parent_class)->finalize (object);
}

static void
wpool_backend_mpi_class_init (WpoolBackendMpiClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);

  object_class->finalize = wpool_backend_mpi_finalize;

  backend_class->runs_new_program = TRUE;
  /* What a new process can find, as for SPAWN. */
  backend_class->check_task = wpool_backend_process_check_task;
  backend_class->start_worker = wpool_backend_mpi_start_worker;
  backend_class->prepare = wpool_backend_mpi_prepare;
  backend_class->is_alive = wpool_backend_mpi_is_alive;
  backend_class->work = wpool_backend_mpi_work;
  backend_class->exit_worker = wpool_backend_mpi_exit_worker;
  backend_class->stop_worker = wpool_backend_mpi_stop_worker;
  backend_class->stopped = wpool_backend_mpi_stopped;
  backend_class->drives_on_caller = TRUE;
  backend_class->times_items_by_chunk = TRUE;
}

static void
wpool_backend_mpi_init (WpoolBackendMpi *self)
{
}
