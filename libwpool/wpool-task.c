/* wpool-task.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <dlfcn.h>
#include <gmodule.h>
#include <sys/stat.h>

#include "wpool-error.h"
#include "wpool-task-private.h"
#include "wpool-variant-private.h"
#include "wpool-worker-private.h"

/**
 * WpoolTask:
 *
 * What the workers of a [class@Wpool.Pool] run: a [callback@Wpool.TaskFunc]
 * with its user data, or an exported symbol of a shared library.
 *
 * A task made with [ctor@Wpool.Task.new] can be any function, a PyGObject
 * callable included. A task made with [ctor@Wpool.Task.new_for_symbol]
 * names a symbol that a new process can load again, which is how GJS
 * programs run C tasks (a JavaScript function cannot run on a worker
 * thread) and how process workers that do not share the caller's memory
 * find their task.
 *
 * A task may declare the [struct@GLib.VariantType] of its results with
 * [method@Wpool.Task.set_result_type]; a map then returns an array of that
 * type (`a<T>`) and fails with %WPOOL_ERROR_INVALID_RESULT on the first
 * result of another type. Without it a map returns `av`.
 *
 * The user data's destroy notify runs when the task is finalized, on the
 * thread that drops the last reference: the pool never drops it on a
 * worker thread.
 *
 * Since: 0.1
 */

struct _WpoolTask
{
  GObject         parent_instance;

  WpoolTaskFunc   func;
  gpointer        user_data;
  GDestroyNotify  destroy;

  GModule        *module;
  char           *module_path;
  char           *symbol;

  /* Where dladdr() found the function of a task made with
   * wpool_task_new(), once asked. */
  char           *located_module_path;
  char           *located_symbol;

  GVariantType   *result_type;

  /* A chunk task's function and the type of its items; its results'
   * is @result_type. Both are of a fixed size. */
  WpoolChunkFunc  chunk_func;
  GVariantType   *item_type;

  /* A program task's command line: @module_path and @symbol then name
   * what that program resolves, not a shared library's symbol. */
  char          **program;
};

enum {
  PROP_0,
  PROP_MODULE_PATH,
  PROP_SYMBOL,
  PROP_RESULT_TYPE,
  PROP_PROGRAM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (WpoolTask, wpool_task, G_TYPE_OBJECT)

static void
wpool_task_finalize (GObject *object)
{
  WpoolTask *self = (WpoolTask *)object;

  if (self->destroy != NULL)
    g_clear_pointer (&self->user_data, self->destroy);

  g_clear_pointer (&self->module, g_module_close);
  g_clear_pointer (&self->module_path, g_free);
  g_clear_pointer (&self->symbol, g_free);
  g_clear_pointer (&self->located_module_path, g_free);
  g_clear_pointer (&self->located_symbol, g_free);
  g_clear_pointer (&self->result_type, g_variant_type_free);
  g_clear_pointer (&self->item_type, g_variant_type_free);
  g_clear_pointer (&self->program, g_strfreev);

  G_OBJECT_CLASS (wpool_task_parent_class)->finalize (object);
}

static void
wpool_task_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  WpoolTask *self = WPOOL_TASK (object);

