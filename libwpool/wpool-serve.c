/* wpool-serve.c: the loop of a worker process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wpool-process-private.h"
#include "wpool-protocol-private.h"
#include "wpool-results-private.h"
#include "wpool-serve-private.h"
#include "wpool-fork-server-private.h"
#include "wpool-lock-private.h"
#include "wpool-shared-array-private.h"
#include "wpool-shared-memory-private.h"
#include "wpool-task-private.h"
#include "wpool-variant-private.h"
#include "wpool-worker-private.h"

static gboolean write_error (int fd, guint32 index, const GError *task_error, GError **error);

/* The worker's transfer area, which the pool hands over before the first
 * chunk that uses it. */
typedef struct
{
  guint8 *data;
  gsize   size;
} Transfer;

/* Maps the area of TRANSFER frame @frame, passed as @passed_fd, in place
 * of any before. */
static gboolean
transfer_map (Transfer  *transfer,
              GVariant  *frame,
              int        passed_fd,
              GError   **error)
{
  guint64 size;
  struct stat st;
  gpointer data;

  g_variant_get (frame, "(t)", &size);
  if (transfer->data != NULL)
    munmap (transfer->data, transfer->size);
  transfer->data = NULL;
  transfer->size = 0;

  /* No bigger than the memfd really is: past its end is SIGBUS. */
  if (passed_fd < 0 || size == 0 || size > WPOOL_TRANSFER_MAX_SIZE ||
      fstat (passed_fd, &st) < 0 || (guint64)st.st_size < size ||
      (data = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, passed_fd, 0)) == MAP_FAILED)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad transfer area");
      return FALSE;
    }

  transfer->data = data;
  transfer->size = size;
  return TRUE;
}

/* A chunk of a chunk task: @n items at @items in, results out into
 * @results, or when it is NULL into a buffer sent along; no GVariant per
 * item. A failed chunk fails every item; under keep-going an ERROR for
 * each, then results of zeros. */
static gboolean
serve_chunk_task (WpoolWorker   *worker,
                  WpoolTask     *task,
                  int            fd,
                  WpoolRunning  *running,
                  guint32        first,
                  gconstpointer  items,
                  gsize          n,
                  guint8        *results,
                  guint32        flags,
                  GError       **error)
{
  g_autoptr(GVariantType) array_type = g_variant_type_new_array (wpool_task_get_result_type (task));
  g_autoptr(GError) task_error = NULL;
  g_autoptr(GArray) durations = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autofree guint8 *sent_results = NULL;
  gpointer data;
  gsize sent_size;
  gsize result_size = 0;
  gint64 started = g_get_monotonic_time ();

  wpool_variant_type_get_fixed_size (wpool_task_get_result_type (task), &result_size);
  if (results == NULL)
    results = sent_results = g_malloc0 (MAX (n * result_size, 1));

  wpool_running_set (running, (gint)first, started);

  if (n > 0 && !wpool_task_run_chunk (task, worker, items, first, n, results, &task_error))
    {
      gboolean sent = TRUE;

      if (!(flags & WPOOL_CHUNK_KEEP_GOING))
        {
          wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
          return write_error (fd, first, task_error, error);
        }

      for (gsize k = 0; k < n && sent; k++)
        sent = write_error (fd, first + k, task_error, error);
      memset (results, 0, n * result_size);
      if (!sent)
        return FALSE;
    }

  /* The chunk's time, shared out evenly, for insights. */
  if (flags & WPOOL_CHUNK_TIMED)
    for (gsize k = 0; k < n; k++)
      g_array_append_val (durations, (guint64){ (guint64)(g_get_monotonic_time () - started) / MAX (n, 1) });

  wpool_running_end_chunk (running, (gint)first);

  /* Results in the transfer area are not sent: an empty array says so. */
  sent_size = sent_results != NULL ? n * result_size : 0;
  data = g_steal_pointer (&sent_results);

  return wpool_frame_write (fd, WPOOL_FRAME_RESULTS,
                            g_variant_new ("(uv@at)", first,
                                           g_variant_new_from_data (array_type, data, sent_size, FALSE, g_free, data),
                                           g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, durations->data,
                                                                      durations->len, sizeof (guint64))),
                            error);
}

