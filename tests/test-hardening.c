/* test-hardening.c: what a buggy worker, or bytes crafted to look like a
 * pool, can do to the other processes: nothing but be refused.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>
#include <glib/gstdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wpool-test-util.h"

/* The frame kinds and the progress page's entries, which these tests
 * forge as a pool would send them. */
#include "wpool-process-private.h"
#include "wpool-protocol-private.h"

/* A worker that writes over its shared array's header (length, element
 * size and type, id) changes nothing for itself, nor for the caller: each
 * process keeps the bounds it took when it made or mapped the array. */
static void
test_shared_array_header_clobbered (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, method);
  g_autoptr(WpoolTask) clobber = wpool_test_module_task ("wpool_test_clobber_header");
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GVariant) handle = NULL;
  g_autoptr(GVariant) handle_after = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) values = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;

  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_DOUBLE, 4, FALSE, &error);
  g_assert_no_error (error);
  handle = g_variant_ref_sink (wpool_shared_array_get_handle (array));
  g_assert_true (wpool_pool_set_shared_objects (pool, handle, NULL));

  results = wpool_pool_map (pool, clobber, g_variant_new_parsed ("[0]"), NULL, &error);
  g_assert_no_error (error);
  /* In the worker: index 4 refused, 4 elements. */
  wpool_test_assert_variant (results, g_variant_new_parsed ("[<(true, uint64 4)>]"));

  /* The caller's bounds are its own. */
  g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 4);
  g_assert_cmpint (wpool_shared_array_get_element_type (array), ==, WPOOL_SHARED_ARRAY_TYPE_DOUBLE);
  g_assert_nonnull (wpool_shared_array_get_data (array, &length));
  g_assert_cmpuint (length, ==, 4);
  handle_after = g_variant_ref_sink (wpool_shared_array_get_handle (array));
  g_assert_cmpvariant (handle_after, handle);

  g_assert_cmpfloat (wpool_shared_array_get_double (array, 4, &error), ==, 0);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpint (wpool_shared_array_get_int64 (array, 1 << 20, &error), ==, 0);
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_shared_array_set_double (array, (gsize)1 << 30, 1, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (wpool_shared_array_set_int64 (array, 100000, 1, &error));
  g_assert_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (wpool_shared_array_set_double (array, 3, 2.5, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (wpool_shared_array_get_double (array, 3, &error), ==, 2.5);
  g_assert_no_error (error);
  values = wpool_shared_array_dup_values (array);
  wpool_test_assert_variant (values, g_variant_new_parsed ("[0.0, 0.0, 0.0, 2.5]"));
}

/* Memory whose header claims more than the memfd holds is refused by a
 * process that maps it later, before any access: a spawned worker, or a
 * fork server, does not start. A forked worker inherits the caller's
 * bounds, and works. */
static void
test_shared_array_header_clobbered_later (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) pool = wpool_pool_new (1, WPOOL_START_METHOD_THREADING);
  g_autoptr(WpoolPool) later = wpool_pool_new (1, method);
  g_autoptr(WpoolTask) clobber = wpool_test_module_task ("wpool_test_clobber_header");
  g_autoptr(WpoolSharedArray) array = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  array = wpool_shared_array_new (WPOOL_SHARED_ARRAY_TYPE_INT32, 16, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (wpool_pool_set_shared_objects (pool, wpool_shared_array_get_handle (array), NULL));
  results = wpool_pool_map (pool, clobber, g_variant_new_parsed ("[0]"), NULL, &error);
  g_assert_no_error (error);

  g_assert_true (wpool_pool_set_shared_objects (later, wpool_shared_array_get_handle (array), NULL));
  if (method == WPOOL_START_METHOD_FORK)
    {
      g_autoptr(WpoolTask) store_at = wpool_test_module_task ("wpool_test_store_at");
      g_autoptr(GVariant) stored = NULL;

      stored = wpool_pool_map (later, store_at, g_variant_new_parsed ("[(uint32 15, 1.0)]"), NULL, &error);
      g_assert_no_error (error);
      wpool_test_assert_map_fails (later, store_at, g_variant_new_parsed ("[(uint32 16, 1.0)]"), NULL,
                                   WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT, "Index 16 is out");
    }
  else
    {
      wpool_test_assert_map_fails (later, clobber, g_variant_new_parsed ("[0]"), NULL,
                                   WPOOL_ERROR, WPOOL_ERROR_FAILED, "Bad shared memory");
    }
  g_assert_cmpuint (wpool_shared_array_get_length (array), ==, 16);
}

/* What the helper answers to a forged pool. */
typedef struct
{
  GSubprocess *helper;
  int          fd;
} Helper;

/* Starts the wpool-worker helper, as a pool does, on a socket this end
 * of which is returned, with a progress page of two workers. */
static void
helper_start (Helper *helper)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  int fds[2];
  int progress_fd = memfd_create ("test-progress", MFD_CLOEXEC);

  g_assert_cmpint (progress_fd, >=, 0);
  g_assert_cmpint (ftruncate (progress_fd, 2 * sizeof (WpoolRunning)), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);

  g_subprocess_launcher_take_fd (launcher, fds[1], 3);
  g_subprocess_launcher_take_fd (launcher, progress_fd, 4);
  helper->helper = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("WPOOL_WORKER"),
                                                "--mode=worker", "--socket-fd=3", "--progress-fd=4", NULL);
  g_assert_no_error (error);
  helper->fd = fds[0];
}

