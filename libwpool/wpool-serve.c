/* wpool-serve.c: the loop of a worker process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wpool-protocol-private.h"
#include "wpool-results-private.h"
#include "wpool-serve-private.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

/* Runs one chunk and answers with its results, or with the first error
 * (the rest of the chunk is dropped, as the pool stops the map). FALSE
 * when the pool can no longer be answered. */
static gboolean
serve_chunk (WpoolWorker  *worker,
             WpoolTask    *task,
             int           fd,
             gint         *progress,
             GVariant     *frame,
             GError      **error)
{
  g_autoptr(GVariantType) result_type = NULL;
  g_autoptr(GVariant) items = NULL;
  g_autoptr(GVariant) results = NULL;
  WpoolResults collected;
  const char *result_type_string;
  guint32 first;
  guint32 count;
  gsize n;

  g_variant_get (frame, "(uu&sv)", &first, &count, &result_type_string, &items);

  if (*result_type_string != '\0')
    {
      if (!g_variant_type_string_is_valid (result_type_string))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "Bad result type “%s”", result_type_string);
          return FALSE;
        }
      result_type = g_variant_type_new (result_type_string);
    }

  if (!g_variant_is_of_type (items, G_VARIANT_TYPE_ARRAY) || (n = g_variant_n_children (items)) != count)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Bad chunk of items");
      return FALSE;
    }

  wpool_results_init (&collected, result_type, n);

  for (gsize k = 0; k < n; k++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (items, k);
      g_autoptr(GError) task_error = NULL;
      guint index = first + k;
      GVariant *result;

      /* Where the pool looks if this process dies now. */
      g_atomic_int_set (progress, (gint)index);

      if (!(result = wpool_task_invoke (task, worker, item, index, result_type, &task_error)))
        {
          wpool_results_clear (&collected);
          return wpool_frame_write (fd, WPOOL_FRAME_ERROR,
                                    g_variant_new ("(usis)", index,
                                                   g_quark_to_string (task_error->domain),
                                                   task_error->code, task_error->message),
                                    error);
        }

      wpool_results_take (&collected, k, result);
    }

  results = wpool_results_end (&collected);
  wpool_results_clear (&collected);

  return wpool_frame_write (fd, WPOOL_FRAME_RESULTS, g_variant_new ("(uv)", first, results), error);
}

/* Serves the pool on @fd until it closes: 0, or 1 on a broken socket or
 * protocol. Only computes and does I/O on @fd: fit for a forked child of
 * a threaded process, which must not start a thread or main loop. */
int
wpool_serve (WpoolWorker *worker,
             WpoolTask   *task,
             int          fd,
             gint        *progress)
{
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) frame = NULL;
      WpoolFrameKind kind = 0;

      if (!(frame = wpool_frame_read (fd, &kind, &error)))
        return error != NULL ? 1 : 0;

      if (kind != WPOOL_FRAME_RUN_CHUNK ||
          !serve_chunk (worker, task, fd, progress, frame, &error))
        return 1;
    }
}

/* What a pool sends a spawned worker before the first chunk: its id, its
 * task, and the shared objects, once. */
static gboolean
receive_setup (int            fd,
               guint         *id,
               WpoolTask    **task,
               GVariant     **shared_objects,
               GError       **error)
{
  g_autoptr(GVariant) setup = NULL;
  const char *module_path;
  const char *symbol;
  const char *shared_type;
  WpoolFrameKind kind = 0;

  if (!(setup = wpool_frame_read (fd, &kind, error)) || kind != WPOOL_FRAME_SETUP)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected the setup first");
      return FALSE;
    }

  g_variant_get (setup, "(u&s&s&s)", id, &module_path, &symbol, &shared_type);

  if (*shared_type != '\0')
    {
      g_autoptr(GBytes) data = NULL;

      if (!g_variant_type_string_is_valid (shared_type) ||
          !(data = wpool_frame_read_data (fd, &kind, error)) ||
          kind != WPOOL_FRAME_SHARED_OBJECTS)
        {
          if (error != NULL && *error == NULL)
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Expected the shared objects");
          return FALSE;
        }

      /* The one copy of this worker: the frame's own buffer. */
      *shared_objects = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (shared_type), data, FALSE));
    }

  return (*task = wpool_task_new_for_symbol (module_path, symbol, error)) != NULL;
}

static gint *
map_progress (int     fd,
              guint   id,
              gsize  *size)
{
  struct stat st;
  gint *progress;

  if (fstat (fd, &st) < 0 || (gsize)st.st_size < (id + 1) * sizeof (gint))
    return NULL;

  progress = mmap (NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (progress == MAP_FAILED)
    return NULL;

  *size = st.st_size;
  return progress;
}

int
_wpool_worker_main (int    argc,
                    char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) shared_objects = NULL;
  g_autoptr(WpoolWorker) worker = NULL;
  struct stat st;
  int fd = -1;
  int progress_fd = -1;
  gint *progress;
  gsize progress_size = 0;
  guint id = 0;
  int status;

  for (int i = 1; i < argc; i++)
    {
      if (g_str_has_prefix (argv[i], "--socket-fd="))
        fd = atoi (argv[i] + strlen ("--socket-fd="));
      else if (g_str_has_prefix (argv[i], "--progress-fd="))
        progress_fd = atoi (argv[i] + strlen ("--progress-fd="));
    }

  /* Nothing to do but for a pool, which hands over a socket. */
  if (fd < 0 || progress_fd < 0 || fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode))
    {
      fprintf (stderr, "wpool-worker: libwpool starts this program for its SPAWN and FORKSERVER "
                       "pools; it does nothing on its own\n");
      return 2;
    }

  if (!receive_setup (fd, &id, &task, &shared_objects, &error) ||
      !(progress = map_progress (progress_fd, id, &progress_size)))
    {
      wpool_frame_write (fd, WPOOL_FRAME_READY,
                         g_variant_new ("(s)", error ? error->message : "Cannot map the progress page"),
                         NULL);
      return 1;
    }
  close (progress_fd);

  worker = wpool_worker_new (id, shared_objects, NULL);

  if (!wpool_frame_write (fd, WPOOL_FRAME_READY, g_variant_new ("(s)", ""), &error))
    return 1;

  status = wpool_serve (worker, task, fd, &progress[id]);
  munmap (progress, progress_size);

  return status;
}
