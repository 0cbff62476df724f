/* wpool-job.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-insights-private.h"
#include "wpool-job-private.h"
#include "wpool-results-private.h"
#include "wpool-task-private.h"
#include "wpool-trace-private.h"
#include "wpool-variant-private.h"
#include "wpool-watchdog-private.h"
#include "wpool-worker-private.h"

struct _WpoolJob
{
  gatomicrefcount     ref_count;

  /* The caller's objects: released by wpool_job_end() on the caller's
   * thread, so that no destroy notify runs on a worker thread. */
  WpoolTask          *task;
  GCancellable       *cancellable;

  GVariant           *items;
  /* At most G_MAXINT: items are handed out and reported running as gint. */
  guint               n_items;
  /* The chunk size, or with guided chunks the smallest one. */
  guint               chunk_size;
  /* With guided chunks, the number of workers that share the items. */
  guint               n_guided;
  /* When the items have a fixed size: their type, size and data. */
  const GVariantType *item_type;
  gsize               item_size;
  const guint8       *item_data;

  /* Index of the next chunk to hand out, advanced atomically and never
   * past @n_items: workers take chunks as they become free, so uneven
   * items balance out. */
  gint                next;
  /* Under keep-going, the items of a worker that died or was abandoned
   * mid-chunk, pairs of [first, last) handed out again before the rest;
   * the error of each failed item; and who hears of finished items. */
  gboolean            keep_going;
  GArray             *requeued;
  gint                n_requeued;
  GError            **item_errors;
  WpoolJobSink        sink;
  gpointer            sink_data;
  WpoolJobPassOn      pass_on;
  gpointer            pass_on_data;

  /* Where the workers add what they measured, if insights are on, and
   * this map's number among those they cover. */
  WpoolInsights      *insights;
  guint               map_number;
  /* When it was made, for its Sysprof mark: 0 if no profiler listened. */
  gint64              trace_begin;
  /* Set once an error ends the hand-out. */
  gint                stopped;
  /* Workers still on the job. */
  gint                n_active;
  /* Items done, published by the workers now and then, for progress. */
  gint                n_completed;

  /* Each index set by the one worker that ran it, read after completion. */
  WpoolResults        results;

  /* The timeouts in µs, 0 for none. Workers in this process are watched
   * for them, and for the cancellation, by the watchdog, made as the job
   * begins under either or with a cancellable. */
  gint64              task_timeout;
  gint64              init_timeout;
  WpoolWatchdog      *watchdog;
  /* The cancellable's handler, which the job holds from its begin to its
   * end. */
  gulong              cancelled_id;

  GMutex              mutex;
  GCond               cond;
  GError             *error;
  gboolean            done;
  /* Whether wpool_job_wait() sleeps on the condition: a broadcast costs
   * a system call even when nobody waits. */
  gboolean            waiting;
  WpoolJobNotify      notify;
  gpointer            notify_data;
};

WpoolJob *
wpool_job_new (WpoolTask    *task,
               GVariant     *items,
               guint         chunk_size,
               guint         n_guided,
               gint64        task_timeout,
               gint64        init_timeout,
               gboolean      keep_going,
               GCancellable *cancellable)
{
  WpoolJob *self;

  g_assert (WPOOL_IS_TASK (task));
  g_assert (items != NULL && g_variant_is_of_type (items, G_VARIANT_TYPE_ARRAY));
  /* The pool refuses more, on the full count. */
  g_assert (g_variant_n_children (items) <= G_MAXINT);
  g_assert (chunk_size > 0);
  g_assert (!cancellable || G_IS_CANCELLABLE (cancellable));

  self = g_new0 (WpoolJob, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->task = g_object_ref (task);
  self->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  self->items = g_variant_ref_sink (items);
  self->n_items = (guint)g_variant_n_children (items);
  self->chunk_size = chunk_size;
  self->n_guided = n_guided;
  self->task_timeout = task_timeout;
  self->init_timeout = init_timeout;
  self->keep_going = keep_going;
  self->trace_begin = wpool_trace_now ();
  if (keep_going)
    {
      self->requeued = g_array_new (FALSE, FALSE, sizeof (guint));
      self->item_errors = g_new0 (GError *, MAX (self->n_items, 1));
    }
  self->item_type = g_variant_type_element (g_variant_get_type (items));
  if (self->n_items > 0 &&
      wpool_variant_type_get_fixed_size (self->item_type, &self->item_size))
    self->item_data = g_variant_get_data (items);
  wpool_results_init (&self->results, wpool_task_get_result_type (task), self->n_items);
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);

  return self;
}

