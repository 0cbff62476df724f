/* wpool-backend-spawn.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-process-private.h"
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

  if (self->processes == NULL)
    self->processes = g_new0 (GSubprocess *, wpool_backend_get_n_jobs (WPOOL_BACKEND (self)));

  if (!(tasks = wpool_backend_process_locate_tasks (process, task, error)))
    {
      wpool_process_close_fd (child_fd);
      return 0;
    }
  g_variant_ref_sink (tasks);

  if (!(self->processes[index] = wpool_process_spawn_helper (child_fd,
                                                             wpool_backend_process_get_progress_fd (process),
                                                             "worker", wpool_task_get_program (task),
                                                             error)))
    return 0;

  if (!wpool_process_setup (fd, index, tasks, wpool_backend_get_shared_objects (WPOOL_BACKEND (self)),
                            wpool_task_get_program (task), error))
    {
      if (!wpool_process_explain_hangup (self->processes[index], wpool_process_program_name (wpool_task_get_program (task)), error))
        g_subprocess_force_exit (self->processes[index]);
      wpool_backend_spawn_reap (process, index);
      return 0;
    }

  return (GPid)g_ascii_strtoll (g_subprocess_get_identifier (self->processes[index]), NULL, 10);
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

  g_free (self->processes);

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
