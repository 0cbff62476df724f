/* wpool-process.c: the pool's side of worker processes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wpool-error.h"
#include "wpool-launcher-private.h"
#include "wpool-process-private.h"
#include "wpool-lock-private.h"
#include "wpool-protocol-private.h"
#include "wpool-shared-array-private.h"
#include "wpool-start-method.h"

/* Every socket libwpool holds to a worker process, in any pool. A forked
 * child closes them all but its own: a copy of another worker's socket
 * would keep that worker from seeing its pool close it. */
static GMutex registry_lock;
static GArray *registry;

/* Held for reading by the drivers of worker processes while they build
 * and take GVariants, and for writing across fork(): a child forked while
 * another pool's map runs (a FORK template forked on one thread while a
 * map of another pool runs on others) must not inherit a lock a driver
 * held, in GVariant's type cache say. Writers
 * first: drivers of fast items overlap all the time, and glibc's default
 * would starve the fork. */
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void
wpool_process_hold_fork (void)
{
  pthread_rwlock_rdlock (&fork_lock);
}

void
wpool_process_release_fork (void)
{
  pthread_rwlock_unlock (&fork_lock);
}

/* What forks a FORK template or a forked worker: fork(), unless a
 * language binding set its own (wpool_set_fork_func()). Set once, at a
 * binding's start, before any fork; read under fork_lock. */
static WpoolForkFunc fork_func;
static gpointer fork_func_data;
static GDestroyNotify fork_func_data_free;

/**
 * wpool_set_fork_func:
 * @func: (nullable) (scope notified) (closure user_data) (destroy user_data_free):
 *   what forks, or %NULL for fork()
 * @user_data: data for @func
 * @user_data_free: (nullable): frees @user_data when @func is replaced
 *
 * Makes libwpool fork its FORK templates and forked workers with @func
 * rather than fork(): for a language binding whose runtime has other
 * threads to account for. A Python thread may hold the interpreter's lock
 * (the GIL) at the moment another thread forks in C; the child inherits
 * it held by a thread it does not have, and hangs or crashes at its first
 * Python call. Python's `os.fork()` takes the GIL across the fork and
 * repairs the interpreter in the child, and the `Wpool` override sets it.
 *
 * @func is called with libwpool's fork locks held, from the thread that
 * forks: it must fork and return, and call nothing of libwpool's.
 *
 * Since: 0.2
 */
void
wpool_set_fork_func (WpoolForkFunc  func,
                     gpointer       user_data,
                     GDestroyNotify user_data_free)
{
  GDestroyNotify old_free;
  gpointer old_data;

  pthread_rwlock_wrlock (&fork_lock);
  old_free = fork_func_data_free;
  old_data = fork_func_data;
  fork_func = func;
  fork_func_data = user_data;
  fork_func_data_free = user_data_free;
  pthread_rwlock_unlock (&fork_lock);

  if (old_free != NULL)
    old_free (old_data);
}

static pid_t
fork_now (void)
{
  int pid;

  if (fork_func == NULL)
    return fork ();

  pid = fork_func (fork_func_data);
  if (pid < 0)
    {
      errno = -pid;
      return -1;
    }
  return pid;
}

static void
registry_add (int fd)
{
  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_array_new (FALSE, FALSE, sizeof (int));
  g_array_append_val (registry, fd);
  g_mutex_unlock (&registry_lock);
}

/* A socketpair for a worker: fds[0] is the pool's end, fds[1] the
 * worker's. Both close on exec; both are registered. */
/* Pins process (or, with 0, the calling thread) @pid to the CPUs @cpus
 * (`au`), as the pool's cpu-ids say. */
gboolean
wpool_process_set_cpus (pid_t      pid,
                        GVariant  *cpus,
                        GError   **error)
{
  g_autofree char *list = NULL;
  cpu_set_t set;
  GVariantIter iter;
  guint32 cpu;
  int errsv;

  CPU_ZERO (&set);
  g_variant_iter_init (&iter, cpus);
  while (g_variant_iter_next (&iter, "u", &cpu))
    CPU_SET (cpu, &set);

  if (sched_setaffinity (pid, sizeof set, &set) == 0)
    return TRUE;

  errsv = errno;
  list = g_variant_print (cpus, FALSE);
  g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
               "Cannot pin a worker to the CPUs %s: %s", list, g_strerror (errsv));
  return FALSE;
}

