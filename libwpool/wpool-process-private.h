/* wpool-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* What a worker process runs, in a page it shares with the pool: the
 * pool reads it to name the item when the worker dies, and to time the
 * item out. The worker stores @started before @item, and the pool loads
 * them in the other order, so that an item is never paired with an
 * earlier item's start: at worst its deadline is seen late, never early. */
typedef struct
{
  gint   item;     /* an item, or one of the phases below */
  /* The first item of the chunk whose items all ran, set as the worker
   * answers, -1 before: a worker that dies answering (a task closed its
   * socket) is told from one that died before it ran the chunk. */
  gint   ended;
  gint64 started;  /* g_get_monotonic_time() */
} WpoolRunning;


enum {
  WPOOL_RUNNING_IDLE = -1,
  WPOOL_RUNNING_INIT = -2,
  WPOOL_RUNNING_EXIT = -3,
};

static inline void
wpool_running_set (WpoolRunning *running,
                   gint          item,
                   gint64        started)
{
  __atomic_store_n (&running->started, started, __ATOMIC_RELEASE);
  __atomic_store_n (&running->item, item, __ATOMIC_RELEASE);
}

/* The pool starts the clock of what it asks an idle worker to run; a
 * worker still in its init keeps its own, at worst started a little later
 * by this store. */
static inline void
wpool_running_begin (WpoolRunning *running,
                     gint          item)
{
  gint idle = WPOOL_RUNNING_IDLE;

  __atomic_store_n (&running->ended, -1, __ATOMIC_RELEASE);
  __atomic_store_n (&running->started, g_get_monotonic_time (), __ATOMIC_RELEASE);
  __atomic_compare_exchange_n (&running->item, &idle, item, FALSE, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* The worker ran every item of the chunk at @first and answers. */
static inline void
wpool_running_end_chunk (WpoolRunning *running,
                         gint          first)
{
  __atomic_store_n (&running->ended, first, __ATOMIC_RELEASE);
  wpool_running_set (running, WPOOL_RUNNING_IDLE, 0);
}

static inline gint
wpool_running_get_ended (WpoolRunning *running)
{
  return __atomic_load_n (&running->ended, __ATOMIC_ACQUIRE);
}

static inline gint
wpool_running_get (WpoolRunning *running,
                   gint64       *started)
{
  gint item = __atomic_load_n (&running->item, __ATOMIC_ACQUIRE);

  if (started != NULL)
    *started = __atomic_load_n (&running->started, __ATOMIC_ACQUIRE);

  return item;
}

void      wpool_process_die_with_parent   (pid_t       parent);
gboolean  wpool_process_set_cpus          (pid_t       pid,
                                           GVariant   *cpus,
                                           GError    **error);
gboolean  wpool_process_socketpair        (int       fds[2],
                                           GError  **error);
int       wpool_process_memfd             (const char *name,
                                           GError   **error);
void      wpool_process_close_fd          (int       fd);
int       wpool_process_pidfd             (pid_t     pid);
gboolean  wpool_process_is_gone           (pid_t     pid);
gboolean  wpool_process_is_forked_worker  (void);
void      wpool_process_set_fresh_server  (void);
int       wpool_process_release_fd        (int       fd);
void      wpool_process_adopt_fd          (int       fd);
void      wpool_process_hold_fork         (void);
void      wpool_process_release_fork      (void);
/* What a forked child runs: its exit status. */
typedef int (*WpoolChildMain) (gpointer data);

pid_t     wpool_process_fork              (int              keep_fd,
                                           WpoolChildMain   child_main,
                                           gpointer         child_data,
                                           int             *lifeline,
                                           GError         **error);
/* In a status from the reaping functions: the process outlived the end
 * of its socket by a second, and was killed. */
#define WPOOL_STATUS_LINGERED (1 << 16)
/* The fork server or FORK template that was the worker's parent died:
 * its status is lost. */
#define WPOOL_STATUS_SERVER_DIED (1 << 17)

int       wpool_process_reap              (pid_t     pid);
void      wpool_process_reap_orphan       (pid_t     pid);
char     *wpool_process_describe_status   (int       status);

const char  *wpool_process_trusted_getenv     (const char *name);
const char  *wpool_process_helper_path        (void);
const char  *wpool_process_program_name       (const char * const *program);
GPid         wpool_process_subprocess_pid     (GSubprocess        *subprocess);
GSubprocess *wpool_process_spawn_helper       (int                 socket_fd,
                                               int                 progress_fd,
                                               const char         *mode,
                                               const char * const *program,
                                               GError            **error);
gboolean     wpool_process_send_setup         (int                 fd,
                                               guint               id,
                                               GVariant           *tasks,
                                               GVariant           *shared_objects,
                                               GError            **error);
gboolean     wpool_process_await_ready        (int                 fd,
                                               const char * const *program,
                                               GError            **error);
gboolean     wpool_process_setup              (int                 fd,
                                               guint               id,
                                               GVariant           *tasks,
                                               GVariant           *shared_objects,
                                               const char * const *program,
                                               GError            **error);
int          wpool_process_reap_subprocess    (GSubprocess  *subprocess);
char        *wpool_process_take_early_stderr  (GSubprocess  *subprocess);
gboolean     wpool_process_explain_hangup     (GSubprocess  *subprocess,
                                               const char   *name,
                                               GError      **error);

G_END_DECLS