WpoolJob *
wpool_job_ref (WpoolJob *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
wpool_job_unref (WpoolJob *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Released on the caller's thread already, unless the map never
   * started. */
  if (self->cancelled_id != 0)
    g_cancellable_disconnect (self->cancellable, self->cancelled_id);
  g_clear_object (&self->task);
  g_clear_object (&self->cancellable);

  wpool_results_clear (&self->results);
  g_clear_pointer (&self->items, g_variant_unref);
  g_clear_pointer (&self->watchdog, wpool_watchdog_free);
  g_clear_pointer (&self->requeued, g_array_unref);
  g_clear_pointer (&self->insights, wpool_insights_unref);
  if (self->item_errors != NULL)
    for (guint i = 0; i < self->n_items; i++)
      g_clear_error (&self->item_errors[i]);
  g_clear_pointer (&self->item_errors, g_free);
  g_clear_error (&self->error);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);
  g_free (self);
}

WpoolTask *
wpool_job_get_task (WpoolJob *self)
{
  return self->task;
}

GCancellable *
wpool_job_get_cancellable (WpoolJob *self)
{
  return self->cancellable;
}

const GVariantType *
wpool_job_get_result_type (WpoolJob *self)
{
  return self->results.type;
}

guint
wpool_job_get_n_items (WpoolJob *self)
{
  return self->n_items;
}

gint64
wpool_job_get_task_timeout (WpoolJob *self)
{
  return self->task_timeout;
}

gint64
wpool_job_get_trace_begin (WpoolJob *self)
{
  return self->trace_begin;
}

guint
wpool_job_get_n_completed (WpoolJob *self)
{
  return g_atomic_int_get (&self->n_completed);
}

void
wpool_job_add_completed (WpoolJob *self,
                         guint     n)
{
  g_atomic_int_add (&self->n_completed, (gint)n);
}

guint
wpool_job_get_n_chunks (WpoolJob *self)
{
  /* With guided chunks, at most this many. */
  return self->n_items / self->chunk_size + (self->n_items % self->chunk_size != 0);
}

static void
wpool_job_fail_locked (WpoolJob *self,
                       GError   *error)
{
  if (self->error == NULL)
    {
      self->error = g_steal_pointer (&error);
      g_atomic_int_set (&self->stopped, TRUE);
    }

  g_clear_error (&error);
}

/* The first error wins and stops the hand-out; later ones are dropped. */
void
wpool_job_fail (WpoolJob *self,
                GError   *error)
{
  g_mutex_lock (&self->mutex);
  wpool_job_fail_locked (self, error);
  g_mutex_unlock (&self->mutex);
}

gboolean
wpool_job_get_keep_going (WpoolJob *self)
{
  return self->keep_going;
}

/* Item @index failed with @error: under keep-going, only the item does;
 * otherwise the job does. */
void
wpool_job_fail_item (WpoolJob *self,
                     guint     index,
                     GError   *error)
{
  if (!self->keep_going)
    {
      wpool_job_fail (self, error);
      return;
    }

  /* An item run again after its worker died may fail anew. */
  g_mutex_lock (&self->mutex);
  g_clear_error (&self->item_errors[index]);
  self->item_errors[index] = error;
  g_mutex_unlock (&self->mutex);
}

/* Under keep-going, the items [first, last) of a worker that cannot run
 * them are handed out again; otherwise they are dropped with the job. */
gboolean
wpool_job_requeue (WpoolJob *self,
                   guint     first,
                   guint     last)
{
  if (!self->keep_going || first >= last)
    return FALSE;

  g_mutex_lock (&self->mutex);
  g_array_append_val (self->requeued, first);
  g_array_append_val (self->requeued, last);
  g_atomic_int_inc (&self->n_requeued);
  g_mutex_unlock (&self->mutex);

  return TRUE;
}

