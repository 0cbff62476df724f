/* wpool-pool.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <sched.h>
#include <unistd.h>

#include "wpool-backend-private.h"
#include "wpool-enums.h"
#include "wpool-error.h"
#include "wpool-insights-private.h"
#include "wpool-job-private.h"
#include "wpool-pool-private.h"
#include "wpool-task-private.h"
#include "wpool-variant-private.h"

/**
 * WpoolPool:
 *
 * A pool of workers that maps a [class@Wpool.Task] over the items of a
 * [struct@GLib.Variant] array in parallel and lets the workers share
 * objects with the caller, as MPIRE's `WorkerPool` does.
 *
 * The workers are threads or processes, as
 * [property@Wpool.Pool:start-method] says; they start at the first map, and
 * are stopped after each map unless [property@Wpool.Pool:keep-alive] is
 * set. The [property@Wpool.Pool:shared-objects] reach every worker once, at
 * its start, and every task call as the argument after the worker.
 *
 * Items are handed out in chunks of [property@Wpool.Pool:chunk-size].
 * Results come back in input order. The first error (a task's own, or the
 * pool's) stops the map and is returned, the item and the worker named in
 * its message; the pool stays usable.
 *
 * A pool is thread-safe: several threads may map on one pool at once, and
 * cancel its maps. An async map never blocks its caller: the workers start,
 * and the map ends, on a thread of the pool's own, and its callback, the
 * [signal@Wpool.Pool::progress] signal and the notifications of its
 * progress run on the thread-default main context of the thread that
 * started it. A blocking map emits them on its own thread.
 *
 * Properties whose change can fail (the shared objects, the worker-init
 * and worker-exit, the CPU ids) are set at construction, or afterwards
 * with their methods, such as [method@Wpool.Pool.set_shared_objects],
 * which return why they could not change them: a property write cannot
 * report an error, so bindings would show none. A value a pool cannot
 * take at construction makes every map fail with the reason.
 *
 * Since: 0.1
 */

G_DEFINE_FINAL_TYPE (WpoolPool, wpool_pool, G_TYPE_OBJECT)

static void
wpool_pool_clear_shared_data (WpoolPool *self)
{
  gpointer data = g_steal_pointer (&self->shared_data);
  GDestroyNotify destroy = self->shared_data_destroy;

  self->shared_data_destroy = NULL;

  if (destroy != NULL)
    destroy (data);
}

static void
wpool_pool_dispose (GObject *object)
{
  WpoolPool *self = (WpoolPool *)object;
  GThread *control;

  /* A forked worker's copy of a pool of its parent's (which a language's
   * garbage collector may free there) has none of its threads and none
   * of its workers, and its locks may be held by threads it does not
   * have: it is not the worker's to stop, nor to free. */
  if (self->owner != getpid ())
    {
      G_OBJECT_CLASS (wpool_pool_parent_class)->dispose (object);
      return;
    }

  /* Every async map holds a reference to the pool: the control thread
   * has nothing left to do, and ends. */
  g_mutex_lock (&self->pending_mutex);
  control = g_steal_pointer (&self->control);
  g_mutex_unlock (&self->pending_mutex);
  if (control != NULL)
    g_thread_join (control);

  g_rec_mutex_lock (&self->lock);
  self->disposed = TRUE;
  wpool_pool_stop_progress (self);

  /* A running map holds a reference to the pool, so nothing runs here.
   * The workers' exit runs, unlike MPIRE's when it leaves `with`. */
  wpool_pool_stop_workers (self, TRUE, NULL);
  wpool_pool_clear_shared_data (self);
  g_clear_pointer (&self->shared_objects, g_variant_unref);
  g_rec_mutex_unlock (&self->lock);

  G_OBJECT_CLASS (wpool_pool_parent_class)->dispose (object);
}

