/* wpool-map-stream.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-map-stream-private.h"
#include "wpool-pool-private.h"

/**
 * WpoolMapStream:
 *
 * The outcomes of a map started with wpool_pool_imap(), handed out one
 * by one while the map runs, as MPIRE's `imap` and `imap_unordered` do:
 * in input order, or as they complete with %WPOOL_MAP_FLAGS_UNORDERED.
 *
 * Read it with wpool_map_stream_next() in a thread that may block, or
 * with wpool_map_stream_next_async() from a main loop: each outcome then
 * arrives on the caller's thread-default main context. Workers hand
 * outcomes over a chunk at a time: a smaller #WpoolPool:chunk-size brings
 * them sooner.
 *
 * Use a stream from the thread that started it. Dropping it before its
 * end stops the map, as cancelling it would, and waits for the items that
 * run.
 */

struct _WpoolMapStream
{
  GObject        parent_instance;

  WpoolPool     *pool;
  WpoolJob      *job;
  WpoolMapFlags  flags;
  guint          n_items;

  /* Filled by the workers' threads through the job's sink. In order: the
   * items finished, and the next to hand out. Unordered: the finished
   * items as pairs of [first, last), from @ready_head on. */
  GMutex         mutex;
  GCond          cond;
  guint8        *finished;
  guint          next_index;
  GArray        *ready;
  guint          ready_head;
  gboolean       job_done;

  /* An asynchronous next waiting for an outcome, and whether an idle on
   * its context is on the way to complete it. */
  GTask         *pending;
  gulong         cancelled_id;
  gboolean       idle_scheduled;

  /* Whether the map started, and whether it ended (its outcome given). */
  guint          started : 1;
  guint          ended : 1;
};

G_DEFINE_FINAL_TYPE (WpoolMapStream, wpool_map_stream, G_TYPE_OBJECT)

/* Ends the map on the caller's thread once its job is done: FALSE with
 * its error the first time, FALSE without one afterwards. */
static gboolean
wpool_map_stream_end (WpoolMapStream  *self,
                      GError         **error)
{
  if (self->ended)
    return TRUE;

  self->ended = TRUE;

  return wpool_pool_end_job (self->pool, self->job, error);
}

static void
wpool_map_stream_dispose (GObject *object)
{
  WpoolMapStream *self = (WpoolMapStream *)object;

  /* Dropped before its end: the map stops, and is waited for, as the
   * pool must not keep a job nobody ends. */
  if (self->started && !self->ended)
    {
      wpool_job_fail (self->job, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                      "The map's stream was dropped"));
      wpool_job_wait (self->job);
      wpool_map_stream_end (self, NULL);
    }

  g_clear_object (&self->pool);

  G_OBJECT_CLASS (wpool_map_stream_parent_class)->dispose (object);
}

static void
wpool_map_stream_finalize (GObject *object)
{
  WpoolMapStream *self = (WpoolMapStream *)object;

  g_assert (self->pending == NULL);

  g_clear_pointer (&self->job, wpool_job_unref);
  g_clear_pointer (&self->finished, g_free);
  g_clear_pointer (&self->ready, g_array_unref);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (wpool_map_stream_parent_class)->finalize (object);
}

static void
wpool_map_stream_class_init (WpoolMapStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = wpool_map_stream_dispose;
  object_class->finalize = wpool_map_stream_finalize;
}

static void
wpool_map_stream_init (WpoolMapStream *self)
{
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
}

/* The next finished item to hand out, if any. */
static gboolean
wpool_map_stream_take_ready_locked (WpoolMapStream *self,
                                    guint          *index)
{
  if (self->finished != NULL)
    {
      if (self->next_index >= self->n_items || !self->finished[self->next_index])
        return FALSE;

      *index = self->next_index++;
      return TRUE;
    }

  if (self->ready_head >= self->ready->len)
    return FALSE;

  *index = g_array_index (self->ready, guint, self->ready_head);
  if (++g_array_index (self->ready, guint, self->ready_head) == g_array_index (self->ready, guint, self->ready_head + 1))
    self->ready_head += 2;

  /* Consumed ranges are dropped now and then, not one by one. */
  if (self->ready_head == self->ready->len)
    {
      g_array_set_size (self->ready, 0);
      self->ready_head = 0;
    }

  return TRUE;
}

