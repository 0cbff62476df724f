/* wpool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define WPOOL_INSIDE
# include "wpool-version.h"
# include "wpool-version-macros.h"
# include "wpool-enums.h"
# include "wpool-error.h"
# include "wpool-start-method.h"
# include "wpool-items.h"
# include "wpool-lock.h"
# include "wpool-shared-array.h"
# include "wpool-worker.h"
# include "wpool-task.h"
# include "wpool-pool.h"
#undef WPOOL_INSIDE

G_END_DECLS
