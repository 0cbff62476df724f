/* wpool-backend-fork.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
#include "wpool-process-private.h"
#include "wpool-serve-private.h"

/* FORK: every worker is a fork() of the caller, made on libwpool's
 * launcher thread. It inherits the task, the shared
 * objects and the shared data: copy-on-write, nothing is sent. */

struct _WpoolBackendFork
{
  WpoolBackendProcess parent_instance;
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
  Child child = { self, index, task, child_fd };
  pid_t pid = wpool_process_fork (child_fd, fork_child_main, &child, error);

  wpool_process_close_fd (child_fd);

  return MAX (pid, 0);
}

static int
wpool_backend_fork_reap (WpoolBackendProcess *self,
                         guint                index)
{
  return wpool_process_reap (wpool_backend_process_get_pid (self, index));
}

static void
wpool_backend_fork_class_init (WpoolBackendForkClass *klass)
{
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  process_class->spawn = wpool_backend_fork_spawn;
  process_class->reap = wpool_backend_fork_reap;
}

static void
wpool_backend_fork_init (WpoolBackendFork *self)
{
}
