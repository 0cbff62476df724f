/* wpool-watchdog.c: the task and worker-init timeouts and the cancellation
 * of a map whose workers are threads of this process.
 *
 * Each worker thread takes a runner, whose state says what it runs and
 * whose deadline says until when. The watchdog's thread, started with the
 * first runner under a timeout or once cancelled, sleeps until the
 * earliest deadline and abandons every runner past it (or, once
 * cancelled, every runner running anything) with a compare-and-swap of
 * its state: the worker, which moves the same state off the item when it
 * finishes, learns from its own failed swap that the result is no longer
 * the map's. What an abandoned share means for the map is the caller's
 * callback's to decide.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-watchdog-private.h"

struct _WpoolWatchdog
{
  /* In µs, 0 for none. */
  gint64                  task_timeout;
  gint64                  init_timeout;
  WpoolWatchdogAbandoned  abandoned_func;
  gpointer                user_data;

  GMutex                  mutex;
  GCond                   cond;
  GPtrArray              *runners;
  GThread                *thread;
  /* The ids of the workers abandoned, for the pool to replace. */
  GArray                 *abandoned;
  gboolean                stopped;
  /* Read by the runners without the lock. */
  gint                    cancelled;
};

WpoolWatchdog *
wpool_watchdog_new (gint64                 task_timeout,
                    gint64                 init_timeout,
                    WpoolWatchdogAbandoned abandoned,
                    gpointer               user_data)
{
  WpoolWatchdog *self = g_new0 (WpoolWatchdog, 1);

  self->task_timeout = task_timeout;
  self->init_timeout = init_timeout;
  self->abandoned_func = abandoned;
  self->user_data = user_data;
  self->runners = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);

  return self;
}

/* Once no abandoned worker still holds its runner, and never on the
 * watchdog's thread: normally after wpool_watchdog_join(), else the
 * thread is stopped and joined here (a map that never ended). */
void
wpool_watchdog_free (WpoolWatchdog *self)
{
  wpool_watchdog_stop (self);
  wpool_watchdog_join (self);

  g_ptr_array_unref (self->runners);
  g_clear_pointer (&self->abandoned, g_array_unref);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);
  g_free (self);
}

typedef struct
{
  WpoolRunner *runner;
  gint         state;
  gboolean     cancelled;
} Abandoned;

/* Abandons every runner whose item is past its deadline, or that runs
 * anything once cancelled, into @abandoned with what it ran; returns when
 * to look again. */
static gint64
abandon_overdue_locked (WpoolWatchdog *self,
                        gint64         now,
                        GArray        *abandoned)
{
  gboolean cancelled = g_atomic_int_get (&self->cancelled);
  /* With nothing running, anything that starts later ends later. */
  gint64 next_deadline = now + MIN (self->task_timeout > 0 ? self->task_timeout : G_MAXINT32,
                                    self->init_timeout > 0 ? self->init_timeout : G_MAXINT32);

  for (guint i = 0; i < self->runners->len; i++)
    {
      WpoolRunner *runner = self->runners->pdata[i];
      gint state = g_atomic_int_get (&runner->state);
      gint64 deadline;

      if (state < 0 && state != WPOOL_RUNNER_INIT)
        continue;

      /* Stored before the state: this item's or a later one's. */
      deadline = __atomic_load_n (&runner->deadline, __ATOMIC_ACQUIRE);
      if (deadline > now && !cancelled)
        {
          next_deadline = MIN (next_deadline, deadline);
          continue;
        }

      if (!g_atomic_int_compare_and_exchange (&runner->state, state, WPOOL_RUNNER_ABANDONED))
        continue;

      if (self->abandoned == NULL)
        self->abandoned = g_array_new (FALSE, FALSE, sizeof (guint));
      g_array_append_val (self->abandoned, runner->worker_id);
      g_array_append_vals (abandoned, &(Abandoned) { runner, state, cancelled }, 1);
    }

  return next_deadline;
}

static gpointer
watchdog_main (gpointer data)
{
  WpoolWatchdog *self = data;
  g_autoptr(GArray) abandoned = g_array_new (FALSE, FALSE, sizeof (Abandoned));

  g_mutex_lock (&self->mutex);
  while (!self->stopped)
    {
      gint64 next_deadline = abandon_overdue_locked (self, g_get_monotonic_time (), abandoned);

      if (abandoned->len == 0)
        {
          g_cond_wait_until (&self->cond, &self->mutex, next_deadline);
          continue;
        }

      /* The callback takes the map's locks: not under the watchdog's. An
       * abandoned runner is never touched by its worker again, and the
       * map cannot end before the callback ends the worker's share. */
      g_mutex_unlock (&self->mutex);
      for (guint i = 0; i < abandoned->len; i++)
        {
          const Abandoned *a = &g_array_index (abandoned, Abandoned, i);

          self->abandoned_func (a->runner, a->state, a->cancelled, self->user_data);
        }
      g_array_set_size (abandoned, 0);
      g_mutex_lock (&self->mutex);
    }
  g_mutex_unlock (&self->mutex);

  return NULL;
}

