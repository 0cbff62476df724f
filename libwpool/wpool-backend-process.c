/* wpool-backend-process.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-task-private.h"
#include "wpool-trace-private.h"
#include "wpool-variant-private.h"
#include "wpool-worker-private.h"

typedef struct
{
  /* Read by other drivers, to pass jobs on: accessed atomically. */
  GPid         pid;
  int          fd;
  /* Readable once the process ended: a death seen even when a child it
   * forked holds its socket open. -1 without pidfds. */
  int          pidfd;
  WpoolWorker *worker;
  /* Memory shared with the worker for big chunks of chunk tasks (made on
   * the first, grown as needed, kept for the next worker in the slot),
   * and whether the worker process was handed the current one. */
  int          transfer_fd;
  guint8      *transfer;
  gsize        transfer_size;
  gboolean     transfer_sent;
  /* The biggest chunk that may be sent ahead on the socket. */
  gsize        ahead_max_size;
} ProcessWorker;

typedef struct
{
  /* The task the workers started with: they run no other. */
  WpoolTask     *task;
  ProcessWorker *workers;
  /* One slot per worker, in memory shared with them: the item each runs. */
  int            progress_fd;
  WpoolRunning  *progress;
  gsize          progress_size;
} WpoolBackendProcessPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (WpoolBackendProcess, wpool_backend_process, WPOOL_TYPE_BACKEND)

/* A chunk sent ahead, while the worker still runs the one before, is as
 * small as this at most, and a quarter of the socket's send buffer (208
 * KiB by default; less if the system says so): the buffer takes it whole,
 * with room for the frame's overhead, so the write cannot wait for a
 * worker that is itself waiting to write its answers. */
#define AHEAD_MAX_SIZE ((gsize)64 << 10)

static gsize
ahead_max_size (int fd)
{
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;

  if (getsockopt (fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 || sndbuf <= 0)
    return 0;

  return MIN (AHEAD_MAX_SIZE, (gsize)sndbuf / 4);
}

/* Whether @task can run in a worker process that @klass starts: in a new
 * program only if a new process can find it. */
gboolean
wpool_backend_process_check_task (WpoolBackendClass  *klass,
                                  WpoolTask          *task,
                                  GError            **error)
{
  const char *module_path;
  const char *symbol;

  /* A closure cannot reach another program, and SpiderMonkey does not
   * survive a fork: tried without this check, a JS function in forked
   * workers hung in 3 runs of 3 within 100 maps, in pthread_cond_signal()
   * to an engine helper thread that does not exist in the child. */
  if (wpool_task_is_javascript_func (task))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A JavaScript closure cannot run in a worker process: GJS's engine "
                           "does not survive fork(). Export the function from an ES module and "
                           "map it under SPAWN, whose workers are new gjs processes "
                           "(wpool.js's pool.mapModule()), or export the task from a C module");
      return FALSE;
    }

  if (!klass->runs_new_program)
    return TRUE;

  /* GLib reaps the programs it starts on its worker thread, which a
   * forked process does not have: nothing would ever reap them. */
  if (wpool_process_is_forked_worker ())
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A SPAWN or FORKSERVER pool cannot run in a FORK worker, which lacks "
                           "GLib's worker thread: make the nested pool FORK or THREADING, or "
                           "the outer one SPAWN, FORKSERVER or THREADING");
      return FALSE;
    }

  return wpool_task_locate (task, &module_path, &symbol, error);
}

static gboolean
wpool_backend_process_init_shared (WpoolBackendProcess  *self,
                                   GError              **error)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  guint n_jobs = wpool_backend_get_n_jobs (WPOOL_BACKEND (self));
  int errsv;

  priv->workers = g_new0 (ProcessWorker, n_jobs);
  for (guint i = 0; i < n_jobs; i++)
    {
      priv->workers[i].fd = -1;
      priv->workers[i].pidfd = -1;
      priv->workers[i].transfer_fd = -1;
    }

  /* A memfd rather than anonymous memory: spawned workers map it too. */
  priv->progress_size = n_jobs * sizeof (WpoolRunning);
  /* Registered: workers forked later, of any pool, do not keep it. */
  if ((priv->progress_fd = wpool_process_memfd ("wpool-progress", NULL)) >= 0 &&
      ftruncate (priv->progress_fd, priv->progress_size) == 0 &&
      (priv->progress = mmap (NULL, priv->progress_size, PROT_READ | PROT_WRITE,
                              MAP_SHARED, priv->progress_fd, 0)) != MAP_FAILED)
    {
      for (guint i = 0; i < n_jobs; i++)
        wpool_running_set (&priv->progress[i], WPOOL_RUNNING_IDLE, 0);
      return TRUE;
    }

  errsv = errno;
  priv->progress = NULL;
  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
               "Cannot make memory to share with the workers: %s", g_strerror (errsv));
  return FALSE;
}

static void wpool_backend_process_stop_worker (WpoolBackend *backend, guint index);

