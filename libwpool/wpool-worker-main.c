/* wpool-worker-main.c: how a program becomes a pool's worker process, or
 * its fork server: the SETUP handshake, the tasks it resolves, then
 * wpool_serve() or the fork server's loop. The wpool-worker helper is
 * this and nothing else; Python and GJS workers call it through
 * Wpool.Worker.serve().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wpool-error.h"
#include "wpool-fork-server-private.h"
#include "wpool-lock-private.h"
#include "wpool-mpi-module-private.h"
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-serve-private.h"
#include "wpool-shared-array-private.h"
#include "wpool-shared-memory-private.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

static GVariant *
receive_one (int                 fd,
             const GVariantType *type,
             GError            **error)
{
  g_autoptr(GBytes) data = NULL;
  WpoolFrameKind kind = 0;

  if (!(data = wpool_frame_read_data (fd, &kind, error)) || kind != WPOOL_FRAME_SHARED_OBJECTS)
    return NULL;

  /* This process's one copy: the frame's own buffer. */
  return g_variant_new_from_bytes (type, data, FALSE);
}

/* The shared objects, or the members of a tuple one by one, as
 * send_shared_objects() sent them. */
static GVariant *
receive_shared_objects (int                 fd,
                        const GVariantType *type,
                        GError            **error)
{
  g_autoptr(GPtrArray) members = NULL;

  /* Not floating: a binding's resolver or task would sink it as its own. */
  if (!g_variant_type_is_tuple (type) || g_variant_type_n_items (type) == 0)
    {
      GVariant *value = receive_one (fd, type, error);

      return value != NULL ? g_variant_ref_sink (value) : NULL;
    }

  members = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  for (const GVariantType *member = g_variant_type_first (type); member != NULL; member = g_variant_type_next (member))
    {
      GVariant *value = receive_one (fd, member, error);

      if (value == NULL)
        return NULL;
      g_ptr_array_add (members, g_variant_ref_sink (value));
    }

  return g_variant_ref_sink (g_variant_new_tuple ((GVariant **)members->pdata, members->len));
}

/* The shared arrays and locks among the shared objects, as memory the
 * pool passed along: made into objects of this process, with the same ids,
 * kept for its whole life. */
static gboolean
receive_shared_memory (int         fd,
                       GVariant   *shared_objects,
                       GError    **error)
{
  g_autoptr(GPtrArray) members = wpool_shared_objects_members (shared_objects);

  for (guint i = 0; i < members->len; i++)
    {
      g_autoptr(GVariant) frame = NULL;
      g_autoptr(WpoolSharedMemory) memory = NULL;
      WpoolFrameKind kind = 0;
      const char *kind_name;
      guint64 id;
      int memory_fd = -1;
      GObject *object;

      if (!wpool_shared_memory_parse_handle (members->pdata[i], &kind_name, &id))
        continue;

      if (!(frame = wpool_frame_read_fd (fd, &kind, &memory_fd, error)) || kind != WPOOL_FRAME_SHARED_MEMORY)
        {
          if (memory_fd >= 0)
            close (memory_fd);
          return FALSE;
        }

      /* Gone in the pool already: the task will be told so. */
      if (memory_fd < 0)
        continue;

      if (!(memory = wpool_shared_memory_new_for_fd (memory_fd, error)))
        return FALSE;

      if (wpool_shared_memory_get_kind (memory) == WPOOL_SHARED_MEMORY_LOCK)
        object = G_OBJECT (wpool_lock_new_for_memory (memory, TRUE));
      else if (!(object = G_OBJECT (wpool_shared_array_new_for_memory (memory, error))))
        return FALSE;

      wpool_shared_memory_take_object (object);
    }

  return TRUE;
}

/* How a worker program turns the locations a pool names into tasks. */
typedef struct
{
  WpoolTaskResolveFunc  resolve;
  gpointer              user_data;
  GVariant             *shared_objects;
  /* A fork server's, loaded once per location for all its workers. */
  GHashTable           *cache;
} Resolver;