static gboolean
wpool_map_stream_can_answer_locked (WpoolMapStream *self)
{
  if (self->job_done)
    return TRUE;

  if (self->finished != NULL)
    return self->next_index < self->n_items && self->finished[self->next_index];

  return self->ready_head < self->ready->len;
}

static gboolean wpool_map_stream_complete_pending (gpointer data);

/* Completes a waiting asynchronous next on its own context, from any
 * thread. */
static void
wpool_map_stream_schedule_locked (WpoolMapStream *self)
{
  g_autoptr(GSource) source = NULL;

  if (self->pending == NULL || self->idle_scheduled)
    return;

  if (!wpool_map_stream_can_answer_locked (self) &&
      !g_cancellable_is_cancelled (g_task_get_cancellable (self->pending)))
    return;

  self->idle_scheduled = TRUE;
  source = g_idle_source_new ();
  g_source_set_priority (source, g_task_get_priority (self->pending));
  g_source_set_static_name (source, "[wpool] map stream next");
  g_source_set_callback (source, wpool_map_stream_complete_pending, g_object_ref (self), g_object_unref);
  g_source_attach (source, g_task_get_context (self->pending));
}

/* The job's sink, on a worker's thread. */
static void
wpool_map_stream_sink (WpoolJob *job,
                       guint     first,
                       guint     last,
                       gpointer  data)
{
  WpoolMapStream *self = data;

  g_mutex_lock (&self->mutex);

  if (self->finished != NULL)
    {
      for (guint i = first; i < last; i++)
        self->finished[i] = TRUE;
    }
  else
    {
      g_array_append_val (self->ready, first);
      g_array_append_val (self->ready, last);
    }

  g_cond_broadcast (&self->cond);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);
}

/* The job's completion, on the last worker's thread. */
static void
wpool_map_stream_job_done (WpoolJob *job,
                           gpointer  data)
{
  WpoolMapStream *self = data;

  g_mutex_lock (&self->mutex);
  self->job_done = TRUE;
  g_cond_broadcast (&self->cond);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);
}

/* Makes the stream of @job, which starts through
 * wpool_map_stream_get_notify() and wpool_map_stream_started(). */
WpoolMapStream *
wpool_map_stream_new (WpoolPool     *pool,
                      WpoolJob      *job,
                      WpoolMapFlags  flags)
{
  WpoolMapStream *self = g_object_new (WPOOL_TYPE_MAP_STREAM, NULL);

  self->pool = g_object_ref (pool);
  self->job = wpool_job_ref (job);
  self->flags = flags;
  self->n_items = wpool_job_get_n_items (job);

  if (flags & WPOOL_MAP_FLAGS_UNORDERED)
    self->ready = g_array_new (FALSE, FALSE, sizeof (guint));
  else
    self->finished = g_new0 (guint8, MAX (self->n_items, 1));

  /* The stream outlives its job's workers: it ends the map itself. */
  wpool_job_set_sink (job, wpool_map_stream_sink, self);

  return self;
}

WpoolJobNotify
wpool_map_stream_get_notify (void)
{
  return wpool_map_stream_job_done;
}

void
wpool_map_stream_started (WpoolMapStream *self)
{
  self->started = TRUE;
}

/* One outcome, or the end, once the stream can answer without blocking
 * or, with @block, once it can. */