static gboolean
wpool_backend_process_start_worker (WpoolBackend  *backend,
                                    guint          index,
                                    WpoolTask     *task,
                                    GError       **error)
{
  WpoolBackendProcess *self = WPOOL_BACKEND_PROCESS (backend);
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  g_autoptr(GVariant) cpus = NULL;
  gint64 start_timeout = wpool_backend_get_config (backend)->worker_start_timeout;
  gint64 trace_begin = wpool_trace_now ();
  GError *local_error = NULL;
  ProcessWorker *pw;
  int fds[2];

  if (priv->workers == NULL && !wpool_backend_process_init_shared (self, error))
    return FALSE;

  if (priv->task != task)
    g_set_object (&priv->task, task);

  pw = &priv->workers[index];

  /* Made here, so that a forked child does not allocate GObjects. The
   * slot is idle already (new, or reset as its last worker stopped): a
   * worker launched ahead (SPAWN) may have marked its init in it. */
  g_clear_object (&pw->worker);
  pw->worker = wpool_backend_new_worker (backend, index);

  if (!wpool_process_socketpair (fds, error))
    return FALSE;

  pw->fd = fds[0];
  pw->transfer_sent = FALSE;
  pw->ahead_max_size = ahead_max_size (pw->fd);

  /* The start, not what stopped a worker before it, is watched for the
   * map's cancellable and has a deadline of its own. */
  wpool_frame_watch_arm (start_timeout);
  g_atomic_int_set (&pw->pid, WPOOL_BACKEND_PROCESS_GET_CLASS (self)->spawn (self, index, task, fds[0], fds[1],
                                                                              &local_error));
  wpool_frame_watch_disarm ();

  if (g_atomic_int_get (&pw->pid) <= 0)
    {
      wpool_process_close_fd (g_steal_fd (&pw->fd));
      if (g_error_matches (local_error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT))
        {
          /* With where its fork server waited, if one did not answer. */
          gboolean bare = g_str_equal (local_error->message, WPOOL_FRAME_START_TIMED_OUT);

          wpool_trace_worker_lost (index, 0, 0, 0, TRUE, "no progress starting within the worker-start-timeout");
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                       "Worker %u made no progress starting within the worker-start-timeout (%g s) and was killed%s%s",
                       index, start_timeout / (double)G_USEC_PER_SEC, bare ? "" : ": ",
                       bare ? "" : local_error->message);
          g_clear_error (&local_error);
        }
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  pw->pidfd = wpool_process_pidfd (pw->pid);

  if ((cpus = wpool_backend_dup_worker_cpus (backend, index)) != NULL &&
      !wpool_process_set_cpus (pw->pid, cpus, error))
    {
      wpool_backend_process_stop_worker (backend, index);
      return FALSE;
    }

  wpool_trace_worker_start (trace_begin, index, pw->pid);
  return TRUE;
}

static void
wpool_backend_process_stop_worker (WpoolBackend *backend,
                                   guint         index)
{
  WpoolBackendProcess *self = WPOOL_BACKEND_PROCESS (backend);
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  ProcessWorker *pw = &priv->workers[index];

  /* A worker exits when it reads the end of its socket. */
  wpool_process_close_fd (g_steal_fd (&pw->fd));
  wpool_process_close_fd (g_steal_fd (&pw->pidfd));

  if (pw->pid > 0)
    WPOOL_BACKEND_PROCESS_GET_CLASS (self)->reap (self, index);
  g_atomic_int_set (&pw->pid, 0);
  /* Reaped, it writes no more: the slot is the next worker's. */
  wpool_running_set (&priv->progress[index], WPOOL_RUNNING_IDLE, 0);

  g_clear_object (&pw->worker);
}

/* An idle worker says nothing: anything to read, the end of its socket,
 * or its pidfd readable means it died since its last map. */
static gboolean
process_worker_is_alive (ProcessWorker *pw)
{
  struct pollfd pfds[2] = { { pw->fd, POLLIN, 0 }, { pw->pidfd, POLLIN, 0 } };

  if (pw->pid <= 0 || pw->fd < 0)
    return FALSE;

  while (poll (pfds, pw->pidfd >= 0 ? 2 : 1, 0) < 0 && errno == EINTR)
    ;

  return pfds[0].revents == 0 && pfds[1].revents == 0 &&
         (pw->pidfd >= 0 || !wpool_process_is_gone (pw->pid));
}

static gboolean
wpool_backend_process_prepare (WpoolBackend  *backend,
                               WpoolTask     *task,
                               gboolean       idle,
                               GError       **error)
{
  WpoolBackendProcess *self = WPOOL_BACKEND_PROCESS (backend);
  WpoolBackendProcessClass *klass = WPOOL_BACKEND_PROCESS_GET_CLASS (self);
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  guint n_jobs = wpool_backend_get_n_jobs (backend);
  gboolean new_task = task != priv->task;

  /* Workers are only started while no driver runs a job: forking is
   * unsafe otherwise. Until then dead workers sit maps out. */
  if (!idle)
    {
      if (new_task)
        {
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
                               "The worker processes were started for another task and a map "
                               "still runs on them: wait for it to finish");
          return FALSE;
        }
      return TRUE;
    }

  /* A worker process knows the task it started with only: a new task
   * means new workers, which first end as if the pool stopped them. Dead
   * workers are replaced, and so are those whose fork server was
   * stopped, which are dying. */
  if (new_task)
    wpool_backend_run_exits (backend);

  for (guint i = 0; i < n_jobs; i++)
    {
      if (new_task || !process_worker_is_alive (&priv->workers[i]) ||
          (klass->worker_has_server != NULL && !klass->worker_has_server (self, i)))
        {
          wpool_backend_process_stop_worker (backend, i);
          if (!wpool_backend_process_start_worker (backend, i, task, error))
            {
              /* Stopped half-way (cancelled, say), the workers after
               * this one still run the old task: the next map must not
               * take them for the new one's. */
              if (new_task)
                g_clear_object (&priv->task);
              return FALSE;
            }
        }
    }

  return TRUE;
}

