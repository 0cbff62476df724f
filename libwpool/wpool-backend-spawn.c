/* wpool-backend-spawn.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-task-private.h"

/* SPAWN: every worker is a fresh wpool-worker process, or the task's own
 * worker program, started with GSubprocess. It is told which symbol of
 * which module to run, and sent the shared objects once, at its start; it
 * holds one copy of them. */

struct _WpoolBackendSpawn
{
  WpoolBackendProcess   parent_instance;

  GSubprocess         **processes;
  /* The workers of a fresh start after the first, launched as it starts
   * so that they come up side by side (a language runtime takes tens of
   * ms to start), each with the pool's end of its socket, until their
   * turn to be set up. */
  GSubprocess         **ahead;
  int                  *ahead_fds;
};

G_DECLARE_FINAL_TYPE (WpoolBackendSpawn, wpool_backend_spawn, WPOOL, BACKEND_SPAWN, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendSpawn, wpool_backend_spawn, WPOOL_TYPE_BACKEND_PROCESS)

static int
wpool_backend_spawn_reap (WpoolBackendProcess *process,
                          guint                index)
{
  WpoolBackendSpawn *self = WPOOL_BACKEND_SPAWN (process);
  g_autoptr(GSubprocess) subprocess = g_steal_pointer (&self->processes[index]);

  return subprocess != NULL ? wpool_process_reap_subprocess (subprocess) : 0;
}

/* Worker @index launched ahead, which will not serve: told so by the end
 * of its socket, it ends on its own (a second at most, as reaping
 * allows), unless it is to be killed at once. Killing a program that
 * ends on its own anyway is no help, and under LeakSanitizer, whose check
 * at exit it would cut off, left a zombie that GLib never reaped. */
static void
drop_ahead (WpoolBackendSpawn *self,
            guint              index,
            gboolean           kill)
{
  g_autoptr(GSubprocess) subprocess = g_steal_pointer (&self->ahead[index]);

  if (subprocess == NULL)
    return;
  wpool_process_close_fd (g_steal_fd (&self->ahead_fds[index]));
  if (kill)
    g_subprocess_force_exit (subprocess);
  wpool_process_reap_subprocess (subprocess);
}

/* Launches workers @first to the last of a fresh start, and sends each its
 * setup, so that they prepare side by side too (a Python worker imports
 * the caller's script then). One that cannot be launched or set up is
 * left to its turn, which reports why. */
static void
launch_ahead (WpoolBackendSpawn *self,
              guint              first,
              WpoolTask         *task,
              GVariant          *tasks)
{
  int progress_fd = wpool_backend_process_get_progress_fd (WPOOL_BACKEND_PROCESS (self));
  guint n_jobs = wpool_backend_get_n_jobs (WPOOL_BACKEND (self));

  for (guint i = first; i < n_jobs; i++)
    {
      int fds[2];

      if (!wpool_process_socketpair (fds, NULL))
        return;

      if (!(self->ahead[i] = wpool_process_spawn_helper (fds[1], progress_fd, "worker",
                                                         wpool_task_get_program (task), NULL)))
        {
          wpool_process_close_fd (fds[0]);
          return;
        }
      self->ahead_fds[i] = fds[0];
    }

  for (guint i = first; i < n_jobs; i++)
    {
      if (self->ahead[i] != NULL &&
          !wpool_process_send_setup (self->ahead_fds[i], i, tasks,
                                     wpool_backend_get_shared_objects (WPOOL_BACKEND (self)), NULL))
        drop_ahead (self, i, TRUE);
    }
}

/* Worker @index as launched ahead, now on the pool's socket @fd, which
 * takes the place of its own. */
static GSubprocess *
take_ahead (WpoolBackendSpawn  *self,
            guint               index,
            int                 fd,
            GError            **error)
{
  if (dup3 (self->ahead_fds[index], fd, O_CLOEXEC) < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot hand a worker its socket: %s", g_strerror (errsv));
      drop_ahead (self, index, TRUE);
      return NULL;
    }
  wpool_process_close_fd (g_steal_fd (&self->ahead_fds[index]));

  return g_steal_pointer (&self->ahead[index]);
}