/* A worker must not outlive the pool's process: killed when its parent
 * dies, or at once if that already happened. Strictly, the kernel kills
 * it when the thread that started it ends: libwpool spawns every new
 * program on its launcher thread, which lives as long as the process. */
void
wpool_process_die_with_parent (pid_t parent)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  if (getppid () != parent)
    _exit (1);
}

gboolean
wpool_process_socketpair (int      fds[2],
                          GError **error)
{
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot create a socket for a worker: %s", g_strerror (errsv));
      return FALSE;
    }

  registry_add (fds[0]);
  registry_add (fds[1]);

  return TRUE;
}

/* A memfd to share with a worker, registered so that workers forked
 * later do not keep it. */
int
wpool_process_memfd (const char  *name,
                     GError     **error)
{
  int fd = memfd_create (name, MFD_CLOEXEC);

  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot make memory to share with a worker: %s", g_strerror (errsv));
      return -1;
    }

  registry_add (fd);

  return fd;
}

/* A pidfd for @pid (Linux 5.3): readable once the process ended, whatever
 * its descendants hold of its socket. Registered, as the sockets are.
 * -1 where the kernel has none: the socket's end is then all there is. */
int
wpool_process_pidfd (pid_t pid)
{
  int fd = (int) syscall (SYS_pidfd_open, pid, 0);

  if (fd >= 0)
    registry_add (fd);

  return fd;
}

static void
registry_remove (int fd)
{
  for (guint i = 0; registry != NULL && i < registry->len; i++)
    if (g_array_index (registry, int, i) == fd)
      {
        g_array_remove_index_fast (registry, i);
        break;
      }
}

void
wpool_process_close_fd (int fd)
{
  if (fd < 0)
    return;

  g_mutex_lock (&registry_lock);
  registry_remove (fd);
  close (fd);
  g_mutex_unlock (&registry_lock);
}

/* Registers @fd, which this process was handed (a helper's socket), so
 * that the workers it forks do not keep it. */
void
wpool_process_adopt_fd (int fd)
{
  registry_add (fd);
}

/* Takes @fd out of the registry, for whoever closes it next, such as a
 * GSubprocessLauncher: the registry must not name an fd once closed. */
int
wpool_process_release_fd (int fd)
{
  g_mutex_lock (&registry_lock);
  registry_remove (fd);
  g_mutex_unlock (&registry_lock);

  return fd;
}

/* Whether this process is a worker forked by wpool_process_fork(). */
static gboolean forked_worker;
/* Whether this process is the wpool-worker helper's fork server: a new
 * program, which never started GLib's worker thread, so that the workers
 * it forks lack nothing and may start new programs. */
static gboolean fresh_server;

void
wpool_process_set_fresh_server (void)
{
  fresh_server = TRUE;
}

gboolean
wpool_process_is_forked_worker (void)
{
  return forked_worker;
}

/* In a forked child: @lifeline is the read end of a pipe whose write end
 * only the pool's process holds. When that process ends, for whatever
 * reason, the kernel signals the reader (O_ASYNC), and the signal set
 * with F_SETSIG is SIGKILL. Unlike PR_SET_PDEATHSIG, which follows the
 * thread that forked, this follows the process: a worker outlives the
 * thread that started it, and dies with its pool's process even busy in
 * a long item. */
static void
hold_lifeline (int   lifeline,
               pid_t parent)
{
  fcntl (lifeline, F_SETOWN, getpid ());
  fcntl (lifeline, F_SETSIG, SIGKILL);
  fcntl (lifeline, F_SETFL, O_ASYNC);

  /* Gone already, before the signal could be asked for. */
  if (getppid () != parent)
    _exit (1);
}

/* The state letter of a process or thread from its /proc stat file at
 * @path ('R' running, 'S' asleep, 'Z' a zombie…); '\0' if it cannot be
 * read (the process is gone), '?' if it cannot be parsed. */
static char
proc_state (const char *path)
{
  g_autofree char *stat = NULL;
  const char *end;

  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return '\0';

  /* The state follows the name, which may hold anything but ends at the
   * last parenthesis. */
  end = strrchr (stat, ')');

  return end != NULL && end[1] == ' ' ? end[2] : '?';
}

