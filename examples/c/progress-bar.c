/* progress-bar.c: a live terminal progress bar for a long map, driven by
 * the pool's progress signal and ETA on the main loop, then the insights.
 *
 *   progress-bar [N_ITEMS [MS_PER_ITEM]]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <wpool.h>

typedef struct
{
  GMainLoop *loop;
  GVariant  *results;
  GError    *error;
  guint64    last_reported;
} Run;

static void
on_progress (WpoolPool *pool,
             guint64    n_completed,
             guint64    n_total,
             gpointer   data)
{
  Run *run = data;
  const guint width = 40;
  guint filled = n_total ? (guint)(n_completed * width / n_total) : width;
  double eta = wpool_pool_get_eta (pool);
  g_autofree char *bar = g_strnfill (filled, '#');
  g_autofree char *rest = g_strnfill (width - filled, '-');

  fprintf (stderr, "\r[%s%s] %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "  ETA %5.1f s",
           bar, rest, n_completed, n_total, eta < 0 ? 0 : eta);
  run->last_reported = n_completed;
}

static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  Run *run = data;

  run->results = wpool_pool_map_finish (WPOOL_POOL (source), result, &run->error);
  fprintf (stderr, "\n");
  g_main_loop_quit (run->loop);
}

int
main (int   argc,
      char *argv[])
{
  guint n_items = argc > 1 ? (guint)atoi (argv[1]) : 200;
  guint32 ms = argc > 2 ? (guint32)atoi (argv[2]) : 20;
  const char *module = g_getenv ("WPOOL_EXAMPLE_MODULE");
  g_autoptr(WpoolPool) pool = wpool_pool_new (4, WPOOL_START_METHOD_FORK);
  g_autoptr(WpoolTask) task = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GVariantBuilder) items = g_variant_builder_new (G_VARIANT_TYPE ("au"));
  g_autoptr(GError) error = NULL;
  g_autofree char *summary = NULL;
  Run run = { loop, NULL, NULL, 0 };

  if (!(task = wpool_task_new_for_symbol (module ? module : "libwpool-example-tasks.so",
                                          "wpool_example_work_ms", &error)))
    {
      g_printerr ("%s\n", error->message);
      return EXIT_FAILURE;
    }
  wpool_task_set_result_type (task, G_VARIANT_TYPE_UINT32);

  for (guint i = 0; i < n_items; i++)
    g_variant_builder_add (items, "u", ms);

  /* Small chunks: the bar moves as items end, not four times a worker. */
  wpool_pool_set_chunk_size (pool, 1);
  wpool_pool_set_enable_insights (pool, TRUE);
  g_signal_connect (pool, "progress", G_CALLBACK (on_progress), &run);

  wpool_pool_map_async (pool, task, g_variant_builder_end (items), NULL, on_done, &run);
  g_main_loop_run (loop);

  if (run.error != NULL)
    {
      g_printerr ("The map failed: %s\n", run.error->message);
      g_error_free (run.error);
      return EXIT_FAILURE;
    }

  summary = wpool_pool_get_insights_summary (pool);
  printf ("%u items of %u ms on 4 worker processes\n%s", n_items, ms, summary);

  /* The bar ended full, and every result came back. */
  if (run.last_reported != n_items || g_variant_n_children (run.results) != n_items)
    {
      g_printerr ("The bar ended at %" G_GUINT64_FORMAT " of %u\n", run.last_reported, n_items);
      return EXIT_FAILURE;
    }

  g_variant_unref (run.results);
  return EXIT_SUCCESS;
}