static gboolean
wpool_job_pop_requeued_locked (WpoolJob *self,
                               guint    *first,
                               guint    *last)
{
  if (self->requeued == NULL || self->requeued->len == 0)
    return FALSE;

  *first = g_array_index (self->requeued, guint, self->requeued->len - 2);
  *last = g_array_index (self->requeued, guint, self->requeued->len - 1);
  g_array_set_size (self->requeued, self->requeued->len - 2);
  g_atomic_int_add (&self->n_requeued, -1);

  return TRUE;
}

/* Who hears of items as they finish; set before the job begins. */
void
wpool_job_set_sink (WpoolJob     *self,
                    WpoolJobSink  sink,
                    gpointer      sink_data)
{
  self->sink = sink;
  self->sink_data = sink_data;
}

/* The results go into the caller's @buffer instead; set before the job
 * begins, for a fixed-size result type. */
void
wpool_job_set_results_buffer (WpoolJob *self,
                              gpointer  buffer)
{
  wpool_results_use_buffer (&self->results, buffer);
}

/* Turns insights on for this job; set before it begins. */
void
wpool_job_set_insights (WpoolJob      *self,
                        WpoolInsights *insights)
{
  self->insights = wpool_insights_ref (insights);
  self->map_number = wpool_insights_next_map (insights);
}

WpoolInsights *
wpool_job_get_insights (WpoolJob *self)
{
  return self->insights;
}

guint
wpool_job_get_map_number (WpoolJob *self)
{
  return self->map_number;
}

/* Who takes over the share of a worker abandoned with items left to run;
 * set before the job begins. */
void
wpool_job_set_pass_on (WpoolJob       *self,
                       WpoolJobPassOn  pass_on,
                       gpointer        pass_on_data)
{
  self->pass_on = pass_on;
  self->pass_on_data = pass_on_data;
}

/* The items [first, last) are finished: results or errors stored. */
void
wpool_job_deliver (WpoolJob *self,
                   guint     first,
                   guint     last)
{
  if (self->sink != NULL && first < last)
    self->sink (self, first, last, self->sink_data);
}

/* Item @index's outcome, for a sink, once delivered: its result, or
 * %NULL and its error. Each is taken once. */
GVariant *
wpool_job_take_outcome (WpoolJob  *self,
                        guint      index,
                        GError   **error)
{
  GError *item_error = NULL;

  if (self->item_errors != NULL)
    {
      g_mutex_lock (&self->mutex);
      item_error = g_steal_pointer (&self->item_errors[index]);
      g_mutex_unlock (&self->mutex);
    }

  if (item_error != NULL)
    {
      g_propagate_error (error, item_error);
      return NULL;
    }

  return wpool_results_steal (&self->results, index);
}

gboolean
wpool_job_should_stop (WpoolJob *self)
{
  GError *error = NULL;

  if (g_atomic_int_get (&self->stopped))
    return TRUE;

  if (g_cancellable_set_error_if_cancelled (self->cancellable, &error))
    {
      wpool_job_fail (self, error);
      return TRUE;
    }

  return FALSE;
}

/* How many items no worker was handed yet (those handed out again aside). */
guint
wpool_job_get_n_unclaimed (WpoolJob *self)
{
  guint next = (guint)g_atomic_int_get (&self->next);

  return next < self->n_items ? self->n_items - next : 0;
}

/* The next chunk to run, [first, last), unless the items are all handed
 * out or the job stopped. */
