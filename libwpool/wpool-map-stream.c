/* wpool-map-stream.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "wpool-error.h"
#include "wpool-map-stream-private.h"

/**
 * WpoolMapStream:
 *
 * The outcomes of a map started with [method@Wpool.Pool.imap] or
 * [method@Wpool.Pool.imap_source], handed out one by one while the map
 * runs, as MPIRE's `imap` and `imap_unordered` do: in input order, or as
 * they complete with %WPOOL_MAP_FLAGS_UNORDERED.
 *
 * Read it with [method@Wpool.MapStream.next] in a thread that may block, or
 * with [method@Wpool.MapStream.next_async] from a main loop: each outcome
 * then arrives on the caller's thread-default main context. Workers hand
 * outcomes over a chunk at a time: a smaller
 * [property@Wpool.Pool:chunk-size] brings them sooner.
 *
 * Use a stream from the thread that started it. Dropping it before its
 * end stops the map as cancelling it does, at once: the items that run
 * are not waited for (see [method@Wpool.Pool.map]).
 *
 * Since: 0.1
 */

/* One map of the stream: all its items, or a window of those a source
 * gives, whose outcomes are numbered from @base. */
typedef struct
{
  WpoolMapStream *stream;
  WpoolJob       *job;
  guint           base;
  guint           n_items;

  /* Filled by the workers' threads through the job's sink. In order: the
   * items finished, and the next to hand out. Unordered: the finished
   * items as pairs of [first, last), from @ready_head on. */
  guint8         *finished;
  guint           next_index;
  GArray         *ready;
  guint           ready_head;
  gboolean        job_done;
} Window;

struct _WpoolMapStream
{
  GObject          parent_instance;
  /* The process that made the stream (see wpool_map_stream_dispose()). */
  pid_t            owner;

  WpoolPool       *pool;
  WpoolTask       *task;
  const WpoolMapStreamOps *ops;
  GCancellable    *cancellable;
  /* What its maps run under: cancelled by @cancellable, through
   * @chained_id, and when the stream stops early. */
  GCancellable    *map_cancellable;
  gulong           chained_id;
  WpoolMapFlags    flags;
  guint            n_items;

  /* Where further items come from, if anywhere: pulled on the caller's
   * thread a window at a time, with one window ahead. */
  WpoolItemSource  source;
  gpointer         source_data;
  GDestroyNotify   source_destroy;
  guint            window_size;
  GVariantType    *item_type;
  gboolean         source_done;

  /* The windows whose outcomes are not all handed out, in order; their
   * fields that workers fill are guarded by @mutex. */
  GMutex           mutex;
  GCond            cond;
  GQueue           windows;

  /* An asynchronous next waiting for an outcome, and whether an idle on
   * its context is on the way to complete it. */
  GTask           *pending;
  gulong           cancelled_id;
  gboolean         idle_scheduled;

  /* Whether the stream ended, its error (if any) told. */
  gboolean         ended;
};

G_DEFINE_FINAL_TYPE (WpoolMapStream, wpool_map_stream, G_TYPE_OBJECT)

static void
window_free (Window *window)
{
  g_clear_pointer (&window->job, wpool_job_unref);
  g_clear_pointer (&window->finished, g_free);
  g_clear_pointer (&window->ready, g_array_unref);
  g_free (window);
}

/* Ends the map of @window on the caller's thread once its job is done,
 * and forgets the window: FALSE with the map's error. */
static gboolean
wpool_map_stream_end_window (WpoolMapStream  *self,
                             Window          *window,
                             GError         **error)
{
  gboolean ret = self->ops->end_job (self->pool, window->job, error);

  g_mutex_lock (&self->mutex);
  g_queue_remove (&self->windows, window);
  g_mutex_unlock (&self->mutex);
  window_free (window);

  return ret;
}

/* Stops and ends every window left: the stream ended early. Cancelled,
 * their maps end at once, their running items abandoned or killed. */