/* Whether a thread of this process other than @self_tid is running or
 * runnable: one that may be inside a lock this instant. */
static gboolean
other_threads_run (pid_t self_tid)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;

      if (atoi (name) == self_tid)
        continue;

      path = g_strconcat ("/proc/self/task/", name, "/stat", NULL);
      if (proc_state (path) == 'R')
        return TRUE;
    }

  return FALSE;
}

/* The child of fork() inherits every lock as it was: one that another
 * thread held at that instant stays held forever there, by a thread the
 * child does not have, and the child hangs at its first use of it. GLib
 * takes such locks inside GVariant's type cache and GSlice, a sanitizer's
 * allocator around many allocations, a thread ending in its destructors.
 * libwpool's own threads keep out with the fork lock; for any other (GLib's
 * worker thread reaping a child, a language runtime's, an ending thread)
 * the fork waits, up to 100 ms, until no other thread runs: a lock held
 * for an instant belongs to a thread that runs. Found by a thread making
 * GVariants beside FORK maps: a template hung within 600 maps. A thread
 * that keeps running (a busy computation) only delays the fork: nothing
 * makes fork() safe beside a thread that is inside such a lock. */
static void
wait_for_quiet_threads (void)
{
  gint64 deadline = g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND;
  pid_t self_tid = (pid_t) syscall (SYS_gettid);

  while (other_threads_run (self_tid) && g_get_monotonic_time () < deadline)
    g_usleep (200);
}

/* fork() on the calling thread, which is not inside libwpool's own
 * locks: the child keeps only @keep_fd of the registered fds and its end
 * of a lifeline, runs @child_main (@child_data), and _exit()s with what
 * it returns, never returning here. *@lifeline is the pool's end of the
 * lifeline, to close once the child is reaped.
 *
 * The registry stays locked across the fork, so no fd appears between the
 * snapshot and the child; the child resets it and the fork lock, so that a
 * pool made in a worker (a nested pool) does not wait for a lock of the
 * parent's. Standard streams are flushed first, or the child would print
 * the parent's buffered output again. */
pid_t
wpool_process_fork (int              keep_fd,
                    WpoolChildMain   child_main,
                    gpointer         child_data,
                    int             *lifeline,
                    GError         **error)
{
  pid_t parent = getpid ();
  int fds[2];
  pid_t pid;
  int errsv;

  if (pipe2 (fds, O_CLOEXEC) < 0)
    {
      errsv = errno;
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot fork a worker: %s", g_strerror (errsv));
      return -1;
    }
  registry_add (fds[0]);
  registry_add (fds[1]);

  fflush (stdout);
  fflush (stderr);

  pthread_rwlock_wrlock (&fork_lock);
  g_mutex_lock (&registry_lock);
  wait_for_quiet_threads ();
  pid = fork_now ();

  if (pid == 0)
    {
      for (guint i = 0; registry != NULL && i < registry->len; i++)
        if (g_array_index (registry, int, i) != keep_fd && g_array_index (registry, int, i) != fds[0])
          close (g_array_index (registry, int, i));
      g_array_set_size (registry, 0);
      if (keep_fd >= 0)
        g_array_append_val (registry, keep_fd);

      fork_lock = (pthread_rwlock_t) PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
      g_mutex_init (&registry_lock);
      wpool_launcher_forget ();
      /* The forking thread's watch of a worker start (the map's
       * cancellable, the start deadline) is not the child's: a template
       * that kept it ended its loop once idle past the worker-start-timeout
       * or 100 ms after that map was cancelled, and so did its workers. */
      wpool_frame_watch_end ();
      forked_worker = !fresh_server;
      fresh_server = FALSE;

      hold_lifeline (fds[0], parent);
      _exit (child_main (child_data));
    }

  errsv = errno;
  g_mutex_unlock (&registry_lock);
  pthread_rwlock_unlock (&fork_lock);

  wpool_process_close_fd (fds[0]);
  if (pid < 0)
    {
      wpool_process_close_fd (fds[1]);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot fork a worker: %s", g_strerror (errsv));
      return pid;
    }

  *lifeline = fds[1];
  return pid;
}