gboolean
wpool_job_next_chunk (WpoolJob *self,
                      guint    *first,
                      guint    *last)
{
  if (wpool_job_should_stop (self))
    return FALSE;

  if (g_atomic_int_get (&self->n_requeued) > 0)
    {
      gboolean found;

      g_mutex_lock (&self->mutex);
      found = wpool_job_pop_requeued_locked (self, first, last);
      g_mutex_unlock (&self->mutex);

      if (found)
        return TRUE;
    }

  /* Not an atomic add: every worker's last try would move @next past
   * the end, by a chunk each, and a large chunk size past G_MAXINT.
   * Guided, a chunk is a share of what is left, so chunks shrink as the
   * map ends: early ones are large (few round trips), the last ones
   * small, so that workers finish together even when items are uneven.
   * Sizes are bounded by what is left: @first + a size cannot wrap. */
  *first = (guint)g_atomic_int_get (&self->next);
  do
    {
      guint size = self->chunk_size;

      if (*first >= self->n_items)
        return FALSE;

      if (self->n_guided > 0)
        size = MAX ((self->n_items - *first) / (2 * self->n_guided), size);
      *last = *first + MIN (size, self->n_items - *first);
    }
  while (!g_atomic_int_compare_and_exchange_full (&self->next, (gint)*first, (gint)*last, (gint *)first));

  return TRUE;
}

/* The items [first, last) as an array of the items' type: a view for
 * fixed-size items, a new array otherwise. */
GVariant *
wpool_job_dup_chunk_items (WpoolJob *self,
                           guint     first,
                           guint     last)
{
  g_autofree GVariant **children = NULL;
  GVariant *ret;

  if (self->item_data != NULL)
    return g_variant_ref_sink (g_variant_new_from_data (g_variant_get_type (self->items),
                                                        self->item_data + (gsize)first * self->item_size,
                                                        (gsize)(last - first) * self->item_size,
                                                        FALSE,
                                                        (GDestroyNotify) g_variant_unref,
                                                        g_variant_ref (self->items)));

  children = g_new (GVariant *, last - first);
  for (guint i = first; i < last; i++)
    children[i - first] = g_variant_get_child_value (self->items, i);

  /* The children are not floating: the array takes references of its own. */
  ret = g_variant_ref_sink (g_variant_new_array (self->item_type, children, last - first));
  for (guint i = 0; i < last - first; i++)
    g_variant_unref (children[i]);

  return ret;
}

/* The results of the chunk [first, last), as a worker process sent them:
 * exactly one for each item, or none is taken. */
gboolean
wpool_job_take_chunk_results (WpoolJob  *self,
                              guint      first,
                              guint      last,
                              GVariant  *results,
                              GError   **error)
{
  gsize n = g_variant_is_container (results) ? g_variant_n_children (results) : 0;

  if (n != last - first)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "A worker sent %" G_GSIZE_FORMAT " results for the %u items from item %u",
                   n, last - first, first);
      return FALSE;
    }

  return wpool_results_take_array (&self->results, first, results, error);
}

/* The cancellable's handler, on the thread that cancels: workers in this
 * process are threads, which a cancellation cannot interrupt, so the
 * watchdog abandons those that run an item, as it does for the task
 * timeout, and the map ends at once. Workers in processes have no
 * runners: their drivers watch the cancellable and kill them. */
static void
wpool_job_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  WpoolJob *self = data;

  wpool_watchdog_cancel (self->watchdog);
}

static void wpool_job_runner_abandoned (const WpoolRunner *runner,
                                        gint               state,
                                        gboolean           cancelled,
                                        gpointer           data);

/* The number of workers that will each call wpool_job_worker_done() once.
 * With none, the job completes at once. */
void
wpool_job_begin (WpoolJob       *self,
                 guint           n_workers,
                 WpoolJobNotify  notify,
                 gpointer        notify_data)
{
  self->notify = notify;
  self->notify_data = notify_data;
  g_atomic_int_set (&self->n_active, n_workers + 1);

  if (self->task_timeout > 0 || self->init_timeout > 0 || self->cancellable != NULL)
    self->watchdog = wpool_watchdog_new (self->task_timeout, self->init_timeout,
                                         wpool_job_runner_abandoned, self);

  /* Called at once if cancelled already: no runner exists yet. */
  if (self->cancellable != NULL)
    self->cancelled_id = g_cancellable_connect (self->cancellable, G_CALLBACK (wpool_job_cancelled), self, NULL);

  wpool_job_worker_done (self);
}

/* The item @index of a chunk. g_variant_get_child_value() would take a
 * reference on the items' own buffer for every item, an atomic that all
 * workers contend for; fixed-size items instead share a reference on a
 * GBytes of their chunk, which only this worker touches. */