typedef enum
{
  WAIT_READABLE,
  /* The process ended with nothing left to read. */
  WAIT_DIED,
  WAIT_CANCELLED,
  WAIT_TIMED_OUT,
} WaitOutcome;

/* Waits until @fd can be read, the process of @pidfd ends, @cancellable
 * is cancelled, or what
 * @running shows has run too long: an item for @item_timeout µs, the
 * worker's init or exit for @phase_timeout µs (0: no limit). The worker
 * stores when each starts, so the deadline follows the items with no
 * wake-up per item: only an expired one is looked at again, or the
 * short gaps between phases. */
static WaitOutcome
wait_for_worker (int           fd,
                 int           pidfd,
                 GPid          pid,
                 GCancellable *cancellable,
                 WpoolRunning *running,
                 gint64        item_timeout,
                 gint64        phase_timeout)
{
  GPollFD fds[3] = { { fd, G_IO_IN | G_IO_HUP | G_IO_ERR, 0 }, { pidfd, G_IO_IN, 0 } };
  guint n_fds = pidfd >= 0 ? 2 : 1;
  gboolean cancellable_fd = g_cancellable_make_pollfd (cancellable, &fds[n_fds]);
  WaitOutcome ret;

  if (cancellable_fd)
    n_fds++;

  for (;;)
    {
      gint timeout_ms = -1;
      gint64 started;
      gint item = wpool_running_get (running, &started);
      gint64 timeout = item >= 0 ? item_timeout : item != WPOOL_RUNNING_IDLE ? phase_timeout : 0;
      int n;

      if (timeout > 0)
        {
          gint64 left;

          /* Past the deadline, answers already there are taken first: the
           * item that overran may be of the chunk sent ahead, which the
           * worker took up once it had answered this one. */
          if ((left = started + timeout - g_get_monotonic_time ()) <= 0)
            {
              ret = g_poll (fds, 1, 0) > 0 ? WAIT_READABLE : WAIT_TIMED_OUT;
              break;
            }
          timeout_ms = (gint)MIN ((left + 999) / 1000, G_MAXINT);
        }
      else if (item_timeout > 0 || phase_timeout > 0)
        {
          /* Between phases (the worker has yet to pick the chunk up, or
           * runs an init with no limit of its own): what comes next may
           * have a deadline, so look again soon. */
          timeout_ms = 10;
        }

      /* Without a pidfd, a death that leaves the socket open (a child
       * holds it) is looked for every 10 ms. */
      if (pidfd < 0)
        timeout_ms = timeout_ms < 0 ? 10 : MIN (timeout_ms, 10);

      if ((n = g_poll (fds, n_fds, timeout_ms)) < 0 && errno == EINTR)
        continue;

      /* An answer that came in time is taken, even if the map was
       * cancelled or the item's time ran out meanwhile. */
      if (fds[0].revents != 0)
        {
          ret = WAIT_READABLE;
          break;
        }

      /* Dead, and what it sent before it died was read first. */
      if (pidfd >= 0 ? fds[1].revents != 0 : wpool_process_is_gone (pid))
        {
          ret = WAIT_DIED;
          break;
        }

      if (g_cancellable_is_cancelled (cancellable))
        {
          ret = WAIT_CANCELLED;
          break;
        }
    }

  if (cancellable_fd)
    g_cancellable_release_fd (cancellable);

  return ret;
}

/* Worker @index ended while it ran the chunk [first, last) of @job, by
 * itself or killed for @outcome: the map fails with what happened to it,
 * or under keep-going the item it ran does, and the rest of the chunk is
 * handed out again (its answers so far died with it). Returns whether
 * the share goes on (keep-going): its driver then starts a new worker in
 * the slot, so that only the items that killed a worker fail. */
