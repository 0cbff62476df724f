/* wpool-pool-map.c: the map family of WpoolPool: map, map_async, imap,
 * apply, map_chunks and their forms, how a map joins the pool's workers
 * and leaves them, and the control thread of async maps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-private.h"
#include "wpool-error.h"
#include "wpool-insights-private.h"
#include "wpool-job-private.h"
#include "wpool-pool-private.h"
#include "wpool-task-private.h"
#include "wpool-trace-private.h"
#include "wpool-variant-private.h"

/* The chunk size of a map of @n_items. With @n_guided, and both
 * chunk-size and n-splits automatic, chunks are guided: a share of the
 * items left for each of *@n_guided workers, never below the size
 * returned; otherwise *@n_guided is 0 and chunks are of the size returned. */
guint
wpool_pool_resolve_chunk_size (WpoolPool *self,
                               guint      n_items,
                               guint     *n_guided)
{
  guint n_splits = self->n_splits > 0 ? self->n_splits : self->n_jobs * 4;

  if (n_guided != NULL)
    *n_guided = 0;

  /* Where a worker's item is seen only by its answer, its deadline is
   * its chunk's. */
  if (self->task_timeout > 0 && wpool_backend_times_items_by_chunk (self->start_method))
    return 1;

  if (self->chunk_size > 0)
    return self->chunk_size;

  /* Guided chunks start at an eighth of the items with two workers and
   * shrink to a sixteenth of MPIRE's chunk size: about 6 chunks per
   * worker in all instead of 4, and the last ones four times smaller. */
  if (self->n_splits == 0 && n_guided != NULL)
    {
      *n_guided = self->n_jobs;
      n_splits = self->n_jobs * 16;
    }

  /* As MPIRE: n-splits even chunks, by default four per worker. */
  return MAX (n_items / n_splits + (n_items % n_splits != 0), 1);
}

/* Checked on the full count, before anything narrows it: a map's items
 * are indexed as gint, in the job's hand-out and in the item a worker
 * reports running. */
static gboolean
wpool_pool_check_n_items (gsize    n_items,
                          GError **error)
{
  if (n_items <= G_MAXINT)
    return TRUE;

  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
               "Too many items in one map: %" G_GSIZE_FORMAT " (at most %d, G_MAXINT: "
               "items are indexed as gint)", n_items, G_MAXINT);
  return FALSE;
}

/* Checks a map's arguments and makes its job. */
WpoolJob *
wpool_pool_prepare_map (WpoolPool      *self,
                        WpoolTask      *task,
                        GVariant       *items,
                        WpoolMapFlags   flags,
                        GCancellable   *cancellable,
                        GError        **error)
{
  g_autoptr(GVariant) sunk = g_variant_ref_sink (items);
  gsize n_items;
  guint chunk_size;
  guint n_guided;

  if (!wpool_pool_check_usable (self, error))
    return NULL;

  if (!g_variant_is_of_type (sunk, G_VARIANT_TYPE_ARRAY))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "The items must be a GVariant array (type “a*”), not of type “%s”",
                   g_variant_get_type_string (sunk));
      return NULL;
    }

  if (!wpool_pool_check_n_items (n_items = g_variant_n_children (sunk), error))
    return NULL;

  if (!wpool_task_check (task, error) ||
      !wpool_backend_check_task (self->start_method, task, error))
    return NULL;

  /* A chunk task reads its items as an array of its item type. */
  if (wpool_task_get_item_type (task) != NULL &&
      !g_variant_type_equal (g_variant_type_element (g_variant_get_type (sunk)), wpool_task_get_item_type (task)))
    {
      g_autofree char *expected = g_variant_type_dup_string (wpool_task_get_item_type (task));

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "The chunk task takes items of type “%s”, not “%s”",
                   expected, g_variant_get_type_string (sunk) + 1);
      return NULL;
    }

  if (wpool_backend_is_current (g_atomic_pointer_get (&self->backend)))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "A task cannot map on its own pool: the map would wait "
                           "for the very worker that runs it");
      return NULL;
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  chunk_size = wpool_pool_resolve_chunk_size (self, (guint)n_items, &n_guided);

  return wpool_job_new (task, sunk, chunk_size, n_guided,
                        seconds_to_usec (self->task_timeout),
                        self->worker_init != NULL ? seconds_to_usec (self->worker_init_timeout) : 0,
                        (flags & WPOOL_MAP_FLAGS_KEEP_GOING) != 0,
                        cancellable);
}

