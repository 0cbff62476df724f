/* fuzz-frames.c: a libFuzzer target for what a pool and a worker process
 * read from each other's socket. The input is a byte stream, as it would
 * arrive on a worker's socket; it is read three times:
 *
 * - as the pool reads a worker: frame by frame, taking RESULTS and ERROR
 *   frames as a driver does (the results checked into a WpoolResults);
 * - as a worker process reads the pool: wpool_serve() runs it, with a
 *   task that returns its item, also its worker-exit;
 * - as a spawned worker reads its setup: the wpool-worker helper's main
 *   runs it, with a progress page of two workers.
 *
 * Anything but a clean refusal (a crash, a sanitizer report, a GLib
 * warning or critical, which are made fatal) is a bug. Built with
 * -Dfuzzing=true under clang; see fuzz/README.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wpool-protocol-private.h"
#include "wpool-process-private.h"
#include "wpool-results-private.h"
#include "wpool-serve-private.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static GVariant *
echo (WpoolWorker  *worker,
      GVariant     *shared_objects,
      GVariant     *item,
      gpointer      user_data,
      GError      **error)
{
  return g_variant_ref (item);
}

/* A socket whose other end has sent @data and shut down: what a reader
 * of a worker's socket sees. -1 if @data does not fit its buffer. */
static int
stream_of (const uint8_t *data,
           size_t         size,
           int           *peer)
{
  int fds[2];
  size_t done = 0;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return -1;

  while (done < size)
    {
      ssize_t n = send (fds[1], data + done, size - done, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n <= 0)
        {
          close (fds[0]);
          close (fds[1]);
          return -1;
        }
      done += n;
    }
  shutdown (fds[1], SHUT_WR);

  *peer = fds[1];
  return fds[0];
}

/* As a driver reads a worker's answers to a chunk of 8 items from 0. */
static void
read_as_pool (const uint8_t *data,
              size_t         size)
{
  int peer;
  int fd = stream_of (data, size, &peer);

  if (fd < 0)
    return;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) frame = NULL;
      WpoolFrameKind kind = 0;
      int passed_fd = -1;

      if (!(frame = wpool_frame_read_fd (fd, &kind, &passed_fd, &error)))
        break;
      if (passed_fd >= 0)
        close (passed_fd);

      if (kind == WPOOL_FRAME_RESULTS)
        {
          g_autoptr(GVariant) results = NULL;
          g_autoptr(GVariant) durations = NULL;
          const GVariantType *types[] = { G_VARIANT_TYPE_DOUBLE, G_VARIANT_TYPE ("(ud)"), NULL };
          guint32 first;
          gsize n_durations;

          g_variant_get (frame, "(uv@at)", &first, &results, &durations);
          g_variant_get_fixed_array (durations, &n_durations, sizeof (guint64));

          /* Fixed-size, boxed, and undeclared results, as a map declares. */
          for (guint t = 0; t < G_N_ELEMENTS (types); t++)
            {
              WpoolResults taken;
              g_autoptr(GError) take_error = NULL;

              wpool_results_init (&taken, types[t], 8);
              if (g_variant_is_container (results) && g_variant_n_children (results) == 8)
                wpool_results_take_array (&taken, 0, results, &take_error);
              wpool_results_clear (&taken);
            }
        }
      else if (kind == WPOOL_FRAME_ERROR)
        {
          const char *domain;
          const char *message;
          guint32 item;
          gint32 code;

          g_variant_get (frame, "(u&si&s)", &item, &domain, &code, &message);
        }
    }

  close (fd);
  close (peer);
}

/* As a worker process reads the pool, until the stream ends or is
 * refused. */
static void
read_as_worker (const uint8_t *data,
                size_t         size)
{
  g_autoptr(WpoolWorker) worker = NULL;
  g_autoptr(WpoolTask) task = NULL;
  WpoolRunning running = { 0, };
  int peer;
  int fd = stream_of (data, size, &peer);

  if (fd < 0)
    return;

  worker = wpool_worker_new (0, NULL, NULL);
  task = wpool_task_new (echo, NULL, NULL);
  wpool_worker_set_lifecycle (worker, NULL, task);
  wpool_serve (worker, task, fd, &running);

  close (fd);
  close (peer);
}

/* As the wpool-worker helper reads a pool: the SETUP frame, the shared
 * objects, then chunks, until the stream ends or is refused. */
static void
read_as_spawned (const uint8_t *data,
                 size_t         size)
{
  g_autofree char *socket_arg = NULL;
  g_autofree char *progress_arg = NULL;
  int peer;
  int fd = stream_of (data, size, &peer);
  int progress_fd = memfd_create ("fuzz-progress", MFD_CLOEXEC);

  if (fd >= 0 && progress_fd >= 0 && ftruncate (progress_fd, 2 * sizeof (WpoolRunning)) == 0)
    {
      socket_arg = g_strdup_printf ("--socket-fd=%d", fd);
      progress_arg = g_strdup_printf ("--progress-fd=%d", progress_fd);
      /* It closes the progress page's descriptor. */
      wpool_worker_serve ((const char *[]){ "wpool-worker", socket_arg, progress_arg, NULL },
                          WPOOL_SERVE_FLAGS_NONE, NULL, NULL, NULL);
      progress_fd = -1;
    }

  if (progress_fd >= 0)
    close (progress_fd);
  if (fd >= 0)
    {
      close (fd);
      close (peer);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static gboolean initialized;

  if (!initialized)
    {
      /* A warning or a critical reached from the wire is a bug. */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      initialized = TRUE;
    }

  read_as_pool (data, size);
  read_as_worker (data, size);
  read_as_spawned (data, size);

  return 0;
}