static void
wpool_pool_finalize (GObject *object)
{
  WpoolPool *self = (WpoolPool *)object;

  if (self->owner != getpid ())
    {
      G_OBJECT_CLASS (wpool_pool_parent_class)->finalize (object);
      return;
    }

  g_rec_mutex_clear (&self->lock);
  g_mutex_clear (&self->pending_mutex);
  g_cond_clear (&self->pending_cond);
  g_ptr_array_unref (self->running_jobs);
  g_clear_object (&self->worker_init);
  g_clear_object (&self->worker_exit);
  g_clear_pointer (&self->exit_results, g_variant_unref);
  g_clear_error (&self->exit_error);
  g_clear_error (&self->construct_error);
  g_clear_pointer (&self->insights, wpool_insights_unref);
  g_clear_pointer (&self->cpu_ids, g_variant_unref);

  G_OBJECT_CLASS (wpool_pool_parent_class)->finalize (object);
}

static void
wpool_pool_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  WpoolPool *self = WPOOL_POOL (object);

  switch (prop_id)
    {
    case PROP_N_JOBS:
      g_value_set_uint (value, self->n_jobs);
      break;

    case PROP_START_METHOD:
      g_value_set_enum (value, self->start_method);
      break;

    case PROP_SHARED_OBJECTS:
      g_value_set_variant (value, self->shared_objects);
      break;

    case PROP_KEEP_ALIVE:
      g_value_set_boolean (value, self->keep_alive);
      break;

    case PROP_CHUNK_SIZE:
      g_value_set_uint (value, self->chunk_size);
      break;

    case PROP_TASK_TIMEOUT:
      g_value_set_double (value, self->task_timeout);
      break;

    case PROP_N_SPLITS:
      g_value_set_uint (value, self->n_splits);
      break;

    case PROP_MAX_TASKS_ACTIVE:
      g_value_set_uint (value, self->max_tasks_active);
      break;

    case PROP_WORKER_INIT:
      g_value_set_object (value, self->worker_init);
      break;

    case PROP_WORKER_EXIT:
      g_value_set_object (value, self->worker_exit);
      break;

    case PROP_WORKER_START_TIMEOUT:
      g_value_set_double (value, self->worker_start_timeout);
      break;

    case PROP_WORKER_INIT_TIMEOUT:
      g_value_set_double (value, self->worker_init_timeout);
      break;

    case PROP_WORKER_EXIT_TIMEOUT:
      g_value_set_double (value, self->worker_exit_timeout);
      break;

    case PROP_WORKERS_RUNNING:
      g_value_set_boolean (value, wpool_pool_get_workers_running (self));
      break;

    case PROP_N_COMPLETED:
      g_value_set_uint64 (value, self->n_completed_reported);
      break;

    case PROP_N_TOTAL:
      g_value_set_uint64 (value, self->n_total);
      break;

    case PROP_ETA:
      g_value_set_double (value, self->eta);
      break;

    case PROP_ENABLE_INSIGHTS:
      g_value_set_boolean (value, self->enable_insights);
      break;

    case PROP_CPU_IDS:
      g_value_set_variant (value, self->cpu_ids);
      break;

    case PROP_WORKER_LIFESPAN:
      g_value_set_uint (value, self->worker_lifespan);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* The properties whose change can fail are construct-only, and their
 * methods change them afterwards: a property write cannot report an
 * error, and bindings would see none. At construction no worker runs,
 * so what fails is a value the pool cannot take: the first such error
 * fails every map (wpool_pool_check_usable()), rather than be lost. */
static void
wpool_pool_keep_construct_error (WpoolPool   *self,
                                 GParamSpec  *pspec,
                                 GError     **error)
{
  if (self->construct_error != NULL)
    return;

  g_prefix_error (error, "The pool was constructed with a “%s” it cannot take: ", pspec->name);
  self->construct_error = g_steal_pointer (error);
}

static void
wpool_pool_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  WpoolPool *self = WPOOL_POOL (object);
  g_autoptr(GError) error = NULL;

  switch (prop_id)
    {
    case PROP_N_JOBS:
      self->n_jobs = g_value_get_uint (value);
      if (self->n_jobs == 0)
        self->n_jobs = MIN (g_get_num_processors (), WPOOL_MAX_N_JOBS);
      break;

    case PROP_START_METHOD:
      self->start_method = g_value_get_enum (value);
      break;

    case PROP_SHARED_OBJECTS:
      if (!wpool_pool_set_shared_objects (self, g_value_get_variant (value), &error))
        wpool_pool_keep_construct_error (self, pspec, &error);
      break;

    case PROP_KEEP_ALIVE:
      wpool_pool_set_keep_alive (self, g_value_get_boolean (value));
      break;

    case PROP_CHUNK_SIZE:
      wpool_pool_set_chunk_size (self, g_value_get_uint (value));
      break;

    case PROP_TASK_TIMEOUT:
      wpool_pool_set_task_timeout (self, g_value_get_double (value));
      break;

    case PROP_N_SPLITS:
      wpool_pool_set_n_splits (self, g_value_get_uint (value));
      break;

    case PROP_MAX_TASKS_ACTIVE:
      wpool_pool_set_max_tasks_active (self, g_value_get_uint (value));
      break;

    case PROP_WORKER_INIT:
      if (!wpool_pool_set_worker_init (self, g_value_get_object (value), &error))
        wpool_pool_keep_construct_error (self, pspec, &error);
      break;

    case PROP_WORKER_EXIT:
      if (!wpool_pool_set_worker_exit (self, g_value_get_object (value), &error))
        wpool_pool_keep_construct_error (self, pspec, &error);
      break;

    case PROP_WORKER_START_TIMEOUT:
      wpool_pool_set_worker_start_timeout (self, g_value_get_double (value));
      break;

    case PROP_WORKER_INIT_TIMEOUT:
      wpool_pool_set_worker_init_timeout (self, g_value_get_double (value));
      break;

    case PROP_ENABLE_INSIGHTS:
      wpool_pool_set_enable_insights (self, g_value_get_boolean (value));
      break;

    case PROP_WORKER_LIFESPAN:
      wpool_pool_set_worker_lifespan (self, g_value_get_uint (value));
      break;

    case PROP_CPU_IDS:
      if (!wpool_pool_set_cpu_ids (self, g_value_get_variant (value), &error))
        wpool_pool_keep_construct_error (self, pspec, &error);
      break;

    case PROP_WORKER_EXIT_TIMEOUT:
      wpool_pool_set_worker_exit_timeout (self, g_value_get_double (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
wpool_pool_class_init (WpoolPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = wpool_pool_dispose;
  object_class->finalize = wpool_pool_finalize;
  object_class->get_property = wpool_pool_get_property;
  object_class->set_property = wpool_pool_set_property;

  /**
   * WpoolPool:n-jobs:
   *
   * The number of workers, from 1 to %WPOOL_MAX_N_JOBS. Setting 0 at
   * construction means the number of processors, which is also the
   * default; reading it gives the number actually used.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_N_JOBS] =
    g_param_spec_uint ("n-jobs", NULL, NULL,
                       0, WPOOL_MAX_N_JOBS, 0,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:start-method:
   *
   * How the workers start, and so how the shared objects reach them.
   * %WPOOL_START_METHOD_FORK by default, as MPIRE on Linux.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_START_METHOD] =
    g_param_spec_enum ("start-method", NULL, NULL,
                       WPOOL_TYPE_START_METHOD,
                       WPOOL_START_METHOD_FORK,
                       (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:shared-objects:
   *
   * The objects every worker shares with the caller, given to every task
   * call as the argument after the worker. Several objects travel as one
   * tuple.
   *
   * A construct-time property: a change can fail, which only a method
   * can report. Change them afterwards with
   * [method@Wpool.Pool.set_shared_objects], while no worker runs.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_SHARED_OBJECTS] =
    g_param_spec_variant ("shared-objects", NULL, NULL,
                          G_VARIANT_TYPE_ANY, NULL,
                          (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:keep-alive:
   *
   * Whether the workers (and the shared objects they hold) are kept for
   * the next map instead of being stopped after each map. Unsetting it
   * while no map runs stops them.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_KEEP_ALIVE] =
    g_param_spec_boolean ("keep-alive", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:chunk-size:
   *
   * How many consecutive items a worker takes at once. 0, the default,
   * means automatic: with [property@Wpool.Pool:n-splits] automatic too,
   * chunks are guided (as OpenMP's `schedule(guided)`): each worker takes a
   * share of the items left, from a quarter of the items with two workers
   * down to a sixteenth of MPIRE's chunk size, so that early chunks cost
   * few round trips and the last ones are small enough for uneven items to
   * end together; with [property@Wpool.Pool:n-splits] set, that many even
   * chunks.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_CHUNK_SIZE] =
    g_param_spec_uint ("chunk-size", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:n-splits:
   *
   * Into how many even chunks a map's items are split when
   * [property@Wpool.Pool:chunk-size] is automatic (0), as MPIRE's
   * `n_splits`; 0, the default, means guided chunks (see
   * [property@Wpool.Pool:chunk-size]). MPIRE's default split is four chunks
   * per worker.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_N_SPLITS] =
    g_param_spec_uint ("n-splits", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:max-tasks-active:
   *
   * How many chunks of a [method@Wpool.Pool.imap_source] map may be taken
   * from its source and not yet handed out, as MPIRE's `max_tasks_active`;
   * 0, the default, means twice the number of workers. It bounds the memory
   * such a map holds, whatever its length.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_MAX_TASKS_ACTIVE] =
    g_param_spec_uint ("max-tasks-active", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:task-timeout:
   *
   * The longest a task may run on one item, in seconds, or 0 (the
   * default) for no limit: MPIRE's `task_timeout`. An item that runs
   * longer fails its map with %WPOOL_ERROR_TIMED_OUT, the item and the
   * worker named.
   *
   * A worker process is killed, and replaced before the next map. A
   * worker thread cannot be stopped: the map ends without waiting for it
   * and the pool replaces it with a new thread, but the old one runs the
   * item to its end, holding the worker, the task and the shared objects
   * until then, and its result is dropped. A task under THREADING that
   * may hang must not use data that the caller frees after the map.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_TASK_TIMEOUT] =
    g_param_spec_double ("task-timeout", NULL, NULL,
                         0, G_MAXDOUBLE / G_USEC_PER_SEC, 0,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-init:
   *
   * A task every worker runs once as it starts, before its first item, as
   * MPIRE's `worker_init`: it receives the worker, the shared objects and
   * an empty tuple as its item, and typically fills the worker's state
   * ([method@Wpool.Worker.get_state]). Its result is dropped. If it fails,
   * every item the worker takes fails with its error.
   *
   * Worker processes run it at once; worker threads before their first
   * item. A construct-time property: change it afterwards with
   * [method@Wpool.Pool.set_worker_init], while no worker runs. A task the
   * start method cannot run makes every map fail with the reason.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKER_INIT] =
    g_param_spec_object ("worker-init", NULL, NULL,
                         WPOOL_TYPE_TASK,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-exit:
   *
   * A task every worker runs once as it stops, as MPIRE's `worker_exit`: it
   * receives the worker, the shared objects and an empty tuple as its item,
   * and returns a result, which [method@Wpool.Pool.get_exit_results]
   * gathers. Workers stop after each map, unless
   * [property@Wpool.Pool:keep-alive] is set; then when it is unset, when
   * [method@Wpool.Pool.stop_and_join] is called or when the pool is
   * disposed. [method@Wpool.Pool.terminate] skips it.
   *
   * A construct-time property: change it afterwards with
   * [method@Wpool.Pool.set_worker_exit], while no worker runs. A task the
   * start method cannot run makes every map fail with the reason.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKER_EXIT] =
    g_param_spec_object ("worker-exit", NULL, NULL,
                         WPOOL_TYPE_TASK,
                         (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-start-timeout:
   *
   * The longest a worker process may go without a sign of progress while
   * it starts, in seconds, or 0 for no limit; 60 by default. Starting takes
   * in the new program's start (%WPOOL_START_METHOD_SPAWN), loading the
   * task's module (its constructors run then), receiving the shared
   * objects and saying it is ready; a fork server starting or forking a
   * worker likewise. Each part of the shared objects it takes in is
   * progress, so a big dataset sent to a slow worker does not time out;
   * a module whose constructor blocks, or a helper that never answers,
   * does. A worker past it is killed and the map fails with
   * %WPOOL_ERROR_TIMED_OUT naming it. Cancelling the map ends a start at
   * once the same way. Worker threads, and FORK workers, which a template
   * forks, start at once. It applies to workers started afterwards.
   *
   * Since: 0.2
   */
  wpool_pool_properties[PROP_WORKER_START_TIMEOUT] =
    g_param_spec_double ("worker-start-timeout", NULL, NULL,
                         0, G_MAXDOUBLE / G_USEC_PER_SEC, 60,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-init-timeout:
   *
   * The longest [property@Wpool.Pool:worker-init] may run, in seconds, or 0
   * (the default) for no limit. A worker process past it is killed: the map
   * fails with %WPOOL_ERROR_TIMED_OUT, or under %WPOOL_MAP_FLAGS_KEEP_GOING
   * its items run on other workers. A worker thread is abandoned as for
   * [property@Wpool.Pool:task-timeout]. It applies to workers started
   * afterwards.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKER_INIT_TIMEOUT] =
    g_param_spec_double ("worker-init-timeout", NULL, NULL,
                         0, G_MAXDOUBLE / G_USEC_PER_SEC, 0,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-exit-timeout:
   *
   * The longest [property@Wpool.Pool:worker-exit] may run, in seconds, or 0
   * (the default) for no limit. A worker process past it is killed; the
   * pool stops waiting for a worker thread, which is left to finish on its
   * own. Either way its exit result is a %WPOOL_ERROR_TIMED_OUT error. It
   * applies to workers started afterwards.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKER_EXIT_TIMEOUT] =
    g_param_spec_double ("worker-exit-timeout", NULL, NULL,
                         0, G_MAXDOUBLE / G_USEC_PER_SEC, 0,
                         (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:workers-running:
   *
   * Whether the pool's workers are running: during a map, and after it when
   * [property@Wpool.Pool:keep-alive] is set. The shared objects can only
   * change while it is %FALSE.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKERS_RUNNING] =
    g_param_spec_boolean ("workers-running", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:n-completed:
   *
   * How many items the maps started since the pool was last idle have
   * completed, as last reported on the caller's main context: at most 20
   * times a second while maps run, and once more when the last one ends.
   * Worker threads publish their count every 64 items, worker processes
   * at the end of each chunk.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_N_COMPLETED] =
    g_param_spec_uint64 ("n-completed", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:n-total:
   *
   * How many items the maps started since the pool was last idle have in
   * all. A map started on an idle pool starts the count anew.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_N_TOTAL] =
    g_param_spec_uint64 ("n-total", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:eta:
   *
   * The estimated seconds left until the maps started since the pool was
   * last idle end, at the rate they went so far; -1 until an item is
   * done. It is updated with [property@Wpool.Pool:n-completed].
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_ETA] =
    g_param_spec_double ("eta", NULL, NULL,
                         -1, G_MAXDOUBLE, -1,
                         (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:enable-insights:
   *
   * Whether the workers measure where the time of a map goes, as MPIRE's
   * `enable_insights`: see [method@Wpool.Pool.get_insights]. Each item is
   * timed, which costs two clock reads per item. It applies to maps started
   * afterwards.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_ENABLE_INSIGHTS] =
    g_param_spec_boolean ("enable-insights", NULL, NULL,
                          FALSE,
                          (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:worker-lifespan:
   *
   * How many chunks a worker runs before it restarts, as MPIRE's
   * `worker_lifespan` (a chunk is one of its tasks), or 0 (the default) for
   * no limit: for tasks that leak, or hold on to memory. A restarting
   * worker runs [property@Wpool.Pool:worker-exit] (its result joins the
   * exit results) and starts anew with an empty state and
   * [property@Wpool.Pool:worker-init], in the middle of a map. Worker
   * threads only get a new [class@Wpool.Worker].
   *
   * Under %WPOOL_START_METHOD_FORK the new worker is forked by the
   * pool's template, a single-threaded fork of the caller made when the
   * first worker started, never by the caller in the middle of a map: it
   * sees the caller's memory as the template does. It applies to workers
   * started afterwards.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_WORKER_LIFESPAN] =
    g_param_spec_uint ("worker-lifespan", NULL, NULL,
                       0, G_MAXUINT, 0,
                       (G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  /**
   * WpoolPool:cpu-ids:
   *
   * The CPUs the workers are pinned to, as MPIRE's `cpu_ids`: an `aau`
   * with one list of CPU numbers for all the workers, or one for each, or
   * %NULL (the default) for no pinning. A construct-time property:
   * change it afterwards with [method@Wpool.Pool.set_cpu_ids], while no
   * worker runs. CPU ids the pool cannot take make every map fail with
   * the reason.
   *
   * Since: 0.1
   */
  wpool_pool_properties[PROP_CPU_IDS] =
    g_param_spec_variant ("cpu-ids", NULL, NULL,
                          G_VARIANT_TYPE ("aau"), NULL,
                          (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, wpool_pool_properties);

  /**
   * WpoolPool::progress:
   * @self: a [class@Wpool.Pool]
   * @n_completed: the items completed, [property@Wpool.Pool:n-completed]
   * @n_total: the items in all, [property@Wpool.Pool:n-total]
   *
   * Emitted on the thread-default main context of the caller that started
   * the maps, at most 20 times a second while they run and once when the
   * last one ends, whenever items were completed since the last emission.
   * During a blocking [method@Wpool.Pool.map] the caller's context does not
   * run: only the last emission comes, when the map returns.
   *
   * Since: 0.1
   */
  wpool_pool_signals[PROGRESS] =
    g_signal_new ("progress",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 2, G_TYPE_UINT64, G_TYPE_UINT64);
}

static void
wpool_pool_init (WpoolPool *self)
{
  self->owner = getpid ();
  g_rec_mutex_init (&self->lock);
  g_mutex_init (&self->pending_mutex);
  g_cond_init (&self->pending_cond);
  self->running_jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) wpool_job_unref);
  self->n_jobs = MIN (g_get_num_processors (), WPOOL_MAX_N_JOBS);
  self->start_method = WPOOL_START_METHOD_FORK;
  self->eta = -1;
  self->worker_start_timeout = 60;
}

/**
 * wpool_pool_new:
 * @n_jobs: the number of workers, or 0 for the number of processors
 * @start_method: how the workers start
 *
 * Creates a pool. No worker starts until the first map.
 *
 * Returns: (transfer full): a new [class@Wpool.Pool]
 *
 * Since: 0.1
 */
WpoolPool *
wpool_pool_new (guint            n_jobs,
                WpoolStartMethod start_method)
{
  g_return_val_if_fail (n_jobs <= WPOOL_MAX_N_JOBS, NULL);

  return g_object_new (WPOOL_TYPE_POOL,
                       "n-jobs", n_jobs,
                       "start-method", start_method,
                       NULL);
}

/**
 * wpool_pool_get_n_jobs:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the number of workers.
 *
 * Returns: the number of workers
 *
 * Since: 0.1
 */
guint
wpool_pool_get_n_jobs (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->n_jobs;
}

/**
 * wpool_pool_get_start_method:
 * @self: a [class@Wpool.Pool]
 *
 * Gets how the workers start.
 *
 * Returns: the start method
 *
 * Since: 0.1
 */
WpoolStartMethod
wpool_pool_get_start_method (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), WPOOL_START_METHOD_FORK);

  return self->start_method;
}

/**
 * wpool_pool_get_keep_alive:
 * @self: a [class@Wpool.Pool]
 *
 * Gets whether the workers are kept between maps.
 *
 * Returns: %TRUE if the workers are kept alive
 *
 * Since: 0.1
 */
gboolean
wpool_pool_get_keep_alive (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);

  return self->keep_alive;
}

/**
 * wpool_pool_set_keep_alive:
 * @self: a [class@Wpool.Pool]
 * @keep_alive: whether to keep the workers between maps
 *
 * Sets whether the workers, and the shared objects they hold, are kept
 * for the next map. Unsetting it while no map runs stops the workers now.
 *
 * Since: 0.1
 */
void
wpool_pool_set_keep_alive (WpoolPool *self,
                           gboolean   keep_alive)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  keep_alive = !!keep_alive;

  if (self->keep_alive == keep_alive)
    return;

  self->keep_alive = keep_alive;

  g_rec_mutex_lock (&self->lock);
  if (!keep_alive && self->running_jobs->len == 0)
    wpool_pool_stop_workers (self, TRUE, NULL);
  g_rec_mutex_unlock (&self->lock);

  wpool_pool_notify (self, PROP_KEEP_ALIVE);
}

/**
 * wpool_pool_get_chunk_size:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the number of items a worker takes at once.
 *
 * Returns: the chunk size, or 0 for automatic
 *
 * Since: 0.1
 */
guint
wpool_pool_get_chunk_size (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->chunk_size;
}

/**
 * wpool_pool_set_chunk_size:
 * @self: a [class@Wpool.Pool]
 * @chunk_size: the number of items a worker takes at once, or 0 for
 *   automatic
 *
 * Sets how many consecutive items a worker takes at once. Larger chunks
 * cost less per item; smaller ones balance uneven items better. It applies
 * from the next map on.
 *
 * Since: 0.1
 */
void
wpool_pool_set_chunk_size (WpoolPool *self,
                           guint      chunk_size)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  if (self->chunk_size == chunk_size)
    return;

  self->chunk_size = chunk_size;
  wpool_pool_notify (self, PROP_CHUNK_SIZE);
}

/**
 * wpool_pool_get_n_splits:
 * @self: a [class@Wpool.Pool]
 *
 * Gets into how many chunks an automatic chunk size splits a map.
 *
 * Returns: the number of splits, or 0 for guided chunks
 *
 * Since: 0.1
 */
guint
wpool_pool_get_n_splits (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->n_splits;
}

/**
 * wpool_pool_set_n_splits:
 * @self: a [class@Wpool.Pool]
 * @n_splits: the number of chunks, or 0 for guided chunks
 *
 * Sets [property@Wpool.Pool:n-splits]. It applies from the next map on.
 *
 * Since: 0.1
 */
void
wpool_pool_set_n_splits (WpoolPool *self,
                         guint      n_splits)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  if (self->n_splits == n_splits)
    return;

  self->n_splits = n_splits;
  wpool_pool_notify (self, PROP_N_SPLITS);
}

/**
 * wpool_pool_get_max_tasks_active:
 * @self: a [class@Wpool.Pool]
 *
 * Gets how many chunks of a map fed by a source may be in flight.
 *
 * Returns: the number of chunks, or 0 for twice the number of workers
 *
 * Since: 0.1
 */
guint
wpool_pool_get_max_tasks_active (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->max_tasks_active;
}

/**
 * wpool_pool_set_max_tasks_active:
 * @self: a [class@Wpool.Pool]
 * @max_tasks_active: the number of chunks, or 0 for twice the number of
 *   workers
 *
 * Sets [property@Wpool.Pool:max-tasks-active], for maps started afterwards.
 *
 * Since: 0.1
 */
void
wpool_pool_set_max_tasks_active (WpoolPool *self,
                                 guint      max_tasks_active)
{
  g_return_if_fail (WPOOL_IS_POOL (self));

  if (self->max_tasks_active == max_tasks_active)
    return;

  self->max_tasks_active = max_tasks_active;
  wpool_pool_notify (self, PROP_MAX_TASKS_ACTIVE);
}

/**
 * wpool_pool_get_task_timeout:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the longest a task may run on one item.
 *
 * Returns: the task timeout in seconds, or 0 for no limit
 *
 * Since: 0.1
 */
gdouble
wpool_pool_get_task_timeout (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), 0);

  return self->task_timeout;
}