/* The task at @module_path and @symbol: the program's own, if its
 * resolver knows it, else a C symbol; a chunk task if it has types. */
static WpoolTask *
load_task (Resolver    *resolver,
           const char  *module_path,
           const char  *symbol,
           const char  *item_type,
           const char  *result_type,
           GError     **error)
{
  GError *local_error = NULL;
  WpoolTask *task;

  if (*item_type == '\0' && resolver->resolve != NULL)
    {
      task = resolver->resolve (module_path, symbol, resolver->shared_objects, resolver->user_data,
                                &local_error);
      if (task != NULL || local_error != NULL)
        {
          if (local_error != NULL)
            {
              g_clear_object (&task);
              g_propagate_error (error, local_error);
            }
          else if (!WPOOL_IS_TASK (task) || wpool_task_get_program (task) != NULL ||
                   !wpool_task_check (task, NULL))
            {
              g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "The worker program's resolver gave no task it can run for “%s” of “%s”",
                           symbol, module_path);
              g_clear_object (&task);
            }
          return task;
        }
    }

  if (*item_type == '\0')
    return wpool_task_new_for_symbol (module_path, symbol, error);

  if (!g_variant_type_string_is_valid (item_type) || !g_variant_type_string_is_valid (result_type))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad chunk task types");
      return NULL;
    }

  return wpool_task_new_for_chunk_symbol (module_path, symbol, G_VARIANT_TYPE (item_type),
                                          G_VARIANT_TYPE (result_type), error);
}

/* The task, loaded once per module, symbol and types in a fork server,
 * each time otherwise: a new reference. */
static WpoolTask *
lookup_task (Resolver    *resolver,
             const char  *module_path,
             const char  *symbol,
             const char  *item_type,
             const char  *result_type,
             GError     **error)
{
  g_autofree char *key = NULL;
  WpoolTask *task;

  if (resolver->cache == NULL)
    return load_task (resolver, module_path, symbol, item_type, result_type, error);

  key = g_strjoin ("\n", module_path, symbol, item_type, result_type, NULL);
  if ((task = g_hash_table_lookup (resolver->cache, key)) == NULL)
    {
      if (!(task = load_task (resolver, module_path, symbol, item_type, result_type, error)))
        return NULL;
      g_hash_table_insert (resolver->cache, g_steal_pointer (&key), task);
    }

  return g_object_ref (task);
}

/* The task, worker-init and worker-exit at the modules and symbols of
 * @locations, as SETUP and FORK_WORKER say them. An empty symbol is no
 * task. */
static gboolean
load_tasks (Resolver    *resolver,
            GVariant    *locations,
            WpoolTask  **task,
            WpoolTask  **init,
            WpoolTask  **exit,
            GError     **error)
{
  WpoolTask **tasks[] = { task, init, exit };

  if (g_variant_n_children (locations) != G_N_ELEMENTS (tasks))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected three tasks");
      return FALSE;
    }

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      const char *module_path;
      const char *symbol;
      const char *item_type;
      const char *result_type;

      g_variant_get_child (locations, i, "(&s&s&s&s)", &module_path, &symbol, &item_type, &result_type);
      if (*symbol == '\0' && i > 0)
        continue;

      if (!(*tasks[i] = lookup_task (resolver, module_path, symbol, item_type, result_type, error)))
        return FALSE;
    }

  return TRUE;
}

/* The task, worker-init and worker-exit at @locations, for a worker
 * program that gets its setup another way (an MPI rank): with @resolve,
 * as wpool_worker_serve() does, and no cache. */
gboolean
wpool_worker_load_tasks (WpoolTaskResolveFunc   resolve,
                         gpointer               user_data,
                         GVariant              *shared_objects,
                         GVariant              *locations,
                         WpoolTask            **task,
                         WpoolTask            **init,
                         WpoolTask            **exit,
                         GError               **error)
{
  Resolver resolver = { resolve, user_data, shared_objects, NULL };

  return load_tasks (&resolver, locations, task, init, exit, error);
}

/* What a pool sends a worker program before the first chunk: its id, the
 * locations of its tasks, and the shared objects, once. The id indexes
 * the progress page, of @n_slots entries: it is checked before anything
 * else is read. */