static gboolean
wpool_map_stream_answer (WpoolMapStream  *self,
                         gboolean         block,
                         guint           *index,
                         GVariant       **result,
                         GError         **item_error,
                         GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GVariant) value = NULL;
  gboolean found;
  gboolean job_done;
  guint i = G_MAXUINT;

  g_mutex_lock (&self->mutex);
  while (!(found = wpool_map_stream_take_ready_locked (self, &i)) && !self->job_done && block)
    g_cond_wait (&self->cond, &self->mutex);
  job_done = self->job_done;
  g_mutex_unlock (&self->mutex);

  if (index != NULL)
    *index = i;
  if (result != NULL)
    *result = NULL;

  if (!found && !job_done)
    {
      /* Only when a blocking next took the outcome meanwhile. */
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           "The outcome was taken by another next");
      return FALSE;
    }

  if (!found)
    {
      wpool_map_stream_end (self, error);
      return FALSE;
    }

  if ((value = wpool_job_take_outcome (self->job, i, &local_error)) == NULL)
    g_propagate_error (item_error, g_steal_pointer (&local_error));
  else if (result != NULL)
    *result = g_steal_pointer (&value);

  return TRUE;
}

/**
 * wpool_map_stream_get_n_items:
 * @self: a #WpoolMapStream
 *
 * Gets the number of items of the map, and so of outcomes the stream
 * hands out unless the map fails.
 *
 * Returns: the number of items
 */
guint
wpool_map_stream_get_n_items (WpoolMapStream *self)
{
  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), 0);

  return self->n_items;
}

/**
 * wpool_map_stream_get_flags:
 * @self: a #WpoolMapStream
 *
 * Gets the flags the map was started with.
 *
 * Returns: the flags
 */
WpoolMapFlags
wpool_map_stream_get_flags (WpoolMapStream *self)
{
  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), 0);

  return self->flags;
}

/**
 * wpool_map_stream_next:
 * @self: a #WpoolMapStream
 * @index: (out) (optional): return location for the item's index
 * @result: (out) (optional) (nullable) (transfer full): return location
 *   for the item's result, as the task returned it
 * @item_error: (out) (optional) (nullable) (transfer full): return
 *   location for the item's error, under %WPOOL_MAP_FLAGS_KEEP_GOING
 * @error: return location for the map's #GError
 *
 * Waits for the next outcome of the map and hands it out: in input order,
 * or as items complete under %WPOOL_MAP_FLAGS_UNORDERED. This blocks the
 * calling thread: from a main loop, use wpool_map_stream_next_async().
 *
 * An outcome is the item's @result, or under %WPOOL_MAP_FLAGS_KEEP_GOING
 * the item's @item_error with @result %NULL. Once every outcome was
 * handed out, or the map failed, the stream ends: this returns %FALSE,
 * with @error set the first time if the map failed (the first error, or
 * %G_IO_ERROR_CANCELLED), and @index %G_MAXUINT. Without
 * %WPOOL_MAP_FLAGS_KEEP_GOING, the outcomes before the failed item in
 * input order (or those finished, unordered) still come first.
 *
 * Returns: %TRUE with an outcome, %FALSE at the end
 */
gboolean
wpool_map_stream_next (WpoolMapStream  *self,
                       guint           *index,
                       GVariant       **result,
                       GError         **item_error,
                       GError         **error)
{
  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), FALSE);
  g_return_val_if_fail (item_error == NULL || *item_error == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return wpool_map_stream_answer (self, TRUE, index, result, item_error, error);
}

typedef struct
{
  gboolean  found;
  guint     index;
  GVariant *result;
  GError   *item_error;
} Outcome;

static void
outcome_free (Outcome *outcome)
{
  g_clear_pointer (&outcome->result, g_variant_unref);
  g_clear_error (&outcome->item_error);
  g_free (outcome);
}