/* Starts the workers if they do not run yet and hands @job to them. The
 * job completes through @notify, on the thread of the last worker (or on
 * this one when there is nothing to do); the caller then finishes it with
 * wpool_pool_end_map(). Without @notify the caller waits for the job next
 * (wpool_job_wait()), and may drive a worker process's share itself.
 * What changes is emitted on @context (see wpool_pool_emit()), where the
 * progress reports run too: %NULL for this thread's. */
gboolean
wpool_pool_start_map (WpoolPool       *self,
                      WpoolJob        *job,
                      WpoolJobNotify   notify,
                      gpointer         notify_data,
                      GMainContext    *context,
                      GError         **error)
{
  guint n_workers = MIN (self->n_jobs, wpool_job_get_n_chunks (job));
  gint64 started = g_get_monotonic_time ();
  WpoolBackendShare *share = NULL;
  guint emitted = 0;
  gboolean idle;

  /* A blocking map (no @context) starts after the async ones called
   * before it. */
  if (context == NULL)
    {
      g_mutex_lock (&self->pending_mutex);
      while (self->n_pending > 0)
        g_cond_wait (&self->pending_cond, &self->pending_mutex);
      g_mutex_unlock (&self->pending_mutex);
    }

  g_rec_mutex_lock (&self->lock);

  if (!wpool_pool_check_usable (self, error))
    goto fail;

  /* A map on an idle pool starts the insights anew. */
  if ((idle = self->running_jobs->len == 0))
    g_clear_pointer (&self->insights, wpool_insights_unref);
  if (self->enable_insights && self->insights == NULL)
    self->insights = wpool_insights_new (self->n_jobs);

  if (n_workers > 0 && self->backend == NULL)
    {
      WpoolBackendConfig config = {
        .n_jobs = self->n_jobs,
        .shared_objects = self->shared_objects,
        .shared_data = self->shared_data,
        .cpu_ids = self->cpu_ids,
        .worker_lifespan = self->worker_lifespan,
        .worker_init = self->worker_init,
        .worker_exit = self->worker_exit,
        .worker_start_timeout = seconds_to_usec (self->worker_start_timeout),
        .worker_init_timeout = seconds_to_usec (self->worker_init_timeout),
        .worker_exit_timeout = seconds_to_usec (self->worker_exit_timeout),
      };
      WpoolBackend *created;

      if (!(created = wpool_backend_new (self->start_method, &config, wpool_job_get_task (job),
                                         wpool_job_get_cancellable (job), error)))
        goto fail;

      g_atomic_pointer_set (&self->backend, created);
      emitted |= PROP_BIT (PROP_WORKERS_RUNNING);
    }
  else if (n_workers > 0)
    {
      if (!wpool_backend_prepare (self->backend, wpool_job_get_task (job), idle,
                                  wpool_job_get_cancellable (job), error))
        goto fail;

      /* Workers restarted for another task ran their exit. */
      wpool_pool_take_exit_results (self);
    }

  if (self->insights != NULL)
    {
      wpool_insights_add_start_up (self->insights, g_get_monotonic_time () - started);
      wpool_job_set_insights (job, self->insights);
    }

  /* A map on an idle pool starts the progress count anew. */
  if (idle)
    {
      gdouble unknown = -1;

      self->busy_since = g_get_monotonic_time ();
      __atomic_store (&self->eta, &unknown, __ATOMIC_RELAXED);
      __atomic_store_n (&self->n_total, 0, __ATOMIC_RELAXED);
      self->n_completed_finished = 0;
      __atomic_store_n (&self->n_completed_reported, 0, __ATOMIC_RELAXED);
      emitted |= PROP_BIT (PROP_N_COMPLETED);

      wpool_pool_stop_progress (self);
      self->progress_source = g_timeout_source_new (PROGRESS_INTERVAL_MS);
      g_source_set_static_name (self->progress_source, "[wpool] progress");
      g_source_set_callback (self->progress_source, wpool_pool_progress_tick, self, NULL);
      g_source_attach (self->progress_source, context ? context : g_main_context_get_thread_default ());
    }

  __atomic_store_n (&self->n_total, self->n_total + wpool_job_get_n_items (job), __ATOMIC_RELAXED);
  emitted |= PROP_BIT (PROP_N_TOTAL);
  g_ptr_array_add (self->running_jobs, wpool_job_ref (job));

  wpool_job_begin (job, n_workers, notify, notify_data);
  if (n_workers > 0)
    share = wpool_backend_dispatch (self->backend, job, n_workers, notify == NULL);
  g_rec_mutex_unlock (&self->lock);

  wpool_pool_emit (self, context, emitted, 0, 0);

  /* The job keeps the workers from stopping: driving a worker's share on
   * this thread needs no lock. */
  if (share != NULL)
    wpool_backend_drive (share, job);

  return TRUE;

fail:
  g_rec_mutex_unlock (&self->lock);
  wpool_pool_emit (self, context, emitted, 0, 0);
  return FALSE;
}

