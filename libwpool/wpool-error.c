/* wpool-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-error.h"

G_DEFINE_QUARK (wpool-error-quark, wpool_error)