static GVariant *
wpool_job_get_item (WpoolJob *self,
                    GBytes   *chunk_bytes,
                    guint     index)
{
  const guint8 *data;

  if (chunk_bytes == NULL)
    return g_variant_get_child_value (self->items, index);

  data = self->item_data + (gsize)index * self->item_size;

  /* Untrusted, as the items may be: GVariant checks before relying on
   * normal form, which costs little for fixed-size values. */
  return g_variant_ref_sink (g_variant_new_from_data (self->item_type, data, self->item_size, FALSE,
                                                      (GDestroyNotify) g_bytes_unref,
                                                      g_bytes_ref (chunk_bytes)));
}

/* On the watchdog's thread: @runner was abandoned while it ran @state.
 * A cancellation fails the job, even under keep-going; a timeout fails
 * it, or under keep-going the item, whose chunk's items before it are
 * stored and after it are handed out again, to another worker if one can
 * take the share. */
static void
wpool_job_runner_abandoned (const WpoolRunner *runner,
                            gint               state,
                            gboolean           cancelled,
                            gpointer           data)
{
  WpoolJob *self = data;
  gboolean deliver = FALSE;
  gboolean pass_on = FALSE;
  guint after = 0;
  GError *error;

  g_mutex_lock (&self->mutex);
  if (cancelled)
    wpool_job_fail_locked (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "The map was cancelled; worker %u, a thread that "
                                              "cannot be stopped, was left to finish what it ran",
                                              runner->worker_id));
  else if (state == WPOOL_RUNNER_INIT)
    {
      wpool_trace_worker_lost (runner->worker_id, 0, 0, 0, TRUE, "its worker-init ran past the worker-init timeout");
      /* Under keep-going, no item was its: the others run them. */
      if (!self->keep_going)
        wpool_job_fail_locked (self, g_error_new (WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                                                  "Worker %u ran its worker-init for longer than the "
                                                  "worker-init timeout (%g s); a thread cannot be "
                                                  "stopped, so it was left to finish", runner->worker_id,
                                                  self->init_timeout / (double)G_USEC_PER_SEC));
    }
  else
    {
      error = g_error_new (WPOOL_ERROR, WPOOL_ERROR_TIMED_OUT,
                           "Item %d: worker %u ran it for longer than the task timeout "
                           "(%g s); a thread cannot be stopped, so it was left to "
                           "finish the item and its result will be dropped",
                           state, runner->worker_id,
                           self->task_timeout / (double)G_USEC_PER_SEC);
      wpool_trace_worker_lost (runner->worker_id, 0, runner->chunk_first, runner->chunk_last, TRUE, error->message);

      if (!self->keep_going)
        wpool_job_fail_locked (self, error);
      else
        {
          g_clear_error (&self->item_errors[state]);
          self->item_errors[state] = error;

          after = (guint)state + 1;
          if (after < runner->chunk_last)
            {
              g_array_append_val (self->requeued, after);
              g_array_append_val (self->requeued, runner->chunk_last);
              g_atomic_int_inc (&self->n_requeued);
              pass_on = self->pass_on != NULL;
            }
          deliver = TRUE;
        }
    }
  g_mutex_unlock (&self->mutex);

  /* Sinks take locks of their own: not under the job's. */
  if (deliver)
    wpool_job_deliver (self, runner->chunk_first, after);

  /* A share with items left goes on elsewhere; the others end. */
  if (!pass_on || !self->pass_on (self, runner->worker_id, self->pass_on_data))
    wpool_job_worker_done (self);
}

typedef enum
{
  ITEM_DONE,
  ITEM_FAILED,
  /* The watchdog abandoned the runner meanwhile: the result no longer
   * belongs to the job, which may be finished already. */
  ITEM_ABANDONED,
  /* Cancelled as it started, unseen by the watchdog: not run. */
  ITEM_SKIPPED,
} ItemOutcome;

/* After wpool_runner_start(): whether the job was cancelled meanwhile, in
 * which case the item must not run (see wpool_watchdog_is_cancelled()). */