static gboolean
wpool_map_stream_complete_pending (gpointer data)
{
  WpoolMapStream *self = data;
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Outcome *outcome;

  gulong cancelled_id;

  g_mutex_lock (&self->mutex);
  task = g_steal_pointer (&self->pending);
  cancelled_id = self->cancelled_id;
  self->cancelled_id = 0;
  self->idle_scheduled = FALSE;
  g_mutex_unlock (&self->mutex);

  if (task == NULL)
    return G_SOURCE_REMOVE;

  g_cancellable_disconnect (g_task_get_cancellable (task), cancelled_id);

  if (g_task_return_error_if_cancelled (task))
    return G_SOURCE_REMOVE;

  outcome = g_new0 (Outcome, 1);
  outcome->found = wpool_map_stream_answer (self, FALSE, &outcome->index, &outcome->result,
                                            &outcome->item_error, &error);
  if (error != NULL)
    {
      outcome_free (outcome);
      g_task_return_error (task, error);
    }
  else
    {
      g_task_return_pointer (task, outcome, (GDestroyNotify) outcome_free);
    }

  return G_SOURCE_REMOVE;
}

static void
wpool_map_stream_next_cancelled (GCancellable *cancellable,
                                 gpointer      data)
{
  WpoolMapStream *self = data;

  g_mutex_lock (&self->mutex);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);
}

/**
 * wpool_map_stream_next_async:
 * @self: a #WpoolMapStream
 * @cancellable: (nullable): a #GCancellable, which cancels this wait, not
 *   the map
 * @callback: (scope async): called with the next outcome
 * @user_data: data for @callback
 *
 * Waits for the next outcome of the map without blocking. @callback runs
 * on the caller's thread-default main context; call
 * wpool_map_stream_next_finish() from it. Only one wait may be pending at
 * a time.
 */
void
wpool_map_stream_next_async (WpoolMapStream      *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (WPOOL_IS_MAP_STREAM (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, wpool_map_stream_next_async);
  g_task_set_name (task, "[wpool] map stream next");

  g_mutex_lock (&self->mutex);
  if (self->pending != NULL)
    {
      g_mutex_unlock (&self->mutex);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The stream already has a pending next");
      return;
    }
  self->pending = g_object_ref (task);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);

  /* Connected after the task is pending: a cancellation schedules it.
   * Disconnected when it completes, which holds a reference to us. */
  if (cancellable != NULL)
    {
      gulong id = g_cancellable_connect (cancellable, G_CALLBACK (wpool_map_stream_next_cancelled), self, NULL);

      g_mutex_lock (&self->mutex);
      self->cancelled_id = id;
      g_mutex_unlock (&self->mutex);
    }
}

/**
 * wpool_map_stream_next_finish:
 * @self: a #WpoolMapStream
 * @result: the #GAsyncResult given to the callback
 * @index: (out) (optional): return location for the item's index
 * @item_result: (out) (optional) (nullable) (transfer full): return
 *   location for the item's result
 * @item_error: (out) (optional) (nullable) (transfer full): return
 *   location for the item's error, under %WPOOL_MAP_FLAGS_KEEP_GOING
 * @error: return location for the map's #GError
 *
 * Finishes wpool_map_stream_next_async(), as wpool_map_stream_next()
 * returns.
 *
 * Returns: %TRUE with an outcome, %FALSE at the end
 */
gboolean
wpool_map_stream_next_finish (WpoolMapStream  *self,
                              GAsyncResult    *result,
                              guint           *index,
                              GVariant       **item_result,
                              GError         **item_error,
                              GError         **error)
{
  Outcome *outcome;
  gboolean found;

  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (item_error == NULL || *item_error == NULL, FALSE);

  if (index != NULL)
    *index = G_MAXUINT;
  if (item_result != NULL)
    *item_result = NULL;

  if (!(outcome = g_task_propagate_pointer (G_TASK (result), error)))
    return FALSE;

  found = outcome->found;
  if (index != NULL)
    *index = outcome->index;
  if (item_result != NULL)
    *item_result = g_steal_pointer (&outcome->result);
  if (outcome->item_error != NULL)
    g_propagate_error (item_error, g_steal_pointer (&outcome->item_error));

  outcome_free (outcome);

  return found;
}
