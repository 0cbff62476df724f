/* wpool-pool-lifecycle.c: the worker lifecycle of a WpoolPool, as MPIRE's:
 * worker-init and worker-exit with their results, the timeouts, the
 * lifespan, CPU pinning, and stopping the workers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-backend-private.h"
#include "wpool-error.h"
#include "wpool-pool-private.h"
#include "wpool-task-private.h"

/* Keeps the outcome of the exits @backend ran since last asked. */
static void
wpool_pool_take_exit_results_from (WpoolPool    *self,
                                   WpoolBackend *backend)
{
  GError *error = NULL;
  GVariant *results = wpool_backend_take_exit_results (backend, &error);

  /* Workers that stopped with no worker-exit leave none: not the results
   * of workers that stopped before them. */
  if (results == NULL && error == NULL && wpool_backend_get_config (backend)->worker_exit != NULL)
    return;

  g_clear_pointer (&self->exit_results, g_variant_unref);
  g_clear_error (&self->exit_error);
  self->exit_results = results;
  self->exit_error = error;
}

void
wpool_pool_take_exit_results (WpoolPool *self)
{
  wpool_pool_take_exit_results_from (self, self->backend);
}

/* Drops a reference on the caller's context (a GSourceFunc). */
gboolean
wpool_pool_release_in_context (gpointer object)
{
  g_object_unref (object);

  return G_SOURCE_REMOVE;
}

/* Stops the workers, which first run the worker-exit with @run_exit:
 * its outcome is kept for wpool_pool_get_exit_results(). With the lock
 * held and no map running; the change is emitted on @context. */
void
wpool_pool_stop_workers (WpoolPool    *self,
                         gboolean      run_exit,
                         GMainContext *context)
{
  g_autoptr(WpoolBackend) backend = NULL;

  if (self->backend == NULL)
    return;

  g_assert (self->running_jobs->len == 0);

  backend = g_atomic_pointer_exchange (&self->backend, NULL);
  wpool_backend_stop (backend, run_exit);
  wpool_pool_take_exit_results_from (self, backend);

  /* What it holds (the tasks, perhaps a language's closures) is released
   * on the caller's thread. */
  if (context != NULL)
    g_main_context_invoke_full (context, G_PRIORITY_DEFAULT, wpool_pool_release_in_context,
                                g_steal_pointer (&backend), NULL);

  wpool_pool_emit (self, context, PROP_BIT (PROP_WORKERS_RUNNING), 0, 0);
}

gboolean
wpool_pool_check_workers_stopped (WpoolPool   *self,
                                  const char  *what,
                                  GError     **error)
{
  if (!wpool_pool_check_usable (self, error))
    return FALSE;

  if (g_atomic_pointer_get (&self->backend) == NULL && wpool_pool_get_n_pending (self) == 0)
    return TRUE;

  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
               "Cannot change the %s while the workers run: they received them "
               "when they started. Set “keep-alive” to FALSE (which stops idle "
               "workers) before changing them",
               what);
  return FALSE;
}

/* The worker-init or worker-exit @slot is set to @task, if it can run
 * under the pool's start method and no worker runs. */
static gboolean
wpool_pool_set_lifecycle_task (WpoolPool   *self,
                               WpoolTask  **slot,
                               WpoolTask   *task,
                               const char  *what,
                               guint        prop_id,
                               GError     **error)
{
  if (*slot == task)
    return TRUE;

  if (!wpool_pool_check_workers_stopped (self, what, error))
    return FALSE;

  if (task != NULL &&
      (!wpool_task_check (task, error) ||
       !wpool_backend_check_task (self->start_method, task, error)))
    {
      g_prefix_error (error, "Cannot use this task as the %s: ", what);
      return FALSE;
    }

  g_set_object (slot, task);
  wpool_pool_notify (self, prop_id);

  return TRUE;
}

/**
 * wpool_pool_get_worker_lifespan:
 * @self: a [class@Wpool.Pool]
 *
 * Gets how many chunks a worker runs before it restarts.
 *
 * Returns: the lifespan in chunks, or 0 for no limit
 *
 * Since: 0.1
 */
guint
wpool_pool_get_worker_lifespan (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->worker_lifespan;
}