static void
wpool_map_stream_stop (WpoolMapStream *self)
{
  Window *window;

  g_cancellable_cancel (self->map_cancellable);

  while ((window = g_queue_peek_head (&self->windows)))
    {
      /* Not wpool_job_wait(): the job's notify, which touches the window,
       * runs after the job is done. */
      g_mutex_lock (&self->mutex);
      while (!window->job_done)
        g_cond_wait (&self->cond, &self->mutex);
      g_mutex_unlock (&self->mutex);

      wpool_map_stream_end_window (self, window, NULL);
    }
}

static void
wpool_map_stream_clear_source (WpoolMapStream *self)
{
  GDestroyNotify destroy = self->source_destroy;
  gpointer data = self->source_data;

  self->source = NULL;
  self->source_data = NULL;
  self->source_destroy = NULL;
  self->source_done = TRUE;

  if (destroy != NULL)
    destroy (data);
}

static void
wpool_map_stream_dispose (GObject *object)
{
  WpoolMapStream *self = (WpoolMapStream *)object;

  /* A forked worker's copy of its parent's stream: as its pool's (see
   * wpool_pool_dispose()), not the worker's to stop. */
  if (self->owner != getpid ())
    {
      G_OBJECT_CLASS (wpool_map_stream_parent_class)->dispose (object);
      return;
    }

  /* Dropped before its end: its maps stop, and are waited for, as the
   * pool must not keep jobs nobody ends. */
  wpool_map_stream_stop (self);
  wpool_map_stream_clear_source (self);
  g_clear_object (&self->pool);
  g_clear_object (&self->task);
  if (self->chained_id != 0)
    g_cancellable_disconnect (self->cancellable, self->chained_id);
  self->chained_id = 0;
  g_clear_object (&self->cancellable);
  g_clear_object (&self->map_cancellable);

  G_OBJECT_CLASS (wpool_map_stream_parent_class)->dispose (object);
}

static void
wpool_map_stream_finalize (GObject *object)
{
  WpoolMapStream *self = (WpoolMapStream *)object;

  if (self->owner != getpid ())
    {
      G_OBJECT_CLASS (wpool_map_stream_parent_class)->finalize (object);
      return;
    }

  g_assert (self->pending == NULL);

  g_clear_pointer (&self->item_type, g_variant_type_free);
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
  self->owner = getpid ();
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
  g_queue_init (&self->windows);
}

/* Whether @window has a finished item to hand out. */
static gboolean
window_has_ready_locked (Window *window)
{
  if (window->finished != NULL)
    return window->next_index < window->n_items && window->finished[window->next_index];

  return window->ready_head < window->ready->len;
}

/* Takes the next finished item of @window, which has one. */
static guint
window_take_ready_locked (Window *window)
{
  guint index;

  if (window->finished != NULL)
    return window->next_index++;

  index = g_array_index (window->ready, guint, window->ready_head);
  if (++g_array_index (window->ready, guint, window->ready_head) == g_array_index (window->ready, guint, window->ready_head + 1))
    window->ready_head += 2;

  /* Consumed ranges are dropped now and then, not one by one. */
  if (window->ready_head == window->ready->len)
    {
      g_array_set_size (window->ready, 0);
      window->ready_head = 0;
    }

  return index;
}

/* The window whose outcome comes next, if one is finished: the first
 * window, in order; any, unordered. */
static Window *
wpool_map_stream_find_ready_locked (WpoolMapStream *self)
{
  for (GList *l = self->windows.head; l != NULL; l = l->next)
    {
      if (window_has_ready_locked (l->data))
        return l->data;

      if (!(self->flags & WPOOL_MAP_FLAGS_UNORDERED))
        break;
    }

  return NULL;
}

/* Whether the first window can be ended: its job is done and it has
 * nothing more to hand out. */
static gboolean
wpool_map_stream_head_finished_locked (WpoolMapStream *self)
{
  Window *head = g_queue_peek_head (&self->windows);

  return head != NULL && head->job_done && !window_has_ready_locked (head);
}

