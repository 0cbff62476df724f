/* wpool-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

gboolean  wpool_process_socketpair        (int       fds[2],
                                           GError  **error);
void      wpool_process_close_fd          (int       fd);
int       wpool_process_release_fd        (int       fd);
pid_t     wpool_process_fork              (int       keep_fd,
                                           GError  **error);
int       wpool_process_reap              (pid_t     pid);
char     *wpool_process_describe_status   (int       status);

const char  *wpool_process_helper_path        (void);
GSubprocess *wpool_process_spawn_helper       (int           socket_fd,
                                               int           progress_fd,
                                               const char   *mode,
                                               GError      **error);
gboolean     wpool_process_setup              (int           fd,
                                               guint         id,
                                               const char   *module_path,
                                               const char   *symbol,
                                               GVariant     *shared_objects,
                                               GError      **error);
int          wpool_process_reap_subprocess    (GSubprocess  *subprocess);

G_END_DECLS
