/* wpool-pool-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <sys/types.h>

#include "wpool-backend-private.h"
#include "wpool-insights-private.h"
#include "wpool-job-private.h"
#include "wpool-pool.h"

G_BEGIN_DECLS

/* The pool's state, shared by the GObject and its configuration
 * (wpool-pool.c) and the files of its parts. */
struct _WpoolPool
{
  GObject           parent_instance;
  gboolean          disposed;
  /* A property value the pool could not take at construction. */
  GError           *construct_error;
  /* The process that made the pool (see wpool_pool_dispose()). */
  pid_t             owner;

  /* Held while workers start or stop and while a map joins or leaves the
   * pool, by whatever thread does it. An async map takes it on the pool's
   * control thread only, which starts and ends async maps in order, so
   * that a main loop never waits for it. */
  GRecMutex         lock;
  /* Under the pending mutex: what the control thread is to do, and the
   * thread, which runs while there is something and then ends; joined by
   * the next one, or as the pool is disposed. */
  GQueue            controls;
  GThread          *control;
  gboolean          control_running;
  /* Async maps handed to the control thread and not started yet: they
   * count as running for the checks of what may change meanwhile, and a
   * blocking map starts after them, in the order of the calls. */
  GMutex            pending_mutex;
  GCond             pending_cond;
  gint              n_pending;

  guint             n_jobs;
  WpoolStartMethod  start_method;
  guint             chunk_size;
  guint             n_splits;
  guint             max_tasks_active;
  gdouble           task_timeout;
  guint             keep_alive : 1;
  guint             enable_insights : 1;

  /* The insights of the maps since the pool was last idle. */
  WpoolInsights    *insights;

  /* Given to the workers as they start. */
  GVariant         *cpu_ids;
  guint             worker_lifespan;
  WpoolTask        *worker_init;
  WpoolTask        *worker_exit;
  gdouble           worker_start_timeout;
  gdouble           worker_init_timeout;
  gdouble           worker_exit_timeout;

  /* The outcome of the worker-exits at the last stop that ran them. */
  GVariant         *exit_results;
  GError           *exit_error;

  GVariant         *shared_objects;
  gpointer          shared_data;
  GDestroyNotify    shared_data_destroy;

  /* Non-NULL while workers run. */
  WpoolBackend     *backend;

  /* The maps handed to the workers and not finished yet. Progress since
   * the pool last became busy: the items of every map started since, those
   * completed by the maps that finished, and the source that reports on
   * the caller's context. */
  guint64           n_total;
  guint64           n_completed_finished;
  guint64           n_completed_reported;
  gint64            busy_since;
  gdouble           eta;
  GPtrArray        *running_jobs;
  GSource          *progress_source;
};

enum {
  PROP_0,
  PROP_N_JOBS,
  PROP_START_METHOD,
  PROP_SHARED_OBJECTS,
  PROP_KEEP_ALIVE,
  PROP_CHUNK_SIZE,
  PROP_N_SPLITS,
  PROP_MAX_TASKS_ACTIVE,
  PROP_TASK_TIMEOUT,
  PROP_WORKER_INIT,
  PROP_WORKER_EXIT,
  PROP_WORKER_START_TIMEOUT,
  PROP_WORKER_INIT_TIMEOUT,
  PROP_WORKER_EXIT_TIMEOUT,
  PROP_ENABLE_INSIGHTS,
  PROP_CPU_IDS,
  PROP_WORKER_LIFESPAN,
  PROP_WORKERS_RUNNING,
  PROP_N_COMPLETED,
  PROP_N_TOTAL,
  PROP_ETA,
  N_PROPS
};

/* What a change of the pool's state emits, as a mask of properties and
 * of the progress signal. */
enum {
  PROGRESS,
  N_SIGNALS
};

/* The pool's GParamSpecs and signals (wpool-pool-base.c), which its
 * class_init fills. */
extern GParamSpec *wpool_pool_properties[N_PROPS];
extern guint wpool_pool_signals[N_SIGNALS];

#define EMIT_PROGRESS (1u << N_PROPS)
#define PROP_BIT(prop) (1u << (prop))

/* How often the progress of running maps is reported. */
#define PROGRESS_INTERVAL_MS 50

/* A timeout property in µs, at least 1 µs: 0 means no limit. */
static inline gint64
seconds_to_usec (gdouble seconds)
{
  return seconds > 0 ? MAX ((gint64)(seconds * G_USEC_PER_SEC), 1) : 0;
}

/* wpool-pool.c's helpers: the map family (wpool-pool-map.c), progress
 * and insights (wpool-pool-progress.c) and the worker lifecycle
 * (wpool-pool-lifecycle.c) call these, never the other way round. */
gboolean wpool_pool_check_usable     (WpoolPool     *self,
                                        GError       **error);
guint    wpool_pool_get_n_pending      (WpoolPool     *self);
gboolean wpool_pool_check_workers_stopped (WpoolPool  *self,
                                        const char    *what,
                                        GError       **error);
void     wpool_pool_notify             (WpoolPool     *self,
                                        guint          prop_id);
void     wpool_pool_set_seconds        (WpoolPool     *self,
                                        gdouble       *field,
                                        gdouble        seconds,
                                        guint          prop_id);
void     wpool_pool_emit               (WpoolPool     *self,
                                        GMainContext  *context,
                                        guint          mask,
                                        guint64        n_completed,
                                        guint64        n_total);
void     wpool_pool_take_exit_results  (WpoolPool     *self);
void     wpool_pool_stop_workers       (WpoolPool     *self,
                                        gboolean       run_exit,
                                        GMainContext  *context);
void     wpool_pool_report_progress    (WpoolPool     *self,
                                        GMainContext  *context);
void     wpool_pool_stop_progress      (WpoolPool     *self);
gboolean wpool_pool_progress_tick      (gpointer       data);
gboolean wpool_pool_release_in_context (gpointer       object);
void     wpool_pool_attach             (GSource       *source,
                                        GMainContext  *context);


gboolean wpool_pool_end_job (WpoolPool  *self,
                             WpoolJob   *job,
                             GError    **error);

guint     wpool_pool_resolve_chunk_size (WpoolPool *self,
                                         guint      n_items,
                                         guint     *n_guided);
WpoolJob *wpool_pool_prepare_map (WpoolPool      *self,
                                  WpoolTask      *task,
                                  GVariant       *items,
                                  WpoolMapFlags   flags,
                                  GCancellable   *cancellable,
                                  GError        **error);
gboolean  wpool_pool_start_map   (WpoolPool       *self,
                                  WpoolJob        *job,
                                  WpoolJobNotify   notify,
                                  gpointer         notify_data,
                                  GMainContext    *context,
                                  GError         **error);

G_END_DECLS