static gboolean
process_worker_died (WpoolBackendProcess *self,
                     guint                index,
                     WpoolJob            *job,
                     WaitOutcome          outcome,
                     guint                first,
                     guint                last)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  ProcessWorker *pw = &priv->workers[index];
  GPid pid = pw->pid;
  GError *error = NULL;
  gboolean answering;
  gint item;
  int status;

  if (outcome == WAIT_CANCELLED || outcome == WAIT_TIMED_OUT)
    WPOOL_BACKEND_PROCESS_GET_CLASS (self)->kill (self, index);

  /* What it ran is read once it is gone: a worker whose task closed its
   * socket goes on until it fails to answer, and is then past that item. */
  status = WPOOL_BACKEND_PROCESS_GET_CLASS (self)->reap (self, index);
  g_atomic_int_set (&pw->pid, 0);
  item = wpool_running_get (&priv->progress[index], NULL);
  answering = wpool_running_get_ended (&priv->progress[index]) == (gint)first;

  /* Dead as it answered for a one-item chunk: that item broke it. */
  if (answering && item == WPOOL_RUNNING_IDLE && last - first == 1)
    item = (gint)first;

  /* A map cancelled meanwhile fails so, whatever its cancellation did to
   * the worker (a fork server stopped as it answered takes its workers). */
  if (outcome == WAIT_CANCELLED || g_cancellable_is_cancelled (wpool_job_get_cancellable (job)))
    {
      g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      wpool_job_fail (job, error);
      return FALSE;
    }

  if (outcome == WAIT_TIMED_OUT && item == WPOOL_RUNNING_INIT)
    {
      g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                   "Worker %u (pid %d) ran its worker-init for longer than the worker-init "
                   "timeout (%g s) and was killed",
                   index, (int)pid,
                   wpool_backend_get_config (WPOOL_BACKEND (self))->worker_init_timeout / (double)G_USEC_PER_SEC);
    }
  else if (outcome == WAIT_TIMED_OUT)
    {
      g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                   "Item %d: worker %u (pid %d) ran it for longer than the task timeout "
                   "(%g s) and was killed",
                   item, index, (int)pid, wpool_job_get_task_timeout (job) / (double)G_USEC_PER_SEC);
    }
  else
    {
      const char *server_name = WPOOL_BACKEND_PROCESS_GET_CLASS (self)->server_name;
      g_autofree char *how = (status & WPOOL_STATUS_SERVER_DIED) && server_name != NULL
                             ? g_strdup_printf ("%s died", server_name)
                             : wpool_process_describe_status (status);

      if (item == WPOOL_RUNNING_INIT)
        g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                     "Worker %u (pid %d) died in its worker-init: %s", index, (int)pid, how);
      else
        g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                     "Item %d: worker %u (pid %d) died: %s", item, index, (int)pid, how);
    }
  wpool_trace_worker_lost (index, pid, first, last, outcome == WAIT_TIMED_OUT, error->message);

  if (!wpool_job_get_keep_going (job))
    {
      wpool_job_fail (job, error);
      return FALSE;
    }

  /* Dead before it ran an item of the chunk: the whole chunk runs
   * elsewhere, and no item fails for it. Dead as it answered, after every
   * item ran: one of them broke it, and runs again in a half of the
   * chunk, until alone in a chunk of one it fails alone. */
  if (item < (gint)first || item >= (gint)last)
    {
      guint middle = answering ? first + (last - first) / 2 : last;

      g_clear_error (&error);
      wpool_job_requeue (job, first, middle);
      wpool_job_requeue (job, middle, last);
      return TRUE;
    }

  wpool_job_fail_item (job, item, error);
  wpool_job_add_completed (job, 1);
  wpool_job_deliver (job, item, item + 1);
  wpool_job_requeue (job, first, item);
  wpool_job_requeue (job, item + 1, last);

  return TRUE;
}

typedef enum
{
  CHUNK_DONE,
  CHUNK_STOP,
  CHUNK_PASS_ON,
} ChunkOutcome;

/* The items' durations a worker measured, for insights. */
static void
add_durations (WpoolJob           *job,
               WpoolShareInsights *share,
               guint               first,
               GVariant           *durations)
{
  gsize n;
  const guint64 *values = g_variant_get_fixed_array (durations, &n, sizeof (guint64));

  for (gsize i = 0; i < n; i++)
    wpool_insights_share_item (share, wpool_job_get_map_number (job), first + i, (gint64)values[i]);
}

/* Puts the items of a chunk task's chunk in worker @index's transfer
 * area, which is made or grown and handed to the worker as needed, and
 * says where the results will be. FALSE when the chunk is to go through
 * the socket instead: a small one, not a chunk task's, too big, or no
 * memory for the area. */
static gboolean
transfer_chunk (WpoolBackendProcess *self,
                guint                index,
                WpoolJob            *job,
                GVariant            *items,
                guint                n,
                gsize               *results_offset)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  ProcessWorker *pw = &priv->workers[index];
  WpoolTask *task = wpool_job_get_task (job);
  gsize items_size = g_variant_get_size (items);
  gsize result_size;
  gsize needed;

  if (!wpool_task_is_chunk_task (task) || items_size < WPOOL_TRANSFER_MIN_SIZE ||
      !wpool_variant_type_get_fixed_size (wpool_task_get_result_type (task), &result_size) ||
      (*results_offset = wpool_transfer_results_offset (items_size)) > WPOOL_TRANSFER_MAX_SIZE ||
      n > (WPOOL_TRANSFER_MAX_SIZE - *results_offset) / result_size)
    return FALSE;

  needed = *results_offset + n * result_size;
  if (pw->transfer_size < needed)
    {
      /* Doubled, so that growing chunks remap a few times only. */
      gsize size = MIN (MAX (needed, pw->transfer_size * 2), WPOOL_TRANSFER_MAX_SIZE);
      gpointer data;

      if (pw->transfer != NULL)
        munmap (pw->transfer, pw->transfer_size);
      pw->transfer = NULL;
      pw->transfer_size = 0;
      pw->transfer_sent = FALSE;

      if ((pw->transfer_fd < 0 && (pw->transfer_fd = wpool_process_memfd ("wpool-transfer", NULL)) < 0) ||
          ftruncate (pw->transfer_fd, size) < 0 ||
          (data = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, pw->transfer_fd, 0)) == MAP_FAILED)
        return FALSE;

      pw->transfer = data;
      pw->transfer_size = size;
    }

  /* A worker that cannot be told dies: the chunk goes the usual way,
   * which notices. */
  if (!pw->transfer_sent &&
      !(pw->transfer_sent = wpool_frame_write_fd (pw->fd, WPOOL_FRAME_TRANSFER,
                                                  g_variant_new ("(t)", (guint64)pw->transfer_size),
                                                  pw->transfer_fd, NULL)))
    return FALSE;

  memcpy (pw->transfer, g_variant_get_data (items), items_size);

  return TRUE;
}