static gboolean
wpool_map_stream_can_answer_locked (WpoolMapStream *self)
{
  return g_queue_is_empty (&self->windows) ||
         wpool_map_stream_head_finished_locked (self) ||
         wpool_map_stream_find_ready_locked (self) != NULL;
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

/* A window's job's sink, on a worker's thread. */
static void
wpool_map_stream_sink (WpoolJob *job,
                       guint     first,
                       guint     last,
                       gpointer  data)
{
  Window *window = data;
  WpoolMapStream *self = window->stream;

  g_mutex_lock (&self->mutex);

  if (window->finished != NULL)
    {
      for (guint i = first; i < last; i++)
        window->finished[i] = TRUE;
    }
  else
    {
      g_array_append_val (window->ready, first);
      g_array_append_val (window->ready, last);
    }

  g_cond_broadcast (&self->cond);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);
}

/* A window's job's completion, on the last worker's thread. */
void
wpool_map_stream_window_done (WpoolJob *job,
                              gpointer  data)
{
  Window *window = data;
  WpoolMapStream *self = window->stream;

  g_mutex_lock (&self->mutex);
  window->job_done = TRUE;
  g_cond_broadcast (&self->cond);
  wpool_map_stream_schedule_locked (self);
  g_mutex_unlock (&self->mutex);
}

static void
cancel_chained (GCancellable *cancellable,
                gpointer      map_cancellable)
{
  g_cancellable_cancel (map_cancellable);
}

/* A stream for maps of @task on @pool, whose windows the pool adds. */
WpoolMapStream *
wpool_map_stream_new (WpoolPool               *pool,
                      WpoolTask               *task,
                      WpoolMapFlags            flags,
                      GCancellable            *cancellable,
                      const WpoolMapStreamOps *ops)
{
  WpoolMapStream *self = g_object_new (WPOOL_TYPE_MAP_STREAM, NULL);

  self->ops = ops;
  self->pool = g_object_ref (pool);
  self->task = g_object_ref (task);
  self->map_cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      self->cancellable = g_object_ref (cancellable);
      /* Cancels at once if cancelled already. */
      self->chained_id = g_cancellable_connect (cancellable, G_CALLBACK (cancel_chained),
                                                g_object_ref (self->map_cancellable), g_object_unref);
    }
  self->flags = flags;
  self->source_done = TRUE;

  return self;
}

/* The cancellable of the stream's maps. */
WpoolPool *
wpool_map_stream_get_pool (WpoolMapStream *self)
{
  return self->pool;
}

WpoolTask *
wpool_map_stream_get_task (WpoolMapStream *self)
{
  return self->task;
}

GCancellable *
wpool_map_stream_get_map_cancellable (WpoolMapStream *self)
{
  return self->map_cancellable;
}

/* Further items come from @source, @window_size at a time. */
void
wpool_map_stream_set_source (WpoolMapStream  *self,
                             WpoolItemSource  source,
                             gpointer         source_data,
                             GDestroyNotify   source_destroy,
                             guint            window_size)
{
  self->source = source;
  self->source_data = source_data;
  self->source_destroy = source_destroy;
  self->window_size = MAX (window_size, 1);
  self->source_done = FALSE;
}

/* The window of @job, to which the stream listens: the job must begin
 * with wpool_map_stream_window_done() and it as its notify, or the window
 * be removed. */
gpointer
wpool_map_stream_add_window (WpoolMapStream *self,
                             WpoolJob       *job)
{
  Window *window = g_new0 (Window, 1);

  window->stream = self;
  window->job = wpool_job_ref (job);
  window->base = self->n_items;
  window->n_items = wpool_job_get_n_items (job);

  if (self->flags & WPOOL_MAP_FLAGS_UNORDERED)
    window->ready = g_array_new (FALSE, FALSE, sizeof (guint));
  else
    window->finished = g_new0 (guint8, MAX (window->n_items, 1));

  wpool_job_set_sink (job, wpool_map_stream_sink, window);

  self->n_items += window->n_items;
  g_mutex_lock (&self->mutex);
  g_queue_push_tail (&self->windows, window);
  g_mutex_unlock (&self->mutex);

  return window;
}

/* The window's job could not start. */
void
wpool_map_stream_remove_window (WpoolMapStream *self,
                                gpointer        data)
{
  Window *window = data;

  self->n_items -= window->n_items;
  g_mutex_lock (&self->mutex);
  g_queue_remove (&self->windows, window);
  g_mutex_unlock (&self->mutex);
  window_free (window);
}

