/* wpool-backend-fork.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-process-private.h"
#include "wpool-serve-private.h"

/* FORK: every worker is a fork() of the caller, made on the thread that
 * starts it (the caller's, or a driver's for a restart). It inherits the
 * task, the shared objects and the shared data: copy-on-write, nothing is
 * sent. It dies with the pool's process through its lifeline. */

struct _WpoolBackendFork
{
  WpoolBackendProcess parent_instance;

  /* The pool's end of each worker's lifeline (wpool_process_fork()),
   * closed once the worker is reaped. */
  int                *lifelines;
};

G_DECLARE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL, BACKEND_FORK, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendFork, wpool_backend_fork, WPOOL_TYPE_BACKEND_PROCESS)

typedef struct
{
  WpoolBackendProcess *self;
  guint                index;
  WpoolTask           *task;
  int                  fd;
} Child;

/* The child: computes and does I/O on its socket only. */
static int
fork_child_main (gpointer data)
{
  Child *child = data;

  return wpool_serve (wpool_backend_process_get_worker (child->self, child->index), child->task, child->fd,
                      wpool_backend_process_get_progress (child->self, child->index));
}

static GPid
wpool_backend_fork_spawn (WpoolBackendProcess  *self,
                          guint                 index,
                          WpoolTask            *task,
                          int                   fd,
                          int                   child_fd,
                          GError              **error)
{
  WpoolBackendFork *fork = WPOOL_BACKEND_FORK (self);
  Child child = { self, index, task, child_fd };
  guint n_jobs = wpool_backend_get_n_jobs (WPOOL_BACKEND (self));
  pid_t pid;

  if (fork->lifelines == NULL)
    {
      fork->lifelines = g_new (int, n_jobs);
      for (guint i = 0; i < n_jobs; i++)
        fork->lifelines[i] = -1;
    }

  pid = wpool_process_fork (child_fd, fork_child_main, &child, &fork->lifelines[index], error);

  wpool_process_close_fd (child_fd);

  return MAX (pid, 0);
}

static int
wpool_backend_fork_reap (WpoolBackendProcess *self,
                         guint                index)
{
  WpoolBackendFork *fork = WPOOL_BACKEND_FORK (self);
  int status = wpool_process_reap (wpool_backend_process_get_pid (self, index));

  wpool_process_close_fd (g_steal_fd (&fork->lifelines[index]));

  return status;
}

static void
wpool_backend_fork_finalize (GObject *object)
{
  WpoolBackendFork *self = (WpoolBackendFork *)object;

  g_free (self->lifelines);

  G_OBJECT_CLASS (wpool_backend_fork_parent_class)->finalize (object);
}

static void
wpool_backend_fork_class_init (WpoolBackendForkClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_fork_finalize;

  process_class->spawn = wpool_backend_fork_spawn;
  process_class->reap = wpool_backend_fork_reap;
}

static void
wpool_backend_fork_init (WpoolBackendFork *self)
{
}
