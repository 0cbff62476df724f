/* wpool-private.h: what libwpool's optional parts built apart (the MPI
 * start method's, in libwpool-mpi, which links Open MPI) take from the
 * library. As GLib's glib__private__(): one exported function returns
 * them, so that nothing of this is in the public header, the GIR or the
 * ABI promise; a part built apart must come from the same build.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "wpool-protocol-private.h"
#include "wpool-serve-private.h"
#include "wpool-version-macros.h"

G_BEGIN_DECLS

typedef struct
{
  gboolean  (*frame_check_header) (guint32          kind,
                                   guint64          size,
                                   GError         **error);
  GVariant *(*frame_decode)       (WpoolFrameKind   kind,
                                   GBytes          *bytes,
                                   GError         **error);
  /* A worker's state (wpool-worker-private.h), and its loop on a port. */
  WpoolWorker *(*worker_new)      (guint            id,
                                   GVariant        *shared_objects,
                                   gpointer         shared_data);
  int       (*serve_port)         (WpoolWorker     *worker,
                                   WpoolTask       *task,
                                   WpoolFramePort  *port,
                                   WpoolRunning    *running);
  void      (*worker_set_lifecycle) (WpoolWorker   *worker,
                                     WpoolTask     *init,
                                     WpoolTask     *exit);
  /* A worker program's tasks at the locations SETUP names. */
  gboolean  (*worker_load_tasks)  (WpoolTaskResolveFunc   resolve,
                                   gpointer               user_data,
                                   GVariant              *shared_objects,
                                   GVariant              *locations,
                                   WpoolTask            **task,
                                   WpoolTask            **init,
                                   WpoolTask            **exit,
                                   GError               **error);
} WpoolPrivateVTable;

_WPOOL_EXTERN
const WpoolPrivateVTable *wpool__private__ (void);

#define WPOOL_PRIVATE_CALL(name) (wpool__private__ ()->name)

G_END_DECLS
