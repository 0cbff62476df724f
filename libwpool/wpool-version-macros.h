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

/* The library builds itself with every symbol available and none
 * deprecated: its own uses must not warn. */
#if defined (WPOOL_COMPILATION) || defined (WPOOL_DISABLE_DEPRECATION_WARNINGS)
# define _WPOOL_DEPRECATED _WPOOL_EXTERN
# define _WPOOL_DEPRECATED_FOR(f) _WPOOL_EXTERN
# define _WPOOL_UNAVAILABLE(maj,min) _WPOOL_EXTERN
#else
# define _WPOOL_DEPRECATED G_DEPRECATED _WPOOL_EXTERN
# define _WPOOL_DEPRECATED_FOR(f) G_DEPRECATED_FOR (f) _WPOOL_EXTERN
# define _WPOOL_UNAVAILABLE(maj,min) G_UNAVAILABLE (maj, min) _WPOOL_EXTERN
#endif

/**
 * WPOOL_VERSION_0_1:
 *
 * The encoded value of libwpool 0.1, for `WPOOL_VERSION_MIN_REQUIRED`
 * and `WPOOL_VERSION_MAX_ALLOWED`.
 *
 * Since: 0.2
 */
#define WPOOL_VERSION_0_1 (WPOOL_ENCODE_VERSION (0, 1, 0))

/**
 * WPOOL_VERSION_0_2:
 *
 * The encoded value of libwpool 0.2, for `WPOOL_VERSION_MIN_REQUIRED`
 * and `WPOOL_VERSION_MAX_ALLOWED`.
 *
 * Since: 0.2
 */
#define WPOOL_VERSION_0_2 (WPOOL_ENCODE_VERSION (0, 2, 0))

/* While the major version is 0, each minor version is a stable series, as
 * GLib's even minor versions are. */
#define WPOOL_VERSION_CUR_STABLE (WPOOL_ENCODE_VERSION (WPOOL_MAJOR_VERSION, WPOOL_MINOR_VERSION, 0))
#if WPOOL_MAJOR_VERSION == 0 && WPOOL_MINOR_VERSION <= 1
# define WPOOL_VERSION_PREV_STABLE (WPOOL_VERSION_0_1)
#elif WPOOL_MAJOR_VERSION == 0
# define WPOOL_VERSION_PREV_STABLE (WPOOL_ENCODE_VERSION (0, WPOOL_MINOR_VERSION - 1, 0))
#else
# define WPOOL_VERSION_PREV_STABLE (WPOOL_ENCODE_VERSION (WPOOL_MAJOR_VERSION - 1, 0, 0))
#endif

/**
 * WPOOL_VERSION_MIN_REQUIRED:
 *
 * The oldest libwpool the application supports, which it may define
 * before it includes `<wpool.h>`, as one of the `WPOOL_VERSION_*` values
 * such as `WPOOL_VERSION_0_1`.
 *
 * API deprecated in a version newer than it does not warn, so that code
 * which still supports that version builds without warnings. Undefined,
 * it is the version of the headers.
 *
 * Since: 0.2
 */
#ifndef WPOOL_VERSION_MIN_REQUIRED
# define WPOOL_VERSION_MIN_REQUIRED (WPOOL_VERSION_CUR_STABLE)
#endif

/**
 * WPOOL_VERSION_MAX_ALLOWED:
 *
 * The newest libwpool API the application may use, which it may define
 * before it includes `<wpool.h>`, as one of the `WPOOL_VERSION_*` values.
 *
 * Using API added after it warns at compile time, so an application
 * that must run with an older libwpool finds out while it builds rather
 * than when it runs. Undefined, it is `WPOOL_VERSION_MIN_REQUIRED`
 * when that is newer than the previous stable version, else the version
 * of the headers.
 *
 * Since: 0.2
 */
#ifndef WPOOL_VERSION_MAX_ALLOWED
# if WPOOL_VERSION_MIN_REQUIRED > WPOOL_VERSION_PREV_STABLE
#  define WPOOL_VERSION_MAX_ALLOWED (WPOOL_VERSION_MIN_REQUIRED)
# else
#  define WPOOL_VERSION_MAX_ALLOWED (WPOOL_VERSION_CUR_STABLE)
# endif
#endif

#if WPOOL_VERSION_MAX_ALLOWED < WPOOL_VERSION_MIN_REQUIRED
# error "WPOOL_VERSION_MAX_ALLOWED must be >= WPOOL_VERSION_MIN_REQUIRED"
#endif
#if WPOOL_VERSION_MIN_REQUIRED < WPOOL_VERSION_0_1
# error "WPOOL_VERSION_MIN_REQUIRED must be >= WPOOL_VERSION_0_1"
#endif

#define WPOOL_AVAILABLE_IN_ALL _WPOOL_EXTERN

/* Per version: WPOOL_AVAILABLE_IN_x_y warns when the application allows
 * only older versions; WPOOL_DEPRECATED_IN_x_y(_FOR) warns when it
 * requires x.y or newer. */
#if WPOOL_VERSION_MAX_ALLOWED < WPOOL_VERSION_0_1
# define WPOOL_AVAILABLE_IN_0_1 _WPOOL_UNAVAILABLE (0, 1)
#else
# define WPOOL_AVAILABLE_IN_0_1 _WPOOL_EXTERN
#endif

#if WPOOL_VERSION_MAX_ALLOWED < WPOOL_VERSION_0_2
# define WPOOL_AVAILABLE_IN_0_2 _WPOOL_UNAVAILABLE (0, 2)
#else
# define WPOOL_AVAILABLE_IN_0_2 _WPOOL_EXTERN
#endif

/* g-ir-scanner would take these function-like macros for API. */
#ifndef __GI_SCANNER__

#if WPOOL_VERSION_MIN_REQUIRED >= WPOOL_VERSION_0_1
# define WPOOL_DEPRECATED_IN_0_1 _WPOOL_DEPRECATED
# define WPOOL_DEPRECATED_IN_0_1_FOR(f) _WPOOL_DEPRECATED_FOR (f)
#else
# define WPOOL_DEPRECATED_IN_0_1 _WPOOL_EXTERN
# define WPOOL_DEPRECATED_IN_0_1_FOR(f) _WPOOL_EXTERN
#endif

#if WPOOL_VERSION_MIN_REQUIRED >= WPOOL_VERSION_0_2
# define WPOOL_DEPRECATED_IN_0_2 _WPOOL_DEPRECATED
# define WPOOL_DEPRECATED_IN_0_2_FOR(f) _WPOOL_DEPRECATED_FOR (f)
#else
# define WPOOL_DEPRECATED_IN_0_2 _WPOOL_EXTERN
# define WPOOL_DEPRECATED_IN_0_2_FOR(f) _WPOOL_EXTERN
#endif

#endif /* __GI_SCANNER__ */
