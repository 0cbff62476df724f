/* wpool-backend-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-backend-private.h"
#include "wpool-insights-private.h"
#include "wpool-protocol-private.h"
#include "wpool-process-private.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* The pool's side of workers that are processes: each is reached through
 * a socket, streamed chunks of items and read back results by its driver
 * thread, seen to die when its socket ends, killed when its map is
 * cancelled and replaced before the next map. The item each runs is in a
 * page of memory it shares with the pool. Subclasses say how a worker
 * process starts and how it is reaped. */
#define WPOOL_TYPE_BACKEND_PROCESS (wpool_backend_process_get_type ())

G_DECLARE_DERIVABLE_TYPE (WpoolBackendProcess, wpool_backend_process, WPOOL, BACKEND_PROCESS, WpoolBackend)

struct _WpoolBackendProcessClass
{
  WpoolBackendClass parent_class;

  /* The process that forks the workers, as a death names it ("its fork
   * server"), or %NULL if the pool does. */
  const char *server_name;

  /* Starts worker process @index for @task. It serves on @child_fd,
   * which @spawn owns; the pool keeps @fd, the other end. Returns its
   * pid, or 0 with @error set. */
  GPid (*spawn) (WpoolBackendProcess  *self,
                 guint                 index,
                 WpoolTask            *task,
                 int                   fd,
                 int                   child_fd,
                 GError              **error);
  /* Kills worker process @index now; by default, signals its pid. */
  void (*kill)  (WpoolBackendProcess  *self,
                 guint                 index);
  /* Waits for worker process @index, which ended or was told to, and
   * returns its wait status. */
  int  (*reap)  (WpoolBackendProcess  *self,
                 guint                 index);
  /* Whether what forked worker process @index still runs (see
   * wpool_fork_servers_worker_has_server()); %NULL where no server forks
   * the workers (SPAWN). */
  gboolean (*worker_has_server) (WpoolBackendProcess *self,
                                 guint                index);
};

GType        wpool_backend_spawn_get_type       (void) G_GNUC_CONST;
GType        wpool_backend_forkserver_get_type  (void) G_GNUC_CONST;

GPid         wpool_backend_process_get_pid      (WpoolBackendProcess *self,
                                                 guint                index);
WpoolWorker *wpool_backend_process_get_worker   (WpoolBackendProcess *self,
                                                 guint                index);
WpoolRunning *wpool_backend_process_get_progress (WpoolBackendProcess *self,
                                                 guint                index);
int          wpool_backend_process_get_progress_fd (WpoolBackendProcess *self);

/* What the backends whose workers are other processes (these, and MPI's)
 * share. */
GVariant    *wpool_backend_process_locate_tasks (WpoolBackend         *self,
                                                 WpoolTask            *task,
                                                 GError              **error);
gboolean     wpool_backend_process_check_task   (WpoolBackendClass    *klass,
                                                 WpoolTask            *task,
                                                 GError              **error);

typedef enum
{
  WPOOL_ANSWER_DONE,
  WPOOL_ANSWER_MORE,
  WPOOL_ANSWER_FAILED,
} WpoolAnswer;

WpoolAnswer  wpool_backend_take_answer          (WpoolJob             *job,
                                                 guint                 index,
                                                 guint                 first,
                                                 guint                 last,
                                                 WpoolFrameKind        kind,
                                                 GVariant             *reply,
                                                 GVariant             *transferred,
                                                 WpoolShareInsights   *share,
                                                 gint64                started);
GVariant    *wpool_backend_take_exit_answer     (guint                 index,
                                                 WpoolFrameKind        kind,
                                                 GVariant             *reply,
                                                 const GVariantType   *result_type,
                                                 GError              **error);

G_END_DECLS