/* Waits for @pid, which was told to exit or whose socket closed, and
 * returns its wait status. One that does not end within a second is
 * killed, and its status says so (WPOOL_STATUS_LINGERED). */
int
wpool_process_reap (pid_t pid)
{
  int pidfd = wpool_process_pidfd (pid);
  int status = 0;

  /* Woken by its end, through its pidfd; else polled every 5 ms. */
  for (guint tries = 0; tries < 200; tries++)
    {
      struct pollfd pfd = { pidfd, POLLIN, 0 };
      pid_t ret = waitpid (pid, &status, WNOHANG);

      if (ret == pid || (ret < 0 && errno != EINTR))
        {
          wpool_process_close_fd (pidfd);
          return ret == pid ? status : 0;
        }

      if (pidfd < 0 || (poll (&pfd, 1, 5) < 0 && errno != EINTR))
        g_usleep (5 * G_TIME_SPAN_MILLISECOND);
    }
  wpool_process_close_fd (pidfd);

  kill (pid, SIGKILL);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;

  return status | WPOOL_STATUS_LINGERED;
}

/* Without a pidfd (an old kernel, or valgrind, which lacks the call):
 * whether process @pid ended, a zombie or reaped already. */
gboolean
wpool_process_is_gone (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int)pid);
  char state = proc_state (path);

  return state == '\0' || state == 'Z' || state == 'X';
}

/* A worker whose fork server died was orphaned: it dies too (its death
 * signal), and is reaped here if this process took it in, as a child
 * subreaper (PR_SET_CHILD_SUBREAPER) does. Not waited for otherwise. */
void
wpool_process_reap_orphan (pid_t pid)
{
  int subreaper = 0;

  /* Else the pid is no child of ours, or another's by now. */
  if (prctl (PR_GET_CHILD_SUBREAPER, &subreaper) < 0 || !subreaper)
    return;

  for (guint tries = 0; tries < 200; tries++)
    {
      pid_t ret = waitpid (pid, NULL, WNOHANG);

      if (ret == pid || (ret < 0 && errno != EINTR))
        return;

      g_usleep (5 * G_TIME_SPAN_MILLISECOND);
    }
}

char *
wpool_process_describe_status (int status)
{
  if (status & WPOOL_STATUS_SERVER_DIED)
    return g_strdup ("the process that forked it died");

  if (status & WPOOL_STATUS_LINGERED)
    return g_strdup ("it closed its socket without exiting, and was killed");

  if (WIFSIGNALED (status))
    return g_strdup_printf ("killed by signal %d (%s)", WTERMSIG (status), g_strsignal (WTERMSIG (status)));

  if (WIFEXITED (status))
    return g_strdup_printf ("exited with status %d", WEXITSTATUS (status));

  return g_strdup_printf ("ended with wait status %d", status);
}

/* An environment variable that names a program or module to run, as
 * WPOOL_WORKER does in a build tree. Not in a setuid, setgid or
 * capability-raised process (AT_SECURE): whoever started it chose its
 * environment, and would have what it names run with the privileges they
 * lack. */
const char *
wpool_process_trusted_getenv (const char *name)
{
#ifdef HAVE_SECURE_GETENV
  return secure_getenv (name);
#else
  return getuid () == geteuid () && getgid () == getegid () ? g_getenv (name) : NULL;
#endif
}

/* The wpool-worker helper. */
const char *
wpool_process_helper_path (void)
{
  const char *path = wpool_process_trusted_getenv ("WPOOL_WORKER");

  return path != NULL ? path : WPOOL_HELPERDIR "/wpool-worker";
}

/* The pid of @subprocess, or 0 once GLib reaped it: a program that ends
 * at once may be reaped before it is asked. */
GPid
wpool_process_subprocess_pid (GSubprocess *subprocess)
{
  const char *identifier = g_subprocess_get_identifier (subprocess);

  return identifier != NULL ? (GPid)g_ascii_strtoll (identifier, NULL, 10) : 0;
}

/* How messages name the worker program @program (NULL: the helper). */
const char *
wpool_process_program_name (const char * const *program)
{
  return program != NULL ? program[0] : wpool_process_helper_path ();
}

typedef struct
{
  GSubprocessLauncher *launcher;
  const char * const  *argv;
  GError              *error;
} SpawnRequest;

