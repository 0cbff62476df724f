/* wpool-backend-spawn.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "wpool-backend-process-private.h"
#include "wpool-error.h"
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-task-private.h"

/* SPAWN: every worker is a fresh wpool-worker process started with
 * GSubprocess. It is told which symbol of which module to run, and sent
 * the shared objects once, at its start; it holds one copy of them. */

struct _WpoolBackendSpawn
{
  WpoolBackendProcess   parent_instance;

  GSubprocess         **processes;
};

G_DECLARE_FINAL_TYPE (WpoolBackendSpawn, wpool_backend_spawn, WPOOL, BACKEND_SPAWN, WpoolBackendProcess)
G_DEFINE_FINAL_TYPE (WpoolBackendSpawn, wpool_backend_spawn, WPOOL_TYPE_BACKEND_PROCESS)

/* WPOOL_WORKER names the helper in a build tree, for tests. */
static const char *
helper_path (void)
{
  const char *path = g_getenv ("WPOOL_WORKER");

  return path != NULL ? path : LIBEXECDIR "/wpool-worker";
}

static gboolean
wpool_backend_spawn_check_task (WpoolBackendClass  *klass,
                                WpoolTask          *task,
                                GError            **error)
{
  const char *module_path;
  const char *symbol;

  return WPOOL_BACKEND_CLASS (wpool_backend_spawn_parent_class)->check_task (klass, task, error) &&
         wpool_task_locate (task, &module_path, &symbol, error);
}

/* Sends the worker its setup and shared objects and waits until it can
 * serve. */
static gboolean
setup_worker (WpoolBackendSpawn  *self,
              guint               index,
              WpoolTask          *task,
              int                 fd,
              GError            **error)
{
  GVariant *shared_objects = wpool_backend_get_shared_objects (WPOOL_BACKEND (self));
  g_autoptr(GVariant) ready = NULL;
  const char *module_path;
  const char *symbol;
  const char *problem;
  WpoolFrameKind kind = 0;

  if (!wpool_task_locate (task, &module_path, &symbol, error) ||
      !wpool_frame_write (fd, WPOOL_FRAME_SETUP,
                          g_variant_new ("(usss)", index, module_path, symbol,
                                         shared_objects ? g_variant_get_type_string (shared_objects) : ""),
                          error))
    return FALSE;

  /* Written from the shared objects' own buffer, once per worker. */
  if (shared_objects != NULL &&
      !wpool_frame_write_data (fd, WPOOL_FRAME_SHARED_OBJECTS,
                               g_variant_get_data (shared_objects), g_variant_get_size (shared_objects),
                               error))
    return FALSE;

  if (!(ready = wpool_frame_read (fd, &kind, error)) || kind != WPOOL_FRAME_READY)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "Worker %u (%s) ended before it was ready", index, helper_path ());
      return FALSE;
    }

  g_variant_get (ready, "(&s)", &problem);
  if (*problem != '\0')
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Worker %u cannot start: %s", index, problem);
      return FALSE;
    }

  return TRUE;
}

static int
wpool_backend_spawn_reap (WpoolBackendProcess *process,
                          guint                index)
{
  WpoolBackendSpawn *self = WPOOL_BACKEND_SPAWN (process);
  g_autoptr(GSubprocess) subprocess = g_steal_pointer (&self->processes[index]);

  if (subprocess == NULL)
    return 0;

  /* GLib reaps its children: waitpid() is not ours to call. The
   * identifier goes once it has; one that does not end within a second
   * of being told to is killed. */
  for (guint tries = 0; tries < 200 && g_subprocess_get_identifier (subprocess) != NULL; tries++)
    g_usleep (5 * G_TIME_SPAN_MILLISECOND);

  if (g_subprocess_get_identifier (subprocess) != NULL)
    g_subprocess_force_exit (subprocess);

  g_subprocess_wait (subprocess, NULL, NULL);

  return g_subprocess_get_status (subprocess);
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
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) local_error = NULL;
  GSubprocess *subprocess;

  if (self->processes == NULL)
    self->processes = g_new0 (GSubprocess *, wpool_backend_get_n_jobs (WPOOL_BACKEND (self)));

  g_subprocess_launcher_take_fd (launcher, wpool_process_release_fd (child_fd), 3);
  g_subprocess_launcher_take_fd (launcher, dup (wpool_backend_process_get_progress_fd (process)), 4);

  if (!(subprocess = g_subprocess_launcher_spawn (launcher, &local_error, helper_path (),
                                                  "--socket-fd=3", "--progress-fd=4", NULL)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot start worker %u (%s): %s", index, helper_path (), local_error->message);
      return 0;
    }

  self->processes[index] = subprocess;

  if (!setup_worker (self, index, task, fd, error))
    {
      g_subprocess_force_exit (subprocess);
      wpool_backend_spawn_reap (process, index);
      return 0;
    }

  return (GPid)g_ascii_strtoll (g_subprocess_get_identifier (subprocess), NULL, 10);
}

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
  WpoolBackendClass *backend_class = WPOOL_BACKEND_CLASS (klass);
  WpoolBackendProcessClass *process_class = WPOOL_BACKEND_PROCESS_CLASS (klass);

  object_class->finalize = wpool_backend_spawn_finalize;

  backend_class->check_task = wpool_backend_spawn_check_task;

  process_class->spawn = wpool_backend_spawn_spawn;
  process_class->kill = wpool_backend_spawn_kill;
  process_class->reap = wpool_backend_spawn_reap;
}

static void
wpool_backend_spawn_init (WpoolBackendSpawn *self)
{
}
