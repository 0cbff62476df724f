/* wpool-orphans.c: starts a kept-alive pool of 2 workers of the start
 * method named in argv[1], prints their pids, keeps them busy with a long
 * item each (so that only their parent's death can end them) and waits to
 * be killed; the test then checks that the workers die with it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <wpool.h>

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GEnumClass) methods = g_type_class_ref (WPOOL_TYPE_START_METHOD);
  GEnumValue *method = argc > 1 ? g_enum_get_value_by_nick (methods, argv[1]) : NULL;
  g_autoptr(WpoolPool) pool = NULL;
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(WpoolTask) sleep = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  guint32 id;
  guint32 pid;
  guint64 address;

  if (method == NULL || !(task = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_MODULE"), "wpool_test_whoami", &error)))
    return 2;

  pool = wpool_pool_new (2, method->value);
  wpool_pool_set_keep_alive (pool, TRUE);
  wpool_pool_set_chunk_size (pool, 1);
  wpool_task_set_result_type (task, G_VARIANT_TYPE ("(uut)"));

  if (!(results = wpool_pool_map (pool, task, g_variant_new_parsed ("[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]"), NULL, &error)))
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }

  g_variant_iter_init (&iter, results);
  while (g_variant_iter_next (&iter, "(uut)", &id, &pid, &address))
    printf ("%u\n", pid);

  if (!(sleep = wpool_task_new_for_symbol (g_getenv ("WPOOL_TEST_MODULE"), "wpool_test_sleep_ms", &error)))
    return 2;
  wpool_pool_map_async (pool, sleep, g_variant_new_parsed ("[uint32 60000, 60000]"), NULL, NULL, NULL);
  g_usleep (200 * G_TIME_SPAN_MILLISECOND);

  printf ("ready\n");
  fflush (stdout);

  pause ();
  return 0;
}