static ItemOutcome
runner_check_cancelled (WpoolJob *self,
                        WpoolRunner   *runner,
                        gint      state)
{
  if (runner == NULL || !wpool_watchdog_is_cancelled (self->watchdog))
    return ITEM_DONE;

  return wpool_runner_finish (runner, state, WPOOL_RUNNER_IDLE) ? ITEM_SKIPPED : ITEM_ABANDONED;
}

/* Runs item @index on @worker and stores its result, or fails the job. */
static ItemOutcome
wpool_job_run_item (WpoolJob    *self,
                    WpoolWorker *worker,
                    WpoolRunner      *runner,
                    GVariant    *item,
                    guint        index)
{
  GError *error = NULL;
  GVariant *result;
  ItemOutcome outcome;

  wpool_runner_start (runner, (gint)index, self->task_timeout);
  if ((outcome = runner_check_cancelled (self, runner, (gint)index)) != ITEM_DONE)
    return outcome;
  result = wpool_worker_invoke (worker, self->task, item, index, self->results.type, &error);

  if (!wpool_runner_finish (runner, (gint)index, WPOOL_RUNNER_STORING))
    {
      g_clear_pointer (&result, g_variant_unref);
      g_clear_error (&error);
      return ITEM_ABANDONED;
    }

  if (result == NULL)
    wpool_job_fail_item (self, index, error);
  else
    /* Serialized or boxed here, in parallel, rather than one by one on
     * the caller's thread. */
    wpool_results_take (&self->results, index, result);

  wpool_runner_idle (runner);

  return result != NULL ? ITEM_DONE : ITEM_FAILED;
}

/* Runs the chunk [first, last) of a chunk task straight from the items'
 * buffer into the results', watched as one item for the timeout. */
static ItemOutcome
wpool_job_run_chunk_task (WpoolJob    *self,
                          WpoolWorker *worker,
                          WpoolRunner      *runner,
                          guint        first,
                          guint        last)
{
  GError *error = NULL;
  gboolean ok;
  ItemOutcome outcome;

  wpool_runner_start (runner, (gint)first, self->task_timeout);
  if ((outcome = runner_check_cancelled (self, runner, (gint)first)) != ITEM_DONE)
    return outcome;
  ok = wpool_worker_run_chunk (worker, self->task, self->item_data + (gsize)first * self->item_size,
                               first, last - first,
                               self->results.data + (gsize)first * self->results.fixed_size, &error);

  if (!wpool_runner_finish (runner, (gint)first, WPOOL_RUNNER_STORING))
    {
      g_clear_error (&error);
      return ITEM_ABANDONED;
    }

  /* Every item of a failed chunk fails with its error. */
  if (!ok && self->keep_going)
    {
      for (guint i = first; i < last; i++)
        wpool_job_fail_item (self, i, g_error_copy (error));
      g_clear_error (&error);
    }
  else if (!ok)
    wpool_job_fail (self, error);

  wpool_runner_idle (runner);

  return ok ? ITEM_DONE : ITEM_FAILED;
}

/* A worker's part of the job when it runs in this process, on the
 * worker's own thread: take chunks until none is left or an error or a
 * cancellation stops the hand-out, which is checked between items. */
