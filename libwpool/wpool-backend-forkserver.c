/* wpool-backend-forkserver.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-fork-server-private.h"
#include "wpool-process-private.h"

/* FORKSERVER: one clean wpool-worker process, started with GSubprocess at
 * the first map, receives the shared objects once and forks every worker,
 * handing it the socket the pool passed along. The workers share the
 * server's copy copy-on-write: one copy in all, where MPIRE makes one per
 * worker. Safe in a threaded caller, since nothing forks the caller; a
 * server that died is replaced when the next worker starts, from any
 * thread (a new program, started on the launcher thread). */

struct _WpoolBackendForkserver
{
  WpoolBackendProcess  parent_instance;

  WpoolForkServers     servers;
};

G_DECLARE_FINAL_TYPE (WpoolBackendForkserver, wpool_backend_forkserver, WPOOL, BACKEND_FORKSERVER, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendForkserver, wpool_backend_forkserver, WPOOL_TYPE_BACKEND_PROCESS)

/* A new server, set up with @task's location (@data is the backend). */
static WpoolForkServer *
start_server (gpointer    data,
              WpoolTask  *task,
              GError    **error)
{
  WpoolBackendProcess *self = data;
  g_autoptr(GVariant) tasks = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(WpoolForkServer) server = NULL;
  int fds[2];

  if (!(tasks = wpool_backend_process_locate_tasks (WPOOL_BACKEND (self), task, error)))
    return NULL;
  g_variant_ref_sink (tasks);

  if (!wpool_process_socketpair (fds, error))
    return NULL;

  if (!(subprocess = wpool_process_spawn_helper (fds[1], wpool_backend_process_get_progress_fd (self),
                                                 "server", wpool_task_get_program (task), error)))
    {
      wpool_process_close_fd (fds[0]);
      g_prefix_error (error, "The fork server cannot start: ");
      return NULL;
    }

  server = wpool_fork_server_new_subprocess ("The fork server", subprocess, fds[0]);
  if (!wpool_process_setup (fds[0], G_MAXUINT, tasks, wpool_backend_get_shared_objects (WPOOL_BACKEND (self)),
                            wpool_task_get_program (task), error))
    {
      wpool_process_explain_hangup (subprocess, wpool_process_program_name (wpool_task_get_program (task)), error);
      g_prefix_error (error, "The fork server cannot start: ");
      return NULL;
    }
  g_free (wpool_process_take_early_stderr (subprocess));

  return g_steal_pointer (&server);
}

static GPid
wpool_backend_forkserver_spawn (WpoolBackendProcess  *process,
                                guint                 index,
                                WpoolTask            *task,
                                int                   fd,
                                int                   child_fd,
                                GError              **error)
{
  WpoolBackendForkserver *self = WPOOL_BACKEND_FORKSERVER (process);
  GVariant *tasks;
  GPid pid = 0;

  /* The server loads the task anew for each worker, as located. */
  if ((tasks = wpool_backend_process_locate_tasks (WPOOL_BACKEND (process), task, error)) != NULL)
    pid = wpool_fork_servers_start_worker (&self->servers, wpool_backend_get_n_jobs (WPOOL_BACKEND (self)),
                                           index, task, tasks, child_fd, start_server, self, error);

  /* The server has its copy, if it got one. */
  wpool_process_close_fd (child_fd);

  return pid;
}

static gboolean
wpool_backend_forkserver_worker_has_server (WpoolBackendProcess *process,
                                             guint                index)
{
  return wpool_fork_servers_worker_has_server (&WPOOL_BACKEND_FORKSERVER (process)->servers, index);
}

static int
wpool_backend_forkserver_reap (WpoolBackendProcess *process,
                               guint                index)
{
  WpoolBackendForkserver *self = WPOOL_BACKEND_FORKSERVER (process);

  return wpool_fork_servers_reap_worker (&self->servers, index, wpool_backend_process_get_pid (process, index));
}

/* The server stops with its workers, on the thread that stopped them. */
static void
wpool_backend_forkserver_stopped (WpoolBackend *backend)
{
  wpool_fork_servers_retire (&WPOOL_BACKEND_FORKSERVER (backend)->servers);
}

static void
wpool_backend_forkserver_finalize (GObject *object)
{
  WpoolBackendForkserver *self = (WpoolBackendForkserver *)object;

  /* The workers were stopped and reaped by dispose. */
  wpool_fork_servers_clear (&self->servers);

  G_OBJECT_CLASS (wpool_backend_forkserver_parent_class)->finalize (object);
}

static void
wpool_backend_forkserver_class_init (WpoolBackendForkserverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_forkserver_finalize;
  WPOOL_BACKEND_CLASS (klass)->stopped = wpool_backend_forkserver_stopped;

  WPOOL_BACKEND_CLASS (klass)->runs_new_program = TRUE;
  process_class->server_name = "its fork server";
  process_class->spawn = wpool_backend_forkserver_spawn;
  process_class->reap = wpool_backend_forkserver_reap;
  process_class->worker_has_server = wpool_backend_forkserver_worker_has_server;
}

static void
wpool_backend_forkserver_init (WpoolBackendForkserver *self)
{
  wpool_fork_servers_init (&self->servers);
}
