/* wpool-launcher-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>
#include <signal.h>

G_BEGIN_DECLS

/* What the launcher runs for a caller: @func (@data), given the signal
 * mask of the thread that asked, for the process it starts. */
typedef gpointer (*WpoolLaunchFunc) (gpointer        data,
                                     const sigset_t *caller_mask);

gpointer wpool_launcher_run          (WpoolLaunchFunc  func,
                                      gpointer         data);
void     wpool_launcher_forget       (void);

G_END_DECLS