/* A frame as wpool-protocol.c writes it; a peer gone is no failure. */
static void
helper_send (Helper         *helper,
             WpoolFrameKind  kind,
             GVariant       *payload)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (payload);
  struct { guint32 kind; guint32 reserved; guint64 size; } header = { kind, 0, g_variant_get_size (sunk) };

  if (send (helper->fd, &header, sizeof header, MSG_NOSIGNAL) == sizeof header)
    send (helper->fd, g_variant_get_data (sunk), header.size, MSG_NOSIGNAL);
}

/* The next frame, of @type, which must be of @kind; NULL if the helper
 * closed its socket instead. */
static GVariant *
helper_receive (Helper             *helper,
                WpoolFrameKind      kind,
                const GVariantType *type)
{
  struct { guint32 kind; guint32 reserved; guint64 size; } header;
  guint8 *data;

  if (recv (helper->fd, &header, sizeof header, MSG_WAITALL) != sizeof header)
    return NULL;
  g_assert_cmpuint (header.kind, ==, kind);
  g_assert_cmpuint (header.size, <, 1 << 20);
  data = g_malloc (MAX (header.size, 1));
  g_assert_cmpint (recv (helper->fd, data, header.size, MSG_WAITALL), ==, (gssize)header.size);

  return g_variant_ref_sink (g_variant_new_from_data (type, data, header.size, FALSE, g_free, data));
}

/* Closes the socket and asserts that the helper exits with @status, on
 * its own, rather than by a signal. */
static void
helper_finish (Helper *helper,
               int     status)
{
  g_autoptr(GError) error = NULL;

  close (helper->fd);
  g_assert_true (g_subprocess_wait (helper->helper, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (helper->helper));
  g_assert_cmpint (g_subprocess_get_exit_status (helper->helper), ==, status);
  g_clear_object (&helper->helper);
}

/* SETUP for worker @id, running @symbol of the test module: a chunk task
 * of doubles if @chunk. */
static GVariant *
setup_frame (guint32     id,
             const char *symbol,
             gboolean    chunk)
{
  return g_variant_new_parsed ("(%u, [(%s, %s, %s, %s), ('', '', '', ''), ('', '', '', '')], '')",
                               id, wpool_test_module_path (), symbol, chunk ? "d" : "", chunk ? "d" : "");
}

static GVariant *
run_chunk_frame (GVariant *items)
{
  return g_variant_new ("(uusuv)", 0, (guint32)g_variant_n_children (items), "d", 0, items);
}

/* The helper refuses a worker id past the progress page, 0xFFFFFFFF
 * included (its bounds check once overflowed, and the first chunk
 * crashed the helper), and answers why, before it runs anything. */
static void
test_helper_worker_id (void)
{
  const guint32 ids[] = { G_MAXUINT32, 2, G_MAXUINT32 / sizeof (WpoolRunning) };

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      Helper helper;
      g_autoptr(GVariant) ready = NULL;
      const char *problem;

      helper_start (&helper);
      helper_send (&helper, WPOOL_FRAME_SETUP, setup_frame (ids[i], "wpool_test_square", FALSE));
      ready = helper_receive (&helper, WPOOL_FRAME_READY, G_VARIANT_TYPE ("(s)"));
      /* What the old helper was sent next, and died of. */
      helper_send (&helper, WPOOL_FRAME_RUN_CHUNK, run_chunk_frame (g_variant_new_parsed ("[2.0]")));
      helper_finish (&helper, 1);

      g_assert_nonnull (ready);
      g_variant_get (ready, "(&s)", &problem);
      g_assert_nonnull (strstr (problem, "out of the pool's 2 workers"));
    }
}

