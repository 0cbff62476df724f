/* wpool-test-program.c: a worker program of its own, as a language
 * runtime would write one, for test-programs: it hands its command line to
 * wpool_worker_serve() with a resolver that knows the tasks of module
 * "wpool-test-program" and leaves any other module to libwpool's C loader.
 *
 *   wpool-test-program [--marker=TEXT] [--no-fork] [--take-shared-objects] POOL-OPTIONS…
 *
 * --marker: what its tasks report, to tell two command lines apart;
 * --no-fork: serves with WPOOL_SERVE_FLAGS_NO_FORK.
 * --take-shared-objects: serves with WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS.
 *
 * Its tasks (the resolver's error names the others):
 *   whoami   i → (issuuu): the item squared, the marker, /proc/self/exe,
 *            the worker's id, its pid, and the pid of the process whose
 *            resolver made the task
 *   shared   any → (bbmvmv): whether the resolver, then the task, saw the
 *            shared objects floating, and the values each saw
 *   sleep    u → u: sleeps that many milliseconds
 *   die      s → s: "kill" kills the worker (SIGKILL); anything else comes back
 *   report   i → i: a negative item fails through wpool_worker_report_error()
 *   init     a worker-init: the worker's state gets "pid"
 *   state    any → (uu): the "pid" a worker-init (this program's or
 *            wpool_test_init_state) stored, and the worker's pid
 *   fail     the resolver fails (G_IO_ERROR_NOT_FOUND)
 *   bad      the resolver gives a task no worker can run (a program task)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wpool.h>

#define MODULE "wpool-test-program"

static const char *marker = "";
/* What a task keeps of the shared objects, as a binding's task may. */
static GVariant *kept_shared_objects;

/* What the resolver saw, for the tasks it makes. */
typedef struct
{
  GVariant *shared_objects;
  gboolean  floating;
  guint32   pid;
} Resolved;

static void
resolved_free (gpointer data)
{
  Resolved *resolved = data;

  g_clear_pointer (&resolved->shared_objects, g_variant_unref);
  g_free (resolved);
}

static GVariant *
whoami (WpoolWorker  *worker,
        GVariant     *shared_objects,
        GVariant     *item,
        gpointer      user_data,
        GError      **error)
{
  Resolved *resolved = user_data;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", error);
  gint32 x = g_variant_get_int32 (item);

  if (exe == NULL)
    return NULL;

  return g_variant_new ("(issuuu)", x * x, marker, exe, wpool_worker_get_id (worker), (guint32)getpid (),
                        resolved->pid);
}

static GVariant *
shared (WpoolWorker  *worker,
        GVariant     *shared_objects,
        GVariant     *item,
        gpointer      user_data,
        GError      **error)
{
  Resolved *resolved = user_data;
  gboolean floating = shared_objects != NULL && g_variant_is_floating (shared_objects);

  /* Kept past the call, as a binding's task may keep what it is given. */
  if (shared_objects != NULL)
    {
      g_clear_pointer (&kept_shared_objects, g_variant_unref);
      kept_shared_objects = g_variant_ref (shared_objects);
    }

  return g_variant_new ("(bbmvmv)", resolved->floating, floating,
                        resolved->shared_objects, shared_objects);
}

static GVariant *
sleep_ms (WpoolWorker  *worker,
          GVariant     *shared_objects,
          GVariant     *item,
          gpointer      user_data,
          GError      **error)
{
  g_usleep (g_variant_get_uint32 (item) * G_TIME_SPAN_MILLISECOND);

  return g_variant_ref (item);
}

static GVariant *
die (WpoolWorker  *worker,
     GVariant     *shared_objects,
     GVariant     *item,
     gpointer      user_data,
     GError      **error)
{
  if (g_str_equal (g_variant_get_string (item, NULL), "kill"))
    raise (SIGKILL);

  return g_variant_ref (item);
}

static GVariant *
report (WpoolWorker  *worker,
        GVariant     *shared_objects,
        GVariant     *item,
        gpointer      user_data,
        GError      **error)
{
  /* As a binding that cannot set @error does. */
  if (g_variant_get_int32 (item) < 0)
    {
      wpool_worker_report_error (worker, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "a negative item");
      return NULL;
    }

  return g_variant_ref (item);
}

static GVariant *
init (WpoolWorker  *worker,
      GVariant     *shared_objects,
      GVariant     *item,
      gpointer      user_data,
      GError      **error)
{
  g_variant_dict_insert (wpool_worker_get_state (worker), "pid", "u", (guint32)getpid ());

  return g_variant_new ("()");
}

static GVariant *
state (WpoolWorker  *worker,
       GVariant     *shared_objects,
       GVariant     *item,
       gpointer      user_data,
       GError      **error)
{
  guint32 pid;

  if (!g_variant_dict_lookup (wpool_worker_get_state (worker), "pid", "u", &pid))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, "no worker-init ran");
      return NULL;
    }

  return g_variant_new ("(uu)", pid, (guint32)getpid ());
}

static WpoolTask *
resolve (const char  *module,
         const char  *name,
         GVariant    *shared_objects,
         gpointer     user_data,
         GError     **error)
{
  const struct { const char *name; WpoolTaskFunc func; } tasks[] = {
    { "whoami", whoami },
    { "shared", shared },
    { "sleep", sleep_ms },
    { "die", die },
    { "report", report },
    { "init", init },
    { "state", state },
  };
  Resolved *resolved;

  /* A C symbol, say: libwpool loads it. */
  if (!g_str_equal (module, MODULE))
    return NULL;

  if (g_str_equal (name, "bad"))
    return wpool_task_new_for_program ((const char *[]) { "elsewhere", NULL }, MODULE, name);

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      if (!g_str_equal (name, tasks[i].name))
        continue;

      /* Kept by the task, as a binding's resolver may keep it. */
      resolved = g_new0 (Resolved, 1);
      resolved->floating = shared_objects != NULL && g_variant_is_floating (shared_objects);
      resolved->shared_objects = shared_objects != NULL ? g_variant_ref (shared_objects) : NULL;
      resolved->pid = getpid ();

      return wpool_task_new (tasks[i].func, resolved, resolved_free);
    }

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no task “%s” in " MODULE, name);
  return NULL;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  WpoolServeFlags flags = WPOOL_SERVE_FLAGS_NONE;
  gboolean served;

  /* Its own options come first; wpool_worker_serve() ignores them. */
  for (int i = 1; i < argc; i++)
    {
      if (g_str_has_prefix (argv[i], "--marker="))
        marker = argv[i] + strlen ("--marker=");
      else if (g_str_equal (argv[i], "--no-fork"))
        flags |= WPOOL_SERVE_FLAGS_NO_FORK;
      else if (g_str_equal (argv[i], "--take-shared-objects"))
        flags |= WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS;
    }

  served = wpool_worker_serve ((const char * const *)argv, flags, resolve, NULL, &error);
  g_clear_pointer (&kept_shared_objects, g_variant_unref);
  if (served)
    return 0;

  fprintf (stderr, "%s: %s\n", argv[0], error->message);
  return g_error_matches (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT) ? 2 : 1;
}
