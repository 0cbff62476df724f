/* wpool-pool-progress.c: how far the maps of a WpoolPool are (n-completed,
 * n-total, eta, the progress signal) and what they cost (insights).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-insights-private.h"
#include "wpool-job-private.h"
#include "wpool-pool-private.h"

static guint64
wpool_pool_count_completed (WpoolPool *self)
{
  guint64 n = self->n_completed_finished;

  for (guint i = 0; i < self->running_jobs->len; i++)
    n += wpool_job_get_n_completed (self->running_jobs->pdata[i]);

  return n;
}

/* With the lock held: reports on @context what changed since the last
 * report. */
void
wpool_pool_report_progress (WpoolPool    *self,
                            GMainContext *context)
{
  guint64 n_completed = wpool_pool_count_completed (self);
  gdouble eta = self->eta;

  if (n_completed == self->n_completed_reported)
    return;

  __atomic_store_n (&self->n_completed_reported, n_completed, __ATOMIC_RELAXED);

  /* At the rate so far: MPIRE's progress bar does the same. */
  if (n_completed >= self->n_total)
    eta = 0;
  else if (n_completed > 0)
    eta = (g_get_monotonic_time () - self->busy_since) / (double)G_USEC_PER_SEC
          * (self->n_total - n_completed) / n_completed;
  __atomic_store (&self->eta, &eta, __ATOMIC_RELAXED);

  wpool_pool_emit (self, context, PROP_BIT (PROP_ETA) | PROP_BIT (PROP_N_COMPLETED) | EMIT_PROGRESS,
                   n_completed, self->n_total);
}

/* On the context of the maps: a thread that holds the lock (workers
 * starting for another map, say) delays the report to the next tick
 * rather than the main loop. */
gboolean
wpool_pool_progress_tick (gpointer data)
{
  WpoolPool *self = WPOOL_POOL (data);

  if (g_rec_mutex_trylock (&self->lock))
    {
      wpool_pool_report_progress (self, NULL);
      g_rec_mutex_unlock (&self->lock);
    }

  return G_SOURCE_CONTINUE;
}

void
wpool_pool_stop_progress (WpoolPool *self)
{
  if (self->progress_source == NULL)
    return;

  g_source_destroy (self->progress_source);
  g_clear_pointer (&self->progress_source, g_source_unref);
}

/**
 * wpool_pool_get_n_completed:
 * @self: a [class@Wpool.Pool]
 *
 * Gets how many items were completed, as last reported: see
 * [property@Wpool.Pool:n-completed].
 *
 * Returns: the items completed
 *
 * Since: 0.1
 */
guint64
wpool_pool_get_n_completed (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return __atomic_load_n (&self->n_completed_reported, __ATOMIC_RELAXED);
}

/**
 * wpool_pool_get_eta:
 * @self: a [class@Wpool.Pool]
 *
 * Gets [property@Wpool.Pool:eta].
 *
 * Returns: the estimated seconds left, or -1 if unknown
 *
 * Since: 0.1
 */
gdouble
wpool_pool_get_eta (WpoolPool *self)
{
  gdouble eta;

  g_return_val_if_fail (WPOOL_IS_POOL (self), -1);

  __atomic_load (&self->eta, &eta, __ATOMIC_RELAXED);

  return eta;
}

/**
 * wpool_pool_get_n_total:
 * @self: a [class@Wpool.Pool]
 *
 * Gets how many items the maps started since the pool was last idle have
 * in all: see [property@Wpool.Pool:n-total].
 *
 * Returns: the items in all
 *
 * Since: 0.1
 */
guint64
wpool_pool_get_n_total (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return __atomic_load_n (&self->n_total, __ATOMIC_RELAXED);
}

/**
 * wpool_pool_get_enable_insights:
 * @self: a [class@Wpool.Pool]
 *
 * Gets whether the workers measure where the time of a map goes.
 *
 * Returns: whether insights are on
 *
 * Since: 0.1
 */
gboolean
wpool_pool_get_enable_insights (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);

  return self->enable_insights;
}

/**
 * wpool_pool_set_enable_insights:
 * @self: a [class@Wpool.Pool]
 * @enable_insights: whether the workers measure where the time goes
 *
 * Sets [property@Wpool.Pool:enable-insights], for the maps started
 * afterwards.
 *
 * Since: 0.1
 */
void
wpool_pool_set_enable_insights (WpoolPool *self,
                                gboolean   enable_insights)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  enable_insights = !!enable_insights;
  if (self->enable_insights == enable_insights)
    return;

  self->enable_insights = enable_insights;
  wpool_pool_notify (self, PROP_ENABLE_INSIGHTS);
}

/**
 * wpool_pool_get_insights:
 * @self: a [class@Wpool.Pool]
 *
 * Gets where the time of the maps started since the pool was last idle
 * went, as MPIRE's `get_insights`, when
 * [property@Wpool.Pool:enable-insights] was set as they started. A
 * dictionary (`a{sv}`) of:
 *
 * - `n-maps` (`u`), `n-completed` (`t`): the maps and the items done;
 * - `start-up-time` (`d`): seconds spent starting or restarting workers;
 * - `working-time`, `waiting-time`, `transfer-time` (`d`): seconds all
 *   workers spent running items, waiting for them (taking chunks, idle
 *   while others finish), and, for worker processes, moving chunks and
 *   results through their sockets;
 * - `efficiency` (`d`): working time over the time the workers had,
 *   from the first map's start (less the start-up) to the last one's end;
 * - `working-time-per-item`, `overhead-per-item` (`d`): seconds per item
 *   spent running it, and spent otherwise of the time the workers had
 *   (moving chunks and results, the pool's bookkeeping, idling while
 *   others finish): what a larger chunk size or a chunk task may save;
 * - `workers` (`aa{sv}`): per worker, `id` (`u`), `n-completed` (`t`) and
 *   the three times;
 * - `slowest-items` (`a(uud)`): the five slowest items, as the map's
 *   number, the item's index and its seconds, slowest first.
 *
 * Read it while maps run or after they end. See
 * [method@Wpool.Pool.get_insights_summary] for a table to print.
 *
 * Returns: (transfer full) (nullable): the insights, or %NULL if none
 *   were measured
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_get_insights (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  return self->insights ? wpool_insights_to_variant (self->insights) : NULL;
}

/**
 * wpool_pool_get_insights_summary:
 * @self: a [class@Wpool.Pool]
 *
 * Gets [method@Wpool.Pool.get_insights] as a table for people, as MPIRE's
 * `print_insights` prints it.
 *
 * Returns: (transfer full) (nullable): the summary, or %NULL if no
 *   insights were measured
 *
 * Since: 0.1
 */
char *
wpool_pool_get_insights_summary (WpoolPool *self)
{
  g_autoptr(GVariant) insights = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  if (!(insights = wpool_pool_get_insights (self)))
    return NULL;

  return wpool_insights_describe (insights);
}
