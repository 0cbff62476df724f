/* wpool-job.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-job-private.h"
#include "wpool-task-private.h"
#include "wpool-variant-private.h"

struct _WpoolJob
{
  gatomicrefcount  ref_count;

  /* The caller's objects: released by wpool_job_finish() on the caller's
   * thread, so that no destroy notify runs on a worker thread. */
  WpoolTask       *task;
  GCancellable    *cancellable;

  GVariantType    *result_type;
  GVariant        *items;
  guint            n_items;
  guint            chunk_size;
  /* When the items have a fixed size: their type, size and data. */
  const GVariantType *item_type;
  gsize            item_size;
  const guint8    *item_data;

  /* Index of the next chunk to hand out, advanced atomically: workers
   * take chunks as they become free, so uneven items balance out. */
  gint             next;
  /* Set once an error ends the hand-out. */
  gint             stopped;
  /* Workers still on the job. */
  gint             n_active;

  /* Each slot written by exactly one worker, read after completion: when
   * the declared result type has a fixed size, the serialized results
   * side by side, which is already the `a<T>` array; else the results. */
  gsize            result_size;
  guint8          *result_data;
  GVariant       **results;

  GMutex           mutex;
  GCond            cond;
  GError          *error;
  gboolean         done;
  WpoolJobNotify   notify;
  gpointer         notify_data;
};

WpoolJob *
wpool_job_new (WpoolTask    *task,
               GVariant     *items,
               guint         chunk_size,
               GCancellable *cancellable)
{
  WpoolJob *self;
  const GVariantType *result_type;

  g_assert (WPOOL_IS_TASK (task));
  g_assert (items != NULL && g_variant_is_of_type (items, G_VARIANT_TYPE_ARRAY));
  g_assert (chunk_size > 0);
  g_assert (!cancellable || G_IS_CANCELLABLE (cancellable));

  self = g_new0 (WpoolJob, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->task = g_object_ref (task);
  self->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  if ((result_type = wpool_task_get_result_type (task)))
    self->result_type = g_variant_type_copy (result_type);
  self->items = g_variant_ref_sink (items);
  self->n_items = g_variant_n_children (items);
  self->item_type = g_variant_type_element (g_variant_get_type (items));
  if (self->n_items > 0 &&
      wpool_variant_type_get_fixed_size (self->item_type, &self->item_size))
    self->item_data = g_variant_get_data (items);
  self->chunk_size = chunk_size;
  if (self->result_type != NULL &&
      wpool_variant_type_get_fixed_size (self->result_type, &self->result_size))
    self->result_data = g_malloc_n (MAX (self->n_items, 1), self->result_size);
  else
    self->results = g_new0 (GVariant *, self->n_items);
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

  /* Must have been finished on the caller's thread already, unless the
   * map never started. */
  g_clear_object (&self->task);
  g_clear_object (&self->cancellable);

  if (self->results != NULL)
    for (guint i = 0; i < self->n_items; i++)
      g_clear_pointer (&self->results[i], g_variant_unref);
  g_free (self->results);
  g_free (self->result_data);
  g_clear_pointer (&self->items, g_variant_unref);
  g_clear_pointer (&self->result_type, g_variant_type_free);
  g_clear_error (&self->error);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);
  g_free (self);
}

guint
wpool_job_get_n_items (WpoolJob *self)
{
  return self->n_items;
}

guint
wpool_job_get_n_chunks (WpoolJob *self)
{
  return self->n_items / self->chunk_size + (self->n_items % self->chunk_size != 0);
}

/* The first error wins and stops the hand-out; later ones are dropped. */
static void
wpool_job_take_error (WpoolJob *self,
                      GError   *error)
{
  g_mutex_lock (&self->mutex);
  if (self->error == NULL)
    {
      self->error = g_steal_pointer (&error);
      g_atomic_int_set (&self->stopped, TRUE);
    }
  g_mutex_unlock (&self->mutex);

  g_clear_error (&error);
}

static gboolean
wpool_job_should_stop (WpoolJob *self)
{
  GError *error = NULL;

  if (g_atomic_int_get (&self->stopped))
    return TRUE;

  if (g_cancellable_set_error_if_cancelled (self->cancellable, &error))
    {
      wpool_job_take_error (self, error);
      return TRUE;
    }

  return FALSE;
}

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

