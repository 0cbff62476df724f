/* wpool-trace-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

#include "wpool-start-method.h"
#include "wpool-task.h"

#ifndef PACKAGE_VERSION
# error "config.h was not included before wpool-trace-private.h"
#endif

G_BEGIN_DECLS

/* Sysprof marks, in the group "libwpool", that show a map as a timeline
 * per worker: a row "map" with a mark per map, and a row "worker N" per
 * worker with its start, its chunks, its restarts, its death or timeout.
 * Emitted by the pool's process only (the caller's threads, the drivers,
 * and under THREADING the workers), never by a worker process.
 *
 * Times are g_get_monotonic_time()'s, in µs: Sysprof's clock is the same
 * CLOCK_MONOTONIC, in ns. wpool_trace_now() is 0 while no profiler
 * listens, and a mark that began at 0 is not emitted, so a site costs a
 * check of sysprof_collector_is_active() and no clock. Without the
 * `sysprof` feature every helper is an empty inline function. */

#ifdef HAVE_SYSPROF

gint64 wpool_trace_now            (void);
void   wpool_trace_map            (gint64            begin,
                                   guint             n_items,
                                   WpoolStartMethod  start_method,
                                   WpoolTask        *task);
void   wpool_trace_chunk          (gint64            begin,
                                   guint             worker_id,
                                   GPid              pid,
                                   guint             first,
                                   guint             last,
                                   guint             n_done);
void   wpool_trace_worker_start   (gint64            begin,
                                   guint             worker_id,
                                   GPid              pid);
void   wpool_trace_worker_restart (guint             worker_id,
                                   const char       *why);
void   wpool_trace_worker_lost    (guint             worker_id,
                                   GPid              pid,
                                   guint             first,
                                   guint             last,
                                   gboolean          timed_out,
                                   const char       *why);

#else

static inline gint64 wpool_trace_now (void) { return 0; }
static inline void wpool_trace_map (gint64 begin, guint n_items, WpoolStartMethod start_method,
                                    WpoolTask *task) { }
static inline void wpool_trace_chunk (gint64 begin, guint worker_id, GPid pid, guint first, guint last,
                                      guint n_done) { }
static inline void wpool_trace_worker_start (gint64 begin, guint worker_id, GPid pid) { }
static inline void wpool_trace_worker_restart (guint worker_id, const char *why) { }
static inline void wpool_trace_worker_lost (guint worker_id, GPid pid, guint first, guint last,
                                            gboolean timed_out, const char *why) { }

#endif

G_END_DECLS