/* A chunk of a chunk task whose items are in the transfer area: checked
 * to fit, as the frame says how many there are. */
static gboolean
serve_transferred_chunk (WpoolWorker   *worker,
                         WpoolTask     *task,
                         int            fd,
                         WpoolRunning  *running,
                         const Transfer *transfer,
                         guint32        first,
                         gsize          n,
                         guint32        flags,
                         GError       **error)
{
  gsize item_size = 0;
  gsize result_size = 0;
  gsize results_offset;

  if (!wpool_task_is_chunk_task (task) ||
      !wpool_variant_type_get_fixed_size (wpool_task_get_item_type (task), &item_size) ||
      !wpool_variant_type_get_fixed_size (wpool_task_get_result_type (task), &result_size) ||
      n > transfer->size / item_size ||
      (results_offset = wpool_transfer_results_offset (n * item_size)) > transfer->size ||
      n > (transfer->size - results_offset) / result_size)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "A chunk does not fit the transfer area");
      return FALSE;
    }

  return serve_chunk_task (worker, task, fd, running, first, transfer->data, n,
                           transfer->data + results_offset, flags, error);
}

/* The result type @string of a frame declares into @type: %NULL for "",
 * else definite, as values are of it (found by fuzz-frames). */
static gboolean
parse_result_type (const char    *string,
                   GVariantType **type,
                   GError       **error)
{
  *type = NULL;

  if (*string == '\0')
    return TRUE;

  if (!g_variant_type_string_is_valid (string) || !g_variant_type_is_definite (G_VARIANT_TYPE (string)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad result type “%s”", string);
      return FALSE;
    }

  *type = g_variant_type_new (string);
  return TRUE;
}

/* Runs one chunk and answers with its results, or with the first error
 * (the rest of the chunk is dropped, as the pool stops the map). FALSE
 * when the pool can no longer be answered. */
static gboolean
serve_chunk (WpoolWorker    *worker,
             WpoolTask      *task,
             int             fd,
             WpoolRunning   *running,
             const Transfer *transfer,
             GVariant       *frame,
             GError        **error)
{
  g_autoptr(GVariantType) result_type = NULL;
  g_autoptr(GVariant) items = NULL;
  g_autoptr(GVariant) results = NULL;
  WpoolResults collected;
  const char *result_type_string;
  g_autoptr(GArray) durations = NULL;
  guint32 first;
  guint32 count;
  guint32 flags;
  gboolean keep_going;
  gboolean clocked;
  gsize n;

  g_variant_get (frame, "(uu&suv)", &first, &count, &result_type_string, &flags, &items);
  keep_going = (flags & WPOOL_CHUNK_KEEP_GOING) != 0;
  clocked = (flags & (WPOOL_CHUNK_TIMED | WPOOL_CHUNK_DEADLINE)) != 0;
  durations = g_array_new (FALSE, FALSE, sizeof (guint64));

  if (!parse_result_type (result_type_string, &result_type, error))
    return FALSE;

  if ((flags & WPOOL_CHUNK_TRANSFER) && g_variant_is_of_type (items, G_VARIANT_TYPE_ARRAY) &&
      g_variant_n_children (items) == 0)
    return serve_transferred_chunk (worker, task, fd, running, transfer, first, count, flags, error);

  if (!g_variant_is_of_type (items, G_VARIANT_TYPE_ARRAY) || (n = g_variant_n_children (items)) != count)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad chunk of items");
      return FALSE;
    }

  if (wpool_task_is_chunk_task (task))
    {
      g_autoptr(GVariantType) items_type = g_variant_type_new_array (wpool_task_get_item_type (task));
      gsize item_size = 0;
      gconstpointer data;

      /* Of another type, their data would be read as @n items of this
       * one: past the end of the frame, or from NULL when the sizes
       * differ (after a GLib critical). */
      if (!g_variant_is_of_type (items, items_type))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad chunk of items");
          return FALSE;
        }

      wpool_variant_type_get_fixed_size (wpool_task_get_item_type (task), &item_size);
      data = g_variant_get_fixed_array (items, &n, item_size);

      return serve_chunk_task (worker, task, fd, running, first, data, n, NULL, flags, error);
    }

  wpool_results_init (&collected, result_type, n);

  for (gsize k = 0; k < n; k++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (items, k);
      g_autoptr(GError) task_error = NULL;
      guint index = first + k;
      GVariant *result;

      gint64 started = clocked ? g_get_monotonic_time () : 0;

      /* Where the pool looks if this process dies now, or overstays. */
      wpool_running_set (running, (gint)index, started);

      result = wpool_task_invoke (task, worker, item, index, result_type, &task_error);

      if (flags & WPOOL_CHUNK_TIMED)
        g_array_append_val (durations, (guint64){ (guint64)(g_get_monotonic_time () - started) });

      if (result == NULL)
        {
          gboolean sent;

          if (!keep_going)
            wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
          sent = write_error (fd, index, task_error, error);

          if (!sent || !keep_going)
            {
              wpool_results_clear (&collected);
              return sent;
            }

          wpool_results_skip (&collected, k);
          continue;
        }

      wpool_results_take (&collected, k, result);
    }

  results = wpool_results_end (&collected);
  wpool_results_clear (&collected);

  /* Before the answer: the pool starts the next chunk's clock on idle. */
  wpool_running_end_chunk (running, (gint)first);

  return wpool_frame_write (fd, WPOOL_FRAME_RESULTS,
                            g_variant_new ("(uv@at)", first, results,
                                           g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, durations->data,
                                                                      durations->len, sizeof (guint64))),
                            error);
}

