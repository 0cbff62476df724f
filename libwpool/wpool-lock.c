/* wpool-lock.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "wpool-lock-private.h"

/**
 * WpoolLock:
 *
 * A lock that every worker of a [class@Wpool.Pool] shares, under every
 * start method, as `multiprocessing.Lock` in the reference: a robust
 * process-shared mutex in shared memory.
 *
 * Put its handle, [method@Wpool.Lock.get_handle], in the pool's shared
 * objects; a task gets the lock with [method@Wpool.Worker.get_lock].
 *
 * A worker that dies holding the lock does not block the others: the
 * next one to acquire it takes it over. What the dead worker was doing
 * under the lock may be half done.
 *
 * Since: 0.1
 */

struct _WpoolLock
{
  GObject            parent_instance;

  WpoolSharedMemory *memory;
  /* Only the lock that owns its memory is found by its handle: an
   * array's lock is found through the array. */
  gboolean           registered;
};

G_DEFINE_FINAL_TYPE (WpoolLock, wpool_lock, G_TYPE_OBJECT)

static void
wpool_lock_finalize (GObject *object)
{
  WpoolLock *self = (WpoolLock *)object;

  if (self->registered)
    wpool_shared_memory_unregister (wpool_shared_memory_get_id (self->memory), object);
  g_clear_pointer (&self->memory, wpool_shared_memory_unref);

  G_OBJECT_CLASS (wpool_lock_parent_class)->finalize (object);
}

static void
wpool_lock_class_init (WpoolLockClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = wpool_lock_finalize;
}

static void
wpool_lock_init (WpoolLock *self)
{
}

WpoolLock *
wpool_lock_new_for_memory (WpoolSharedMemory *memory,
                           gboolean           registered)
{
  WpoolLock *self = g_object_new (WPOOL_TYPE_LOCK, NULL);

  self->memory = wpool_shared_memory_ref (memory);
  self->registered = registered;
  if (registered)
    wpool_shared_memory_register (wpool_shared_memory_get_id (memory), G_OBJECT (self));

  return self;
}

WpoolSharedMemory *
wpool_lock_get_memory (WpoolLock *self)
{
  return self->memory;
}

/**
 * wpool_lock_new:
 * @error: return location for a [type@GLib.Error]
 *
 * Creates a lock in shared memory.
 *
 * Returns: (transfer full): a new [class@Wpool.Lock], or %NULL with @error
 *   set when no shared memory can be had
 *
 * Since: 0.1
 */
WpoolLock *
wpool_lock_new (GError **error)
{
  g_autoptr(WpoolSharedMemory) memory = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(memory = wpool_shared_memory_new (WPOOL_SHARED_MEMORY_LOCK, 0, 0, 0, 0, error)))
    return NULL;

  return wpool_lock_new_for_memory (memory, TRUE);
}

/**
 * wpool_lock_acquire:
 * @self: a [class@Wpool.Lock]
 *
 * Waits for the lock and takes it. A lock whose holder died is taken
 * over.
 *
 * Since: 0.1
 */
void
wpool_lock_acquire (WpoolLock *self)
{
  g_return_if_fail (WPOOL_IS_LOCK (self));

  wpool_shared_memory_lock (self->memory, TRUE);
}

/**
 * wpool_lock_try_acquire:
 * @self: a [class@Wpool.Lock]
 *
 * Takes the lock if nobody holds it.
 *
 * Returns: %TRUE if the lock was taken
 *
 * Since: 0.1
 */
gboolean
wpool_lock_try_acquire (WpoolLock *self)
{
  g_return_val_if_fail (WPOOL_IS_LOCK (self), FALSE);

  return wpool_shared_memory_lock (self->memory, FALSE);
}

/**
 * wpool_lock_release:
 * @self: a [class@Wpool.Lock]
 *
 * Releases the lock, which the caller holds.
 *
 * Since: 0.1
 */
void
wpool_lock_release (WpoolLock *self)
{
  g_return_if_fail (WPOOL_IS_LOCK (self));

  wpool_shared_memory_unlock (self->memory);
}

/**
 * wpool_lock_get_handle:
 * @self: a [class@Wpool.Lock]
 *
 * Gets the value that stands for the lock in a pool's shared objects,
 * alone or as a member of their tuple. A task gets the lock back with
 * [method@Wpool.Worker.get_lock].
 *
 * Returns: (transfer none): a new floating reference to the handle, of
 *   type `(st)`, which the shared objects (or a tuple of them) take
 *
 * Since: 0.1
 */
GVariant *
wpool_lock_get_handle (WpoolLock *self)
{
  g_return_val_if_fail (WPOOL_IS_LOCK (self), NULL);
  g_return_val_if_fail (self->registered, NULL);

  return wpool_shared_memory_handle ("wpool-lock", wpool_shared_memory_get_id (self->memory));
}
