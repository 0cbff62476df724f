/* wpool-insights.c: where the time of a pool's maps goes, per worker, as
 * MPIRE's insights say it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-insights-private.h"

typedef struct
{
  guint64 n_items;
  gint64  working;
  gint64  transfer;
} WorkerInsights;

struct _WpoolInsights
{
  gatomicrefcount  ref_count;
  GMutex           mutex;
  guint            n_maps;
  gint64           start_up;
  /* When the maps began, and when the last one ended (0 while one
   * runs): a worker not working or transferring in between waited. */
  gint64           since;
  gint64           until;
  guint            n_workers;
  WorkerInsights  *workers;
  WpoolSlowItem    slowest[WPOOL_INSIGHTS_N_SLOWEST];
  guint            n_slowest;
};

WpoolInsights *
wpool_insights_new (guint n_workers)
{
  WpoolInsights *self = g_new0 (WpoolInsights, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->mutex);
  self->n_workers = n_workers;
  self->workers = g_new0 (WorkerInsights, n_workers);
  self->since = g_get_monotonic_time ();

  return self;
}

WpoolInsights *
wpool_insights_ref (WpoolInsights *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
wpool_insights_unref (WpoolInsights *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_mutex_clear (&self->mutex);
  g_free (self->workers);
  g_free (self);
}

void
wpool_insights_add_start_up (WpoolInsights *self,
                             gint64         duration)
{
  g_mutex_lock (&self->mutex);
  self->start_up += duration;
  g_mutex_unlock (&self->mutex);
}

/* The number of a new map among those the insights cover. */
guint
wpool_insights_next_map (WpoolInsights *self)
{
  guint map;

  g_mutex_lock (&self->mutex);
  map = self->n_maps++;
  self->until = 0;
  g_mutex_unlock (&self->mutex);

  return map;
}

/* The maps ended, for now. */
void
wpool_insights_end (WpoolInsights *self)
{
  g_mutex_lock (&self->mutex);
  self->until = g_get_monotonic_time ();
  g_mutex_unlock (&self->mutex);
}

/* Keeps @item in @slowest, of @n_slowest, if it is among the slowest. */
static void
keep_if_slow (WpoolSlowItem       *slowest,
              guint               *n_slowest,
              const WpoolSlowItem *item)
{
  guint i = *n_slowest;

  if (i == WPOOL_INSIGHTS_N_SLOWEST && item->duration <= slowest[i - 1].duration)
    return;

  if (i < WPOOL_INSIGHTS_N_SLOWEST)
    (*n_slowest)++;
  else
    i--;

  /* Sorted, slowest first. */
  for (; i > 0 && slowest[i - 1].duration < item->duration; i--)
    slowest[i] = slowest[i - 1];
  slowest[i] = *item;
}

void
wpool_insights_share_item (WpoolShareInsights *share,
                           guint               map,
                           guint               item,
                           gint64              duration)
{
  WpoolSlowItem slow = { map, item, duration };

  share->n_items++;
  share->working += duration;
  keep_if_slow (share->slowest, &share->n_slowest, &slow);
}

/* A chunk task's chunk of @n_items from @first: one duration for all. */
void
wpool_insights_share_chunk (WpoolShareInsights *share,
                            guint               map,
                            guint               first,
                            guint               n_items,
                            gint64              duration)
{
  wpool_insights_share_item (share, map, first, duration);
  share->n_items += n_items - 1;
}

/* Adds what worker @worker_id measured in a share that ends now. */
void
wpool_insights_share_end (WpoolInsights      *self,
                          guint               worker_id,
                          WpoolShareInsights *share)
{
  WorkerInsights *worker;

  g_mutex_lock (&self->mutex);

  if (worker_id < self->n_workers)
    {
      worker = &self->workers[worker_id];
      worker->n_items += share->n_items;
      worker->working += share->working;
      worker->transfer += share->transfer;
    }

  for (guint i = 0; i < share->n_slowest; i++)
    keep_if_slow (self->slowest, &self->n_slowest, &share->slowest[i]);

  g_mutex_unlock (&self->mutex);
}

static double
seconds (gint64 usec)
{
  return usec / (double)G_USEC_PER_SEC;
}

/* As wpool_pool_get_insights() documents it. */
GVariant *
wpool_insights_to_variant (WpoolInsights *self)
{
  GVariantBuilder workers;
  GVariantBuilder slowest;
  GVariantBuilder builder;
  guint64 n_items = 0;
  gint64 working = 0;
  gint64 waiting = 0;
  gint64 transfer = 0;
  gint64 wall;

  g_mutex_lock (&self->mutex);

  wall = MAX ((self->until ? self->until : g_get_monotonic_time ()) - self->since - self->start_up, 0);

  g_variant_builder_init (&workers, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < self->n_workers; i++)
    {
      const WorkerInsights *worker = &self->workers[i];
      gint64 worker_waiting = MAX (wall - worker->working - worker->transfer, 0);

      g_variant_builder_open (&workers, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&workers, "{sv}", "id", g_variant_new_uint32 (i));
      g_variant_builder_add (&workers, "{sv}", "n-completed", g_variant_new_uint64 (worker->n_items));
      g_variant_builder_add (&workers, "{sv}", "working-time", g_variant_new_double (seconds (worker->working)));
      g_variant_builder_add (&workers, "{sv}", "waiting-time", g_variant_new_double (seconds (worker_waiting)));
      g_variant_builder_add (&workers, "{sv}", "transfer-time", g_variant_new_double (seconds (worker->transfer)));
      g_variant_builder_close (&workers);

      n_items += worker->n_items;
      working += worker->working;
      waiting += worker_waiting;
      transfer += worker->transfer;
    }

  g_variant_builder_init (&slowest, G_VARIANT_TYPE ("a(uud)"));
  for (guint i = 0; i < self->n_slowest; i++)
    g_variant_builder_add (&slowest, "(uud)", self->slowest[i].map, self->slowest[i].item,
                           seconds (self->slowest[i].duration));

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "n-maps", g_variant_new_uint32 (self->n_maps));
  g_variant_builder_add (&builder, "{sv}", "n-completed", g_variant_new_uint64 (n_items));
  g_variant_builder_add (&builder, "{sv}", "start-up-time", g_variant_new_double (seconds (self->start_up)));
  g_variant_builder_add (&builder, "{sv}", "working-time", g_variant_new_double (seconds (working)));
  g_variant_builder_add (&builder, "{sv}", "waiting-time", g_variant_new_double (seconds (waiting)));
  g_variant_builder_add (&builder, "{sv}", "transfer-time", g_variant_new_double (seconds (transfer)));
  /* What an item cost the pool beyond running it: its share of the time
   * the workers had and spent otherwise (chunks and results moving, the
   * job's bookkeeping, idling at the map's end). */
  g_variant_builder_add (&builder, "{sv}", "working-time-per-item",
                         g_variant_new_double (n_items > 0 ? seconds (working) / n_items : 0));
  g_variant_builder_add (&builder, "{sv}", "overhead-per-item",
                         g_variant_new_double (n_items > 0
                                               ? MAX (seconds (wall) * MAX (self->n_workers, 1) - seconds (working), 0) / n_items
                                               : 0));
  g_variant_builder_add (&builder, "{sv}", "efficiency",
                         g_variant_new_double (wall > 0 ? MIN (working / ((double)wall * MAX (self->n_workers, 1)), 1.0) : 0));
  g_variant_builder_add (&builder, "{sv}", "workers", g_variant_builder_end (&workers));
  g_variant_builder_add (&builder, "{sv}", "slowest-items", g_variant_builder_end (&slowest));

  g_mutex_unlock (&self->mutex);

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static double
lookup_double (GVariantDict *dict,
               const char   *key)
{
  double value = 0;

  g_variant_dict_lookup (dict, key, "d", &value);
  return value;
}

/* A table for people, from wpool_insights_to_variant()'s dictionary. */
char *
wpool_insights_describe (GVariant *insights)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new (insights);
  g_autoptr(GVariant) workers = NULL;
  g_autoptr(GVariant) slowest = NULL;
  GString *out = g_string_new (NULL);
  guint64 n_completed = 0;
  guint32 n_maps = 0;
  GVariantIter iter;
  GVariant *worker;
  guint32 map;
  guint32 item;
  double duration;

  g_variant_dict_lookup (dict, "n-maps", "u", &n_maps);
  g_variant_dict_lookup (dict, "n-completed", "t", &n_completed);
  workers = g_variant_dict_lookup_value (dict, "workers", G_VARIANT_TYPE ("aa{sv}"));
  slowest = g_variant_dict_lookup_value (dict, "slowest-items", G_VARIANT_TYPE ("a(uud)"));

  g_string_append_printf (out,
                          "Insights: %u map%s, %" G_GUINT64_FORMAT " items\n"
                          "  start-up   %10.4f s\n"
                          "  working    %10.4f s\n"
                          "  waiting    %10.4f s\n"
                          "  transfer   %10.4f s\n"
                          "  efficiency %9.1f %%\n"
                          "  per item   %10.2f µs working, %.2f µs overhead\n"
                          "\n"
                          "  worker      items   working s   waiting s  transfer s\n",
                          n_maps, n_maps == 1 ? "" : "s", n_completed,
                          lookup_double (dict, "start-up-time"),
                          lookup_double (dict, "working-time"),
                          lookup_double (dict, "waiting-time"),
                          lookup_double (dict, "transfer-time"),
                          100 * lookup_double (dict, "efficiency"),
                          1e6 * lookup_double (dict, "working-time-per-item"),
                          1e6 * lookup_double (dict, "overhead-per-item"));

  if (workers != NULL)
    {
      g_variant_iter_init (&iter, workers);
      while ((worker = g_variant_iter_next_value (&iter)))
        {
          g_autoptr(GVariantDict) w = g_variant_dict_new (worker);
          guint32 id = 0;
          guint64 n = 0;

          g_variant_dict_lookup (w, "id", "u", &id);
          g_variant_dict_lookup (w, "n-completed", "t", &n);
          g_string_append_printf (out, "  %6u %10" G_GUINT64_FORMAT " %11.4f %11.4f %11.4f\n",
                                  id, n,
                                  lookup_double (w, "working-time"),
                                  lookup_double (w, "waiting-time"),
                                  lookup_double (w, "transfer-time"));
          g_variant_unref (worker);
        }
    }

  if (slowest != NULL && g_variant_n_children (slowest) > 0)
    {
      g_string_append (out, "\n  slowest items (map, item): duration\n");
      g_variant_iter_init (&iter, slowest);
      while (g_variant_iter_next (&iter, "(uud)", &map, &item, &duration))
        g_string_append_printf (out, "  %6u %10u: %.4f s\n", map, item, duration);
    }

  return g_string_free (out, FALSE);
}
