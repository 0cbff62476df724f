/* wpool-serve.c: the loop of a worker process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-protocol-private.h"
#include "wpool-results-private.h"
#include "wpool-serve-private.h"
#include "wpool-task-private.h"

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
