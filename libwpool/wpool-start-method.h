/* wpool-start-method.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/**
 * WpoolStartMethod:
 * @WPOOL_START_METHOD_FORK: workers are fork()ed from the calling process
 *   at the first map; they see the shared objects copy-on-write
 * @WPOOL_START_METHOD_FORKSERVER: a clean server process receives the shared
 *   objects once and forks the workers from itself
 * @WPOOL_START_METHOD_SPAWN: every worker is a fresh `wpool-worker` process;
 *   the shared objects are sent to it once, at its start
 * @WPOOL_START_METHOD_THREADING: workers are threads of the calling process;
 *   they read and write the very same shared objects, with no copy
 *
 * How a #WpoolPool starts its workers, and so how the shared objects reach
 * them. See the "Shared objects" guide for the full table.
 *
 * In this version only %WPOOL_START_METHOD_THREADING runs maps: a map on a
 * pool with a process start method fails with %WPOOL_ERROR_NOT_SUPPORTED.
 * There is no silent fallback to threads.
 */
typedef enum
{
  WPOOL_START_METHOD_FORK,
  WPOOL_START_METHOD_FORKSERVER,
  WPOOL_START_METHOD_SPAWN,
  WPOOL_START_METHOD_THREADING,
} WpoolStartMethod;

G_END_DECLS