/* The results a worker left in its transfer area, as a view. */
static GVariant *
transferred_results (WpoolBackendProcess *self,
                     guint                index,
                     WpoolJob            *job,
                     gsize                results_offset,
                     guint                n)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  const GVariantType *result_type = wpool_task_get_result_type (wpool_job_get_task (job));
  g_autoptr(GVariantType) array_type = g_variant_type_new_array (result_type);
  gsize result_size = 0;

  wpool_variant_type_get_fixed_size (result_type, &result_size);

  return g_variant_ref_sink (g_variant_new_from_data (array_type, priv->workers[index].transfer + results_offset,
                                                      n * result_size, FALSE, NULL, NULL));
}

/* A chunk of a job on its way to a worker: [first, last), the flags it
 * was sent with, where its results will be if it went through the
 * transfer area, and when its worker took it (for insights). */
typedef struct
{
  guint    first;
  guint    last;
  guint32  flags;
  gsize    results_offset;
  gint64   started;
} Chunk;

typedef enum
{
  SEND_SENT,
  /* Not sent: to send once the chunk before is answered. */
  SEND_LATER,
  SEND_FAILED,
} SendOutcome;

/* Sends @chunk of @job to worker @index. @ahead: while the worker runs
 * the chunk before, which only a small chunk that needs no transfer area
 * may (SEND_LATER otherwise). On failure, *@outcome says how the job goes
 * on. */
static SendOutcome
send_chunk (WpoolBackendProcess *self,
            guint                index,
            WpoolJob            *job,
            Chunk               *chunk,
            gboolean             ahead,
            const char          *result_type_string,
            gboolean             timed,
            ChunkOutcome        *outcome)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  ProcessWorker *pw = &priv->workers[index];
  g_autoptr(GVariant) items = wpool_job_dup_chunk_items (job, chunk->first, chunk->last);
  g_autoptr(GError) error = NULL;

  chunk->flags = (wpool_job_get_keep_going (job) ? WPOOL_CHUNK_KEEP_GOING : 0) |
                 (timed ? WPOOL_CHUNK_TIMED : 0) |
                 (wpool_job_get_task_timeout (job) > 0 ? WPOOL_CHUNK_DEADLINE : 0);
  chunk->results_offset = 0;
  chunk->started = g_get_monotonic_time ();

  if (ahead)
    {
      /* The transfer area still holds the chunk before, or its results. */
      if (g_variant_get_size (items) > pw->ahead_max_size)
        return SEND_LATER;
    }
  else
    {
      if (transfer_chunk (self, index, job, items, chunk->last - chunk->first, &chunk->results_offset))
        {
          chunk->flags |= WPOOL_CHUNK_TRANSFER;
          g_variant_unref (items);
          items = g_variant_ref_sink (g_variant_new_array (wpool_task_get_item_type (wpool_job_get_task (job)),
                                                           NULL, 0));
        }

      /* The worker's clock for the chunk starts now, unless its init
       * still runs: that has a clock of its own. A chunk sent ahead has
       * its clock started by the worker, as it takes its first item. */
      wpool_running_begin (&priv->progress[index], (gint)chunk->first);
    }

  if (wpool_frame_write (pw->fd, WPOOL_FRAME_RUN_CHUNK,
                         g_variant_new ("(uusuv)", chunk->first, chunk->last - chunk->first, result_type_string,
                                        chunk->flags, items),
                         &error))
    return SEND_SENT;

  if (g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT))
    {
      wpool_job_fail (job, g_steal_pointer (&error));
      *outcome = CHUNK_STOP;
    }
  /* Dead: a chunk ahead is sent again once the one before is answered,
   * which tells what happened. */
  else if (ahead)
    return SEND_LATER;
  else
    *outcome = process_worker_died (self, index, job, WAIT_READABLE, chunk->first, chunk->last)
               ? CHUNK_PASS_ON : CHUNK_STOP;

  return SEND_FAILED;
}

/* Takes worker @index's answers to @chunk of @job: its RESULTS, or the
 * first ERROR; under keep-going, an ERROR for each failed item and then
 * the RESULTS. */
static ChunkOutcome
take_answers (WpoolBackendProcess *self,
              guint                index,
              WpoolJob            *job,
              const Chunk         *chunk,
              WpoolShareInsights  *share)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  ProcessWorker *pw = &priv->workers[index];
  guint first = chunk->first;
  guint last = chunk->last;

  for (;;)
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GVariant) transferred = NULL;
      g_autoptr(GError) error = NULL;
      WpoolFrameKind kind = 0;
      WaitOutcome outcome;

      /* A cancelled map does not wait for its workers' items, nor a map
       * for an item past the task timeout: the worker is killed, and
       * replaced before the next map. */
      /* Waiting is no GVariant work: a worker may fork meanwhile. */
      wpool_process_release_fork ();
      outcome = wait_for_worker (pw->fd, pw->pidfd, pw->pid, wpool_job_get_cancellable (job), &priv->progress[index],
                                 wpool_job_get_task_timeout (job),
                                 wpool_backend_get_config (WPOOL_BACKEND (self))->worker_init_timeout);
      wpool_process_hold_fork ();

      if (outcome != WAIT_READABLE || !(reply = wpool_frame_read (pw->fd, &kind, &error)))
        return process_worker_died (self, index, job, outcome, first, last) ? CHUNK_PASS_ON : CHUNK_STOP;

      if (chunk->flags & WPOOL_CHUNK_TRANSFER)
        transferred = transferred_results (self, index, job, chunk->results_offset, last - first);

      switch (wpool_backend_take_answer (job, index, first, last, kind, reply, transferred, share, chunk->started))
        {
        case WPOOL_ANSWER_DONE:
          wpool_trace_chunk (chunk->started, index, pw->pid, first, last, last - first);
          return CHUNK_DONE;
        case WPOOL_ANSWER_FAILED:
          wpool_trace_chunk (chunk->started, index, pw->pid, first, last, 0);
          return CHUNK_STOP;
        case WPOOL_ANSWER_MORE:
          break;
        }
    }
}

