/* test-sysprof.c: the Sysprof marks of a map, recorded and read back.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How the marks reach a capture here: libsysprof-capture 3.46's collector,
 * which sysprof_collector_mark() writes through, reads SYSPROF_CONTROL_FD
 * (not SYSPROF_TRACE_FD, which is for programs that write a capture of
 * their own) once per thread, at that thread's first call: it sends
 * "CreatRing" on that socket and writes its marks into the ring buffer it
 * receives. A thread that asked before the variable was set never asks
 * again. So this test plays the profiler as sysprof-cli does, in its own
 * process: main() makes a SysprofControlSource (libsysprof-4), which
 * answers on the main context and copies every ring into the capture
 * writer it is given, and sets SYSPROF_CONTROL_FD to its socket before any
 * other thread runs and before the first call to libwpool. Each case then
 * runs its maps on a thread of its own while the main thread serves the
 * rings, drains them once that thread is joined (every mark is written
 * before its map returns), and reads the capture back. The marks are those
 * of the pool's process: the caller, the drivers of process workers and
 * the worker threads; worker processes emit none.
 */

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sysprof.h>

#include "wpool-test-util.h"

#define N_JOBS 2
#define N_ITEMS 200
#define CHUNK_SIZE 7

static SysprofControlSource *control;

typedef struct
{
  GThreadFunc func;
  gpointer    data;
  gint        done;
} Recording;

static gpointer
recording_main (gpointer data)
{
  Recording *recording = data;

  recording->func (recording->data);
  g_atomic_int_set (&recording->done, TRUE);
  g_main_context_wakeup (NULL);

  return NULL;
}

/* Runs @func on a thread of its own and returns a reader of the capture
 * of what it did. */