/* Pulls the next window's items from the source and starts its map. */
static gboolean
wpool_map_stream_pull_window (WpoolMapStream  *self,
                              GError         **error)
{
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  GError *local_error = NULL;

  while (items->len < self->window_size)
    {
      GVariant *item;

      /* Outcomes are numbered as guint, and G_MAXUINT means none. */
      if ((guint64)self->n_items + items->len >= G_MAXUINT)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                       "A stream numbers %u items at most (as guint): the item source "
                       "is not asked for more", G_MAXUINT);
          return FALSE;
        }

      item = self->source (self->source_data, &local_error);

      if (item == NULL)
        {
          if (local_error != NULL)
            {
              g_propagate_prefixed_error (error, local_error, "The item source failed: ");
              return FALSE;
            }
          wpool_map_stream_clear_source (self);
          break;
        }

      g_variant_ref_sink (item);
      if (self->item_type == NULL)
        self->item_type = g_variant_type_copy (g_variant_get_type (item));
      else if (!g_variant_is_of_type (item, self->item_type))
        {
          g_autofree char *expected = g_variant_type_dup_string (self->item_type);

          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                       "Item %u from the source is of type “%s”, not “%s” as the first",
                       self->n_items + items->len, g_variant_get_type_string (item), expected);
          g_variant_unref (item);
          return FALSE;
        }
      g_ptr_array_add (items, item);
    }

  if (items->len == 0)
    return TRUE;

  return self->ops->start_window (self, g_variant_new_array (self->item_type, (GVariant **)items->pdata, items->len),
                                 error);
}

/* Keeps a window ahead of the one handed out, while the source gives. */
gboolean
wpool_map_stream_fill (WpoolMapStream  *self,
                       GError         **error)
{
  while (!self->source_done && self->windows.length < 2)
    if (!wpool_map_stream_pull_window (self, error))
      return FALSE;

  return TRUE;
}

/* One outcome, or the end, once the stream can answer without blocking
 * or, with @block, once it can. On the caller's thread, which ends the
 * maps and pulls the source. */
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
  Window *window = NULL;
  Window *finished = NULL;
  guint i = G_MAXUINT;

  if (index != NULL)
    *index = G_MAXUINT;
  if (result != NULL)
    *result = NULL;

  for (;;)
    {
      if (self->ended)
        return FALSE;

      g_mutex_lock (&self->mutex);
      while (!(window = wpool_map_stream_find_ready_locked (self)) &&
             !g_queue_is_empty (&self->windows) &&
             !(finished = wpool_map_stream_head_finished_locked (self) ? g_queue_peek_head (&self->windows) : NULL) &&
             block)
        g_cond_wait (&self->cond, &self->mutex);
      if (window != NULL)
        i = window_take_ready_locked (window);
      g_mutex_unlock (&self->mutex);

      if (window != NULL)
        break;

      /* All handed out, or a map failed: the first window's map ends,
       * and the next is pulled. */
      if (finished != NULL)
        {
          if (!wpool_map_stream_end_window (self, finished, &local_error) ||
              !wpool_map_stream_fill (self, &local_error))
            {
              self->ended = TRUE;
              wpool_map_stream_stop (self);
              wpool_map_stream_clear_source (self);
              g_propagate_error (error, g_steal_pointer (&local_error));
              return FALSE;
            }
          finished = NULL;
          continue;
        }

      if (g_queue_is_empty (&self->windows))
        {
          self->ended = TRUE;
          return FALSE;
        }

      /* Not blocking: nothing to hand out yet (a window just ended,
       * or a blocking next took the outcome meanwhile). */
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           "No outcome is ready yet");
      return FALSE;
    }

  if (index != NULL)
    *index = window->base + i;

  if ((value = wpool_job_take_outcome (window->job, i, &local_error)) == NULL)
    g_propagate_error (item_error, g_steal_pointer (&local_error));
  else if (result != NULL)
    *result = g_steal_pointer (&value);

  return TRUE;
}

/**
 * wpool_map_stream_get_n_items:
 * @self: a [class@Wpool.MapStream]
 *
 * Gets the number of items of the map, and so of outcomes the stream
 * hands out unless the map fails; for [method@Wpool.Pool.imap_source], the
 * number of items taken from the source so far.
 *
 * Returns: the number of items
 *
 * Since: 0.1
 */