/* A worker's answer @reply, a frame of @kind, to the chunk [first, last)
 * of @job that it started at @started: its RESULTS (@transferred stands
 * for those it left elsewhere, when the frame carries none), or an
 * ERROR. Returns whether the chunk is done, needs more answers (an
 * item's error under keep-going) or failed the job. */
WpoolAnswer
wpool_backend_take_answer (WpoolJob           *job,
                           guint               index,
                           guint               first,
                           guint               last,
                           WpoolFrameKind      kind,
                           GVariant           *reply,
                           GVariant           *transferred,
                           WpoolShareInsights *share,
                           gint64              started)
{
  GError *error = NULL;
  const char *domain;
  const char *message;
  guint32 item;
  gint32 code;

  if (kind == WPOOL_FRAME_RESULTS)
    {
      g_autoptr(GVariant) results = NULL;
      g_autoptr(GVariant) durations = NULL;
      guint32 reply_first;

      g_variant_get (reply, "(uv@at)", &reply_first, &results, &durations);
      if (transferred != NULL && g_variant_is_container (results) && g_variant_n_children (results) == 0)
        {
          g_variant_unref (results);
          results = g_variant_ref (transferred);
        }
      if (reply_first != first ||
          !wpool_job_take_chunk_results (job, first, last, results, &error))
        {
          if (error == NULL)
            g_set_error (&error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                         "Worker %u answered for item %u instead of %u", index, reply_first, first);
          wpool_job_fail (job, error);
          return WPOOL_ANSWER_FAILED;
        }

      wpool_job_add_completed (job, last - first);
      wpool_job_deliver (job, first, last);

      /* What the items took in the worker; the rest of the round trip
       * went into sending and taking the chunk. */
      if (share != NULL)
        {
          gint64 working = share->working;

          add_durations (job, share, first, durations);
          share->transfer += MAX (g_get_monotonic_time () - started - (share->working - working), 0);
        }
      return WPOOL_ANSWER_DONE;
    }

  if (kind != WPOOL_FRAME_ERROR)
    {
      wpool_job_fail (job, g_error_new (WPOOL_ERROR, WPOOL_ERROR_FAILED,
                                        "Worker %u sent an unexpected frame (kind %u)", index, kind));
      return WPOOL_ANSWER_FAILED;
    }

  /* The task's own error, its domain and code kept. */
  g_variant_get (reply, "(u&si&s)", &item, &domain, &code, &message);
  if (!wpool_job_get_keep_going (job) || item < first || item >= last)
    {
      wpool_job_fail (job, g_error_new_literal (g_quark_from_string (domain), code, message));
      return WPOOL_ANSWER_FAILED;
    }

  wpool_job_fail_item (job, item, g_error_new_literal (g_quark_from_string (domain), code, message));
  return WPOOL_ANSWER_MORE;
}