  switch (prop_id)
    {
    case PROP_MODULE_PATH:
      g_value_set_string (value, self->module_path);
      break;

    case PROP_SYMBOL:
      g_value_set_string (value, self->symbol);
      break;

    case PROP_RESULT_TYPE:
      g_value_set_boxed (value, self->result_type);
      break;

    case PROP_PROGRAM:
      g_value_set_boxed (value, self->program);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
wpool_task_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  WpoolTask *self = WPOOL_TASK (object);

  switch (prop_id)
    {
    case PROP_RESULT_TYPE:
      wpool_task_set_result_type (self, g_value_get_boxed (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
wpool_task_class_init (WpoolTaskClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = wpool_task_finalize;
  object_class->get_property = wpool_task_get_property;
  object_class->set_property = wpool_task_set_property;

  /**
   * WpoolTask:module-path:
   *
   * The shared library the task's symbol was loaded from, for tasks made
   * with [ctor@Wpool.Task.new_for_symbol]; the module the worker program
   * resolves, for tasks made with [ctor@Wpool.Task.new_for_program];
   * %NULL for the main program or for a task made with
   * [ctor@Wpool.Task.new].
   *
   * Since: 0.1
   */
  properties[PROP_MODULE_PATH] =
    g_param_spec_string ("module-path", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolTask:symbol:
   *
   * The symbol the task runs, for tasks made with
   * [ctor@Wpool.Task.new_for_symbol]; the name the worker program
   * resolves, for tasks made with [ctor@Wpool.Task.new_for_program];
   * else %NULL.
   *
   * Since: 0.1
   */
  properties[PROP_SYMBOL] =
    g_param_spec_string ("symbol", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolTask:result-type:
   *
   * The definite [struct@GLib.VariantType] of every result, or %NULL when
   * results may be of any type (a map then returns `av`).
   *
   * Since: 0.1
   */
  properties[PROP_RESULT_TYPE] =
    g_param_spec_boxed ("result-type", NULL, NULL,
                        G_TYPE_VARIANT_TYPE,
                        (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolTask:program:
   *
   * The command line of the worker program that runs the task, for tasks
   * made with [ctor@Wpool.Task.new_for_program], else %NULL.
   *
   * Since: 0.2
   */
  properties[PROP_PROGRAM] =
    g_param_spec_boxed ("program", NULL, NULL,
                        G_TYPE_STRV,
                        (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
wpool_task_init (WpoolTask *self)
{
}

/**
 * wpool_task_new:
 * @func: (scope notified) (closure user_data) (destroy destroy): the function
 *   to run on every item
 * @user_data: data passed to @func
 * @destroy: (nullable): called on @user_data when the task is finalized
 *
 * Creates a task that runs @func.
 *
 * Returns: (transfer full): a new [class@Wpool.Task]
 *
 * Since: 0.1
 */
WpoolTask *
wpool_task_new (WpoolTaskFunc  func,
                gpointer       user_data,
                GDestroyNotify destroy)
{
  WpoolTask *self;

  g_return_val_if_fail (func != NULL, NULL);

  self = g_object_new (WPOOL_TYPE_TASK, NULL);
  self->func = func;
  self->user_data = user_data;
  self->destroy = destroy;

  return self;
}

/**
 * wpool_task_new_for_chunks: (skip)
 * @item_type: the items' type, of a fixed size
 * @result_type: the results' type, of a fixed size
 * @func: the function run on each chunk
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data with the task
 *
 * Creates a chunk task: @func runs a whole chunk of items at once, reading
 * them and writing their results as plain arrays, with no
 * [struct@GLib.Variant] per item. This is the fast path for many small
 * items, such as numbers: the map's items must be an array of @item_type,
 * and its results are an array of @result_type. A failed chunk fails all
 * its items.
 *
 * Under %WPOOL_START_METHOD_SPAWN and %WPOOL_START_METHOD_FORKSERVER the
 * function must be an exported symbol of a shared library, with no user
 * data, as for [ctor@Wpool.Task.new]; or use
 * [ctor@Wpool.Task.new_for_chunk_symbol].
 *
 * Returns: (transfer full): a new [class@Wpool.Task]
 */
WpoolTask *
wpool_task_new_for_chunks (const GVariantType *item_type,
                           const GVariantType *result_type,
                           WpoolChunkFunc      func,
                           gpointer            user_data,
                           GDestroyNotify      destroy)
{
  WpoolTask *self;
  gsize item_size;
  gsize result_size;

  g_return_val_if_fail (item_type != NULL && wpool_variant_type_get_fixed_size (item_type, &item_size), NULL);
  g_return_val_if_fail (result_type != NULL && wpool_variant_type_get_fixed_size (result_type, &result_size), NULL);
  g_return_val_if_fail (func != NULL, NULL);

  self = g_object_new (WPOOL_TYPE_TASK, NULL);
  self->chunk_func = func;
  self->user_data = user_data;
  self->destroy = destroy;
  self->item_type = g_variant_type_copy (item_type);
  self->result_type = g_variant_type_copy (result_type);

  return self;
}

/**
 * wpool_task_get_item_type:
 * @self: a [class@Wpool.Task]
 *
 * Gets the items' type of a chunk task.
 *
 * Returns: (nullable): the item type, or %NULL for a task of single items
 *
 * Since: 0.1
 */
const GVariantType *
wpool_task_get_item_type (WpoolTask *self)
{
  g_return_val_if_fail (WPOOL_IS_TASK (self), NULL);

  return self->item_type;
}

gboolean
wpool_task_is_chunk_task (WpoolTask *self)
{
  return self->chunk_func != NULL;
}

/* Runs a chunk task on @n_items items laid out at @items, into @results
 * (through wpool_worker_run_chunk(), which runs the worker's init first
 * and names the items and the worker in the error). */
gboolean
wpool_task_run_chunk (WpoolTask     *self,
                      WpoolWorker   *worker,
                      gconstpointer  items,
                      gsize          n_items,
                      gpointer       results,
                      GError       **error)
{
  GError *local_error = NULL;
  gboolean ok;

  ok = self->chunk_func (worker, wpool_worker_get_shared_objects (worker), items, n_items,
                         results, self->user_data, &local_error);
  wpool_worker_take_reported_error (worker, &local_error);

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }

  if (!ok)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "The chunk task failed without setting an error");
      return FALSE;
    }

  return TRUE;
}

/**
 * wpool_task_new_for_symbol:
 * @module_path: (type filename) (nullable): the shared library that exports
 *   @symbol, or %NULL for the main program (linked with `-rdynamic`)
 * @symbol: the name of an exported [callback@Wpool.TaskFunc]
 * @error: return location for a [type@GLib.Error]
 *
 * Creates a task that runs the [callback@Wpool.TaskFunc] exported as
 * @symbol by @module_path, loaded with GModule and kept loaded as long as
 * the task. The function gets %NULL as its user data.
 *
 * This is how a GJS program runs a C task on worker threads.
 *
 * Returns: (transfer full): a new [class@Wpool.Task], or %NULL with @error
 *   set to %WPOOL_ERROR_INVALID_ARGUMENT when the module or the symbol
 *   cannot be found
 *
 * Since: 0.1
 */
/* Loads @symbol of @module_path for a task. */
static gpointer
load_symbol (const char  *module_path,
             const char  *symbol,
             GModule    **module_out,
             GError     **error)
{
  GModule *module;
  gpointer func = NULL;

  if (!(module = g_module_open (module_path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Cannot load the task module “%s”: %s",
                   module_path ? module_path : "(main program)",
                   g_module_error ());
      return NULL;
    }

  if (!g_module_symbol (module, symbol, &func) || func == NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "The task module “%s” does not export “%s”",
                   module_path ? module_path : "(main program)",
                   symbol);
      g_module_close (module);
      return NULL;
    }

  *module_out = module;
  return func;
}

WpoolTask *
wpool_task_new_for_symbol (const char  *module_path,
                           const char  *symbol,
                           GError     **error)
{
  WpoolTask *self;
  GModule *module = NULL;
  gpointer func;

  g_return_val_if_fail (symbol != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(func = load_symbol (module_path, symbol, &module, error)))
    return NULL;

  self = g_object_new (WPOOL_TYPE_TASK, NULL);
  self->func = (WpoolTaskFunc) func;
  self->module = module;
  self->module_path = g_strdup (module_path);
  self->symbol = g_strdup (symbol);

  return self;
}

/**
 * wpool_task_new_for_chunk_symbol:
 * @module_path: (type filename) (nullable): the shared library that exports
 *   @symbol, or %NULL for the main program (linked with `-rdynamic`)
 * @symbol: the name of an exported [callback@Wpool.ChunkFunc]
 * @item_type: the items' type, of a fixed size
 * @result_type: the results' type, of a fixed size
 * @error: return location for a [type@GLib.Error]
 *
 * Creates a chunk task, as [ctor@Wpool.Task.new_for_chunks] does, that runs
 * the [callback@Wpool.ChunkFunc] exported as @symbol by @module_path: how a
 * GJS or Python program, or a SPAWN or FORKSERVER pool, runs a chunk task.
 *
 * Returns: (transfer full): a new [class@Wpool.Task], or %NULL with @error
 *   set to %WPOOL_ERROR_INVALID_ARGUMENT when the module or the symbol
 *   cannot be found, or a type is not of a fixed size
 *
 * Since: 0.1
 */
WpoolTask *
wpool_task_new_for_chunk_symbol (const char          *module_path,
                                 const char          *symbol,
                                 const GVariantType  *item_type,
                                 const GVariantType  *result_type,
                                 GError             **error)
{
  WpoolTask *self;
  GModule *module = NULL;
  gpointer func;
  gsize size;

  g_return_val_if_fail (symbol != NULL, NULL);
  g_return_val_if_fail (item_type != NULL && result_type != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!wpool_variant_type_get_fixed_size (item_type, &size) ||
      !wpool_variant_type_get_fixed_size (result_type, &size))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "A chunk task's item type (“%.*s”) and result type (“%.*s”) must be of a fixed size",
                   (int)g_variant_type_get_string_length (item_type), g_variant_type_peek_string (item_type),
                   (int)g_variant_type_get_string_length (result_type), g_variant_type_peek_string (result_type));
      return NULL;
    }

  if (!(func = load_symbol (module_path, symbol, &module, error)))
    return NULL;

  self = wpool_task_new_for_chunks (item_type, result_type, (WpoolChunkFunc) func, NULL, NULL);
  self->module = module;
  self->module_path = g_strdup (module_path);
  self->symbol = g_strdup (symbol);

  return self;
}

/**
 * wpool_task_new_for_program:
 * @argv: (array zero-terminated=1) (element-type filename): the command line
 *   of the worker program, searched for in `PATH` as GSubprocess does
 * @module: what the program loads the task from: a Python module, a
 *   JavaScript module's URL, …
 * @name: the task's name in @module
 *
 * Creates a task that runs in a worker program of its own rather than in
 * libwpool's `wpool-worker` helper: how a language runtime, such as
 * Python or GJS, runs its own functions in worker processes.
 *
 * A %WPOOL_START_METHOD_SPAWN pool starts @argv, with options of the
 * pool's own appended, for each worker; a %WPOOL_START_METHOD_FORKSERVER
 * pool starts it once as its fork server, which forks the workers. The
 * program hands its whole command line to [func@Wpool.Worker.serve],
 * whose resolver turns @module and @name into the task it runs. Timeouts,
 * progress, cancellation, worker death, worker-init and worker-exit,
 * lifespans and insights then work as for a C task.
 *
 * The pool's worker-init and worker-exit must then be tasks of the same
 * program, or C symbols (which the program's resolver may leave to
 * libwpool). %WPOOL_START_METHOD_FORK and %WPOOL_START_METHOD_THREADING
 * refuse the task with %WPOOL_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a new [class@Wpool.Task]
 *
 * Since: 0.2
 */
WpoolTask *
wpool_task_new_for_program (const char * const *argv,
                            const char         *module,
                            const char         *name)
{
  WpoolTask *self;

  g_return_val_if_fail (argv != NULL && argv[0] != NULL && *argv[0] != '\0', NULL);
  g_return_val_if_fail (module != NULL && *module != '\0', NULL);
  g_return_val_if_fail (name != NULL && *name != '\0', NULL);

  self = g_object_new (WPOOL_TYPE_TASK, NULL);
  self->program = g_strdupv ((char **)argv);
  self->module_path = g_strdup (module);
  self->symbol = g_strdup (name);

  return self;
}

/**
 * wpool_task_get_program:
 * @self: a [class@Wpool.Task]
 *
 * Gets the command line of the worker program that runs the task.
 *
 * Returns: (array zero-terminated=1) (nullable) (transfer none): the
 *   program's command line, or %NULL for a task that runs in the
 *   caller's process or in libwpool's helper
 *
 * Since: 0.2
 */
const char * const *
wpool_task_get_program (WpoolTask *self)
{
  g_return_val_if_fail (WPOOL_IS_TASK (self), NULL);

  return (const char * const *)self->program;
}

/* Whether @self runs in @program: both NULL (libwpool's helper, or the
 * caller), or one command line. */
gboolean
wpool_task_runs_program (WpoolTask          *self,
                         const char * const *program)
{
  if (self->program == NULL || program == NULL)
    return self->program == NULL && program == NULL;

  return g_strv_equal ((const char * const *)self->program, program);
}

/**
 * wpool_task_get_module_path:
 * @self: a [class@Wpool.Task]
 *
 * Gets the shared library the task's symbol comes from.
 *
 * Returns: (type filename) (nullable): the module path, or %NULL
 *
 * Since: 0.1
 */
const char *
wpool_task_get_module_path (WpoolTask *self)
{
  g_return_val_if_fail (WPOOL_IS_TASK (self), NULL);

  return self->module_path;
}

/**
 * wpool_task_get_symbol:
 * @self: a [class@Wpool.Task]
 *
 * Gets the symbol the task runs.
 *
 * Returns: (nullable): the symbol, or %NULL for a task made with
 *   [ctor@Wpool.Task.new]
 *
 * Since: 0.1
 */
const char *
wpool_task_get_symbol (WpoolTask *self)
{
  g_return_val_if_fail (WPOOL_IS_TASK (self), NULL);

  return self->symbol;
}

/**
 * wpool_task_get_result_type:
 * @self: a [class@Wpool.Task]
 *
 * Gets the declared type of the task's results.
 *
 * Returns: (transfer none) (nullable): the result type, or %NULL
 *
 * Since: 0.1
 */
const GVariantType *
wpool_task_get_result_type (WpoolTask *self)
{
  g_return_val_if_fail (WPOOL_IS_TASK (self), NULL);

  return self->result_type;
}

/**
 * wpool_task_set_result_type:
 * @self: a [class@Wpool.Task]
 * @result_type: (nullable): a definite [struct@GLib.VariantType], or %NULL
 *
 * Declares the type of every result of the task. A map then returns an
 * array of @result_type instead of `av`, and fails with
 * %WPOOL_ERROR_INVALID_RESULT when an item's result has another type.
 *
 * A map uses the type the task had when the map started.
 *
 * Since: 0.1
 */
void
wpool_task_set_result_type (WpoolTask          *self,
                            const GVariantType *result_type)
{
  g_return_if_fail (WPOOL_IS_TASK (self));
  g_return_if_fail (result_type == NULL || g_variant_type_is_definite (result_type));
  /* A chunk task's results are laid out as its type says. */
  g_return_if_fail (self->chunk_func == NULL);

  if (self->result_type == result_type ||
      (self->result_type != NULL && result_type != NULL &&
       g_variant_type_equal (self->result_type, result_type)))
    return;

  g_clear_pointer (&self->result_type, g_variant_type_free);
  if (result_type != NULL)
    self->result_type = g_variant_type_copy (result_type);

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESULT_TYPE]);
}

/* A GJS closure is a libffi trampoline, which lives outside every loaded
 * object, in a process that has libgjs loaded. Compiled C functions always
 * resolve with dladdr(). GJS blocks such a closure on any thread but its
 * own and leaves the return value unset, so the pool must refuse it there
 * rather than read garbage. */
gboolean
wpool_task_is_javascript_func (WpoolTask *self)
{
  Dl_info info;

  g_assert (WPOOL_IS_TASK (self));

  if (self->func == NULL || self->module != NULL)
    return FALSE;

  if (dladdr ((gpointer) self->func, &info) != 0)
    return FALSE;

  return dlsym (RTLD_DEFAULT, "gjs_context_get_current") != NULL;
}

static gboolean
is_main_program (const char *path)
{
  struct stat program;
  struct stat object;

  return stat ("/proc/self/exe", &program) == 0 && stat (path, &object) == 0 &&
         program.st_dev == object.st_dev && program.st_ino == object.st_ino;
}

/* Where a new process finds the task: the shared library and the symbol
 * of a task made with wpool_task_new_for_symbol(), or those dladdr() gives
 * for the function of one made with wpool_task_new(). */
gboolean
wpool_task_locate (WpoolTask   *self,
                   const char **module_path,
                   const char **symbol,
                   GError     **error)
{
  Dl_info info;

  g_assert (WPOOL_IS_TASK (self));

  if (self->symbol != NULL && self->module_path != NULL)
    {
      *module_path = self->module_path;
      *symbol = self->symbol;
      return TRUE;
    }

  if (self->symbol != NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                   "The task “%s” comes from the main program, which a new process cannot "
                   "load: export it from a shared library and name that library in "
                   "wpool_task_new_for_symbol(), or use WPOOL_START_METHOD_FORK",
                   self->symbol);
      return FALSE;
    }

  if (self->located_symbol == NULL)
    {
      gpointer func = self->chunk_func ? (gpointer)self->chunk_func : (gpointer)self->func;

      if (dladdr (func, &info) == 0 || info.dli_sname == NULL ||
          info.dli_saddr != func || info.dli_fname == NULL ||
          is_main_program (info.dli_fname))
        {
          g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                               "A new process cannot find the task's function: it is not an "
                               "exported symbol of a shared library (a Python or JavaScript "
                               "function never is). Create the task with "
                               "wpool_task_new_for_symbol(), or use WPOOL_START_METHOD_FORK "
                               "or WPOOL_START_METHOD_THREADING. A Python or JavaScript "
                               "function runs in worker programs of its language: "
                               "Wpool.Task.new_for_python() (a module-level function) or "
                               "Wpool.Task.newForModule() (an ES module's export, wpool.js)");
          return FALSE;
        }

      if (self->user_data != NULL)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                       "The user data of the task “%s” points into this process, which a new "
                       "process cannot see: give the task what it needs as shared objects, "
                       "or use WPOOL_START_METHOD_FORK",
                       info.dli_sname);
          return FALSE;
        }

      self->located_module_path = g_strdup (info.dli_fname);
      self->located_symbol = g_strdup (info.dli_sname);
    }

  *module_path = self->located_module_path;
  *symbol = self->located_symbol;
  return TRUE;
}

/* The checks every start method makes before it hands a task out. */
gboolean
wpool_task_check (WpoolTask  *self,
                  GError    **error)
{
  g_assert (WPOOL_IS_TASK (self));

  if (self->func == NULL && self->chunk_func == NULL && self->program == NULL)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                           "The task has no function: create it with "
                           "wpool_task_new() or wpool_task_new_for_symbol()");
      return FALSE;
    }

  return TRUE;
}