/**
 * wpool_pool_set_task_timeout:
 * @self: a [class@Wpool.Pool]
 * @task_timeout: the longest a task may run on one item, in seconds, or
 *   0 for no limit
 *
 * Sets [property@Wpool.Pool:task-timeout]. It applies from the next map on.
 *
 * Since: 0.1
 */
void
wpool_pool_set_task_timeout (WpoolPool *self,
                             gdouble    task_timeout)
{
  g_return_if_fail (WPOOL_IS_POOL (self));
  g_return_if_fail (task_timeout >= 0 && task_timeout <= G_MAXDOUBLE / G_USEC_PER_SEC);

  wpool_pool_set_seconds (self, &self->task_timeout, task_timeout, PROP_TASK_TIMEOUT);
}

/**
 * wpool_pool_get_shared_objects:
 * @self: a [class@Wpool.Pool]
 *
 * Gets the objects the workers share with the caller.
 *
 * Returns: (transfer none) (nullable): the shared objects, or %NULL
 *
 * Since: 0.1
 */
GVariant *
wpool_pool_get_shared_objects (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), NULL);

  return self->shared_objects;
}


/**
 * wpool_pool_set_shared_objects:
 * @self: a [class@Wpool.Pool]
 * @shared_objects: (nullable): the objects to share, or %NULL; if floating,
 *   it is consumed
 * @error: return location for a [type@GLib.Error]
 *
 * Sets the objects every worker shares with the caller, as MPIRE's
 * `set_shared_objects()`. Several objects travel as one tuple.
 *
 * The workers receive the shared objects when they start, at the first map.
 * Once they run (during a map, and after it with
 * [property@Wpool.Pool:keep-alive]), a change could not reach them, so it
 * is refused with %WPOOL_ERROR_WORKERS_RUNNING instead of being ignored.
 *
 * Returns: %TRUE if the shared objects were set
 *
 * Since: 0.1
 */