guint
wpool_map_stream_get_n_items (WpoolMapStream *self)
{
  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), 0);

  return self->n_items;
}

/**
 * wpool_map_stream_get_flags:
 * @self: a [class@Wpool.MapStream]
 *
 * Gets the flags the map was started with.
 *
 * Returns: the flags
 *
 * Since: 0.1
 */
WpoolMapFlags
wpool_map_stream_get_flags (WpoolMapStream *self)
{
  g_return_val_if_fail (WPOOL_IS_MAP_STREAM (self), 0);

  return self->flags;
}

/**
 * wpool_map_stream_next:
 * @self: a [class@Wpool.MapStream]
 * @index: (out) (optional): return location for the item's index
 * @result: (out) (optional) (nullable) (transfer full): return location
 *   for the item's result, as the task returned it
 * @item_error: (out) (optional) (nullable) (transfer full): return
 *   location for the item's error, under %WPOOL_MAP_FLAGS_KEEP_GOING
 * @error: return location for the map's [type@GLib.Error]
 *
 * Waits for the next outcome of the map and hands it out: in input order,
 * or as items complete under %WPOOL_MAP_FLAGS_UNORDERED. This blocks the
 * calling thread: from a main loop, use
 * [method@Wpool.MapStream.next_async].
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
 *
 * Since: 0.1
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
  gboolean cancelled;
  gulong cancelled_id;

  g_mutex_lock (&self->mutex);
  task = g_steal_pointer (&self->pending);
  self->idle_scheduled = FALSE;
  g_mutex_unlock (&self->mutex);

  if (task == NULL)
    return G_SOURCE_REMOVE;

  /* Checked once: an outcome taken is returned, never dropped for a
   * cancellation that came after. */
  cancelled = g_cancellable_is_cancelled (g_task_get_cancellable (task));
  outcome = g_new0 (Outcome, 1);
  if (!cancelled)
    outcome->found = wpool_map_stream_answer (self, FALSE, &outcome->index, &outcome->result,
                                              &outcome->item_error, &error);

  /* The first window ended, and the next, just pulled from the source,
   * has nothing to hand out yet: the next waits on, for its sink. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_clear_error (&error);
      outcome_free (outcome);
      g_mutex_lock (&self->mutex);
      self->pending = g_steal_pointer (&task);
      wpool_map_stream_schedule_locked (self);
      g_mutex_unlock (&self->mutex);
      return G_SOURCE_REMOVE;
    }

  g_mutex_lock (&self->mutex);
  cancelled_id = self->cancelled_id;
  self->cancelled_id = 0;
  g_mutex_unlock (&self->mutex);
  g_cancellable_disconnect (g_task_get_cancellable (task), cancelled_id);

  if (cancelled)
    {
      g_task_return_error_if_cancelled (task);
      outcome_free (outcome);
      return G_SOURCE_REMOVE;
    }

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
 * @self: a [class@Wpool.MapStream]
 * @cancellable: (nullable): a [class@Gio.Cancellable], which cancels this
 *   wait, not the map
 * @callback: (scope async): called with the next outcome
 * @user_data: data for @callback
 *
 * Waits for the next outcome of the map without blocking. @callback runs on
 * the caller's thread-default main context; call
 * [method@Wpool.MapStream.next_finish] from it. Only one wait may be
 * pending at a time.
 *
 * Since: 0.1
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
 * @self: a [class@Wpool.MapStream]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @index: (out) (optional): return location for the item's index
 * @item_result: (out) (optional) (nullable) (transfer full): return
 *   location for the item's result
 * @item_error: (out) (optional) (nullable) (transfer full): return
 *   location for the item's error, under %WPOOL_MAP_FLAGS_KEEP_GOING
 * @error: return location for the map's [type@GLib.Error]
 *
 * Finishes [method@Wpool.MapStream.next_async], as
 * [method@Wpool.MapStream.next] returns.
 *
 * Returns: %TRUE with an outcome, %FALSE at the end
 *
 * Since: 0.1
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
