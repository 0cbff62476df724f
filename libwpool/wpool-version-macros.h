/* wpool-version-macros.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (WPOOL_INSIDE) && !defined (WPOOL_COMPILATION)
# error "Only <wpool.h> can be included directly."
#endif

#include <glib.h>

#include "wpool-version.h"

/* Everything is built with -fvisibility=hidden; only what carries one of
 * these macros is exported from libwpool-1.so. */
#ifndef _WPOOL_EXTERN
# define _WPOOL_EXTERN __attribute__((visibility("default"))) extern
#endif

#define WPOOL_VERSION_0_1 (WPOOL_ENCODE_VERSION (0, 1, 0))

#define WPOOL_AVAILABLE_IN_ALL _WPOOL_EXTERN
#define WPOOL_AVAILABLE_IN_0_1 _WPOOL_EXTERN