/* The last worker id of the page works: the forged pool is a real one. */
static void
test_helper_last_worker (void)
{
  Helper helper;
  g_autoptr(GVariant) ready = NULL;
  g_autoptr(GVariant) results = NULL;

  helper_start (&helper);
  helper_send (&helper, WPOOL_FRAME_SETUP, setup_frame (1, "wpool_test_square", FALSE));
  ready = helper_receive (&helper, WPOOL_FRAME_READY, G_VARIANT_TYPE ("(s)"));
  wpool_test_assert_variant (ready, g_variant_new_parsed ("('',)"));

  helper_send (&helper, WPOOL_FRAME_RUN_CHUNK, run_chunk_frame (g_variant_new_parsed ("[3.0]")));
  results = helper_receive (&helper, WPOOL_FRAME_RESULTS, G_VARIANT_TYPE ("(uvat)"));
  wpool_test_assert_variant (results, g_variant_new_parsed ("(uint32 0, <[9.0]>, @at [])"));
  helper_finish (&helper, 0);
}

/* A chunk task's items of another type than the task's are refused: they
 * were read as the task's, from no data at all (a GLib critical, then a
 * crash). */
static void
test_helper_chunk_items_type (void)
{
  const char *chunks[] = { "[int32 1, 2]", "[<1.0>]", "@ad []" };

  for (guint i = 0; i < G_N_ELEMENTS (chunks); i++)
    {
      Helper helper;
      g_autoptr(GVariant) ready = NULL;
      g_autoptr(GVariant) results = NULL;
      GVariant *items = g_variant_new_parsed (chunks[i]);

      helper_start (&helper);
      helper_send (&helper, WPOOL_FRAME_SETUP, setup_frame (0, "wpool_test_square_plus_one_chunk", TRUE));
      ready = helper_receive (&helper, WPOOL_FRAME_READY, G_VARIANT_TYPE ("(s)"));
      wpool_test_assert_variant (ready, g_variant_new_parsed ("('',)"));

      helper_send (&helper, WPOOL_FRAME_RUN_CHUNK, run_chunk_frame (items));
      results = helper_receive (&helper, WPOOL_FRAME_RESULTS, G_VARIANT_TYPE ("(uvat)"));

      /* An empty chunk of the right type is served; the others end the
       * helper, which says nothing more. */
      if (g_str_equal (chunks[i], "@ad []"))
        {
          wpool_test_assert_variant (results, g_variant_new_parsed ("(uint32 0, <@ad []>, @at [])"));
          helper_finish (&helper, 0);
        }
      else
        {
          g_assert_null (results);
          helper_finish (&helper, 1);
        }
    }
}

/* What wpool-helper-path, copied to @dir, prints with WPOOL_WORKER set,
 * run setuid and setgid nobody if @setuid; NULL if it cannot be made so
 * (root in a user namespace without nobody, say). */
static char *
helper_path_of (const char *dir,
                gboolean    setuid)
{
  g_autofree char *copy = g_build_filename (dir, "wpool-helper-path", NULL);
  g_autofree char *source = g_test_build_filename (G_TEST_BUILT, "wpool-helper-path", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) program = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GError) error = NULL;
  gsize size;

  g_assert_true (g_file_get_contents (source, &contents, &size, &error));
  g_assert_true (g_file_set_contents_full (copy, contents, size, G_FILE_SET_CONTENTS_NONE, 0755, &error));
  g_assert_no_error (error);
  if (setuid && (chown (copy, 65534, 65534) < 0 || chmod (copy, 06755) < 0))
    {
      g_unlink (copy);
      return NULL;
    }

  g_subprocess_launcher_setenv (launcher, "WPOOL_WORKER", "/nonexistent/wpool-worker", TRUE);
  program = g_subprocess_launcher_spawn (launcher, &error, copy, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (program, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (program));
  g_unlink (copy);

  return g_strchomp (g_steal_pointer (&out));
}