static gboolean
receive_setup (int            fd,
               gsize          n_slots,
               guint         *id,
               GVariant     **tasks,
               GVariant     **shared_objects,
               GError       **error)
{
  g_autoptr(GVariant) setup = NULL;
  const char *shared_type;
  WpoolFrameKind kind = 0;

  if (!(setup = wpool_frame_read (fd, &kind, error)) || kind != WPOOL_FRAME_SETUP)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected the setup first");
      return FALSE;
    }

  g_variant_get (setup, "(u@a(ssss)&s)", id, tasks, &shared_type);

  if (*id >= n_slots)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Worker id %u is out of the pool's %" G_GSIZE_FORMAT " workers", *id, n_slots);
      return FALSE;
    }

  /* Definite, as a value's type must be: "*" is a valid type string. */
  if (*shared_type != '\0' &&
      (!g_variant_type_string_is_valid (shared_type) ||
       !g_variant_type_is_definite (G_VARIANT_TYPE (shared_type)) ||
       !(*shared_objects = receive_shared_objects (fd, G_VARIANT_TYPE (shared_type), error)) ||
       !receive_shared_memory (fd, *shared_objects, error)))
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected the shared objects");
      return FALSE;
    }

  return TRUE;
}

static WpoolRunning *
map_progress (int     fd,
              gsize  *size)
{
  struct stat st;
  WpoolRunning *progress;

  if (fstat (fd, &st) < 0 || st.st_size <= 0)
    return NULL;

  progress = mmap (NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (progress == MAP_FAILED)
    return NULL;

  *size = st.st_size;
  return progress;
}

/* What the fork server holds for the workers it forks. */
typedef struct
{
  Resolver     *resolver;
  GVariant     *shared_objects;
  WpoolRunning *progress;
  gsize         n_slots;
} ForkServer;

/* Worker @id of the fork server, a clean single-threaded process holding
 * the shared objects, whose workers share its one copy copy-on-write. */
static gboolean
prepare_served_worker (gpointer           data,
                       guint32            id,
                       GVariant          *locations,
                       WpoolForkedWorker *forked)
{
  ForkServer *server = data;
  g_autoptr(WpoolTask) init = NULL;
  g_autoptr(WpoolTask) exit = NULL;

  if (id >= server->n_slots || !load_tasks (server->resolver, locations, &forked->task, &init, &exit, NULL))
    return FALSE;

  forked->worker = wpool_worker_new (id, server->shared_objects, NULL);
  wpool_worker_set_lifecycle (forked->worker, init, exit);
  forked->running = &server->progress[id];

  return TRUE;
}

/* The options the pool appends to a worker program's command line. */
typedef struct
{
  const char *mode;
  int         fd;
  int         progress_fd;
  /* The pool's standard error, ours once we serve (until then ours is a
   * file the pool reads if we cannot start). */
  int         stderr_fd;
  pid_t       parent;
} Options;

static gboolean
parse_options (const char * const  *args,
               Options             *options,
               GError             **error)
{
  struct stat st;

  *options = (Options) { "worker", -1, -1, -1, 0 };

  /* The program's own arguments come first, and are not ours. */
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    {
      if (g_str_has_prefix (args[i], "--mode="))
        options->mode = args[i] + strlen ("--mode=");
      else if (g_str_has_prefix (args[i], "--socket-fd="))
        options->fd = atoi (args[i] + strlen ("--socket-fd="));
      else if (g_str_has_prefix (args[i], "--progress-fd="))
        options->progress_fd = atoi (args[i] + strlen ("--progress-fd="));
      else if (g_str_has_prefix (args[i], "--parent-pid="))
        options->parent = atoi (args[i] + strlen ("--parent-pid="));
      else if (g_str_has_prefix (args[i], "--stderr-fd="))
        options->stderr_fd = atoi (args[i] + strlen ("--stderr-fd="));
    }

  /* Nothing to do but for a pool, which hands over a socket. */
  if ((!g_str_equal (options->mode, "server") && !g_str_equal (options->mode, "worker")) ||
      options->fd < 0 || options->progress_fd < 0 || fstat (options->fd, &st) < 0 || !S_ISSOCK (st.st_mode))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                           "Not started by a pool: a SPAWN or FORKSERVER pool starts worker "
                           "programs, which do nothing on their own");
      return FALSE;
    }

  return TRUE;
}

