/* wpool-backend-forkserver.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-task-private.h"

/* FORKSERVER: one clean wpool-worker process, started with GSubprocess at
 * the first map, receives the shared objects once and forks every worker,
 * handing it the socket the pool passed along. The workers share the
 * server's copy copy-on-write: one copy in all, where MPIRE makes one per
 * worker. Safe in a threaded caller, since nothing forks the caller. */

struct _WpoolBackendForkserver
{
  WpoolBackendProcess  parent_instance;

  GSubprocess         *server;
  int                  control_fd;
  /* Requests come from the caller's thread and from the drivers. */
  GMutex               lock;
};

G_DECLARE_FINAL_TYPE (WpoolBackendForkserver, wpool_backend_forkserver, WPOOL, BACKEND_FORKSERVER, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendForkserver, wpool_backend_forkserver, WPOOL_TYPE_BACKEND_PROCESS)

static void
stop_server (WpoolBackendForkserver *self)
{
  g_autoptr(GSubprocess) server = g_steal_pointer (&self->server);

  /* The server reaps what is left and exits when its socket ends. */
  wpool_process_close_fd (g_steal_fd (&self->control_fd));
  if (server != NULL)
    wpool_process_reap_subprocess (server);
}

static gboolean
ensure_server (WpoolBackendForkserver  *self,
               GVariant                *tasks,
               GError                 **error)
{
  int fds[2];

  if (self->server != NULL)
    return TRUE;

  if (!wpool_process_socketpair (fds, error))
    return FALSE;

  self->control_fd = fds[0];
  if (!(self->server = wpool_process_spawn_helper (fds[1],
                                                   wpool_backend_process_get_progress_fd (WPOOL_BACKEND_PROCESS (self)),
                                                   "server", error)) ||
      !wpool_process_setup (self->control_fd, G_MAXUINT, tasks,
                            wpool_backend_get_shared_objects (WPOOL_BACKEND (self)), error))
    {
      g_prefix_error (error, "The fork server cannot start: ");
      stop_server (self);
      return FALSE;
    }

  return TRUE;
}

/* One request to the server and its reply; a server that does not answer
 * is stopped, and started anew when next needed. */
static GVariant *
call_server (WpoolBackendForkserver  *self,
             WpoolFrameKind           kind,
             GVariant                *request,
             int                      passed_fd,
             WpoolFrameKind           reply_kind,
             GError                 **error)
{
  GVariant *reply;

  g_mutex_lock (&self->lock);
  if (!(reply = wpool_frame_call (self->control_fd, kind, request, passed_fd, reply_kind, error)))
    stop_server (self);
  g_mutex_unlock (&self->lock);

  return reply;
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
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) tasks = NULL;
  gint32 pid = 0;

  /* Workers start on the caller's thread while no map runs, so no driver
   * is talking to the server. */
  if ((tasks = wpool_backend_process_locate_tasks (process, task, error)) != NULL)
    g_variant_ref_sink (tasks);

  if (tasks != NULL &&
      ensure_server (self, tasks, error) &&
      (reply = call_server (self, WPOOL_FRAME_FORK_WORKER,
                            g_variant_new ("(u@a(ssss))", index, tasks),
                            child_fd, WPOOL_FRAME_STARTED, error)))
    {
      g_variant_get (reply, "(i)", &pid);
      if (pid <= 0)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "The fork server cannot start worker %u: %s", index,
                     pid < 0 ? g_strerror (-pid) : "no such task");
    }

  /* The server has its copy, if it got one. */
  wpool_process_close_fd (child_fd);

  return MAX (pid, 0);
}

static int
wpool_backend_forkserver_reap (WpoolBackendProcess *process,
                               guint                index)
{
  WpoolBackendForkserver *self = WPOOL_BACKEND_FORKSERVER (process);
  g_autoptr(GVariant) reply = NULL;
  gint32 status = WPOOL_STATUS_SERVER_DIED;

  /* Only its parent, the server, can wait for a worker. A server that
   * does not answer died (the worker with it): it is stopped, and the
   * next worker to start starts a new one. */
  if (self->server != NULL &&
      (reply = call_server (self, WPOOL_FRAME_REAP,
                            g_variant_new ("(i)", (gint32)wpool_backend_process_get_pid (process, index)),
                            -1, WPOOL_FRAME_REAPED, NULL)))
    g_variant_get (reply, "(i)", &status);
  else
    wpool_process_reap_orphan (wpool_backend_process_get_pid (process, index));

  return status;
}

static void
wpool_backend_forkserver_finalize (GObject *object)
{
  WpoolBackendForkserver *self = (WpoolBackendForkserver *)object;

  /* The workers were stopped and reaped by dispose. */
  stop_server (self);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (wpool_backend_forkserver_parent_class)->finalize (object);
}

static void
wpool_backend_forkserver_class_init (WpoolBackendForkserverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_forkserver_finalize;

  process_class->runs_new_program = TRUE;
  process_class->spawn = wpool_backend_forkserver_spawn;
  process_class->reap = wpool_backend_forkserver_reap;
}

static void
wpool_backend_forkserver_init (WpoolBackendForkserver *self)
{
  self->control_fd = -1;
  g_mutex_init (&self->lock);
}
