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

static gboolean write_error (WpoolFramePort *port, guint32 index, const GError *task_error, GError **error);

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
serve_chunk_task (WpoolWorker     *worker,
                  WpoolTask       *task,
                  WpoolFramePort  *port,
                  WpoolRunning    *running,
                  guint32          first,
                  gconstpointer    items,
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

  if (n > 0 && !wpool_worker_run_chunk (worker, task, items, first, n, results, &task_error))
    {
      gboolean sent = TRUE;

      if (!(flags & WPOOL_CHUNK_KEEP_GOING))
        {
          wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
          return write_error (port, first, task_error, error);
        }

      for (gsize k = 0; k < n && sent; k++)
        sent = write_error (port, first + k, task_error, error);
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

  return wpool_frame_port_write (port, WPOOL_FRAME_RESULTS,
                                 g_variant_new ("(uv@at)", first,
                                                g_variant_new_from_data (array_type, data, sent_size, FALSE, g_free, data),
                                                g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, durations->data,
                                                                           durations->len, sizeof (guint64))),
                                 error);
}

/* A chunk of a chunk task whose items are in the transfer area: checked
 * to fit, as the frame says how many there are. */
static gboolean
serve_transferred_chunk (WpoolWorker     *worker,
                         WpoolTask       *task,
                         WpoolFramePort  *port,
                         WpoolRunning    *running,
                         const Transfer  *transfer,
                         guint32          first,
                         gsize            n,
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

  return serve_chunk_task (worker, task, port, running, first, transfer->data, n,
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
serve_chunk (WpoolWorker     *worker,
             WpoolTask       *task,
             WpoolFramePort  *port,
             WpoolRunning    *running,
             const Transfer  *transfer,
             GVariant        *frame,
             GError         **error)
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
    return serve_transferred_chunk (worker, task, port, running, transfer, first, count, flags, error);

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

      return serve_chunk_task (worker, task, port, running, first, data, n, NULL, flags, error);
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

      result = wpool_worker_invoke (worker, task, item, index, result_type, &task_error);

      if (flags & WPOOL_CHUNK_TIMED)
        g_array_append_val (durations, (guint64){ (guint64)(g_get_monotonic_time () - started) });

      if (result == NULL)
        {
          gboolean sent;

          if (!keep_going)
            wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
          sent = write_error (port, index, task_error, error);

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

  return wpool_frame_port_write (port, WPOOL_FRAME_RESULTS,
                                 g_variant_new ("(uv@at)", first, results,
                                                g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, durations->data,
                                                                           durations->len, sizeof (guint64))),
                                 error);
}

static gboolean
write_error (WpoolFramePort  *port,
             guint32          index,
             const GError    *task_error,
             GError         **error)
{
  return wpool_frame_port_write (port, WPOOL_FRAME_ERROR,
                                 g_variant_new ("(usis)", index,
                                                g_quark_to_string (task_error->domain),
                                                task_error->code, task_error->message),
                                 error);
}

/* Runs the worker-exit and answers with its result, of the type EXIT
 * @frame declares, or its error. */
static gboolean
serve_exit (WpoolWorker     *worker,
            WpoolFramePort  *port,
            GVariant        *frame,
            GError         **error)
{
  g_autoptr(GVariantType) result_type = NULL;
  g_autoptr(GError) exit_error = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *result_type_string;

  g_variant_get (frame, "(&s)", &result_type_string);
  if (!parse_result_type (result_type_string, &result_type, error))
    return FALSE;

  if (!(result = wpool_worker_run_exit (worker, result_type, &exit_error)))
    return write_error (port, G_MAXUINT32, exit_error, error);

  return wpool_frame_port_write (port, WPOOL_FRAME_EXIT_RESULT, g_variant_new ("(v)", result), error);
}

/* Serves the pool on @port until it ends: 0, or 1 on a broken transport
 * or protocol. Only computes and does I/O on @port: fit for a forked
 * child of a threaded process, which must not start a thread or main
 * loop. */
int
wpool_serve_port (WpoolWorker     *worker,
                  WpoolTask       *task,
                  WpoolFramePort  *port,
                  WpoolRunning    *running)
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

      if (!(frame = wpool_frame_port_read (port, &kind, &passed_fd, &error)))
        {
          if (passed_fd >= 0)
            close (passed_fd);
          ret = error != NULL ? 1 : 0;
          break;
        }

      if (kind == WPOOL_FRAME_RUN_CHUNK)
        served = serve_chunk (worker, task, port, running, &transfer, frame, &error);
      else if (kind == WPOOL_FRAME_EXIT && wpool_worker_has_exit (worker))
        served = serve_exit (worker, port, frame, &error);
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

/* Serves the pool on the socket @fd until it closes (see above). */
int
wpool_serve (WpoolWorker  *worker,
             WpoolTask    *task,
             int           fd,
             WpoolRunning *running)
{
  WpoolFramePort port;

  wpool_frame_port_init_fd (&port, fd);

  return wpool_serve_port (worker, task, &port, running);
}