static gboolean
write_error (int            fd,
             guint32        index,
             const GError  *task_error,
             GError       **error)
{
  return wpool_frame_write (fd, WPOOL_FRAME_ERROR,
                            g_variant_new ("(usis)", index,
                                           g_quark_to_string (task_error->domain),
                                           task_error->code, task_error->message),
                            error);
}

/* Runs the worker-exit and answers with its result, of the type EXIT
 * @frame declares, or its error. */
static gboolean
serve_exit (WpoolWorker  *worker,
            int           fd,
            GVariant     *frame,
            GError      **error)
{
  g_autoptr(GVariantType) result_type = NULL;
  g_autoptr(GError) exit_error = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *result_type_string;

  g_variant_get (frame, "(&s)", &result_type_string);
  if (!parse_result_type (result_type_string, &result_type, error))
    return FALSE;

  if (!(result = wpool_worker_run_exit (worker, result_type, &exit_error)))
    return write_error (fd, G_MAXUINT32, exit_error, error);

  return wpool_frame_write (fd, WPOOL_FRAME_EXIT_RESULT, g_variant_new ("(v)", result), error);
}

/* Serves the pool on @fd until it closes: 0, or 1 on a broken socket or
 * protocol. Only computes and does I/O on @fd: fit for a forked child of
 * a threaded process, which must not start a thread or main loop. */
