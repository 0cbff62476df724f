/* wpool-job-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "wpool-insights-private.h"
#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* One map: its items, how they are handed out in chunks, the results in
 * input order, the first error, and the completion that the last worker
 * signals. Every backend shares it; a worker's thread only touches it
 * between being dispatched and calling wpool_job_worker_done(). */
typedef struct _WpoolJob WpoolJob;

/* Called on the thread of the last worker to finish. */
typedef void (*WpoolJobNotify) (WpoolJob *job,
                                gpointer  user_data);

/* Called on a worker's thread when the items [first, last) finished:
 * their outcomes can be taken. */
typedef void (*WpoolJobSink)   (WpoolJob *job,
                                guint     first,
                                guint     last,
                                gpointer  user_data);

/* Called on the watchdog's thread: the share of worker @worker_id, which
 * was abandoned with items of its chunk left, should go to another
 * worker, which calls wpool_job_worker_done() for it. FALSE if none can
 * take it. */
typedef gboolean (*WpoolJobPassOn) (WpoolJob *job,
                                    guint     worker_id,
                                    gpointer  user_data);

/* How a worker's share of a job ended. */
typedef enum
{
  /* It calls wpool_job_worker_done(). */
  WPOOL_SHARE_DONE,
  /* The job went on without the worker, which overran the task timeout. */
  WPOOL_SHARE_ABANDONED,
  /* The worker died leaving items to run: another should take the share. */
  WPOOL_SHARE_PASS_ON,
  /* The worker reached its lifespan: it restarts, then goes on. */
  WPOOL_SHARE_RESTART,
} WpoolShareOutcome;

/* Called by a worker's share after each chunk: TRUE to end the share
 * with WPOOL_SHARE_RESTART. */
typedef gboolean (*WpoolJobChunkDone) (gpointer user_data);

WpoolJob           *wpool_job_new               (WpoolTask      *task,
                                                 GVariant       *items,
                                                 guint           chunk_size,
                                                 guint           n_guided,
                                                 gint64          task_timeout,
                                                 gint64          init_timeout,
                                                 gboolean        keep_going,
                                                 GCancellable   *cancellable);
WpoolJob           *wpool_job_ref               (WpoolJob       *self);
void                wpool_job_unref             (WpoolJob       *self);
WpoolTask          *wpool_job_get_task          (WpoolJob       *self);
GCancellable       *wpool_job_get_cancellable   (WpoolJob       *self);
const GVariantType *wpool_job_get_result_type   (WpoolJob       *self);
gint64              wpool_job_get_task_timeout  (WpoolJob       *self);
gint64              wpool_job_get_trace_begin   (WpoolJob       *self);
guint               wpool_job_get_n_items       (WpoolJob       *self);
guint               wpool_job_get_n_chunks      (WpoolJob       *self);
guint               wpool_job_get_n_completed   (WpoolJob       *self);
void                wpool_job_add_completed     (WpoolJob       *self,
                                                 guint           n);
void                wpool_job_begin             (WpoolJob       *self,
                                                 guint           n_workers,
                                                 WpoolJobNotify  notify,
                                                 gpointer        notify_data);
gboolean            wpool_job_next_chunk        (WpoolJob       *self,
                                                 guint          *first,
                                                 guint          *last);
guint               wpool_job_get_n_unclaimed   (WpoolJob       *self);
gboolean            wpool_job_should_stop       (WpoolJob       *self);
gboolean            wpool_job_get_keep_going    (WpoolJob       *self);
void                wpool_job_fail_item         (WpoolJob       *self,
                                                 guint           index,
                                                 GError         *error);
gboolean            wpool_job_requeue           (WpoolJob       *self,
                                                 guint           first,
                                                 guint           last);
void                wpool_job_set_sink          (WpoolJob       *self,
                                                 WpoolJobSink    sink,
                                                 gpointer        sink_data);
void                wpool_job_set_results_buffer (WpoolJob      *self,
                                                 gpointer        buffer);
void                wpool_job_set_insights      (WpoolJob       *self,
                                                 WpoolInsights  *insights);
WpoolInsights      *wpool_job_get_insights      (WpoolJob       *self);
guint               wpool_job_get_map_number    (WpoolJob       *self);
void                wpool_job_set_pass_on       (WpoolJob       *self,
                                                 WpoolJobPassOn  pass_on,
                                                 gpointer        pass_on_data);
void                wpool_job_deliver           (WpoolJob       *self,
                                                 guint           first,
                                                 guint           last);
GVariant           *wpool_job_take_outcome      (WpoolJob       *self,
                                                 guint           index,
                                                 GError        **error);
GVariant           *wpool_job_dup_chunk_items   (WpoolJob       *self,
                                                 guint           first,
                                                 guint           last);
gboolean            wpool_job_take_chunk_results (WpoolJob      *self,
                                                 guint           first,
                                                 guint           last,
                                                 GVariant       *results,
                                                 GError        **error);
void                wpool_job_fail              (WpoolJob       *self,
                                                 GError         *error);
WpoolShareOutcome   wpool_job_work              (WpoolJob          *self,
                                                 WpoolWorker       *worker,
                                                 WpoolJobChunkDone  chunk_done,
                                                 gpointer           chunk_done_data);
gboolean            wpool_job_is_abandoned      (WpoolJob       *self,
                                                 guint           worker_id);
const guint        *wpool_job_get_abandoned     (WpoolJob       *self,
                                                 guint          *n_abandoned);
void                wpool_job_worker_done       (WpoolJob       *self);
void                wpool_job_wait              (WpoolJob       *self);
gboolean            wpool_job_end               (WpoolJob       *self,
                                                 GError        **error);
GVariant           *wpool_job_steal_results     (WpoolJob       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WpoolJob, wpool_job_unref)

G_END_DECLS