/**
 * wpool_pool_set_worker_lifespan:
 * @self: a [class@Wpool.Pool]
 * @worker_lifespan: the chunks a worker runs before it restarts, or 0
 *   for no limit
 *
 * Sets [property@Wpool.Pool:worker-lifespan], for workers started
 * afterwards.
 *
 * Since: 0.1
 */
void
wpool_pool_set_worker_lifespan (WpoolPool *self,
                                guint      worker_lifespan)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  if (self->worker_lifespan == worker_lifespan)
    return;

  self->worker_lifespan = worker_lifespan;
  wpool_pool_notify (self, PROP_WORKER_LIFESPAN);
}

/**
 * wpool_pool_get_cpu_ids:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the CPUs the workers are pinned to.
 *
 * Returns: (transfer none) (nullable): the [property@Wpool.Pool:cpu-ids],
 *   or %NULL
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_get_cpu_ids (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  return self->cpu_ids;
}

/**
 * wpool_pool_set_cpu_ids:
 * @self: a [class@Wpool.Pool]
 * @cpu_ids: (nullable): an `aau` of one list of CPUs for all workers or
 *   one for each; if floating, it is consumed; %NULL for no pinning
 * @error: return location for a [type@GLib.Error]
 *
 * Sets [property@Wpool.Pool:cpu-ids]. It fails with
 * %WPOOL_ERROR_INVALID_ARGUMENT if @cpu_ids has neither 1 nor
 * [property@Wpool.Pool:n-jobs] lists, if a list is empty or names a CPU
 * this machine does not have, and with %WPOOL_ERROR_WORKERS_RUNNING while
 * workers run.
 *
 * Returns: %TRUE if it was set
 *
 * Since: 0.1
 */
gboolean
wpool_pool_set_cpu_ids (WpoolPool  *self,
                        GVariant   *cpu_ids,
                        GError    **error)
{
  g_autoptr(GVariant) sunk = cpu_ids ? g_variant_ref_sink (cpu_ids) : NULL;
  long n_cpus = sysconf (_SC_NPROCESSORS_CONF);
  gsize n;

  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!wpool_pool_check_workers_stopped (self, "CPU ids", error))
    return FALSE;

  if (sunk != NULL)
    {
      if (!g_variant_is_of_type (sunk, G_VARIANT_TYPE ("aau")) ||
          ((n = g_variant_n_children (sunk)) != 1 && n != self->n_jobs))
        {
          g_autofree char *printed = g_variant_print (sunk, TRUE);

          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                       "The CPU ids must be an “aau” of one list for all %u workers or one "
                       "for each, not “%s”",
                       self->n_jobs, printed);
          return FALSE;
        }

      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) cpus = g_variant_get_child_value (sunk, i);
          gsize n_listed;
          const guint32 *listed = g_variant_get_fixed_array (cpus, &n_listed, sizeof (guint32));

          if (n_listed == 0)
            {
              g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                           "The CPU ids of worker %" G_GSIZE_FORMAT " are empty", i);
              return FALSE;
            }

          for (gsize k = 0; k < n_listed; k++)
            if ((long)listed[k] >= MIN (n_cpus, CPU_SETSIZE))
              {
                g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                             "There is no CPU %u: this machine has %ld", listed[k], n_cpus);
                return FALSE;
              }
        }
    }

  g_clear_pointer (&self->cpu_ids, g_variant_unref);
  self->cpu_ids = g_steal_pointer (&sunk);
  wpool_pool_notify (self, PROP_CPU_IDS);

  return TRUE;
}

/**
 * wpool_pool_get_worker_init:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the task every worker runs as it starts.
 *
 * Returns: (transfer none) (nullable): the
 *   [property@Wpool.Pool:worker-init], or %NULL
 *
 * Since: 0.1
 */
WpoolTask *
wpool_pool_get_worker_init (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  return self->worker_init;
}

/**
 * wpool_pool_set_worker_init:
 * @self: a [class@Wpool.Pool]
 * @worker_init: (nullable): the task every worker runs as it starts, or
 *   %NULL for none
 * @error: return location for a [type@GLib.Error]
 *
 * Sets [property@Wpool.Pool:worker-init]. Like the shared objects, it
 * reaches the workers as they start: this fails with
 * %WPOOL_ERROR_WORKERS_RUNNING while workers run, and with the start
 * method's own error if the task cannot run in its workers (a closure under
 * SPAWN, say).
 *
 * Returns: %TRUE if it was set
 *
 * Since: 0.1
 */