/* In the child, before exec: the mask of the thread that asked, not the
 * launcher's, which blocks every signal. */
static void
restore_mask (gpointer data)
{
  pthread_sigmask (SIG_SETMASK, data, NULL);
}

static gpointer
spawn_on_launcher (gpointer        data,
                   const sigset_t *caller_mask)
{
  SpawnRequest *request = data;

  g_subprocess_launcher_set_child_setup (request->launcher, restore_mask, (gpointer)caller_mask, NULL);

  return g_subprocess_launcher_spawnv (request->launcher, request->argv, &request->error);
}

/* A worker program's standard error until it serves: a file, so that the
 * program never blocks on it, forwarded to ours once it is ready or
 * ended. What the dynamic loader or a language runtime says when the
 * program cannot start so reaches the pool's error as well as stderr. */
#define EARLY_STDERR_KEY "wpool-early-stderr"

/* Copies the early standard error @fd to ours, closes it and returns its
 * last line, if any. */
static char *
forward_early_stderr (int fd)
{
  char tail[512];
  gssize tail_len = 0;
  struct stat st;
  off_t offset = 0;
  const char *line;

  if (fstat (fd, &st) == 0)
    {
      /* The last bytes, where the last line is. */
      off_t kept = MIN ((off_t)sizeof tail, st.st_size);
      gssize n;

      while (offset < st.st_size &&
             ((n = sendfile (STDERR_FILENO, fd, &offset, st.st_size - offset)) > 0 || (n < 0 && errno == EINTR)))
        ;
      tail_len = pread (fd, tail, kept, st.st_size - kept);
    }
  close (fd);

  while (tail_len > 0 && g_ascii_isspace (tail[tail_len - 1]))
    tail_len--;
  if (tail_len <= 0)
    return NULL;
  line = g_strrstr_len (tail, tail_len, "\n");
  line = line != NULL ? line + 1 : tail;

  return g_utf8_make_valid (line, tail + tail_len - line);
}

static void
forward_early_stderr_notify (gpointer data)
{
  g_free (forward_early_stderr (GPOINTER_TO_INT (data) - 1));
}

/* Forwards what @subprocess wrote to its standard error before it served
 * (the rest went straight to ours), and returns its last line; NULL if
 * it wrote nothing or it was forwarded already. The program must have
 * ended or be ready. */
char *
wpool_process_take_early_stderr (GSubprocess *subprocess)
{
  gpointer data = g_object_steal_data (G_OBJECT (subprocess), EARLY_STDERR_KEY);

  return data != NULL ? forward_early_stderr (GPOINTER_TO_INT (data) - 1) : NULL;
}

/* Starts @program, or the helper when it is NULL, in @mode ("worker" or
 * "server") on @socket_fd, which it takes, with a copy of @progress_fd,
 * on the launcher thread. The options wpool_worker_serve() reads follow
 * the program's own arguments. Its standard error is a file until it
 * serves, with ours as descriptor 5 to take back then (see
 * wpool_process_take_early_stderr()). */
