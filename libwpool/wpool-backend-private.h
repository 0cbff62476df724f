/* wpool-backend-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

#include "wpool-job-private.h"
#include "wpool-start-method.h"
#include "wpool-task.h"

G_BEGIN_DECLS

/* A backend is one start method's set of running workers. It starts
 * n-jobs workers that each hold the shared objects (sent once, however the
 * start method moves them), hands each map's job to them, and stops them.
 * It assumes no fork, socket or thread: a start method is one subclass in
 * one file, registered in wpool_backend_type_for_start_method(). */
#define WPOOL_TYPE_BACKEND (wpool_backend_get_type ())

G_DECLARE_DERIVABLE_TYPE (WpoolBackend, wpool_backend, WPOOL, BACKEND, GObject)

struct _WpoolBackendClass
{
  GObjectClass parent_class;

  /* Whether this start method can run @task at all; checked on every map
   * before any worker starts. */
  gboolean (*check_task) (WpoolBackendClass  *klass,
                          WpoolTask          *task,
                          GError            **error);
  /* Starts the workers, once. */
  gboolean (*start)      (WpoolBackend       *self,
                          GError            **error);
  /* Hands @job to the first @n_workers workers; each calls
   * wpool_job_worker_done() exactly once. */
  void     (*dispatch)   (WpoolBackend       *self,
                          WpoolJob           *job,
                          guint               n_workers);
  /* Stops the workers and waits until they are gone. */
  void     (*stop)       (WpoolBackend       *self);
};

GType         wpool_backend_threading_get_type (void) G_GNUC_CONST;

WpoolBackend *wpool_backend_new              (WpoolStartMethod   start_method,
                                              guint              n_jobs,
                                              GVariant          *shared_objects,
                                              gpointer           shared_data,
                                              GError           **error);
gboolean      wpool_backend_check_task       (WpoolStartMethod   start_method,
                                              WpoolTask         *task,
                                              GError           **error);
guint         wpool_backend_get_n_jobs       (WpoolBackend      *self);
GVariant     *wpool_backend_get_shared_objects (WpoolBackend    *self);
gpointer      wpool_backend_get_shared_data  (WpoolBackend      *self);
void          wpool_backend_dispatch         (WpoolBackend      *self,
                                              WpoolJob          *job,
                                              guint              n_workers);
void          wpool_backend_stop             (WpoolBackend      *self);
void          wpool_backend_set_current      (WpoolBackend      *self);
gboolean      wpool_backend_is_current       (WpoolBackend      *self);

G_END_DECLS