/* A worker's part of the job, run in the worker's own thread: take chunks
 * until none is left or an error or a cancellation stops the hand-out,
 * which is checked between items. */
void
wpool_job_work (WpoolJob    *self,
                WpoolWorker *worker)
{
  for (;;)
    {
      g_autoptr(GBytes) chunk_bytes = NULL;
      guint first;
      guint last;

      if (wpool_job_should_stop (self))
        return;

      first = (guint)g_atomic_int_add (&self->next, (gint)self->chunk_size);
      if (first >= self->n_items)
        return;
      last = MIN (first + self->chunk_size, self->n_items);

      /* Not a sub-GBytes of the items': g_bytes_new_from_bytes() would
       * reference their root buffer again. */
      if (self->item_data != NULL)
        chunk_bytes = g_bytes_new_with_free_func (self->item_data + (gsize)first * self->item_size,
                                                  (gsize)(last - first) * self->item_size,
                                                  (GDestroyNotify) g_variant_unref,
                                                  g_variant_ref (self->items));

      for (guint i = first; i < last; i++)
        {
          g_autoptr(GVariant) item = NULL;
          GError *error = NULL;
          GVariant *result;

          if (i > first && wpool_job_should_stop (self))
            return;

          item = wpool_job_get_item (self, chunk_bytes, i);
          result = wpool_task_invoke (self->task, worker, item, i, self->result_type, &error);

          if (result == NULL)
            {
              wpool_job_take_error (self, error);
              return;
            }

          /* Results are serialized or boxed here, in parallel, rather
           * than one by one on the caller's thread. */
          if (self->result_data != NULL)
            {
              /* g_variant_store() relies on the size being computed,
               * which a value in tree form only does on demand. The type
               * was checked, so the size is the fixed one. */
              gsize size G_GNUC_UNUSED = g_variant_get_size (result);

              g_assert (size == self->result_size);
              g_variant_store (result, self->result_data + (gsize)i * self->result_size);
              g_variant_unref (result);
              continue;
            }

          if (self->result_type == NULL)
            {
              GVariant *boxed = g_variant_ref_sink (g_variant_new_variant (result));
              g_variant_unref (result);
              result = boxed;
            }

          self->results[i] = result;
        }
    }
}

void
wpool_job_worker_done (WpoolJob *self)
{
  if (!g_atomic_int_dec_and_test (&self->n_active))
    return;

  g_mutex_lock (&self->mutex);
  self->done = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);

  if (self->notify != NULL)
    self->notify (self, self->notify_data);
}

void
wpool_job_wait (WpoolJob *self)
{
  g_mutex_lock (&self->mutex);
  while (!self->done)
    g_cond_wait (&self->cond, &self->mutex);
  g_mutex_unlock (&self->mutex);
}

/* On the caller's thread, once the job is done: the results as `a<T>` or
 * `av` in input order, or the first error. */
GVariant *
wpool_job_finish (WpoolJob  *self,
                  GError   **error)
{
  GVariant *ret;

  g_assert (self->done);

  g_clear_object (&self->task);

  if (self->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->error));
      g_clear_object (&self->cancellable);
      return NULL;
    }

  if (g_cancellable_set_error_if_cancelled (self->cancellable, error))
    {
      g_clear_object (&self->cancellable);
      return NULL;
    }
  g_clear_object (&self->cancellable);

  if (self->result_data != NULL)
    {
      g_autoptr(GVariantType) array_type = g_variant_type_new_array (self->result_type);
      gsize size = (gsize)self->n_items * self->result_size;
      guint8 *data = g_steal_pointer (&self->result_data);

      /* Not trusted: a task may return a value that is not in normal
       * form, and GVariant then checks before it relies on it. */
      ret = g_variant_new_from_data (array_type, data, size, FALSE, g_free, data);
      return g_variant_ref_sink (ret);
    }

  ret = g_variant_new_array (self->result_type ? self->result_type : G_VARIANT_TYPE_VARIANT,
                             self->results, self->n_items);

  for (guint i = 0; i < self->n_items; i++)
    g_clear_pointer (&self->results[i], g_variant_unref);

  return g_variant_ref_sink (ret);
}
