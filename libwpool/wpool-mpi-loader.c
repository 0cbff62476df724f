/* wpool-mpi-loader.c: finds and opens libwpool's MPI module
 * (wpool-mpi-module-private.h), once, for the MPI pools and workers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <gmodule.h>

#include "wpool-error.h"
#include "wpool-mpi-module-private.h"
#include "wpool-process-private.h"

/* The module: WPOOL_MPI_MODULE names it in a build tree. */
static const char *
module_path (void)
{
  const char *path = wpool_process_trusted_getenv ("WPOOL_MPI_MODULE");

  return path != NULL ? path : WPOOL_MODULEDIR "/libwpool-mpi.so";
}

/* The module's table, or %NULL with @error set: %WPOOL_ERROR_NOT_SUPPORTED
 * when this libwpool was built without it. It stays loaded: MPI, once
 * started, lives as long as the process. */
const WpoolMpiModule *
wpool_mpi_module_load (GError **error)
{
  static GMutex lock;
  static const WpoolMpiModule *module;
  const WpoolMpiModule *(*get) (void) = NULL;
  const char *path = module_path ();
  GModule *gmodule;

  g_mutex_lock (&lock);
  if (module != NULL)
    {
      g_mutex_unlock (&lock);
      return module;
    }

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                 "The MPI start method needs libwpool's MPI module, %s, which this libwpool was "
                 "built without: build it where Open MPI is installed (meson's “mpi” option)", path);
  else if (!(gmodule = g_module_open (path, G_MODULE_BIND_LOCAL)))
    g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                 "Cannot load libwpool's MPI module: %s", g_module_error ());
  else if (!g_module_symbol (gmodule, WPOOL_MPI_MODULE_ENTRY, (gpointer *)&get) || get == NULL ||
           get ()->size != sizeof (WpoolMpiModule))
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_NOT_SUPPORTED,
                   "%s is not the MPI module of this libwpool (%s)", path, PACKAGE_VERSION);
      g_module_close (gmodule);
    }
  else
    {
      g_module_make_resident (gmodule);
      module = get ();
    }
  g_mutex_unlock (&lock);

  return module;
}

/* Whether the program serving with @args and @flags does so over MPI:
 * spawned by an MPI pool (--mode=mpi, *@spawned), or a rank, the first
 * included, of a job of several that mpirun started, when @flags say its
 * ranks serve. A pool's socket (--socket-fd) says it was started by a
 * SPAWN or FORKSERVER pool instead, whatever its environment says. */
gboolean
wpool_mpi_serves (const char * const *args,
                  WpoolServeFlags     flags,
                  gboolean           *spawned)
{
  const char *size = g_getenv ("OMPI_COMM_WORLD_SIZE");

  *spawned = FALSE;
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    {
      if (g_str_has_prefix (args[i], "--socket-fd="))
        return FALSE;
      if (g_str_equal (args[i], "--mode=mpi"))
        *spawned = TRUE;
    }

  return *spawned || ((flags & WPOOL_SERVE_FLAGS_MPI_RANKS) && size != NULL && atoi (size) > 1);
}