/* A setuid (or setgid, or capability-raised) program does not run the
 * helper its environment names, which would get its privileges: only
 * root can make one, so the test needs root. */
static void
test_helper_secure_environment (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *plain = NULL;
  g_autofree char *privileged = NULL;
  g_autoptr(GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("Making a setuid program takes root");
      return;
    }

  /* A sanitizer's runtime will not run a setuid program. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  g_test_skip ("A sanitized program cannot run setuid");
  return;
#endif

  dir = g_dir_make_tmp ("wpool-test-XXXXXX", &error);
  g_assert_no_error (error);

  plain = helper_path_of (dir, FALSE);
  g_assert_cmpstr (plain, ==, "/nonexistent/wpool-worker");
  privileged = helper_path_of (dir, TRUE);
  g_rmdir (dir);
  if (privileged == NULL)
    {
      g_test_skip ("Cannot make a setuid program here");
      return;
    }
  g_assert_cmpstr (privileged, !=, "/nonexistent/wpool-worker");
  g_assert_true (g_str_has_suffix (privileged, "/wpool-worker"));
}

/* A worker holds no descriptor of another pool, nor of its own beyond its
 * socket: none of the progress memfds, which FORK workers once inherited
 * from every pool alive in the caller. */
static void
test_no_foreign_fds (gconstpointer data)
{
  WpoolStartMethod method = GPOINTER_TO_INT (data);
  g_autoptr(WpoolPool) first = wpool_pool_new (2, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolPool) second = wpool_pool_new (2, method);
  g_autoptr(WpoolTask) square = wpool_test_module_task ("wpool_test_square");
  g_autoptr(WpoolTask) fd_targets = wpool_test_module_task ("wpool_test_fd_targets");
  g_autoptr(GVariant) squares = NULL;
  g_autoptr(GVariant) targets = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter workers;
  GVariant *worker_targets;

  /* The first pool's workers, and its progress page, are alive. */
  squares = wpool_pool_map (first, square, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);

  wpool_task_set_result_type (fd_targets, G_VARIANT_TYPE_STRING_ARRAY);
  wpool_pool_set_chunk_size (second, 1);
  targets = wpool_pool_map (second, fd_targets, wpool_test_range_doubles (4), NULL, &error);
  g_assert_no_error (error);

  g_variant_iter_init (&workers, targets);
  while ((worker_targets = g_variant_iter_next_value (&workers)))
    {
      g_autofree const char **strv = g_variant_get_strv (worker_targets, NULL);
      guint sockets = 0;

      for (guint i = 0; strv[i] != NULL; i++)
        {
          if (strstr (strv[i], "wpool-progress") != NULL)
            g_error ("A worker holds a progress memfd: %s", strv[i]);
          sockets += g_str_has_prefix (strv[i], "socket:");
        }
      g_assert_cmpuint (sockets, ==, 1);
      g_variant_unref (worker_targets);
    }
}

int
main (int   argc,
      char *argv[])
{
  const WpoolTestCase tests[] = {
    { "shared-array/header-clobbered", test_shared_array_header_clobbered, FALSE },
    { "shared-array/header-clobbered-later", test_shared_array_header_clobbered_later, TRUE },
    { "fds/no-foreign-fds", test_no_foreign_fds, TRUE },
  };
  const char *only = g_getenv ("WPOOL_TEST_START_METHODS");

  g_test_init (&argc, &argv, NULL);

  wpool_test_add_for_start_methods (tests, G_N_ELEMENTS (tests));

  /* The helper is what SPAWN pools run: not under a build that runs the
   * THREADING cases only. */
  if (only == NULL || strstr (only, "spawn") != NULL)
    {
      g_test_add_func ("/spawn/helper/worker-id", test_helper_worker_id);
      g_test_add_func ("/spawn/helper/last-worker", test_helper_last_worker);
      g_test_add_func ("/spawn/helper/chunk-items-type", test_helper_chunk_items_type);
      g_test_add_func ("/spawn/helper/secure-environment", test_helper_secure_environment);
    }

  return g_test_run ();
}