WpoolShareOutcome
wpool_job_work (WpoolJob          *self,
                WpoolWorker       *worker,
                WpoolJobChunkDone  chunk_done,
                gpointer           chunk_done_data)
{
  WpoolShareOutcome ret = WPOOL_SHARE_DONE;
  WpoolRunner *runner = self->watchdog != NULL ? wpool_watchdog_add_runner (self->watchdog,
                                                                          wpool_worker_get_id (worker)) : NULL;
  WpoolShareInsights share = { 0, };
  guint first;
  guint last;
  guint done = 0;


  /* A worker thread's init runs before its first chunk, watched for the
   * init timeout; without one it runs with the first item. */
  if (runner != NULL && self->init_timeout > 0 && wpool_worker_has_init (worker))
    {
      ItemOutcome outcome;

      wpool_runner_start (runner, WPOOL_RUNNER_INIT, self->init_timeout);
      if ((outcome = runner_check_cancelled (self, runner, WPOOL_RUNNER_INIT)) == ITEM_ABANDONED)
        return WPOOL_SHARE_ABANDONED;
      /* Skipped, the share ends at its first chunk. */
      if (outcome == ITEM_DONE)
        {
          wpool_worker_run_init (worker, NULL);
          if (!wpool_runner_finish (runner, WPOOL_RUNNER_INIT, WPOOL_RUNNER_IDLE))
            return WPOOL_SHARE_ABANDONED;
        }
    }

  while (wpool_job_next_chunk (self, &first, &last))
    {
      g_autoptr(GBytes) chunk_bytes = NULL;
      gint64 trace_begin = wpool_trace_now ();
      guint i;

      /* Not a sub-GBytes of the items': g_bytes_new_from_bytes() would
       * reference their root buffer again. */
      if (self->item_data != NULL)
        chunk_bytes = g_bytes_new_with_free_func (self->item_data + (gsize)first * self->item_size,
                                                  (gsize)(last - first) * self->item_size,
                                                  (GDestroyNotify) g_variant_unref,
                                                  g_variant_ref (self->items));

      if (runner != NULL)
        {
          runner->chunk_first = first;
          runner->chunk_last = last;
        }

      if (wpool_task_is_chunk_task (self->task))
        {
          gint64 started = g_get_monotonic_time ();
          ItemOutcome outcome = wpool_job_run_chunk_task (self, worker, runner, first, last);

          if (outcome == ITEM_ABANDONED)
            return WPOOL_SHARE_ABANDONED;
          if (self->insights != NULL)
            wpool_insights_share_chunk (&share, self->map_number, first, last - first,
                                        g_get_monotonic_time () - started);
          i = outcome == ITEM_DONE || (outcome == ITEM_FAILED && self->keep_going) ? last : first;
          done = i - first;
        }
      else
        {
          for (i = first; i < last; i++)
            {
              g_autoptr(GVariant) item = NULL;
              ItemOutcome outcome;

              if (i > first && wpool_job_should_stop (self))
                break;

              item = wpool_job_get_item (self, chunk_bytes, i);
              if (self->insights == NULL)
                outcome = wpool_job_run_item (self, worker, runner, item, i);
              else
                {
                  gint64 started = g_get_monotonic_time ();

                  outcome = wpool_job_run_item (self, worker, runner, item, i);
                  wpool_insights_share_item (&share, self->map_number, i, g_get_monotonic_time () - started);
                }
              if (outcome == ITEM_ABANDONED)
                return WPOOL_SHARE_ABANDONED;
              if (outcome == ITEM_SKIPPED || (outcome == ITEM_FAILED && !self->keep_going))
                break;

              /* Published in batches: one counter for all workers would be a
               * contended cache line on every item. */
              if (++done == 64)
                {
                  wpool_job_add_completed (self, done);
                  done = 0;
                }
            }
        }

      wpool_job_add_completed (self, done);
      done = 0;
      wpool_trace_chunk (trace_begin, wpool_worker_get_id (worker), 0, first, last, i - first);
      wpool_job_deliver (self, first, i);

      if (chunk_done != NULL && chunk_done (chunk_done_data))
        {
          ret = WPOOL_SHARE_RESTART;
          break;
        }
    }

  if (self->insights != NULL)
    wpool_insights_share_end (self->insights, wpool_worker_get_id (worker), &share);

  return ret;
}

/* Whether the watchdog abandoned worker @worker_id. */
gboolean
wpool_job_is_abandoned (WpoolJob *self,
                        guint     worker_id)
{
  return self->watchdog != NULL && wpool_watchdog_is_abandoned (self->watchdog, worker_id);
}

/* On the caller's thread, once the job is done: the ids of the workers
 * abandoned for the task timeout, which still run an item of it. */
const guint *
wpool_job_get_abandoned (WpoolJob *self,
                         guint    *n_abandoned)
{
  g_assert (self->done);

  *n_abandoned = 0;
  return self->watchdog != NULL ? wpool_watchdog_get_abandoned (self->watchdog, n_abandoned) : NULL;
}

/* Under keep-going, once every worker is done: the items nobody could
 * run, as every worker able to died or was abandoned, fail one by one. */