static SysprofCaptureReader *
record (GThreadFunc func,
        gpointer    data)
{
  Recording recording = { func, data, FALSE };
  g_autoptr(SysprofCaptureWriter) writer = NULL;
  GThread *thread;
  int fd = memfd_create ("test-sysprof", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  writer = sysprof_capture_writer_new_from_fd (fd, 0);
  g_assert_nonnull (writer);
  sysprof_source_set_writer (SYSPROF_SOURCE (control), writer);

  thread = g_thread_new ("test-sysprof-map", recording_main, &recording);
  while (!g_atomic_int_get (&recording.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);

  /* A ring's source is ready while the ring holds frames. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  return sysprof_capture_writer_create_reader (writer);
}

typedef struct
{
  char   *name;
  char   *message;
  gint64  time;
  gint64  duration;
} Mark;

static void
mark_free (gpointer data)
{
  Mark *mark = data;

  g_free (mark->name);
  g_free (mark->message);
  g_free (mark);
}

/* The marks of group "libwpool" in @reader, in the order they came. */
static GPtrArray *
read_marks (SysprofCaptureReader *reader)
{
  GPtrArray *marks = g_ptr_array_new_with_free_func (mark_free);
  SysprofCaptureFrameType type;

  g_assert_nonnull (reader);
  while (sysprof_capture_reader_peek_type (reader, &type))
    {
      const SysprofCaptureMark *frame;
      Mark *mark;

      if (type != SYSPROF_CAPTURE_FRAME_MARK)
        {
          g_assert_true (sysprof_capture_reader_skip (reader));
          continue;
        }

      frame = sysprof_capture_reader_read_mark (reader);
      g_assert_nonnull (frame);
      if (strcmp (frame->group, "libwpool") != 0)
        continue;

      mark = g_new0 (Mark, 1);
      mark->name = g_strdup (frame->name);
      mark->message = g_strdup (frame->message);
      mark->time = frame->frame.time;
      mark->duration = frame->duration;
      g_assert_cmpint (mark->duration, >=, 0);
      g_test_message ("%s: %s (%.3f ms)", mark->name, mark->message, mark->duration / 1e6);
      g_ptr_array_add (marks, mark);
    }

  return marks;
}

/* The worker of a mark named "worker N", or -1. */
static gint
mark_worker (const Mark *mark)
{
  guint64 id;

  if (!g_str_has_prefix (mark->name, "worker ") ||
      !g_ascii_string_to_unsigned (mark->name + strlen ("worker "), 10, 0, G_MAXINT, &id, NULL))
    return -1;

  return (gint)id;
}

/* The items [first, last) of a chunk mark's message, "items 3–9" or
 * "item 3", followed by nothing or ", pid N". */
static gboolean
parse_items (const char *message,
             guint      *first,
             guint      *last)
{
  guint64 a;
  guint64 b;
  char *end;

  if (g_str_has_prefix (message, "items "))
    {
      a = g_ascii_strtoull (message + strlen ("items "), &end, 10);
      g_assert_true (g_str_has_prefix (end, "–"));
      b = g_ascii_strtoull (end + strlen ("–"), &end, 10);
    }
  else if (g_str_has_prefix (message, "item "))
    b = a = g_ascii_strtoull (message + strlen ("item "), &end, 10);
  else
    return FALSE;

  g_assert_true (*end == '\0' || g_str_has_prefix (end, ", pid "));
  g_assert_cmpuint (a, <=, b);
  *first = (guint)a;
  *last = (guint)b + 1;
  return TRUE;
}

static WpoolPool *
new_pool (WpoolStartMethod method)
{
  WpoolPool *pool = wpool_pool_new (N_JOBS, method);

  wpool_pool_set_chunk_size (pool, CHUNK_SIZE);
  return pool;
}

static void
map_squares (gpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (GPOINTER_TO_INT (data));
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_DOUBLE);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (N_ITEMS), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, N_ITEMS);
}

/* A map gives one "map" mark, a start mark per worker, and chunk marks on
 * the workers' rows that cover every item exactly once, within the map's. */
static void
test_map_marks (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(SysprofCaptureReader) reader = record ((GThreadFunc)map_squares, (gpointer)data);
  g_autoptr(GPtrArray) marks = read_marks (reader);
  g_autofree char *map_message = g_strdup_printf ("%u items, %s, task “wpool_test_square”", N_ITEMS,
                                                  method == WPOOL_START_METHOD_FORK ? "FORK" : "THREADING");
  guint covered[N_ITEMS] = { 0, };
  gboolean started[N_JOBS] = { FALSE, };
  const Mark *map = NULL;
  guint n_chunks = 0;

  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];
      gint worker = mark_worker (mark);
      guint first = 0;
      guint last = 0;

      if (strcmp (mark->name, "map") == 0)
        {
          g_assert_null (map);
          map = mark;
          g_assert_cmpstr (mark->message, ==, map_message);
          continue;
        }

      g_assert_cmpint (worker, >=, 0);
      g_assert_cmpint (worker, <, N_JOBS);

      if (g_str_has_prefix (mark->message, "start: "))
        {
          g_assert_false (started[worker]);
          started[worker] = TRUE;
          g_assert_true (method == WPOOL_START_METHOD_THREADING ? g_str_has_prefix (mark->message, "start: a thread, ")
                                                                : g_str_has_prefix (mark->message, "start: pid "));
          continue;
        }

      g_assert_true (parse_items (mark->message, &first, &last));
      g_assert_cmpuint (last, <=, N_ITEMS);
      g_assert_cmpuint (last - first, <=, CHUNK_SIZE);
      /* Process workers' chunks name the worker's pid. */
      g_assert_true ((strstr (mark->message, ", pid ") != NULL) == WPOOL_TEST_IS_PROCESS (method));
      for (guint item = first; item < last; item++)
        covered[item]++;
      n_chunks++;
    }

  g_assert_nonnull (map);
  for (guint i = 0; i < N_JOBS; i++)
    g_assert_true (started[i]);
  for (guint i = 0; i < N_ITEMS; i++)
    g_assert_cmpuint (covered[i], ==, 1);
  g_assert_cmpuint (n_chunks, ==, (N_ITEMS + CHUNK_SIZE - 1) / CHUNK_SIZE);

  /* Every chunk ran within the map. */
  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];

      if (mark != map && !g_str_has_prefix (mark->message, "start: "))
        {
          g_assert_cmpint (mark->time, >=, map->time);
          g_assert_cmpint (mark->time + mark->duration, <=, map->time + map->duration);
        }
    }
}

typedef struct
{
  WpoolStartMethod method;
  guint32          hang_ms;
  double           timeout;
} TimeoutMap;

static void
map_past_timeout (gpointer data)
{
  TimeoutMap *map = data;
  g_autoptr(WpoolPool) pool = new_pool (map->method);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_sleep_ms");
  guint32 items[] = { 5, map->hang_ms, 5, 5 };
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_task_timeout (pool, map->timeout);
  results = wpool_pool_map (pool, task,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, items, G_N_ELEMENTS (items), sizeof (guint32)),
                            NULL, &error);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
  g_assert_null (results);
}

/* An item past the task timeout gives a "timeout" mark on the row of the
 * worker that ran it, naming the item; the map's mark is there too. */