/* Runs the task on @item, in the worker's thread or process, and checks
 * the result against @result_type: a full result or an error, whoever
 * set it. */
GVariant *
wpool_task_call (WpoolTask           *self,
                 WpoolWorker         *worker,
                 GVariant            *item,
                 const GVariantType  *result_type,
                 GError             **error)
{
  GError *local_error = NULL;
  GVariant *result;

  result = self->func (worker,
                       wpool_worker_get_shared_objects (worker),
                       item,
                       self->user_data,
                       &local_error);

  if (result != NULL)
    result = g_variant_take_ref (result);

  wpool_worker_take_reported_error (worker, &local_error);

  if (local_error != NULL)
    {
      g_clear_pointer (&result, g_variant_unref);
    }
  else if (result == NULL)
    {
      g_set_error_literal (&local_error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                           "The task returned NULL without setting an error");
    }
  else if (result_type != NULL && !g_variant_is_of_type (result, result_type))
    {
      g_autofree char *declared = g_variant_type_dup_string (result_type);

      g_set_error (&local_error, WPOOL_ERROR, WPOOL_ERROR_INVALID_RESULT,
                   "The task returned a result of type “%s”, but declares “%s”",
                   g_variant_get_type_string (result), declared);
      g_clear_pointer (&result, g_variant_unref);
    }

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return NULL;
    }

  return result;
}