/* Once the job is done, on any thread: whether it succeeded. What changes
 * is emitted on @context. */
static gboolean
wpool_pool_end_job_in (WpoolPool     *self,
                       WpoolJob      *job,
                       GMainContext  *context,
                       GError       **error)
{
  /* The task (perhaps a language's closure) is released on the caller's
   * thread, not here. */
  WpoolTask *task = context != NULL ? g_object_ref (wpool_job_get_task (job)) : NULL;
  const guint *abandoned;
  guint n_abandoned;
  gboolean ret;

  g_rec_mutex_lock (&self->lock);

  /* Worker threads left running an item past the task timeout. */
  abandoned = wpool_job_get_abandoned (job, &n_abandoned);
  for (guint i = 0; i < n_abandoned; i++)
    {
      g_autoptr(GError) local_error = NULL;

      /* Only a thread that cannot start: the old one keeps the place, to
       * take jobs again once it returns. */
      if (!wpool_backend_replace_worker (self->backend, abandoned[i], wpool_job_get_task (job), &local_error))
        g_warning ("Cannot replace worker %u after its task timed out: %s",
                   abandoned[i], local_error->message);
    }

  wpool_trace_map (wpool_job_get_trace_begin (job), wpool_job_get_n_items (job), self->start_method,
                   wpool_job_get_task (job));
  ret = wpool_job_end (job, error);

  self->n_completed_finished += wpool_job_get_n_completed (job);
  if (!g_ptr_array_remove_fast (self->running_jobs, job))
    g_assert_not_reached ();

  if (self->running_jobs->len == 0)
    {
      wpool_pool_stop_progress (self);
      wpool_pool_report_progress (self, context);
      if (self->insights != NULL)
        wpool_insights_end (self->insights);

      if (!self->keep_alive)
        wpool_pool_stop_workers (self, TRUE, context);
    }

  g_rec_mutex_unlock (&self->lock);

  if (task != NULL)
    g_main_context_invoke_full (context, G_PRIORITY_DEFAULT, wpool_pool_release_in_context, task, NULL);

  return ret;
}

/* On the caller's thread, once the job is done: whether it succeeded. */
gboolean
wpool_pool_end_job (WpoolPool  *self,
                    WpoolJob   *job,
                    GError    **error)
{
  return wpool_pool_end_job_in (self, job, NULL, error);
}

static GVariant *
wpool_pool_end_map (WpoolPool     *self,
                    WpoolJob      *job,
                    GMainContext  *context,
                    GError       **error)
{
  if (!wpool_pool_end_job_in (self, job, context, error))
    return NULL;

  return wpool_job_steal_results (job);
}

