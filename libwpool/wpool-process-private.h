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

G_END_DECLS
