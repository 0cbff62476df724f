/* wpool-backend-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

#include "wpool-job-private.h"
#include "wpool-start-method.h"
#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* A backend is one start method's set of running workers. It starts
 * n-jobs workers that each hold the shared objects (sent once, however the
 * start method moves them), hands each map's job to them, and stops them.
 *
 * Every worker slot has a driver thread in this process, fed through its
 * own queue: under THREADING it is the worker itself; for a worker
 * elsewhere (a process) it is the proxy that streams chunks to it and
 * results back. The base class owns the drivers; a start method is one
 * subclass in one file, registered in wpool_backend_type_for_start_method(),
 * and assumes nothing of fork, sockets or threads beyond its own. */
/* What a backend's workers are started with, fixed for its life. */
typedef struct
{
  guint      n_jobs;
  GVariant  *shared_objects;
  gpointer   shared_data;
  WpoolTask *worker_init;
  WpoolTask *worker_exit;
  /* `aau`: the CPUs of every worker, or of each, or %NULL. */
  GVariant  *cpu_ids;
  /* Chunks a worker runs before it restarts, 0 for no limit. */
  guint      worker_lifespan;
  /* In µs, 0 for none. */
  gint64     worker_start_timeout;
  gint64     worker_init_timeout;
  gint64     worker_exit_timeout;
} WpoolBackendConfig;

#define WPOOL_TYPE_BACKEND (wpool_backend_get_type ())

G_DECLARE_DERIVABLE_TYPE (WpoolBackend, wpool_backend, WPOOL, BACKEND, GObject)

struct _WpoolBackendClass
{
  GObjectClass parent_class;

  /* Whether the workers are new programs, which find their task by
   * module and symbol (wpool_task_locate()) rather than inheriting it:
   * the only ones that can run a program task. */
  gboolean runs_new_program;

  /* Whether this start method can run @task at all; checked on every map
   * before any worker starts. */
  gboolean (*check_task)   (WpoolBackendClass  *klass,
                            WpoolTask          *task,
                            GError            **error);
  /* Starts worker @index for @task, on the caller's thread, whose socket
   * I/O is watched (wpool_frame_watch_begin()) for the map's
   * cancellable: the start fails when it is cancelled. */
  gboolean (*start_worker) (WpoolBackend       *self,
                            guint               index,
                            WpoolTask          *task,
                            GError            **error);
  /* Before every map but the first, on the caller's thread: make the
   * workers ready to run @task. @idle says no map runs. */
  gboolean (*prepare)      (WpoolBackend       *self,
                            WpoolTask          *task,
                            gboolean            idle,
                            GError            **error);
  /* Whether worker @index can take work; read from any driver thread.
   * A driver whose worker is dead passes its jobs on to a live one. */
  gboolean (*is_alive)     (WpoolBackend       *self,
                            guint               index);
  /* Worker @index's part of @job, on its driver thread. */
  WpoolShareOutcome (*work) (WpoolBackend      *self,
                            guint               index,
                            WpoolJob           *job);
  /* Runs worker @index's worker-exit, on its driver thread as it quits:
   * its result, or %NULL with @error set. */
  GVariant *(*exit_worker) (WpoolBackend       *self,
                            guint               index,
                            GError            **error);
  /* Stops worker @index, on the caller's thread, its driver joined. */
  void     (*stop_worker)  (WpoolBackend       *self,
                            guint               index);
  /* Every worker stopped, on the thread that stopped them: what serves
   * them (a fork server) may stop too, there rather than wherever the
   * backend is finalized (an async map's caller context). */
  void     (*stopped)      (WpoolBackend       *self);

  /* Whether a worker-exit runs in this process, where a hung one cannot
   * be killed: stopping then waits for it until the exit timeout only. */
  gboolean exit_in_process;
  /* Whether a caller waiting for a map may drive a worker's share on its
   * own thread, as the worker's driver would: a worker process, which any
   * thread can talk to (a worker thread is a driver of its own). */
  gboolean drives_on_caller;
  /* Whether the pool sees which item a worker runs only by its answer:
   * a map with a task timeout then hands out one item at a time. */
  gboolean times_items_by_chunk;
};

GType         wpool_backend_threading_get_type (void) G_GNUC_CONST;
GType         wpool_backend_fork_get_type      (void) G_GNUC_CONST;
GType         wpool_backend_mpi_get_type       (void) G_GNUC_CONST;

WpoolBackend *wpool_backend_new                (WpoolStartMethod          start_method,
                                                const WpoolBackendConfig *config,
                                                WpoolTask                *task,
                                                GCancellable             *cancellable,
                                                GError                  **error);
const WpoolBackendConfig *
              wpool_backend_get_config         (WpoolBackend      *self);
GVariant     *wpool_backend_dup_worker_cpus    (WpoolBackend      *self,
                                                guint              index);
WpoolWorker  *wpool_backend_new_worker         (WpoolBackend      *self,
                                                guint              index);
void          wpool_backend_run_exits          (WpoolBackend      *self);
gboolean      wpool_backend_count_chunk        (WpoolBackend      *self,
                                                guint              index);
GVariant     *wpool_backend_take_exit_results  (WpoolBackend      *self,
                                                GError           **error);
gboolean      wpool_backend_times_items_by_chunk (WpoolStartMethod start_method);
gboolean      wpool_backend_check_task         (WpoolStartMethod   start_method,
                                                WpoolTask         *task,
                                                GError           **error);
guint         wpool_backend_get_n_jobs         (WpoolBackend      *self);
GVariant     *wpool_backend_get_shared_objects (WpoolBackend      *self);
gpointer      wpool_backend_get_shared_data    (WpoolBackend      *self);
gboolean      wpool_backend_prepare            (WpoolBackend      *self,
                                                WpoolTask         *task,
                                                gboolean           idle,
                                                GCancellable      *cancellable,
                                                GError           **error);
/* A worker's share of a job that the caller drives itself. */
typedef struct _WpoolBackendShare WpoolBackendShare;

WpoolBackendShare *
              wpool_backend_dispatch           (WpoolBackend      *self,
                                                WpoolJob          *job,
                                                guint              n_workers,
                                                gboolean           caller_waits);
void          wpool_backend_drive              (WpoolBackendShare *share,
                                                WpoolJob          *job);
gboolean      wpool_backend_replace_worker     (WpoolBackend      *self,
                                                guint              index,
                                                WpoolTask         *task,
                                                GError           **error);
void          wpool_backend_stop               (WpoolBackend      *self,
                                                gboolean           run_exit);
gboolean      wpool_backend_is_current         (WpoolBackend      *self);

G_END_DECLS
