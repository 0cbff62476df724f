/* wpool-start-method.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib.h>

#include "wpool-version-macros.h"

G_BEGIN_DECLS

/**
 * WpoolStartMethod:
 * @WPOOL_START_METHOD_FORK: workers are `fork()`ed from the calling process
 *   at the first map; they see the shared objects copy-on-write, at the
 *   caller's own addresses, and can run any task
 * @WPOOL_START_METHOD_FORKSERVER: a clean server process, started with the
 *   `wpool-worker` helper (or the task's worker program), receives the
 *   shared objects once and forks the workers, which share its one copy
 *   copy-on-write; safe in a threaded caller. Tasks must be findable by a
 *   new process, as with SPAWN
 * @WPOOL_START_METHOD_SPAWN: every worker is a fresh `wpool-worker` process
 *   (or the task's worker program: see [ctor@Wpool.Task.new_for_program]);
 *   the shared objects are sent to it once, at its start, never per task.
 *   Tasks must be findable by a new process: see
 *   [ctor@Wpool.Task.new_for_symbol]
 * @WPOOL_START_METHOD_THREADING: workers are threads of the calling process;
 *   they read and write the very same shared objects, with no copy
 * @WPOOL_START_METHOD_MPI: workers are MPI processes, on one machine or
 *   several: spawned for the pool when the program runs under
 *   `mpirun -np 1`, or the other ranks of the job under `mpirun -np N`
 *   (which call [func@Wpool.Worker.serve] with
 *   %WPOOL_SERVE_FLAGS_MPI_RANKS first thing). Each node holds one
 *   copy of the shared objects, which its workers read in place. Tasks
 *   must be findable by a new process, as with SPAWN. Needs libwpool built
 *   with Open MPI; see the
 *   [Running on several machines](several-machines.html) guide. Since: 0.2
 *
 * How a [class@Wpool.Pool] starts its workers, and so how the shared
 * objects reach them. See the [Shared objects](shared-objects.html) guide
 * for the full table and what each costs in memory.
 *
 * A worker process that dies while it runs an item fails that map with
 * %WPOOL_ERROR_WORKER_DIED and is replaced before the next one; under
 * MPI, Open MPI ends the whole job instead. Python
 * functions run under every start method (under SPAWN and FORKSERVER in
 * Python worker programs, through the override's `Wpool.Pool`);
 * JavaScript functions exported from an ES module run under SPAWN, in
 * `gjs` worker programs, since GJS's engine survives no fork.
 *
 * Since: 0.1
 */
typedef enum
{
  WPOOL_START_METHOD_FORK,
  WPOOL_START_METHOD_FORKSERVER,
  WPOOL_START_METHOD_SPAWN,
  WPOOL_START_METHOD_THREADING,
  WPOOL_START_METHOD_MPI,
} WpoolStartMethod;

/**
 * WpoolForkFunc:
 * @user_data: (closure): the data given to [func@Wpool.set_fork_func]
 *
 * Forks the calling process, as fork() does, for a language runtime that
 * must prepare for a fork and recover from one (Python's `os.fork()`).
 *
 * Returns: the child's process id in the parent, 0 in the child, or a
 *   negative errno value when no child was made
 *
 * Since: 0.2
 */
typedef int (*WpoolForkFunc) (gpointer user_data);

WPOOL_AVAILABLE_IN_0_2
void wpool_set_fork_func (WpoolForkFunc  func,
                          gpointer       user_data,
                          GDestroyNotify user_data_free);

G_END_DECLS