gboolean
wpool_pool_set_worker_init (WpoolPool  *self,
                            WpoolTask  *worker_init,
                            GError    **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (!worker_init || WPOOL_IS_TASK (worker_init), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return wpool_pool_set_lifecycle_task (self, &self->worker_init, worker_init,
                                        "worker-init", PROP_WORKER_INIT, error);
}

/**
 * wpool_pool_get_worker_exit:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the task every worker runs as it stops.
 *
 * Returns: (transfer none) (nullable): the
 *   [property@Wpool.Pool:worker-exit], or %NULL
 *
 * Since: 0.1
 */
WpoolTask *
wpool_pool_get_worker_exit (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  return self->worker_exit;
}

/**
 * wpool_pool_set_worker_exit:
 * @self: a [class@Wpool.Pool]
 * @worker_exit: (nullable): the task every worker runs as it stops, or
 *   %NULL for none
 * @error: return location for a [type@GLib.Error]
 *
 * Sets [property@Wpool.Pool:worker-exit], with the same rules as
 * [method@Wpool.Pool.set_worker_init]. Declare its result type with
 * [method@Wpool.Task.set_result_type] to have typed exit results.
 *
 * Returns: %TRUE if it was set
 *
 * Since: 0.1
 */
gboolean
wpool_pool_set_worker_exit (WpoolPool  *self,
                            WpoolTask  *worker_exit,
                            GError    **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (!worker_exit || WPOOL_IS_TASK (worker_exit), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return wpool_pool_set_lifecycle_task (self, &self->worker_exit, worker_exit,
                                        "worker-exit", PROP_WORKER_EXIT, error);
}

/**
 * wpool_pool_get_worker_start_timeout:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the longest a worker process may take to start.
 *
 * Returns: the timeout in seconds, or 0 for no limit
 *
 * Since: 0.2
 */
gdouble
wpool_pool_get_worker_start_timeout (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->worker_start_timeout;
}

/**
 * wpool_pool_set_worker_start_timeout:
 * @self: a [class@Wpool.Pool]
 * @timeout: the longest a worker process may take to start, in seconds,
 *   or 0 for no limit
 *
 * Sets [property@Wpool.Pool:worker-start-timeout], for workers started
 * afterwards.
 *
 * Since: 0.2
 */
void
wpool_pool_set_worker_start_timeout (WpoolPool *self,
                                     gdouble    timeout)
{
  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (timeout >= 0 && timeout <= G_MAXDOUBLE / G_USEC_PER_SEC);

  wpool_pool_set_seconds (self, &self->worker_start_timeout, timeout, PROP_WORKER_START_TIMEOUT);
}

/**
 * wpool_pool_get_worker_init_timeout:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the longest a worker-init may run.
 *
 * Returns: the timeout in seconds, or 0 for no limit
 *
 * Since: 0.1
 */
gdouble
wpool_pool_get_worker_init_timeout (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->worker_init_timeout;
}

/**
 * wpool_pool_set_worker_init_timeout:
 * @self: a [class@Wpool.Pool]
 * @timeout: the longest a worker-init may run, in seconds, or 0 for no
 *   limit
 *
 * Sets [property@Wpool.Pool:worker-init-timeout], for workers started
 * afterwards.
 *
 * Since: 0.1
 */
void
wpool_pool_set_worker_init_timeout (WpoolPool *self,
                                    gdouble    timeout)
{
  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (timeout >= 0 && timeout <= G_MAXDOUBLE / G_USEC_PER_SEC);

  wpool_pool_set_seconds (self, &self->worker_init_timeout, timeout, PROP_WORKER_INIT_TIMEOUT);
}

/**
 * wpool_pool_get_worker_exit_timeout:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the longest a worker-exit may run.
 *
 * Returns: the timeout in seconds, or 0 for no limit
 *
 * Since: 0.1
 */
gdouble
wpool_pool_get_worker_exit_timeout (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->worker_exit_timeout;
}

/**
 * wpool_pool_set_worker_exit_timeout:
 * @self: a [class@Wpool.Pool]
 * @timeout: the longest a worker-exit may run, in seconds, or 0 for no
 *   limit
 *
 * Sets [property@Wpool.Pool:worker-exit-timeout], for workers started
 * afterwards.
 *
 * Since: 0.1
 */
void
wpool_pool_set_worker_exit_timeout (WpoolPool *self,
                                    gdouble    timeout)
{
  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (timeout >= 0 && timeout <= G_MAXDOUBLE / G_USEC_PER_SEC);

  wpool_pool_set_seconds (self, &self->worker_exit_timeout, timeout, PROP_WORKER_EXIT_TIMEOUT);
}

/**
 * wpool_pool_get_exit_results:
 * @self: a [class@Wpool.Pool]
 * @error: return location for a [type@GLib.Error]
 *
 * Gets what [property@Wpool.Pool:worker-exit] returned in every worker, the
 * last time the workers stopped (nothing if they stopped without a
 * worker-exit), as MPIRE's `get_exit_results`: an array of the exit task's
 * result type or `av`, with the workers restarted for their
 * [property@Wpool.Pool:worker-lifespan] since first, in the order they
 * restarted, then one per worker in worker order. If a worker's exit
 * failed, timed out, or could not run because the worker had died, this
 * fails with the first such error instead.
 *
 * Returns: (transfer full) (nullable): the exit results, or %NULL, with
 *   @error set if an exit failed, or without if no worker ran an exit yet
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_get_exit_results (WpoolPool  *self,
                             GError    **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (self->exit_error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->exit_error));
      return NULL;
    }

  return self->exit_results ? g_variant_ref (self->exit_results) : NULL;
}

static gboolean
wpool_pool_check_idle (WpoolPool  *self,
                       GError    **error)
{
  guint n_running = self->running_jobs->len + wpool_pool_get_n_pending (self);

  if (n_running == 0)
    return TRUE;

  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_WORKERS_RUNNING,
               "%u maps still run on the workers: wait for them to end, or cancel them",
               n_running);
  return FALSE;
}

/**
 * wpool_pool_stop_and_join:
 * @self: a [class@Wpool.Pool]
 * @error: return location for a [type@GLib.Error]
 *
 * Stops the workers now, as MPIRE's `stop_and_join`: each runs
 * [property@Wpool.Pool:worker-exit] first, and is waited for. A kept-alive
 * pool does this when [property@Wpool.Pool:keep-alive] is unset or the pool
 * is disposed; the next map starts new workers. It fails with
 * %WPOOL_ERROR_WORKERS_RUNNING while maps run, or with the first
 * worker-exit error of the workers it stopped, as
 * [method@Wpool.Pool.get_exit_results] gives it. With no workers to stop,
 * it succeeds.
 *
 * Returns: %TRUE if the workers stopped and their exits succeeded
 *
 * Since: 0.1
 */
gboolean
wpool_pool_stop_and_join (WpoolPool  *self,
                          GError    **error)
{
  g_autoptr(GVariant) results = NULL;
  GError *local_error = NULL;
  gboolean stopped;

  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_rec_mutex_lock (&self->lock);
  if (!wpool_pool_check_idle (self, error))
    {
      g_rec_mutex_unlock (&self->lock);
      return FALSE;
    }

  /* Workers that stopped earlier reported their exits then: no old
   * error comes again from a pool with none to stop. */
  stopped = self->backend != NULL;
  wpool_pool_stop_workers (self, TRUE, NULL);
  g_rec_mutex_unlock (&self->lock);

  if (!stopped)
    return TRUE;

  results = wpool_pool_get_exit_results (self, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }

  return TRUE;
}

/**
 * wpool_pool_terminate:
 * @self: a [class@Wpool.Pool]
 * @error: return location for a [type@GLib.Error]
 *
 * Stops the workers now without running [property@Wpool.Pool:worker-exit],
 * as MPIRE's `terminate`: worker processes are told to end and reaped. It
 * fails with %WPOOL_ERROR_WORKERS_RUNNING while maps run: cancel them
 * first.
 *
 * Returns: %TRUE if the workers stopped
 *
 * Since: 0.1
 */
gboolean
wpool_pool_terminate (WpoolPool  *self,
                      GError    **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_rec_mutex_lock (&self->lock);
  if (!wpool_pool_check_idle (self, error))
    {
      g_rec_mutex_unlock (&self->lock);
      return FALSE;
    }

  wpool_pool_stop_workers (self, FALSE, NULL);
  g_rec_mutex_unlock (&self->lock);

  return TRUE;
}
