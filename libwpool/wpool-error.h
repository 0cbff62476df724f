/* wpool-error.h
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
 * WPOOL_ERROR:
 *
 * The error domain of libwpool's own errors. A task's own [type@GLib.Error]
 * keeps its domain and code; the pool only adds which item and which worker
 * to its message.
 *
 * Since: 0.1
 */
#define WPOOL_ERROR (wpool_error_quark ())

/**
 * WpoolError:
 * @WPOOL_ERROR_FAILED: a generic failure, e.g. a task that returned %NULL
 *   without setting an error
 * @WPOOL_ERROR_INVALID_ARGUMENT: an argument is not acceptable (items that
 *   are not an array, a module or symbol that cannot be found, …)
 * @WPOOL_ERROR_INVALID_RESULT: a task returned a value of another type than
 *   the result type it declared
 * @WPOOL_ERROR_NOT_SUPPORTED: the operation is not supported with this start
 *   method or this kind of task
 * @WPOOL_ERROR_WORKERS_RUNNING: the operation needs the workers to be
 *   stopped, e.g. changing the shared objects of a kept-alive pool
 * @WPOOL_ERROR_WORKER_DIED: a worker process died while it ran an item
 * @WPOOL_ERROR_TIMED_OUT: an item ran longer than the pool allows
 *
 * Error codes in the %WPOOL_ERROR domain.
 *
 * Since: 0.1
 */
typedef enum
{
  WPOOL_ERROR_FAILED,
  WPOOL_ERROR_INVALID_ARGUMENT,
  WPOOL_ERROR_INVALID_RESULT,
  WPOOL_ERROR_NOT_SUPPORTED,
  WPOOL_ERROR_WORKERS_RUNNING,
  WPOOL_ERROR_WORKER_DIED,
  WPOOL_ERROR_TIMED_OUT,
} WpoolError;

WPOOL_AVAILABLE_IN_0_1
GQuark wpool_error_quark (void);

G_END_DECLS