static WpoolShareOutcome
wpool_backend_process_work (WpoolBackend *backend,
                            guint         index,
                            WpoolJob     *job)
{
  WpoolBackendProcess *self = WPOOL_BACKEND_PROCESS (backend);
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  const GVariantType *result_type = wpool_job_get_result_type (job);
  g_autofree char *result_type_string = result_type ? g_variant_type_dup_string (result_type) : g_strdup ("");
  WpoolInsights *insights = wpool_job_get_insights (job);
  WpoolShareOutcome ret = WPOOL_SHARE_DONE;
  WpoolShareInsights share = { 0, };
  ChunkOutcome outcome = CHUNK_DONE;
  guint n_jobs = wpool_backend_get_n_jobs (backend);
  SendOutcome sent;
  gboolean pipelined;
  Chunk current;
  Chunk ahead;

  /* Dead since the base class checked: it sits this one out. */
  if (g_atomic_int_get (&priv->workers[index].pid) <= 0)
    return WPOOL_SHARE_DONE;

  /* The worker is sent its next chunk as soon as it has one to run, so
   * that it goes on to it as it answers, rather than idle while its
   * answer crosses back and this thread reads it (a Python map over a
   * range: 3.5 ms of every 12 between batches). Not with a lifespan,
   * which may end the worker after this chunk. */
  pipelined = wpool_backend_get_config (backend)->worker_lifespan == 0;

  wpool_process_hold_fork ();
  if (wpool_job_next_chunk (job, &current.first, &current.last))
    sent = send_chunk (self, index, job, &current, FALSE, result_type_string, insights != NULL, &outcome);
  else
    sent = SEND_FAILED;

  while (sent == SEND_SENT)
    {
      SendOutcome ahead_sent = SEND_FAILED;

      /* Not once fewer chunks are left than workers: a worker would hold
       * one back, behind a slow one, while another idles. */
      if (pipelined &&
          wpool_job_get_n_unclaimed (job) >= n_jobs * (current.last - current.first) &&
          wpool_job_next_chunk (job, &ahead.first, &ahead.last))
        ahead_sent = send_chunk (self, index, job, &ahead, TRUE, result_type_string, insights != NULL, &outcome);

      outcome = take_answers (self, index, job, &current, insights ? &share : NULL);

      if (outcome != CHUNK_DONE)
        {
          /* A worker that lives on runs the chunk ahead: its answers are
           * read, into a job that stopped, so that the next map does not
           * take them for its own. One that died took it along: its items
           * run elsewhere under keep-going. */
          if (ahead_sent == SEND_SENT && g_atomic_int_get (&priv->workers[index].pid) > 0)
            take_answers (self, index, job, &ahead, NULL);
          else if (ahead_sent != SEND_FAILED)
            wpool_job_requeue (job, ahead.first, ahead.last);
          break;
        }

      /* Past its lifespan, the worker restarts before its next chunk. */
      if (wpool_backend_count_chunk (backend, index))
        {
          ret = WPOOL_SHARE_RESTART;
          break;
        }

      if (ahead_sent == SEND_SENT)
        {
          current = ahead;
          current.started = g_get_monotonic_time ();
        }
      else if (ahead_sent == SEND_LATER)
        {
          current = ahead;
          sent = send_chunk (self, index, job, &current, FALSE, result_type_string, insights != NULL, &outcome);
        }
      else if (!wpool_job_next_chunk (job, &current.first, &current.last))
        break;
      else
        sent = send_chunk (self, index, job, &current, FALSE, result_type_string, insights != NULL, &outcome);
    }
  wpool_process_release_fork ();

  if (outcome == CHUNK_PASS_ON)
    ret = WPOOL_SHARE_PASS_ON;

  if (insights != NULL)
    wpool_insights_share_end (insights, index, &share);

  return ret;
}

/* The worker-exit of worker @index, run as it stops: the worker is told,
 * and waited for until the exit timeout, past which it is killed. */
static GVariant *
wpool_backend_process_exit_worker (WpoolBackend  *backend,
                                   guint          index,
                                   GError       **error)
{
  WpoolBackendProcess *self = WPOOL_BACKEND_PROCESS (backend);
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);
  const WpoolBackendConfig *config = wpool_backend_get_config (backend);
  ProcessWorker *pw = &priv->workers[index];
  const GVariantType *result_type = wpool_task_get_result_type (config->worker_exit);
  g_autofree char *result_type_string = result_type ? g_variant_type_dup_string (result_type) : g_strdup ("");
  g_autoptr(GVariant) reply = NULL;
  WpoolFrameKind kind = 0;
  WaitOutcome outcome = WAIT_READABLE;

  if (!process_worker_is_alive (pw))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "Worker %u died before it could run its worker-exit", index);
      return NULL;
    }

  wpool_running_begin (&priv->progress[index], WPOOL_RUNNING_EXIT);

  /* The type declared now, which the worker's copy of the task may not
   * know (SPAWN and FORKSERVER load the function alone). */
  if (!wpool_frame_write (pw->fd, WPOOL_FRAME_EXIT, g_variant_new ("(s)", result_type_string), NULL) ||
      (outcome = wait_for_worker (pw->fd, pw->pidfd, pw->pid, NULL, &priv->progress[index], 0,
                                  config->worker_exit_timeout)) != WAIT_READABLE ||
      !(reply = wpool_frame_read (pw->fd, &kind, NULL)))
    {
      if (outcome == WAIT_TIMED_OUT)
        {
          WPOOL_BACKEND_PROCESS_GET_CLASS (self)->kill (self, index);
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                       "Worker %u (pid %d) ran its worker-exit for longer than the worker-exit "
                       "timeout (%g s) and was killed",
                       index, (int)pw->pid, config->worker_exit_timeout / (double)G_USEC_PER_SEC);
        }
      else
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                     "Worker %u (pid %d) died in its worker-exit", index, (int)pw->pid);
      return NULL;
    }

  return wpool_backend_take_exit_answer (index, kind, reply, result_type, error);
}

/* Worker @index's answer @reply, a frame of @kind, to its worker-exit,
 * whose result is of @result_type (%NULL: any): the result, or %NULL
 * with @error set. */
GVariant *
wpool_backend_take_exit_answer (guint                index,
                                WpoolFrameKind       kind,
                                GVariant            *reply,
                                const GVariantType  *result_type,
                                GError             **error)
{
  g_autoptr(GVariant) result = NULL;
  const char *domain;
  const char *message;
  guint32 item;
  gint32 code;

  if (kind == WPOOL_FRAME_EXIT_RESULT)
    {
      g_variant_get (reply, "(v)", &result);

      /* The worker checked it; the exit results are an array of it,
       * whatever the worker sent. */
      if (result_type != NULL && !g_variant_is_of_type (result, result_type))
        {
          g_autofree char *result_type_string = g_variant_type_dup_string (result_type);

          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT,
                       "Worker %u: its worker-exit sent a result of type “%s”, but declares “%s”",
                       index, g_variant_get_type_string (result), result_type_string);
          return NULL;
        }

      return g_steal_pointer (&result);
    }

  if (kind == WPOOL_FRAME_ERROR)
    {
      g_variant_get (reply, "(u&si&s)", &item, &domain, &code, &message);
      g_set_error_literal (error, g_quark_from_string (domain), code, message);
    }
  else
    g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                 "Worker %u sent an unexpected frame (kind %u)", index, kind);

  return NULL;
}