/**
 * WpoolTaskResolveFunc:
 * @module: the module of the task the pool runs, as given to
 *   [ctor@Wpool.Task.new_for_program]
 * @name: the task's name in @module
 * @shared_objects: (nullable): the pool's shared objects, as the workers
 *   will see them
 * @user_data: (closure): the data given to [func@Wpool.Worker.serve]
 * @error: return location for a [type@GLib.Error]
 *
 * Turns what a pool names into the task a worker program runs: its task,
 * and its worker-init and worker-exit. A fork server resolves each once,
 * before it forks any worker, and its workers share what it prepared
 * (such as the shared objects made into the program's own values).
 *
 * Returns: (transfer full) (nullable): the task; %NULL with @error set if
 *   it cannot be found, which the pool reports; or %NULL alone to leave
 *   it to libwpool, which loads @name from the shared library @module as
 *   [ctor@Wpool.Task.new_for_symbol] does
 *
 * Since: 0.2
 */

/**
 * wpool_worker_serve:
 * @args: (array zero-terminated=1): the program's command line, or at least
 *   the options a pool appended to it
 * @flags: how the program can serve
 * @resolve: (scope call) (nullable): turns what the pool names into tasks;
 *   %NULL for C symbols only, as libwpool's `wpool-worker` helper does
 * @user_data: (closure resolve): data for @resolve
 * @error: return location for a [type@GLib.Error]
 *
 * Makes the calling program a worker process of the pool that started it
 * (see [ctor@Wpool.Task.new_for_program]), on the calling thread: it
 * reads its setup and shared objects, resolves its tasks, and runs the
 * chunks it is sent until the pool is done with it. A fork server
 * (%WPOOL_START_METHOD_FORKSERVER) forks every worker from here instead,
 * each of which serves and exits without returning.
 *
 * The tasks run on the calling thread, which makes this the way to run a
 * language's own functions in parallel where the language runs on one
 * thread (GJS) or one at a time (Python's GIL). A failure to start is
 * sent to the pool, which reports it to its caller.
 *
 * Under %WPOOL_START_METHOD_MPI the program serves over MPI: as a worker
 * that an MPI pool spawned, or, with %WPOOL_SERVE_FLAGS_MPI_RANKS, as any
 * rank but the first of a job that `mpirun -np N` started, whose first
 * rank runs the pools. Such a rank serves every MPI pool of the first
 * one, one after the other, until that rank finalizes MPI; this function
 * then finalizes MPI too, unless the program had started it. The first
 * rank gets %WPOOL_ERROR_INVALID_ARGUMENT, as any program that no pool
 * started, with MPI started (unless the program had), and goes on to run
 * its pools: call this first thing in main(). See the
 * [Running on several machines](several-machines.html) guide.
 *
 * Returns: %TRUE once the pool ended the worker; %FALSE with @error set:
 *   %WPOOL_ERROR_INVALID_ARGUMENT when the program was not started by a
 *   pool, %WPOOL_ERROR_FAILED when the pool could not be served,
 *   %WPOOL_ERROR_NOT_SUPPORTED for an MPI rank when libwpool was built
 *   without MPI
 *
 * Since: 0.2
 */