int
wpool_serve (WpoolWorker  *worker,
             WpoolTask    *task,
             int           fd,
             WpoolRunning *running)
{
  Transfer transfer = { NULL, 0 };
  int ret;

  /* The worker-init runs at once, as in MPIRE, timed by the pool. A
   * failed one fails every item the worker takes. */
  if (wpool_worker_has_init (worker))
    {
      wpool_running_set (running, WPOOL_RUNNING_INIT, g_get_monotonic_time ());
      wpool_worker_run_init (worker, NULL);
      wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
    }

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) frame = NULL;
      WpoolFrameKind kind = 0;
      int passed_fd = -1;
      gboolean served;

      if (!(frame = wpool_frame_read_fd (fd, &kind, &passed_fd, &error)))
        {
          if (passed_fd >= 0)
            close (passed_fd);
          ret = error != NULL ? 1 : 0;
          break;
        }

      if (kind == WPOOL_FRAME_RUN_CHUNK)
        served = serve_chunk (worker, task, fd, running, &transfer, frame, &error);
      else if (kind == WPOOL_FRAME_EXIT && wpool_worker_has_exit (worker))
        served = serve_exit (worker, fd, frame, &error);
      else if (kind == WPOOL_FRAME_TRANSFER)
        served = transfer_map (&transfer, frame, passed_fd, &error);
      else
        served = FALSE;

      /* Mapped, or not wanted. */
      if (passed_fd >= 0)
        close (passed_fd);

      if (!served)
        {
          ret = 1;
          break;
        }
    }

  if (transfer.data != NULL)
    munmap (transfer.data, transfer.size);

  return ret;
}

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

  if (!g_variant_type_is_tuple (type) || g_variant_type_n_items (type) == 0)
    return receive_one (fd, type, error);

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

/* The task at @module_path and @symbol: a chunk task if it has types. */
static WpoolTask *
load_task (const char  *module_path,
           const char  *symbol,
           const char  *item_type,
           const char  *result_type,
           GError     **error)
{
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

/* The task a fork server runs for a worker, loaded once per module,
 * symbol and types. */
static WpoolTask *
lookup_task (GHashTable  *tasks,
             const char  *module_path,
             const char  *symbol,
             const char  *item_type,
             const char  *result_type,
             GError     **error)
{
  g_autofree char *key = g_strjoin ("\n", module_path, symbol, item_type, result_type, NULL);
  WpoolTask *task;

  if ((task = g_hash_table_lookup (tasks, key)) == NULL &&
      (task = load_task (module_path, symbol, item_type, result_type, error)) != NULL)
    g_hash_table_insert (tasks, g_steal_pointer (&key), task);

  return task;
}

/* The task, worker-init and worker-exit at the modules and symbols of
 * @locations, as SETUP and FORK_WORKER say them; found in @cache, if given,
 * and kept there. An empty symbol is no task. */
static gboolean
load_tasks (GVariant    *locations,
            GHashTable  *cache,
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
      WpoolTask *found;

      g_variant_get_child (locations, i, "(&s&s&s&s)", &module_path, &symbol, &item_type, &result_type);
      if (*symbol == '\0' && i > 0)
        continue;

      if (cache != NULL)
        found = lookup_task (cache, module_path, symbol, item_type, result_type, error);
      else
        found = load_task (module_path, symbol, item_type, result_type, error);

      if (found == NULL)
        return FALSE;

      *tasks[i] = cache != NULL ? g_object_ref (found) : found;
    }

  return TRUE;
}

/* What a pool sends a spawned worker before the first chunk: its id, its
 * task, and the shared objects, once. The id indexes the progress page,
 * of @n_slots entries: it is checked before anything else is done. */
static gboolean
receive_setup (int            fd,
               gsize          n_slots,
               guint         *id,
               WpoolTask    **task,
               WpoolTask    **init,
               WpoolTask    **exit,
               GVariant     **shared_objects,
               GError       **error)
{
  g_autoptr(GVariant) setup = NULL;
  g_autoptr(GVariant) tasks = NULL;
  const char *shared_type;
  WpoolFrameKind kind = 0;

  if (!(setup = wpool_frame_read (fd, &kind, error)) || kind != WPOOL_FRAME_SETUP)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected the setup first");
      return FALSE;
    }

  g_variant_get (setup, "(u@a(ssss)&s)", id, &tasks, &shared_type);

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

  return load_tasks (tasks, NULL, task, init, exit, error);
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
  GHashTable   *tasks;
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

  if (id >= server->n_slots || !load_tasks (locations, server->tasks, &forked->task, &init, &exit, NULL))
    return FALSE;

  forked->worker = wpool_worker_new (id, server->shared_objects, NULL);
  wpool_worker_set_lifecycle (forked->worker, init, exit);
  forked->running = &server->progress[id];

  return TRUE;
}