/* Workers that the pool, or its fork server, reaps itself: no other
 * process can have taken their pid in the meantime. */
static void
wpool_backend_process_real_kill (WpoolBackendProcess *self,
                                 guint                index)
{
  kill (wpool_backend_process_get_pid (self, index), SIGKILL);
}

/* A worker that died in an earlier map is replaced before the next one
 * that finds no map running; until then its driver passes jobs on. */
static gboolean
wpool_backend_process_is_alive (WpoolBackend *backend,
                                guint         index)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (WPOOL_BACKEND_PROCESS (backend));

  return g_atomic_int_get (&priv->workers[index].pid) > 0;
}

static void
wpool_backend_process_finalize (GObject *object)
{
  WpoolBackendProcess *self = (WpoolBackendProcess *)object;
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  if (priv->progress != NULL)
    munmap (priv->progress, priv->progress_size);
  wpool_process_close_fd (priv->progress_fd);
  for (guint i = 0; priv->workers != NULL && i < wpool_backend_get_n_jobs (WPOOL_BACKEND (self)); i++)
    {
      if (priv->workers[i].transfer != NULL)
        munmap (priv->workers[i].transfer, priv->workers[i].transfer_size);
      if (priv->workers[i].transfer_fd >= 0)
        wpool_process_close_fd (priv->workers[i].transfer_fd);
      /* One whose process failed to start was never stopped. */
      g_clear_object (&priv->workers[i].worker);
    }
  g_free (priv->workers);
  g_clear_object (&priv->task);

  G_OBJECT_CLASS (wpool_backend_process_parent_class)->finalize (object);
}

static void
wpool_backend_process_class_init (WpoolBackendProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);

  object_class->finalize = wpool_backend_process_finalize;

  backend_class->check_task = wpool_backend_process_check_task;
  backend_class->start_worker = wpool_backend_process_start_worker;
  backend_class->prepare = wpool_backend_process_prepare;
  backend_class->is_alive = wpool_backend_process_is_alive;
  backend_class->work = wpool_backend_process_work;
  backend_class->exit_worker = wpool_backend_process_exit_worker;
  backend_class->stop_worker = wpool_backend_process_stop_worker;

  backend_class->drives_on_caller = TRUE;

  klass->kill = wpool_backend_process_real_kill;
}

static void
wpool_backend_process_init (WpoolBackendProcess *self)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  priv->progress_fd = -1;
}

GPid
wpool_backend_process_get_pid (WpoolBackendProcess *self,
                               guint                index)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  return priv->workers[index].pid;
}

WpoolWorker *
wpool_backend_process_get_worker (WpoolBackendProcess *self,
                                  guint                index)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  return priv->workers[index].worker;
}

/* Where a new program finds @task and the pool's worker-init and
 * worker-exit, as SETUP and FORK_WORKER say it: `a(ssss)`, floating. */
GVariant *
wpool_backend_process_locate_tasks (WpoolBackend  *self,
                                    WpoolTask     *task,
                                    GError       **error)
{
  const WpoolBackendConfig *config = wpool_backend_get_config (self);
  WpoolTask *tasks[] = { task, config->worker_init, config->worker_exit };
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ssss)"));
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autofree char *item_type = NULL;
      g_autofree char *result_type = NULL;
      const char *module_path = "";
      const char *symbol = "";

      if (tasks[i] != NULL && !wpool_task_locate (tasks[i], &module_path, &symbol, error))
        {
          g_variant_builder_clear (&builder);
          return NULL;
        }

      /* One program runs them all: a C symbol loads in any. */
      if (i > 0 && tasks[i] != NULL && wpool_task_get_program (tasks[i]) != NULL &&
          !wpool_task_runs_program (tasks[i], wpool_task_get_program (task)))
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                       "The %s runs in the worker program “%s”, but the task in %s: "
                       "a worker runs one program",
                       i == 1 ? "worker-init" : "worker-exit", wpool_task_get_program (tasks[i])[0],
                       wpool_task_get_program (task) ? wpool_task_get_program (task)[0] : "libwpool's helper");
          g_variant_builder_clear (&builder);
          return NULL;
        }

      /* A chunk task says its types, which its function does not. */
      if (tasks[i] != NULL && wpool_task_get_item_type (tasks[i]) != NULL)
        {
          item_type = g_variant_type_dup_string (wpool_task_get_item_type (tasks[i]));
          result_type = g_variant_type_dup_string (wpool_task_get_result_type (tasks[i]));
        }
      g_variant_builder_add (&builder, "(ssss)", module_path, symbol,
                             item_type ? item_type : "", result_type ? result_type : "");
    }

  return g_variant_builder_end (&builder);
}

WpoolRunning *
wpool_backend_process_get_progress (WpoolBackendProcess *self,
                                    guint                index)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  return &priv->progress[index];
}

int
wpool_backend_process_get_progress_fd (WpoolBackendProcess *self)
{
  WpoolBackendProcessPrivate *priv = wpool_backend_process_get_instance_private (self);

  return priv->progress_fd;
}