/**
 * wpool_pool_map:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run on every item
 * @items: a [struct@GLib.Variant] array of any element type; if floating,
 *   it is consumed
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Runs @task on every element of @items on the pool's workers, starting
 * them if needed, and waits for the results. This blocks the calling
 * thread: in an application, use [method@Wpool.Pool.map_async].
 *
 * The results come in input order, as an array of the task's result type
 * (`a<T>`, see [method@Wpool.Task.set_result_type]) or else as `av`. A map
 * takes at most %G_MAXINT items: more fail with
 * %WPOOL_ERROR_INVALID_ARGUMENT, whichever way the map starts.
 *
 * The first error stops the map: no further item is handed out, and the
 * error is returned once the items already running are done. Its message
 * names the item and the worker. Cancelling @cancellable does the same with
 * %G_IO_ERROR_CANCELLED, at once: a worker process running an item is
 * killed, and a worker thread, which cannot be, is left to finish its item
 * on its own, its result dropped, as for
 * [property@Wpool.Pool:task-timeout]; either is replaced.
 *
 * Returns: (transfer full): the results, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_map (WpoolPool     *self,
                WpoolTask     *task,
                GVariant      *items,
                GCancellable  *cancellable,
                GError       **error)
{
  g_autoptr(WpoolJob) job = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (WPOOL_IS_TASK (task), NULL);
  g_return_val_if_fail (items != NULL, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(job = wpool_pool_prepare_map (self, task, items, WPOOL_MAP_FLAGS_NONE, cancellable, error)) ||
      !wpool_pool_start_map (self, job, NULL, NULL, NULL, error))
    return NULL;

  wpool_job_wait (job);

  return wpool_pool_end_map (self, job, NULL, error);
}

typedef enum
{
  CONTROL_START,
  CONTROL_END,
} ControlKind;

typedef struct
{
  ControlKind  kind;
  GTask       *task;
} Control;


static void wpool_pool_map_notify (WpoolJob *job,
                                   gpointer  data);

/* On the caller's context: returns the outcome there, so that the task,
 * and the job it holds, are released on the caller's thread. */