static void
wpool_job_fail_left_over (WpoolJob *self)
{
  g_autoptr(GArray) left = g_array_new (FALSE, FALSE, sizeof (guint));
  guint first;
  guint last;

  g_mutex_lock (&self->mutex);

  if ((first = (guint)g_atomic_int_get (&self->next)) < self->n_items)
    {
      g_array_append_val (left, first);
      g_array_append_val (left, self->n_items);
      g_atomic_int_set (&self->next, (gint)self->n_items);
    }

  while (wpool_job_pop_requeued_locked (self, &first, &last))
    {
      g_array_append_val (left, first);
      g_array_append_val (left, last);
    }

  for (guint r = 0; r < left->len; r += 2)
    for (guint i = g_array_index (left, guint, r); i < g_array_index (left, guint, r + 1); i++)
      {
        g_clear_error (&self->item_errors[i]);
        self->item_errors[i] = g_error_new (WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                                            "Item %u: no live worker was left to run it", i);
      }

  g_mutex_unlock (&self->mutex);

  for (guint r = 0; r < left->len; r += 2)
    {
      wpool_job_add_completed (self, g_array_index (left, guint, r + 1) - g_array_index (left, guint, r));
      wpool_job_deliver (self, g_array_index (left, guint, r), g_array_index (left, guint, r + 1));
    }
}

void
wpool_job_worker_done (WpoolJob *self)
{
  gboolean waiting;

  if (!g_atomic_int_dec_and_test (&self->n_active))
    return;

  if (self->keep_going && !g_atomic_int_get (&self->stopped))
    wpool_job_fail_left_over (self);

  g_mutex_lock (&self->mutex);
  self->done = TRUE;
  waiting = self->waiting;
  g_mutex_unlock (&self->mutex);

  if (self->watchdog != NULL)
    wpool_watchdog_stop (self->watchdog);

  /* After the unlock, so that the woken caller does not block at once on
   * the mutex this thread still holds (a second wake-up per map). The
   * job is alive: whoever calls this holds a reference. */
  if (waiting)
    g_cond_broadcast (&self->cond);

  if (self->notify != NULL)
    self->notify (self, self->notify_data);
}

void
wpool_job_wait (WpoolJob *self)
{
  g_mutex_lock (&self->mutex);
  while (!self->done)
    {
      self->waiting = TRUE;
      g_cond_wait (&self->cond, &self->mutex);
    }
  g_mutex_unlock (&self->mutex);
}

/* On the caller's thread, once the job is done: whether it succeeded,
 * or its first error. Under keep-going, failed items do not fail it. */
gboolean
wpool_job_end (WpoolJob  *self,
               GError   **error)
{
  g_autoptr(GCancellable) cancellable = g_steal_pointer (&self->cancellable);
  guint n_abandoned;

  g_assert (self->done);

  /* Waits for the handler if it runs on another thread. */
  if (self->cancelled_id != 0)
    g_cancellable_disconnect (cancellable, self->cancelled_id);
  self->cancelled_id = 0;

  if (self->watchdog != NULL)
    wpool_watchdog_join (self->watchdog);

  /* An abandoned worker still runs the task: it is released with the
   * job's last reference, when that worker lets go. */
  if (self->watchdog == NULL || wpool_watchdog_get_abandoned (self->watchdog, &n_abandoned) == NULL)
    g_clear_object (&self->task);

  if (self->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->error));
      return FALSE;
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  /* Items nobody took, without an error: every worker had died before
   * this map, and none could be replaced while other maps ran. Their
   * results were never written. */
  if ((guint)g_atomic_int_get (&self->next) < self->n_items)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKER_DIED,
                   "Item %d: no live worker took it; the workers died in an earlier map "
                   "and are replaced once no map runs",
                   g_atomic_int_get (&self->next));
      return FALSE;
    }

  return TRUE;
}

/* The results as `a<T>` or `av` in input order, once the job ended
 * well, unless a sink took them. */
GVariant *
wpool_job_steal_results (WpoolJob *self)
{
  g_assert (self->done && self->sink == NULL);

  return wpool_results_end (&self->results);
}
