/* replay.c: runs fuzz targets without libFuzzer, on the files named on the
 * command line (or every file of the directories named), so that the seed
 * corpus, and the inputs that once crashed them, are a regression test of
 * the ordinary build.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdint.h>
#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
replay (const char *path)
{
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  gsize size;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, &error);
      const char *name;

      g_assert_no_error (error);
      while ((name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          replay (child);
        }
      return;
    }

  g_file_get_contents (path, &contents, &size, &error);
  g_assert_no_error (error);
  g_print ("%s (%" G_GSIZE_FORMAT " bytes)\n", path, size);
  LLVMFuzzerTestOneInput ((const uint8_t *)contents, size);
}

int
main (int   argc,
      char *argv[])
{
  for (int i = 1; i < argc; i++)
    replay (argv[i]);

  return 0;
}