gboolean
wpool_pool_set_shared_objects (WpoolPool  *self,
                               GVariant   *shared_objects,
                               GError    **error)
{
  g_autoptr(GVariant) sunk = NULL;

  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (shared_objects != NULL)
    sunk = g_variant_ref_sink (shared_objects);

  if (!wpool_pool_check_workers_stopped (self, "shared objects", error))
    return FALSE;

  if (self->shared_objects == sunk)
    return TRUE;

  g_clear_pointer (&self->shared_objects, g_variant_unref);
  self->shared_objects = g_steal_pointer (&sunk);
  wpool_pool_notify (self, PROP_SHARED_OBJECTS);

  return TRUE;
}

/**
 * wpool_pool_set_shared_data: (skip)
 * @self: a [class@Wpool.Pool]
 * @shared_data: (nullable): any pointer
 * @destroy: (nullable): called on @shared_data when it is replaced or the
 *   pool is disposed
 * @error: return location for a [type@GLib.Error]
 *
 * The C escape hatch beside [property@Wpool.Pool:shared-objects]: any
 * pointer, which %WPOOL_START_METHOD_THREADING workers share with no copy
 * and %WPOOL_START_METHOD_FORK workers copy-on-write. Tasks get it with
 * [method@Wpool.Worker.get_shared_data].
 *
 * A pointer cannot reach a spawned process, so it is refused with
 * %WPOOL_ERROR_NOT_SUPPORTED for %WPOOL_START_METHOD_SPAWN and
 * %WPOOL_START_METHOD_FORKSERVER; like the shared objects, it is refused
 * with %WPOOL_ERROR_WORKERS_RUNNING while the workers run. On failure the
 * pool does not take @shared_data.
 *
 * Returns: %TRUE if the shared data was set
 */
gboolean
wpool_pool_set_shared_data (WpoolPool       *self,
                            gpointer         shared_data,
                            GDestroyNotify   destroy,
                            GError         **error)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->start_method != WPOOL_START_METHOD_THREADING &&
      self->start_method != WPOOL_START_METHOD_FORK)
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                           "Shared data is a pointer into this process: only "
                           "THREADING and FORK workers can see it. Use shared "
                           "objects with SPAWN and FORKSERVER");
      return FALSE;
    }

  if (!wpool_pool_check_workers_stopped (self, "shared data", error))
    return FALSE;

  wpool_pool_clear_shared_data (self);
  self->shared_data = shared_data;
  self->shared_data_destroy = destroy;

  return TRUE;
}

/**
 * wpool_pool_get_workers_running:
 * @self: a [class@Wpool.Pool]
 *
 * Gets whether the workers run. See [property@Wpool.Pool:workers-running].
 *
 * Returns: %TRUE if the workers run
 *
 * Since: 0.1
 */
gboolean
wpool_pool_get_workers_running (WpoolPool *self)
{
  g_return_val_if_fail (WPOOL_IS_POOL (self), FALSE);

  return g_atomic_pointer_get (&self->backend) != NULL;
}