static gboolean
wpool_pool_return_in_context (gpointer data)
{
  GTask *task = data;
  GVariant *ret = g_object_steal_data (G_OBJECT (task), "wpool-results");
  GError *error = g_object_steal_data (G_OBJECT (task), "wpool-error");

  if (ret != NULL)
    g_task_return_pointer (task, ret, (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (task, error);

  return G_SOURCE_REMOVE;
}

/* On the control thread: starts the workers and the map of an async
 * call, or ends it and hands its outcome to the caller's context. */
static void
wpool_pool_control_run (Control *control)
{
  GTask *task = control->task;
  ControlKind kind = control->kind;
  WpoolPool *self = g_task_get_source_object (task);
  WpoolJob *job = g_task_get_task_data (task);
  GMainContext *context = g_task_get_context (task);
  g_autoptr(GSource) source = NULL;
  GError *error = NULL;
  GVariant *ret = NULL;

  g_free (control);

  if (kind == CONTROL_START)
    {
      gboolean started = wpool_pool_start_map (self, job, wpool_pool_map_notify, task, context, &error);

      g_mutex_lock (&self->pending_mutex);
      if (--self->n_pending == 0)
        g_cond_broadcast (&self->pending_cond);
      g_mutex_unlock (&self->pending_mutex);
      /* Else the notify owns our reference until it hands the task over. */
      if (started)
        return;
    }
  else
    ret = wpool_pool_end_map (self, job, context, &error);

  g_object_set_data (G_OBJECT (task), "wpool-results", ret);
  g_object_set_data (G_OBJECT (task), "wpool-error", error);
  source = g_idle_source_new ();
  g_source_set_priority (source, g_task_get_priority (task));
  g_source_set_static_name (source, "[wpool] map complete");
  g_source_set_callback (source, wpool_pool_return_in_context, task, g_object_unref);
  wpool_pool_attach (g_steal_pointer (&source), context);
}

static gpointer
wpool_pool_control_main (gpointer data)
{
  WpoolPool *self = data;

  for (;;)
    {
      Control *control;

      g_mutex_lock (&self->pending_mutex);
      if ((control = g_queue_pop_head (&self->controls)) == NULL)
        self->control_running = FALSE;
      g_mutex_unlock (&self->pending_mutex);

      if (control == NULL)
        return NULL;

      wpool_pool_control_run (control);
    }
}

/* Hands @task, whose reference it takes, to the pool's control thread,
 * made at the first call. Never waits for the pool's lock. */
static void
wpool_pool_control (WpoolPool   *self,
                    ControlKind  kind,
                    GTask       *task)
{
  Control *control = g_new (Control, 1);
  GThread *ended = NULL;

  *control = (Control) { kind, task };

  g_mutex_lock (&self->pending_mutex);
  if (kind == CONTROL_START)
    self->n_pending++;
  g_queue_push_tail (&self->controls, control);
  if (!self->control_running)
    {
      /* The last one said it ends, and touches the pool no more. */
      ended = g_steal_pointer (&self->control);
      self->control_running = TRUE;
      self->control = g_thread_new ("wpool-control", wpool_pool_control_main, self);
    }
  g_mutex_unlock (&self->pending_mutex);

  if (ended != NULL)
    g_thread_join (ended);
}

/* On the last worker's thread: the map ends on the control thread, which
 * may stop the workers, never on the caller's context. */
static void
wpool_pool_map_notify (WpoolJob *job,
                       gpointer  data)
{
  GTask *task = data;

  wpool_pool_control (g_task_get_source_object (task), CONTROL_END, task);
}

/**
 * wpool_pool_map_async:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run on every item
 * @items: a [struct@GLib.Variant] array of any element type; if floating,
 *   it is consumed
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the map is done
 * @user_data: data for @callback
 *
 * Runs @task on every element of @items on the pool's workers, as
 * [method@Wpool.Pool.map] does, without blocking. @callback runs on the
 * thread default main context of the caller; call
 * [method@Wpool.Pool.map_finish] from it to get the results.
 *
 * Several maps may be in flight on one pool: the workers take them in
 * order.
 *
 * Since: 0.1
 */
void
wpool_pool_map_async (WpoolPool           *self,
                      WpoolTask           *task,
                      GVariant            *items,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) gtask = NULL;
  g_autoptr(WpoolJob) job = NULL;
  GError *error = NULL;

  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (WPOOL_IS_TASK (task));
  g_return_if_fail (items != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, wpool_pool_map_async);
  g_task_set_name (gtask, "[wpool] map");

  if (!(job = wpool_pool_prepare_map (self, task, items, WPOOL_MAP_FLAGS_NONE, cancellable, &error)))
    {
      g_task_return_error (gtask, error);
      return;
    }

  g_task_set_task_data (gtask, wpool_job_ref (job), (GDestroyNotify) wpool_job_unref);

  /* fork() copies the thread that calls it, holding what it holds and
   * nothing another holds: a language runtime's lock (Python's GIL) held
   * by the caller's thread would be held forever in a worker forked on
   * another. FORK workers are forked here, which takes a fork per worker
   * and no copy; the map still ends on the control thread. */
  if (self->start_method == WPOOL_START_METHOD_FORK)
    {
      /* The notify owns a reference until it hands the task over. */
      if (!wpool_pool_start_map (self, job, wpool_pool_map_notify, g_object_ref (gtask), NULL, &error))
        {
          g_object_unref (gtask);
          g_task_return_error (gtask, error);
        }
      return;
    }

  /* The workers start, and the map ends, on the pool's control thread:
   * the caller's main loop never waits for them to start or stop. */
  wpool_pool_control (self, CONTROL_START, g_steal_pointer (&gtask));
}

/**
 * wpool_pool_map_finish:
 * @self: a [class@Wpool.Pool]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [type@GLib.Error]
 *
 * Gets the results of a map started with [method@Wpool.Pool.map_async].
 *
 * Returns: (transfer full): the results, as [method@Wpool.Pool.map] returns
 *   them, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_map_finish (WpoolPool     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == wpool_pool_map_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * wpool_pool_map_chunks: (skip)
 * @self: a [class@Wpool.Pool]
 * @task: a chunk task ([ctor@Wpool.Task.new_for_chunks])
 * @items: @n_items items of the task's item type, as a C array
 * @n_items: the number of items, at most %G_MAXINT
 * @results: room for @n_items results of the task's result type
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Runs the chunk task over a plain array into a plain array, as an OpenMP
 * loop does, and waits: no [struct@GLib.Variant] is made, the items are not
 * copied and, under %WPOOL_START_METHOD_THREADING, the workers write
 * @results in place. It is [method@Wpool.Pool.map] otherwise: the first
 * error stops the map and is returned; @results is then partly written.
 *
 * Returns: %TRUE if every item was run
 */
gboolean
wpool_pool_map_chunks (WpoolPool     *self,
                       WpoolTask     *task,
                       gconstpointer  items,
                       gsize          n_items,
                       gpointer       results,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_autoptr(GVariantType) array_type = NULL;
  g_autoptr(WpoolJob) job = NULL;
  gsize item_size = 0;

  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (WPOOL_IS_TASK (task), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (wpool_task_get_item_type (task) == NULL)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                           "wpool_pool_map_chunks() runs chunk tasks: create the task with "
                           "wpool_task_new_for_chunks()");
      return FALSE;
    }

  g_return_val_if_fail (n_items == 0 || (items != NULL && results != NULL), FALSE);

  /* Before the size of the items' view, which could wrap. */
  if (!wpool_pool_check_n_items (n_items, error))
    return FALSE;

  wpool_variant_type_get_fixed_size (wpool_task_get_item_type (task), &item_size);
  array_type = g_variant_type_new_array (wpool_task_get_item_type (task));

  /* A view of the caller's items, which outlive the map. */
  if (!(job = wpool_pool_prepare_map (self, task,
                                      g_variant_new_from_data (array_type, n_items ? items : NULL, n_items * item_size,
                                                               TRUE, NULL, NULL),
                                      WPOOL_MAP_FLAGS_NONE, cancellable, error)))
    return FALSE;

  if (n_items > 0)
    wpool_job_set_results_buffer (job, results);

  if (!wpool_pool_start_map (self, job, NULL, NULL, NULL, error))
    return FALSE;

  wpool_job_wait (job);

  return wpool_pool_end_job (self, job, error);
}