static void
test_timeout_mark (gconstpointer data)
{
  TimeoutMap map = { GPOINTER_TO_INT (data), 0, wpool_test_under_valgrind () ? 2.0 : 0.2 };
  guint base_threads = wpool_test_count_threads ();
  g_autoptr(SysprofCaptureReader) reader = NULL;
  g_autoptr(GPtrArray) marks = NULL;
  guint n_maps = 0;
  guint n_timeouts = 0;

  map.hang_ms = (guint32)(map.timeout * 4000);
  reader = record ((GThreadFunc)map_past_timeout, &map);
  marks = read_marks (reader);

  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];

      if (strcmp (mark->name, "map") == 0)
        n_maps++;
      else if (g_str_has_prefix (mark->message, "timeout: "))
        {
          gint worker = mark_worker (mark);

          n_timeouts++;
          g_assert_cmpint (worker, >=, 0);
          g_assert_cmpint (worker, <, N_JOBS);
          g_assert_true (g_str_has_prefix (mark->message, "timeout: item 1") &&
                         !g_ascii_isdigit (mark->message[strlen ("timeout: item 1")]));
          g_assert_nonnull (strstr (mark->message, "task timeout"));
        }
    }
  g_assert_cmpuint (n_maps, ==, 1);
  g_assert_cmpuint (n_timeouts, ==, 1);

  /* A worker thread past the timeout was left to finish its item: it
   * ends before the next case. */
  for (guint tries = 0; tries < 100 && wpool_test_count_threads () != base_threads; tries++)
    g_usleep (map.hang_ms * G_TIME_SPAN_MILLISECOND / 20);
  g_assert_cmpuint (wpool_test_count_threads (), ==, base_threads);
}

static const char *dying_items[] = { "ok", "exit", "ok", "ok" };

static void
map_dying (gpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_die");
  GError *errors[G_N_ELEMENTS (dying_items)] = { NULL, };
  g_autoptr(GPtrArray) results = NULL;

  wpool_pool_set_chunk_size (pool, 1);
  results = wpool_test_keep_going_map (pool, task, dying_items, G_N_ELEMENTS (dying_items), WPOOL_MAP_FLAGS_NONE,
                                       errors);
  g_assert_error (errors[1], WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED);
  for (guint i = 0; i < G_N_ELEMENTS (dying_items); i++)
    g_clear_error (&errors[i]);
}

/* A worker process that dies gives a "died" mark naming the item and its
 * pid; under keep-going its slot restarts, with a second start mark. */
static void
test_died_mark (void)
{
  g_autoptr(SysprofCaptureReader) reader = record ((GThreadFunc)map_dying, NULL);
  g_autoptr(GPtrArray) marks = read_marks (reader);
  gint died = -1;
  guint n_starts[N_JOBS] = { 0, };
  guint n_restarts = 0;

  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];
      gint worker = mark_worker (mark);

      if (worker < 0)
        continue;
      g_assert_cmpint (worker, <, N_JOBS);
      if (g_str_has_prefix (mark->message, "died: "))
        {
          g_assert_cmpint (died, ==, -1);
          died = worker;
          g_assert_true (g_str_has_prefix (mark->message, "died: item 1, pid "));
          g_assert_nonnull (strstr (mark->message, "exit"));
        }
      else if (g_str_has_prefix (mark->message, "start: pid "))
        n_starts[worker]++;
      else if (g_str_has_prefix (mark->message, "restart: "))
        {
          n_restarts++;
          g_assert_cmpstr (mark->message, ==, "restart: after its worker died");
        }
    }

  g_assert_cmpint (died, >=, 0);
  g_assert_cmpuint (n_restarts, ==, 1);
  for (guint i = 0; i < N_JOBS; i++)
    g_assert_cmpuint (n_starts[i], ==, (gint)i == died ? 2 : 1);
}

static void
map_with_lifespan (gpointer data)
{
  g_autoptr(WpoolPool) pool = new_pool (WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolTask) task = wpool_test_module_task ("wpool_test_square");
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_worker_lifespan (pool, 2);
  results = wpool_pool_map (pool, task, wpool_test_range_doubles (8), NULL, &error);
  g_assert_no_error (error);
}

/* A worker past its lifespan restarts: a restart mark, then a start, on
 * its row; 8 one-item chunks on workers of 2 chunks make 3 restarts at
 * least (4 if both take 4). */