GSubprocess *
wpool_process_spawn_helper (int                 socket_fd,
                            int                 progress_fd,
                            const char         *mode,
                            const char * const *program,
                            GError            **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *mode_arg = g_strdup_printf ("--mode=%s", mode);
  g_autofree char *parent_arg = g_strdup_printf ("--parent-pid=%d", (int)getpid ());
  g_auto(GStrv) argv = NULL;
  SpawnRequest request = { launcher, NULL, NULL };
  GSubprocess *subprocess;
  int early_stderr = memfd_create ("wpool-early-stderr", MFD_CLOEXEC);
  int our_stderr = fcntl (STDERR_FILENO, F_DUPFD_CLOEXEC, 3);

  if (program != NULL)
    g_strv_builder_addv (builder, (const char **)program);
  else
    g_strv_builder_add (builder, wpool_process_helper_path ());
  g_strv_builder_add_many (builder, mode_arg, "--socket-fd=3", "--progress-fd=4", parent_arg, NULL);

  /* Without either (no memory, or no stderr), it keeps ours throughout. */
  if (early_stderr >= 0 && our_stderr >= 0)
    {
      g_strv_builder_add (builder, "--stderr-fd=5");
      g_subprocess_launcher_take_stderr_fd (launcher, fcntl (early_stderr, F_DUPFD_CLOEXEC, 3));
      g_subprocess_launcher_take_fd (launcher, g_steal_fd (&our_stderr), 5);
    }
  else
    {
      if (early_stderr >= 0)
        close (g_steal_fd (&early_stderr));
      if (our_stderr >= 0)
        close (g_steal_fd (&our_stderr));
    }
  request.argv = (const char * const *)(argv = g_strv_builder_end (builder));

  /* The launcher closes the socket: the registry must forget it first. */
  g_subprocess_launcher_take_fd (launcher, wpool_process_release_fd (socket_fd), 3);
  /* Close-on-exec until the launcher places it: another thread's spawn
   * must not take it along. */
  g_subprocess_launcher_take_fd (launcher, fcntl (progress_fd, F_DUPFD_CLOEXEC, 3), 4);

  if (!(subprocess = wpool_launcher_run (spawn_on_launcher, &request)))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot start %s: %s", argv[0], request.error->message);
      g_clear_error (&request.error);
      if (early_stderr >= 0)
        close (early_stderr);
    }
  else if (early_stderr >= 0)
    {
      /* Never lost: forwarded when the subprocess goes, at the latest. */
      g_object_set_data_full (G_OBJECT (subprocess), EARLY_STDERR_KEY,
                              GINT_TO_POINTER (early_stderr + 1), forward_early_stderr_notify);
    }

  return subprocess;
}

/* Several shared objects travel as a tuple, typically of big datasets:
 * its members go one by one, each from its own buffer, since serializing
 * the tuple would copy them all into a new one. */
static gboolean
send_shared_objects (int        fd,
                     GVariant  *shared_objects,
                     GError   **error)
{
  gsize n = g_variant_is_of_type (shared_objects, G_VARIANT_TYPE_TUPLE) ? g_variant_n_children (shared_objects) : 0;

  if (n == 0)
    return wpool_frame_write_data (fd, WPOOL_FRAME_SHARED_OBJECTS,
                                   g_variant_get_data (shared_objects), g_variant_get_size (shared_objects),
                                   error);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) member = g_variant_get_child_value (shared_objects, i);

      if (!wpool_frame_write_data (fd, WPOOL_FRAME_SHARED_OBJECTS,
                                   g_variant_get_data (member), g_variant_get_size (member), error))
        return FALSE;
    }

  return TRUE;
}

/* The memfd of every shared array and lock among the shared objects, for
 * the worker to map the very same memory. */
static gboolean
send_shared_memory (int        fd,
                    GVariant  *shared_objects,
                    GError   **error)
{
  g_autoptr(GPtrArray) members = wpool_shared_objects_members (shared_objects);

  for (guint i = 0; i < members->len; i++)
    {
      g_autoptr(GObject) object = NULL;
      WpoolSharedMemory *memory = NULL;
      const char *kind_name;
      guint64 id;

      if (!wpool_shared_memory_parse_handle (members->pdata[i], &kind_name, &id))
        continue;

      if ((object = wpool_shared_memory_lookup (id)) != NULL)
        memory = WPOOL_IS_SHARED_ARRAY (object) ? wpool_shared_array_get_memory (WPOOL_SHARED_ARRAY (object))
                                                : wpool_lock_get_memory (WPOOL_LOCK (object));

      if (!(memory != NULL ? wpool_frame_write_fd (fd, WPOOL_FRAME_SHARED_MEMORY, g_variant_new ("(t)", id),
                                                   wpool_shared_memory_get_fd (memory), error)
                           : wpool_frame_write (fd, WPOOL_FRAME_SHARED_MEMORY, g_variant_new ("(t)", id), error)))
        return FALSE;
    }

  return TRUE;
}

/* Tells a started helper its id and its task, sends it the shared objects
 * once, from their own buffers, and the memory of their shared arrays and
 * locks; wpool_process_await_ready() then waits until it is ready. */
gboolean
wpool_process_send_setup (int        fd,
                          guint      id,
                          GVariant  *tasks,
                          GVariant  *shared_objects,
                          GError   **error)
{
  if (!wpool_frame_write (fd, WPOOL_FRAME_SETUP,
                          g_variant_new ("(u@a(ssss)s)", id, tasks,
                                         shared_objects ? g_variant_get_type_string (shared_objects) : ""),
                          error))
    return FALSE;

  return shared_objects == NULL ||
         (send_shared_objects (fd, shared_objects, error) && send_shared_memory (fd, shared_objects, error));
}

