/* wpool-mpi-channel-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <mpi.h>

#include "wpool-protocol-private.h"

G_BEGIN_DECLS

/* The tags of a frame's messages: its header (with its data when small),
 * then the pieces of a large one; and the end of a conversation. The
 * channel's communicator is its own: any other message on it is refused
 * as no frame. */
#define WPOOL_MPI_TAG_FRAME 0x7770
#define WPOOL_MPI_TAG_PIECE 0x7771
#define WPOOL_MPI_TAG_END   0x7772

/* Data up to this size goes in the header's message. */
#define WPOOL_MPI_FRAME_INLINE_SIZE ((gsize)64 << 10)

gboolean  wpool_mpi_frame_send (MPI_Comm          comm,
                                int               rank,
                                WpoolFrameKind    kind,
                                GVariant         *payload,
                                gint64            deadline,
                                GCancellable     *cancellable,
                                GError          **error);
GVariant *wpool_mpi_frame_recv (MPI_Comm          comm,
                                int               rank,
                                int              *source,
                                WpoolFrameKind   *kind,
                                gint64            deadline,
                                GCancellable     *cancellable,
                                GError          **error);

gboolean  wpool_mpi_frame_end  (MPI_Comm          comm,
                                int               rank,
                                gint64            deadline,
                                GCancellable     *cancellable,
                                GError          **error);

WpoolFramePort *wpool_mpi_frame_port_new (MPI_Comm comm,
                                          int      rank);

G_END_DECLS
