/* wpool-launcher.c: the one thread that starts every worker process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "wpool-launcher-private.h"

/* A worker process asks the kernel to kill it when its parent dies
 * (PR_SET_PDEATHSIG), but "parent" means the thread that forked it: a
 * worker started from a thread that then exits would die with that
 * thread, taking a running map of another thread down with it. Every
 * spawn of libwpool (a helper or a worker program) therefore happens on
 * this thread, which lives as long as the process. Forks happen on the
 * calling thread (wpool_process_fork()), whose children hold a lifeline
 * that follows the process instead. It blocks every signal, so that it never
 * takes a signal meant for the application's threads; the processes it
 * starts get the mask of the thread that asked. */

typedef struct
{
  WpoolLaunchFunc func;
  gpointer        data;
  sigset_t        mask;
  gpointer        result;
  gboolean        done;
} Launch;

static GMutex       launch_lock;
static GCond        launch_cond;
static GAsyncQueue *launch_queue;
/* The process the launcher runs in: a forked child has no launcher, even
 * though it inherits these variables. */
static pid_t        launch_pid;

static gpointer
launcher_main (gpointer data)
{
  GAsyncQueue *queue = data;
  cpu_set_t cpus;

  /* Started by whichever thread first needed it, perhaps one pinned by
   * cpu-ids: processes inherit the launcher's CPUs, which should be the
   * process's. */
  if (sched_getaffinity (getpid (), sizeof cpus, &cpus) == 0)
    sched_setaffinity (0, sizeof cpus, &cpus);

  for (;;)
    {
      Launch *launch = g_async_queue_pop (queue);
      gpointer result = launch->func (launch->data, &launch->mask);

      g_mutex_lock (&launch_lock);
      launch->result = result;
      launch->done = TRUE;
      g_cond_broadcast (&launch_cond);
      g_mutex_unlock (&launch_lock);
    }

  return NULL;
}

/* Runs @func (@data) on the launcher thread, started on first use, and
 * returns what it returns. */
gpointer
wpool_launcher_run (WpoolLaunchFunc func,
                    gpointer        data)
{
  Launch launch = { func, data };

  pthread_sigmask (SIG_SETMASK, NULL, &launch.mask);

  g_mutex_lock (&launch_lock);
  if (launch_pid != getpid ())
    {
      sigset_t all;
      sigset_t old;
      GThread *thread;

      /* Created with every signal blocked: it keeps that mask. */
      sigfillset (&all);
      pthread_sigmask (SIG_SETMASK, &all, &old);
      launch_queue = g_async_queue_new ();
      thread = g_thread_new ("wpool-launcher", launcher_main, launch_queue);
      pthread_sigmask (SIG_SETMASK, &old, NULL);

      g_thread_unref (thread);
      launch_pid = getpid ();
    }

  g_async_queue_push (launch_queue, &launch);
  while (!launch.done)
    g_cond_wait (&launch_cond, &launch_lock);
  g_mutex_unlock (&launch_lock);

  return launch.result;
}

/* In a child forked on the launcher thread: the launcher is the parent's,
 * and its lock may have been held by another thread of the parent. The
 * child starts a launcher of its own when it needs one (a nested pool). */
void
wpool_launcher_forget (void)
{
  g_mutex_init (&launch_lock);
  g_cond_init (&launch_cond);
  launch_queue = NULL;
  launch_pid = 0;
}
