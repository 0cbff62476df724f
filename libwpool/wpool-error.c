/* wpool-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"

/**
 * wpool_error_quark:
 *
 * Gets the domain of libwpool's own errors, %WPOOL_ERROR.
 *
 * Returns: the error domain
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (wpool-error-quark, wpool_error)