/* One item as an array of one, for a map. */
static GVariant *
items_of_one (GVariant *item)
{
  return g_variant_new_array (NULL, &item, 1);
}

/* The result of a map of one item: as the task returned it. */
static GVariant *
result_of_one (GVariant *results)
{
  g_autoptr(GVariant) result = g_variant_get_child_value (results, 0);

  if (g_variant_is_of_type (results, G_VARIANT_TYPE ("av")))
    return g_variant_get_variant (result);

  return g_steal_pointer (&result);
}

/**
 * wpool_pool_apply:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run
 * @item: the item to run it on; if floating, it is consumed
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [type@GLib.Error]
 *
 * Runs @task on @item on one of the pool's workers and waits for its
 * result, as MPIRE's `apply()`. This blocks the calling thread: in an
 * application, use [method@Wpool.Pool.apply_async], of which many can be in
 * flight, spread over the workers.
 *
 * Errors are those of [method@Wpool.Pool.map], the item being item 0.
 *
 * Returns: (transfer full): the result, as the task returned it, or %NULL
 *   with @error set
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_apply (WpoolPool     *self,
                  WpoolTask     *task,
                  GVariant      *item,
                  GCancellable  *cancellable,
                  GError       **error)
{
  g_autoptr(GVariant) results = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (WPOOL_IS_TASK (task), NULL);
  g_return_val_if_fail (item != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(results = wpool_pool_map (self, task, items_of_one (item), cancellable, error)))
    return NULL;

  return result_of_one (results);
}

static void
wpool_pool_apply_map_done (GObject      *object,
                           GAsyncResult *result,
                           gpointer      data)
{
  g_autoptr(GTask) task = data;
  g_autoptr(GVariant) results = NULL;
  GError *error = NULL;

  if ((results = wpool_pool_map_finish (WPOOL_POOL (object), result, &error)))
    g_task_return_pointer (task, result_of_one (results), (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (task, error);
}

/**
 * wpool_pool_apply_async:
 * @self: a [class@Wpool.Pool]
 * @task: the task to run
 * @item: the item to run it on; if floating, it is consumed
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the result is ready
 * @user_data: data for @callback
 *
 * Runs @task on @item on one of the pool's workers, as MPIRE's
 * `apply_async()`, without blocking. @callback runs on the thread-default
 * main context of the caller; call [method@Wpool.Pool.apply_finish] from
 * it.
 *
 * Each apply is a map of its own: many can be in flight, and a worker
 * process that dies fails only the apply it ran.
 *
 * Since: 0.1
 */
void
wpool_pool_apply_async (WpoolPool           *self,
                        WpoolTask           *task,
                        GVariant            *item,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *gtask;

  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (WPOOL_IS_TASK (task));
  g_return_if_fail (item != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, wpool_pool_apply_async);
  g_task_set_name (gtask, "[wpool] apply");

  wpool_pool_map_async (self, task, items_of_one (item), cancellable, wpool_pool_apply_map_done, gtask);
}

/**
 * wpool_pool_apply_finish:
 * @self: a [class@Wpool.Pool]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [type@GLib.Error]
 *
 * Gets the result of [method@Wpool.Pool.apply_async].
 *
 * Returns: (transfer full): the result, as the task returned it, or %NULL
 *   with @error set
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_apply_finish (WpoolPool     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == wpool_pool_apply_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