gboolean
wpool_worker_serve (const char * const    *args,
                    WpoolServeFlags        flags,
                    WpoolTaskResolveFunc   resolve,
                    gpointer               user_data,
                    GError               **error)
{
  g_autoptr(GError) setup_error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolTask) init = NULL;
  g_autoptr(WpoolTask) exit = NULL;
  g_autoptr(GVariant) shared_objects = NULL;
  g_autoptr(GVariant) locations = NULL;
  g_autoptr(GHashTable) cache = NULL;
  Resolver resolver = { resolve, user_data, NULL, NULL };
  Options options;
  WpoolRunning *progress = NULL;
  gsize progress_size = 0;
  guint id = 0;
  gboolean server;
  gboolean mpi_spawned;
  int status;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* An MPI rank serves over MPI, through the module that links it. */
  if (wpool_mpi_serves (args, flags, &mpi_spawned))
    {
      const WpoolMpiModule *mpi = wpool_mpi_module_load (error);

      return mpi != NULL && mpi->serve (mpi_spawned, resolve, user_data, error);
    }

  if (!parse_options (args, &options, error))
    return FALSE;

  /* The program started: what it says from now on goes to the pool's
   * standard error as it says it. */
  if (options.stderr_fd > STDERR_FILENO)
    {
      fflush (stderr);
      dup2 (options.stderr_fd, STDERR_FILENO);
      close (options.stderr_fd);
    }

  /* Neither a worker nor a fork server outlives its pool. */
  if (options.parent > 0)
    wpool_process_die_with_parent (options.parent);

  server = g_str_equal (options.mode, "server");
  if (server)
    resolver.cache = cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);

  /* The mapping stays; the descriptor is of no more use. A worker's id
   * indexes the page (a fork server's is of no use; its requests' are). */
  progress = map_progress (options.progress_fd, &progress_size);
  close (options.progress_fd);

  if (progress == NULL)
    g_set_error_literal (&setup_error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Cannot map the progress page");
  else if (server && (flags & WPOOL_SERVE_FLAGS_NO_FORK))
    g_set_error (&setup_error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                 "This worker program (%s) cannot fork its workers: use SPAWN",
                 args != NULL && args[0] != NULL ? args[0] : "?");

  /* Read whole even when refused: the pool reads the answer only once it
   * wrote all of it, and would otherwise find the socket closed. The
   * resolver sees the shared objects before any task runs: a fork
   * server's preparation of them is shared by all its workers. */
  if (receive_setup (options.fd, server || progress == NULL ? G_MAXSIZE : progress_size / sizeof (WpoolRunning),
                     &id, &locations, &shared_objects, setup_error != NULL ? NULL : &setup_error) &&
      setup_error == NULL)
    {
      resolver.shared_objects = shared_objects;
      load_tasks (&resolver, locations, &task, &init, &exit, &setup_error);
    }

  if (setup_error != NULL)
    {
      wpool_frame_write (options.fd, WPOOL_FRAME_READY, g_variant_new ("(s)", setup_error->message), NULL);
      if (progress != NULL)
        munmap (progress, progress_size);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot serve the pool: %s", setup_error->message);
      return FALSE;
    }

  /* The program made them values of its own, and keeps what it needs:
   * holding them as received too would make two copies in this process
   * (and in a fork server, whose workers would share both). */
  if (flags & WPOOL_SERVE_FLAGS_TAKE_SHARED_OBJECTS)
    {
      g_clear_pointer (&shared_objects, g_variant_unref);
      resolver.shared_objects = NULL;
    }

  if (!wpool_frame_write (options.fd, WPOOL_FRAME_READY, g_variant_new ("(s)", ""), error))
    {
      munmap (progress, progress_size);
      return FALSE;
    }

  if (server)
    {
      ForkServer fork_server = { &resolver, shared_objects, progress, progress_size / sizeof (WpoolRunning) };

      /* Registered, so that no worker keeps it. */
      wpool_process_adopt_fd (options.fd);
      wpool_process_set_fresh_server ();
      status = wpool_fork_server_serve (options.fd, prepare_served_worker, &fork_server);
    }
  else
    {
      g_autoptr(WpoolWorker) worker = wpool_worker_new (id, shared_objects, NULL);

      wpool_worker_set_lifecycle (worker, init, exit);
      status = wpool_serve (worker, task, options.fd, &progress[id]);
    }

  munmap (progress, progress_size);

  if (status != 0)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "The connection to the pool broke, or the pool spoke out of turn");
      return FALSE;
    }

  return TRUE;
}
