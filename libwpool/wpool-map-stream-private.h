/* wpool-map-stream-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "wpool-job-private.h"
#include "wpool-map-stream.h"
#include "wpool-pool.h"

G_BEGIN_DECLS

/* A stream is made for a job before it starts: the pool starts the job
 * with the stream's notify, and says so; the stream ends the map. */
WpoolMapStream *wpool_map_stream_new        (WpoolPool      *pool,
                                             WpoolJob       *job,
                                             WpoolMapFlags   flags);
WpoolJobNotify  wpool_map_stream_get_notify (void);
void            wpool_map_stream_started    (WpoolMapStream *self);

G_END_DECLS