/* Waits for the answer to the setup of the worker program @program. */
gboolean
wpool_process_await_ready (int                 fd,
                           const char * const *program,
                           GError            **error)
{
  const char *name = wpool_process_program_name (program);
  g_autoptr(GVariant) ready = NULL;
  const char *problem;
  WpoolFrameKind kind = 0;

  if (!(ready = wpool_frame_read (fd, &kind, error)) || kind != WPOOL_FRAME_READY)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                     "%s ended before it was ready", name);
      return FALSE;
    }

  g_variant_get (ready, "(&s)", &problem);
  if (*problem != '\0')
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "%s cannot start: %s", name, problem);
      return FALSE;
    }

  return TRUE;
}

gboolean
wpool_process_setup (int                 fd,
                     guint               id,
                     GVariant           *tasks,
                     GVariant           *shared_objects,
                     const char * const *program,
                     GError            **error)
{
  return wpool_process_send_setup (fd, id, tasks, shared_objects, error) &&
         wpool_process_await_ready (fd, program, error);
}

static void
subprocess_waited (GObject      *source,
                   GAsyncResult *result,
                   gpointer      data)
{
  gboolean *done = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static gboolean
flag_set (gpointer data)
{
  *(gboolean *)data = TRUE;

  return G_SOURCE_REMOVE;
}

/* Waits for a helper told to exit and returns its wait status. GLib reaps
 * its children, so waitpid() is not ours to call. One that does not end
 * within a second is killed, and its status says so. */
int
wpool_process_reap_subprocess (GSubprocess *subprocess)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSource) timeout = g_timeout_source_new_seconds (1);
  gboolean done = FALSE;
  gboolean lingered = FALSE;

  /* GLib's worker thread reaps the child: waiting through GSubprocess,
   * not by polling its fields (a race, which TSan reported), is what
   * makes its status ours to read. */
  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (subprocess, NULL, subprocess_waited, &done);
  g_source_set_callback (timeout, flag_set, &lingered, NULL);
  g_source_attach (timeout, context);

  while (!done && !lingered)
    g_main_context_iteration (context, TRUE);
  if (!done)
    g_subprocess_force_exit (subprocess);
  while (!done)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);

  return g_subprocess_get_status (subprocess) | (lingered ? WPOOL_STATUS_LINGERED : 0);
}

/* After @subprocess, the worker program @name, hung up on its setup with
 * @error (an I/O error): it mostly ended on its own, as a language
 * runtime that cannot start does. Waits for it (killing it after a
 * second, as reaping does) and says how it ended, and the last line of
 * what it wrote to its standard error, which the bare socket error does
 * not. FALSE, and nothing done, for any other error: its standard error
 * is forwarded when @subprocess goes. */
gboolean
wpool_process_explain_hangup (GSubprocess  *subprocess,
                              const char   *name,
                              GError      **error)
{
  g_autofree char *how = NULL;
  g_autofree char *said = NULL;
  char *message;
  int status;

  if (error == NULL || *error == NULL || (*error)->domain != G_IO_ERROR ||
      (*error)->code == G_IO_ERROR_CANCELLED)
    return FALSE;

  status = wpool_process_reap_subprocess (subprocess);
  said = wpool_process_take_early_stderr (subprocess);
  if (status & WPOOL_STATUS_LINGERED)
    return TRUE;

  how = wpool_process_describe_status (status);
  /* What the dynamic loader and the shell exit with when they cannot run
   * the program: the commonest failure of an installed helper. */
  message = g_strdup_printf ("%s %s before it was ready%s: %s%s%s (%s)",
                             name, how,
                             WIFEXITED (status) && WEXITSTATUS (status) == 127
                               ? " (127: a library it needs could not be loaded, or it was not found)" : "",
                             said != NULL ? "its standard error ends with “" : "its standard error says why",
                             said != NULL ? said : "",
                             said != NULL ? "”" : "",
                             (*error)->message);
  g_free ((*error)->message);
  (*error)->message = message;

  return TRUE;
}
