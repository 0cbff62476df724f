/* wpool-mpi-module-private.h: what libwpool asks of its MPI module.
 *
 * The MPI start method talks to its workers through Open MPI, which
 * libwpool does not link: an application that never uses MPI must not
 * load it (its libraries and constructors) with every pool. The module
 * (libwpool-mpi.so, wpool-mpi-module.c), which does, is opened on the
 * first MPI pool or MPI worker by wpool-mpi-loader.c and gives this
 * table; the backend (wpool-backend-mpi.c) and wpool_worker_serve() use
 * it. Nothing here names an MPI type: libwpool is built without mpi.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "wpool-protocol-private.h"
#include "wpool-task.h"
#include "wpool-worker.h"

G_BEGIN_DECLS

/* A pool's MPI workers: spawned for it (the program runs under
 * `mpirun -np 1`), or the other ranks of the job (`mpirun -np N`). */
typedef struct _WpoolMpiWorkers WpoolMpiWorkers;

typedef struct
{
  /* sizeof (WpoolMpiModule): a module of another build is refused. */
  gsize size;

  /* Starts MPI if the program did not, and gives @n_jobs workers: ranks
   * of this job beyond the first, or processes of @argv (the worker
   * program with its arguments), spawned by @deadline (monotonic µs) or
   * kept from an earlier pool. */
  WpoolMpiWorkers *(*workers_new)  (guint                n_jobs,
                                    const char * const  *argv,
                                    gint64               deadline,
                                    GError             **error);
  /* Worker @index's MPI rank, for messages. */
  int              (*worker_rank)  (WpoolMpiWorkers     *self,
                                    guint                index);
  /* Begins a conversation: SETUP to every worker with @locations (as
   * wpool_backend_process_locate_tasks() gives them), the shared objects
   * made into each node's one copy, and READY from every worker by
   * @deadline (monotonic µs, -1 for none). */
  gboolean         (*begin)        (WpoolMpiWorkers     *self,
                                    GVariant            *locations,
                                    GVariant            *shared_objects,
                                    gint64               deadline,
                                    GCancellable        *cancellable,
                                    GError             **error);
  gboolean         (*send)         (WpoolMpiWorkers     *self,
                                    guint                index,
                                    WpoolFrameKind       kind,
                                    GVariant            *payload,
                                    gint64               deadline,
                                    GCancellable        *cancellable,
                                    GError             **error);
  GVariant        *(*recv)         (WpoolMpiWorkers     *self,
                                    guint                index,
                                    WpoolFrameKind      *kind,
                                    gint64               deadline,
                                    GCancellable        *cancellable,
                                    GError             **error);
  /* Ends the conversation begun last, and frees the nodes' copies with
   * the workers. */
  void             (*end)          (WpoolMpiWorkers     *self);
  /* Worker @index still runs what it was given (@what, for the message
   * that ends the job) and never answers: no collective call may wait
   * for it, and the job cannot end normally (see wpool-mpi-module.c). */
  void             (*lose)         (WpoolMpiWorkers     *self,
                                    guint                index,
                                    const char          *what);
  /* Whether a worker was lost: the workers serve no more. */
  gboolean         (*is_lost)      (WpoolMpiWorkers     *self);
  void             (*workers_free) (WpoolMpiWorkers     *self);

  /* The worker's side: serves the pools of the job's first rank (or of
   * the process that spawned this one, when @spawned) until it is done
   * with this process, then finalizes MPI. On the first rank, it starts
   * MPI, so that the others are let go when it ends, and fails with
   * %WPOOL_ERROR_INVALID_ARGUMENT: that rank runs the pools. */
  gboolean         (*serve)        (gboolean              spawned,
                                    WpoolTaskResolveFunc  resolve,
                                    gpointer              user_data,
                                    GError              **error);
} WpoolMpiModule;

/* The module's one exported symbol: const WpoolMpiModule *(void). */
#define WPOOL_MPI_MODULE_ENTRY "wpool_mpi_module_get"

const WpoolMpiModule *wpool_mpi_module_load      (GError **error);
gboolean              wpool_mpi_serves           (const char * const *args,
                                                  WpoolServeFlags     flags,
                                                  gboolean           *spawned);

G_END_DECLS