static int
serve_forks (int           control_fd,
             GVariant     *shared_objects,
             WpoolRunning *progress,
             gsize         n_slots)
{
  g_autoptr(GHashTable) tasks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  ForkServer server = { tasks, shared_objects, progress, n_slots };

  /* Registered, so that no worker keeps it. */
  wpool_process_adopt_fd (control_fd);
  wpool_process_set_fresh_server ();

  return wpool_fork_server_serve (control_fd, prepare_served_worker, &server);
}

int
_wpool_worker_main (int    argc,
                    char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolTask) init = NULL;
  g_autoptr(WpoolTask) exit = NULL;
  g_autoptr(GVariant) shared_objects = NULL;
  struct stat st;
  const char *mode = "worker";
  int fd = -1;
  int progress_fd = -1;
  WpoolRunning *progress = NULL;
  gsize progress_size = 0;
  guint id = 0;
  gboolean server;
  pid_t parent = 0;
  int status;

  for (int i = 1; i < argc; i++)
    {
      if (g_str_has_prefix (argv[i], "--mode="))
        mode = argv[i] + strlen ("--mode=");
      else if (g_str_has_prefix (argv[i], "--socket-fd="))
        fd = atoi (argv[i] + strlen ("--socket-fd="));
      else if (g_str_has_prefix (argv[i], "--progress-fd="))
        progress_fd = atoi (argv[i] + strlen ("--progress-fd="));
      else if (g_str_has_prefix (argv[i], "--parent-pid="))
        parent = atoi (argv[i] + strlen ("--parent-pid="));
    }

  /* Nothing to do but for a pool, which hands over a socket. */
  server = g_str_equal (mode, "server");
  if ((!server && !g_str_equal (mode, "worker")) ||
      fd < 0 || progress_fd < 0 || fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode))
    {
      fprintf (stderr, "wpool-worker: libwpool starts this program for its SPAWN and FORKSERVER "
                       "pools; it does nothing on its own\n");
      return 2;
    }

  /* Neither a worker nor a fork server outlives its pool. */
  if (parent > 0)
    wpool_process_die_with_parent (parent);

  /* The mapping stays; the descriptor is of no more use. A worker's id
   * indexes the page (a fork server's is of no use; its requests' are). */
  progress = map_progress (progress_fd, &progress_size);
  close (progress_fd);

  if (progress == NULL ||
      !receive_setup (fd, server ? G_MAXSIZE : progress_size / sizeof (WpoolRunning),
                      &id, &task, &init, &exit, &shared_objects, &error))
    {
      wpool_frame_write (fd, WPOOL_FRAME_READY,
                         g_variant_new ("(s)", error ? error->message : "Cannot map the progress page"),
                         NULL);
      if (progress != NULL)
        munmap (progress, progress_size);
      return 1;
    }

  if (!wpool_frame_write (fd, WPOOL_FRAME_READY, g_variant_new ("(s)", ""), &error))
    {
      munmap (progress, progress_size);
      return 1;
    }

  if (server)
    {
      status = serve_forks (fd, shared_objects, progress, progress_size / sizeof (WpoolRunning));
    }
  else
    {
      g_autoptr(WpoolWorker) worker = wpool_worker_new (id, shared_objects, NULL);

      wpool_worker_set_lifecycle (worker, init, exit);
      status = wpool_serve (worker, task, fd, &progress[id]);
    }

  munmap (progress, progress_size);

  return status;
}
