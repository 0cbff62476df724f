/* wpool-watchdog-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The task and worker-init timeouts, and the cancellation, of a map whose
 * workers are threads of this process. A thread cannot be killed: one
 * past its deadline, or running when the map is cancelled, is abandoned
 * instead, by a thread of the watchdog's own, and whichever of the worker
 * and the watchdog first moves its runner's state off what it runs
 * decides whether its result counts. */
typedef struct _WpoolWatchdog WpoolWatchdog;

/* What one worker thread runs: an item's index (>= 0) or one of these. */
enum
{
  WPOOL_RUNNER_IDLE = -1,
  WPOOL_RUNNER_STORING = -2,
  WPOOL_RUNNER_ABANDONED = -3,
  /* Running the worker's init, before any chunk. */
  WPOOL_RUNNER_INIT = -4,
};

typedef struct
{
  gint    state;
  guint   worker_id;
  gint64  deadline;
  /* The chunk it runs: the rest goes to others if it is abandoned. */
  guint   chunk_first;
  guint   chunk_last;
} WpoolRunner;

/* Called on the watchdog's thread, with no lock of the watchdog's held,
 * for each runner it abandoned while it ran @state (an item or
 * WPOOL_RUNNER_INIT), @cancelled if for the cancellation. The worker's
 * share is the callback's to end: the worker never comes back for it. */
typedef void (*WpoolWatchdogAbandoned) (const WpoolRunner *runner,
                                        gint               state,
                                        gboolean           cancelled,
                                        gpointer           user_data);

WpoolWatchdog *wpool_watchdog_new            (gint64                  task_timeout,
                                              gint64                  init_timeout,
                                              WpoolWatchdogAbandoned  abandoned,
                                              gpointer                user_data);
void           wpool_watchdog_free           (WpoolWatchdog          *self);
WpoolRunner   *wpool_watchdog_add_runner     (WpoolWatchdog          *self,
                                              guint                   worker_id);
void           wpool_watchdog_cancel         (WpoolWatchdog          *self);
gboolean       wpool_watchdog_is_cancelled   (WpoolWatchdog          *self);
void           wpool_watchdog_stop           (WpoolWatchdog          *self);
void           wpool_watchdog_join           (WpoolWatchdog          *self);
gboolean       wpool_watchdog_is_abandoned   (WpoolWatchdog          *self,
                                              guint                   worker_id);
const guint   *wpool_watchdog_get_abandoned  (WpoolWatchdog          *self,
                                              guint                  *n_abandoned);

void           wpool_runner_start            (WpoolRunner            *runner,
                                              gint                    state,
                                              gint64                  timeout);
gboolean       wpool_runner_finish           (WpoolRunner            *runner,
                                              gint                    state,
                                              gint                    next);
void           wpool_runner_idle             (WpoolRunner            *runner);

G_END_DECLS