static void
test_restart_marks (void)
{
  g_autoptr(SysprofCaptureReader) reader = record ((GThreadFunc)map_with_lifespan, NULL);
  g_autoptr(GPtrArray) marks = read_marks (reader);
  guint n_restarts = 0;
  guint n_starts = 0;

  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];

      if (g_str_has_prefix (mark->message, "restart: "))
        {
          n_restarts++;
          g_assert_cmpstr (mark->message, ==, "restart: at the end of its lifespan");
        }
      else if (g_str_has_prefix (mark->message, "start: "))
        n_starts++;
    }

  g_assert_cmpuint (n_restarts, >=, 3);
  g_assert_cmpuint (n_starts, ==, N_JOBS + n_restarts);
}

static void
map_slow_start (gpointer data)
{
  g_autoptr(WpoolPool) pool = wpool_pool_new (N_JOBS, WPOOL_START_METHOD_SPAWN);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_SLOW_MODULE"), "wpool_test_slow_identity", &error);
  g_assert_no_error (error);
  wpool_pool_set_worker_start_timeout (pool, 0.5);
  results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1, 2, 3]"), NULL, &error);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT);
}

/* A worker that does not start within the worker-start timeout (its
 * task's module blocks as it loads) leaves a timeout mark on its row. */
static void
test_start_timeout_mark (void)
{
  g_autoptr(SysprofCaptureReader) reader = record ((GThreadFunc)map_slow_start, NULL);
  g_autoptr(GPtrArray) marks = read_marks (reader);
  guint n_timeouts = 0;

  for (guint i = 0; i < marks->len; i++)
    {
      const Mark *mark = marks->pdata[i];

      if (g_str_has_prefix (mark->message, "timeout: "))
        {
          n_timeouts++;
          g_assert_cmpstr (mark->name, ==, "worker 0");
          g_assert_cmpstr (mark->message, ==, "timeout: no progress starting within the worker-start-timeout");
        }
    }
  g_assert_cmpuint (n_timeouts, ==, 1);
}

/* The socket of the control source, as sysprof-cli would hand it to the
 * program it starts: a spawnable is where the source puts it. It takes
 * the place of the placeholder, whose number the environment says. */
static void
take_control_fd (gint     dest_fd,
                 gint     fd,
                 gpointer data)
{
  int *control_fd = data;

  g_assert_cmpint (dup3 (fd, *control_fd, O_CLOEXEC), ==, *control_fd);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(SysprofSpawnable) spawnable = NULL;
  g_autofree char *parent = g_strdup_printf ("%d", (int)getpid ());
  g_autofree char *fd_string = NULL;
  struct stat control_stat;
  int control_fd;
  int ret;

  g_test_init (&argc, &argv, NULL);

  /* The slow module blocks in every process but this one. */
  g_setenv ("WPOOL_TEST_SLOW_START_PARENT", parent, TRUE);

  /* The variable is set before any thread exists (the control source
   * starts GLib's), on a placeholder's number. */
  control_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (control_fd, >=, 0);
  fd_string = g_strdup_printf ("%d", control_fd);
  g_setenv ("SYSPROF_CONTROL_FD", fd_string, TRUE);

  control = sysprof_control_source_new ();
  spawnable = sysprof_spawnable_new ();
  sysprof_source_modify_spawn (SYSPROF_SOURCE (control), spawnable);
  sysprof_spawnable_foreach_fd (spawnable, take_control_fd, &control_fd);
  g_assert_true (fstat (control_fd, &control_stat) == 0 && S_ISSOCK (control_stat.st_mode));

  g_test_add_data_func ("/sysprof/map/threading", GINT_TO_POINTER (WPOOL_START_METHOD_THREADING), test_map_marks);
  g_test_add_data_func ("/sysprof/map/fork", GINT_TO_POINTER (WPOOL_START_METHOD_FORK), test_map_marks);
  g_test_add_data_func ("/sysprof/timeout/threading", GINT_TO_POINTER (WPOOL_START_METHOD_THREADING),
                        test_timeout_mark);
  g_test_add_data_func ("/sysprof/timeout/fork", GINT_TO_POINTER (WPOOL_START_METHOD_FORK), test_timeout_mark);
  g_test_add_func ("/sysprof/died/fork", test_died_mark);
  g_test_add_func ("/sysprof/restart/threading", test_restart_marks);
  g_test_add_func ("/sysprof/timeout/start", test_start_timeout_mark);

  ret = g_test_run ();

  sysprof_source_stop (SYSPROF_SOURCE (control));
  g_clear_object (&control);
  close (control_fd);

  return ret;
}
