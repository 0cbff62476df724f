/* wpool-fork-server-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "wpool-process-private.h"
#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* A fork server: a single-threaded process that forks a pool's workers on
 * request, over a control socket, and reaps them for the pool, which is
 * not their parent. FORKSERVER's is the wpool-worker helper, started anew;
 * FORK's is a template, a fork() of the caller made once per task, which
 * holds the task and the shared objects as the caller had them. */
typedef struct _WpoolForkServer WpoolForkServer;

/* The server's side. What it runs in a worker it forks: made by the
 * server's WpoolForkServerPrepare, and freed once the worker is forked. */
typedef struct
{
  WpoolWorker  *worker;
  WpoolTask    *task;
  WpoolRunning *running;
} WpoolForkedWorker;

/* Fills @forked for worker @id, to run the task, worker-init and
 * worker-exit at @locations (`a(ssss)`, as FORK_WORKER says them): FALSE
 * if it cannot. */
typedef gboolean (*WpoolForkServerPrepare) (gpointer           data,
                                            guint32            id,
                                            GVariant          *locations,
                                            WpoolForkedWorker *forked);

int              wpool_fork_server_serve           (int                     control_fd,
                                                    WpoolForkServerPrepare  prepare,
                                                    gpointer                data);

/* The pool's side: a running server, shared by the pool's threads. */
WpoolForkServer *wpool_fork_server_new_subprocess  (const char             *name,
                                                    GSubprocess            *subprocess,
                                                    int                     control_fd);
WpoolForkServer *wpool_fork_server_fork            (const char             *name,
                                                    WpoolForkServerPrepare  prepare,
                                                    gpointer                data,
                                                    GError                **error);
WpoolForkServer *wpool_fork_server_ref             (WpoolForkServer        *self);
void             wpool_fork_server_unref           (WpoolForkServer        *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WpoolForkServer, wpool_fork_server_unref)

/* Starts a server for @task when a worker needs one and there is none
 * running: a new server, or %NULL with @error set. */
typedef WpoolForkServer *(*WpoolForkServerStart) (gpointer    data,
                                                  WpoolTask  *task,
                                                  GError    **error);

/* The servers of one backend: the one that forks its new workers, and
 * for each worker slot the one that forked its worker, which alone can
 * reap it (a server replaced since lives on until its workers are gone). */
typedef struct
{
  /* Guards current: workers start on the caller's thread and on drivers. */
  GMutex            lock;
  WpoolForkServer  *current;
  /* Each written by its slot's thread only. */
  WpoolForkServer **forked_by;
  guint             n_slots;
} WpoolForkServers;

void             wpool_fork_servers_init           (WpoolForkServers       *self);
void             wpool_fork_servers_clear          (WpoolForkServers       *self);
void             wpool_fork_servers_retire         (WpoolForkServers       *self);
GPid             wpool_fork_servers_start_worker   (WpoolForkServers       *self,
                                                    guint                   n_slots,
                                                    guint                   index,
                                                    WpoolTask              *task,
                                                    GVariant               *locations,
                                                    int                     child_fd,
                                                    WpoolForkServerStart    start,
                                                    gpointer                start_data,
                                                    GError                **error);
int              wpool_fork_servers_reap_worker    (WpoolForkServers       *self,
                                                    guint                   index,
                                                    GPid                    pid);
gboolean         wpool_fork_servers_worker_has_server (WpoolForkServers    *self,
                                                       guint                index);

G_END_DECLS