static GPid
wpool_backend_spawn_spawn (WpoolBackendProcess  *process,
                           guint                 index,
                           WpoolTask            *task,
                           int                   fd,
                           int                   child_fd,
                           GError              **error)
{
  WpoolBackendSpawn *self = WPOOL_BACKEND_SPAWN (process);
  g_autoptr(GVariant) tasks = NULL;
  guint n_jobs = wpool_backend_get_n_jobs (WPOOL_BACKEND (self));
  gboolean fresh = self->processes == NULL;
  gboolean set_up = FALSE;
  GPid pid;

  if (fresh)
    {
      self->processes = g_new0 (GSubprocess *, n_jobs);
      self->ahead = g_new0 (GSubprocess *, n_jobs);
      self->ahead_fds = g_new (int, n_jobs);
      for (guint i = 0; i < n_jobs; i++)
        self->ahead_fds[i] = -1;
    }

  if (!(tasks = wpool_backend_process_locate_tasks (WPOOL_BACKEND (process), task, error)))
    {
      wpool_process_close_fd (child_fd);
      return 0;
    }
  g_variant_ref_sink (tasks);

  if (self->ahead[index] != NULL)
    {
      /* Launched and sent its setup already. */
      wpool_process_close_fd (child_fd);
      if (!(self->processes[index] = take_ahead (self, index, fd, error)))
        return 0;
      set_up = TRUE;
    }
  else if (!(self->processes[index] = wpool_process_spawn_helper (child_fd,
                                                                  wpool_backend_process_get_progress_fd (process),
                                                                  "worker", wpool_task_get_program (task),
                                                                  error)))
    return 0;

  /* Now, while it waits for its setup: GLib may reap it once it ends. */
  pid = wpool_process_subprocess_pid (self->processes[index]);

  if (!set_up)
    set_up = wpool_process_send_setup (fd, index, tasks, wpool_backend_get_shared_objects (WPOOL_BACKEND (self)),
                                       error);

  /* The others launch and start preparing while this one prepares. */
  if (fresh && set_up)
    launch_ahead (self, index + 1, task, tasks);

  if (!set_up || !wpool_process_await_ready (fd, wpool_task_get_program (task), error))
    {
      /* Cancelled or timed out, it is killed; it ends on its own once it
       * hung up or said why it cannot start, and so do those launched
       * ahead, which cannot start either. */
      gboolean kill = error == NULL ||
                      g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                      g_error_matches (*error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);

      if (!wpool_process_explain_hangup (self->processes[index],
                                         wpool_process_program_name (wpool_task_get_program (task)), error) &&
          kill)
        g_subprocess_force_exit (self->processes[index]);
      wpool_backend_spawn_reap (process, index);
      for (guint i = index + 1; i < n_jobs; i++)
        drop_ahead (self, i, kill);
      return 0;
    }
  g_free (wpool_process_take_early_stderr (self->processes[index]));

  return pid;
}

/* Through GSubprocess, which knows whether GLib reaped the process and
 * its pid may be another's. */
static void
wpool_backend_spawn_kill (WpoolBackendProcess *process,
                          guint                index)
{
  WpoolBackendSpawn *self = WPOOL_BACKEND_SPAWN (process);

  if (self->processes[index] != NULL)
    g_subprocess_force_exit (self->processes[index]);
}

static void
wpool_backend_spawn_finalize (GObject *object)
{
  WpoolBackendSpawn *self = (WpoolBackendSpawn *)object;

  for (guint i = 0; self->ahead != NULL && i < wpool_backend_get_n_jobs (WPOOL_BACKEND (self)); i++)
    drop_ahead (self, i, TRUE);
  g_free (self->processes);
  g_free (self->ahead);
  g_free (self->ahead_fds);

  G_OBJECT_CLASS (wpool_backend_spawn_parent_class)->finalize (object);
}

static void
wpool_backend_spawn_class_init (WpoolBackendSpawnClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_spawn_finalize;

  WPOOL_BACKEND_CLASS (klass)->runs_new_program = TRUE;
  process_class->spawn = wpool_backend_spawn_spawn;
  process_class->kill = wpool_backend_spawn_kill;
  process_class->reap = wpool_backend_spawn_reap;
}

static void
wpool_backend_spawn_init (WpoolBackendSpawn *self)
{
}
