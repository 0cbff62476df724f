/* wpool-worker-lifecycle.c: a worker's worker-init and worker-exit, and
 * its items run after its init, on the worker's side of any start method
 * (the job's threads, a worker process's serving loop). The worker holds
 * the state; the task only runs: neither calls the other's file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"
#include "wpool-task-private.h"
#include "wpool-worker-private.h"

/* The pool's worker-init and worker-exit tasks, set once, before the
 * worker runs anything. */
void
wpool_worker_set_lifecycle (WpoolWorker *self,
                            WpoolTask   *init,
                            WpoolTask   *exit)
{
  g_set_object (&self->init, init);
  g_set_object (&self->exit, exit);
}

gboolean
wpool_worker_has_init (WpoolWorker *self)
{
  return self->init != NULL && !self->init_ran;
}

/* Runs the worker-init once, before the worker's first item: FALSE with
 * its error, then and ever after, if it failed. */
gboolean
wpool_worker_run_init (WpoolWorker  *self,
                       GError      **error)
{
  if (!self->init_ran && self->init != NULL)
    {
      g_autoptr(GVariant) item = g_variant_ref_sink (g_variant_new_tuple (NULL, 0));
      g_autoptr(GVariant) ignored = NULL;

      ignored = wpool_task_call (self->init, self, item, NULL, &self->init_error);
      if (self->init_error != NULL)
        g_prefix_error (&self->init_error, "Worker %u: its worker-init failed: ", self->id);
    }

  self->init_ran = TRUE;

  if (self->init_error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->init_error));
      return FALSE;
    }

  return TRUE;
}

gboolean
wpool_worker_has_exit (WpoolWorker *self)
{
  return self->exit != NULL;
}

/* Runs the worker-exit as the worker stops: its result, of @result_type
 * if not %NULL, or %NULL with its error. The type is the one the exit
 * task declares in the pool's process now, which a worker process's own
 * copy of the task may not know. A worker whose init failed has nothing
 * to end. */
GVariant *
wpool_worker_run_exit (WpoolWorker         *self,
                       const GVariantType  *result_type,
                       GError             **error)
{
  g_autoptr(GVariant) item = g_variant_ref_sink (g_variant_new_tuple (NULL, 0));
  GError *local_error = NULL;
  GVariant *result;

  /* An exit always follows an init, even on a worker that got no item. */
  wpool_worker_run_init (self, NULL);

  if (self->init_error != NULL)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Worker %u: its worker-exit did not run, as its worker-init failed", self->id);
      return NULL;
    }

  if (!(result = wpool_task_call (self->exit, self, item, result_type, &local_error)))
    {
      g_prefix_error (&local_error, "Worker %u: its worker-exit failed: ", self->id);
      g_propagate_error (error, local_error);
    }

  return result;
}

/* Runs @task on item @index of a map, once the worker's init ran: the
 * error of either names the item and the worker. */
GVariant *
wpool_worker_invoke (WpoolWorker         *self,
                     WpoolTask           *task,
                     GVariant            *item,
                     guint                index,
                     const GVariantType  *result_type,
                     GError             **error)
{
  GError *local_error = NULL;
  GVariant *result = NULL;

  if (wpool_worker_run_init (self, &local_error))
    result = wpool_task_call (task, self, item, result_type, &local_error);

  if (result == NULL)
    {
      g_prefix_error (&local_error, "Item %u on worker %u: ", index, self->id);
      g_propagate_error (error, local_error);
    }

  return result;
}

/* Runs the chunk task @task on items [first, first + n_items), once the
 * worker's init ran: the error of either names the items and the worker. */
gboolean
wpool_worker_run_chunk (WpoolWorker    *self,
                        WpoolTask      *task,
                        gconstpointer   items,
                        guint           first,
                        gsize           n_items,
                        gpointer        results,
                        GError        **error)
{
  GError *local_error = NULL;

  if (wpool_worker_run_init (self, &local_error) &&
      wpool_task_run_chunk (task, self, items, n_items, results, &local_error))
    return TRUE;

  g_prefix_error (&local_error, "Items %u to %u on worker %u: ",
                  first, first + (guint)n_items - 1, self->id);
  g_propagate_error (error, local_error);
  return FALSE;
}