/* Starts the thread, or wakes it to look at the runners again. */
static void
wake_locked (WpoolWatchdog *self)
{
  if (self->thread == NULL)
    self->thread = g_thread_new ("wpool-watchdog", watchdog_main, self);
  else
    g_cond_broadcast (&self->cond);
}

/* The runner of worker @worker_id. A share passed on takes a runner of
 * its own too. Without a timeout, the thread waits for a cancellation,
 * which starts it. */
WpoolRunner *
wpool_watchdog_add_runner (WpoolWatchdog *self,
                           guint          worker_id)
{
  WpoolRunner *runner = g_new0 (WpoolRunner, 1);

  runner->state = WPOOL_RUNNER_IDLE;
  runner->worker_id = worker_id;

  g_mutex_lock (&self->mutex);
  /* Freed with the watchdog: a runner the thread handed to the callback
   * stays valid. */
  g_ptr_array_add (self->runners, runner);
  if (self->thread == NULL && !self->stopped &&
      (self->task_timeout > 0 || self->init_timeout > 0 || g_atomic_int_get (&self->cancelled)))
    wake_locked (self);
  g_mutex_unlock (&self->mutex);

  return runner;
}

/* On the thread that cancels: every runner that runs anything is
 * abandoned, and the map ends at once. */
void
wpool_watchdog_cancel (WpoolWatchdog *self)
{
  g_mutex_lock (&self->mutex);
  g_atomic_int_set (&self->cancelled, TRUE);
  if (!self->stopped && self->runners->len > 0)
    wake_locked (self);
  g_mutex_unlock (&self->mutex);
}

/* After wpool_runner_start(): whether the map was cancelled meanwhile.
 * Either the worker sees the cancellation here, or the watchdog, which
 * looks at the runners after it is set, sees the runner's state (both
 * sequentially consistent): a worker that misses both would run an item
 * nobody could abandon. */
gboolean
wpool_watchdog_is_cancelled (WpoolWatchdog *self)
{
  return g_atomic_int_get (&self->cancelled);
}

/* The map is done: the thread ends. */
void
wpool_watchdog_stop (WpoolWatchdog *self)
{
  g_mutex_lock (&self->mutex);
  self->stopped = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);
}

/* After wpool_watchdog_stop(), on the caller's thread. */
void
wpool_watchdog_join (WpoolWatchdog *self)
{
  if (self->thread != NULL)
    g_thread_join (g_steal_pointer (&self->thread));
}

gboolean
wpool_watchdog_is_abandoned (WpoolWatchdog *self,
                             guint          worker_id)
{
  gboolean ret = FALSE;

  g_mutex_lock (&self->mutex);
  for (guint i = 0; self->abandoned != NULL && i < self->abandoned->len && !ret; i++)
    ret = g_array_index (self->abandoned, guint, i) == worker_id;
  g_mutex_unlock (&self->mutex);

  return ret;
}

/* Once the map is done, when no more can be abandoned: the ids of the
 * workers abandoned, which may still run. */
const guint *
wpool_watchdog_get_abandoned (WpoolWatchdog *self,
                              guint         *n_abandoned)
{
  *n_abandoned = self->abandoned ? self->abandoned->len : 0;
  return self->abandoned ? (const guint *)(gpointer)self->abandoned->data : NULL;
}

/* @runner (if any) starts @state, an item or WPOOL_RUNNER_INIT, with
 * @timeout µs to go (0: no limit). The deadline is stored before the
 * state, which the watchdog reads first. */
void
wpool_runner_start (WpoolRunner *runner,
                    gint         state,
                    gint64       timeout)
{
  if (runner == NULL)
    return;

  __atomic_store_n (&runner->deadline, timeout > 0 ? g_get_monotonic_time () + timeout : G_MAXINT64,
                    __ATOMIC_RELEASE);
  g_atomic_int_set (&runner->state, state);
}

/* @runner (if any) moves from @state to @next, unless the watchdog
 * abandoned it meanwhile: FALSE then, and what @state produced no longer
 * belongs to the map. */
gboolean
wpool_runner_finish (WpoolRunner *runner,
                     gint         state,
                     gint         next)
{
  return runner == NULL || g_atomic_int_compare_and_exchange (&runner->state, state, next);
}

void
wpool_runner_idle (WpoolRunner *runner)
{
  if (runner != NULL)
    g_atomic_int_set (&runner->state, WPOOL_RUNNER_IDLE);
}
