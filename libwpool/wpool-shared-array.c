/* wpool-shared-array.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>

#include "wpool-enums.h"
#include "wpool-error.h"
#include "wpool-lock-private.h"
#include "wpool-shared-array-private.h"

/**
 * WpoolSharedArray:
 *
 * A typed array of fixed length in shared memory that every worker of a
 * [class@Wpool.Pool] reads and writes, under every start method: the
 * reference's "copy-on-write alternative", `multiprocessing.Array`. Tasks
 * store their results in it instead of returning them; workers writing
 * different indexes need no lock.
 *
 * Put its handle, [method@Wpool.SharedArray.get_handle], in the pool's
 * shared objects; a task gets the array with
 * [method@Wpool.Worker.get_shared_array]. The memory is a memfd: forked
 * workers inherit it and spawned ones are handed it, so there is one array
 * for all, never a copy.
 *
 * Accessors check the index: a bad one is an error, never a write out of
 * bounds. C code may use the elements directly with
 * [method@Wpool.SharedArray.get_data].
 *
 * Since: 0.1
 */

struct _WpoolSharedArray
{
  GObject            parent_instance;

  WpoolSharedMemory *memory;
  WpoolLock         *lock;
};

G_DEFINE_FINAL_TYPE (WpoolSharedArray, wpool_shared_array, G_TYPE_OBJECT)

static gsize
element_size (WpoolSharedArrayType type)
{
  switch (type)
    {
    case WPOOL_SHARED_ARRAY_TYPE_INT32: return sizeof (gint32);
    case WPOOL_SHARED_ARRAY_TYPE_INT64: return sizeof (gint64);
    case WPOOL_SHARED_ARRAY_TYPE_UINT8: return sizeof (guint8);
    case WPOOL_SHARED_ARRAY_TYPE_FLOAT: return sizeof (float);
    case WPOOL_SHARED_ARRAY_TYPE_DOUBLE: return sizeof (double);
    default: return 0;
    }
}

static void
wpool_shared_array_finalize (GObject *object)
{
  WpoolSharedArray *self = (WpoolSharedArray *)object;

  wpool_shared_memory_unregister (wpool_shared_memory_get_id (self->memory), object);
  g_clear_object (&self->lock);
  g_clear_pointer (&self->memory, wpool_shared_memory_unref);

  G_OBJECT_CLASS (wpool_shared_array_parent_class)->finalize (object);
}

static void
wpool_shared_array_class_init (WpoolSharedArrayClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = wpool_shared_array_finalize;
}

static void
wpool_shared_array_init (WpoolSharedArray *self)
{
}

WpoolSharedArray *
wpool_shared_array_new_for_memory (WpoolSharedMemory  *memory,
                                   GError            **error)
{
  WpoolSharedArray *self;

  /* The memory's own copy of its header, checked against the mapping:
   * what a worker writes there later changes none of it. */
  if (wpool_shared_memory_get_kind (memory) != WPOOL_SHARED_MEMORY_ARRAY ||
      wpool_shared_memory_get_element_size (memory) != element_size (wpool_shared_memory_get_element_type (memory)))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Bad shared array");
      return NULL;
    }

  self = g_object_new (WPOOL_TYPE_SHARED_ARRAY, NULL);
  self->memory = wpool_shared_memory_ref (memory);
  if (wpool_shared_memory_get_flags (memory) & WPOOL_SHARED_MEMORY_WITH_LOCK)
    self->lock = wpool_lock_new_for_memory (memory, FALSE);
  wpool_shared_memory_register (wpool_shared_memory_get_id (memory), G_OBJECT (self));

  return self;
}

WpoolSharedMemory *
wpool_shared_array_get_memory (WpoolSharedArray *self)
{
  return self->memory;
}

/**
 * wpool_shared_array_new:
 * @element_type: the type of the elements
 * @length: the number of elements
 * @with_lock: whether the array comes with a lock,
 *   [method@Wpool.SharedArray.get_lock]
 * @error: return location for a [type@GLib.Error]
 *
 * Creates an array of @length elements of @element_type in shared memory,
 * all zero. As in the reference, leave @with_lock unset when every task
 * writes its own indexes: that is much faster.
 *
 * Returns: (transfer full): a new [class@Wpool.SharedArray], or %NULL with
 *   @error set when the memory cannot be had or @element_type is not one
 *
 * Since: 0.1
 */
WpoolSharedArray *
wpool_shared_array_new (WpoolSharedArrayType   element_type,
                        gsize                  length,
                        gboolean               with_lock,
                        GError               **error)
{
  g_autoptr(WpoolSharedMemory) memory = NULL;
  gsize size = element_size (element_type);

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (size == 0)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "%d is not a WpoolSharedArrayType", element_type);
      return NULL;
    }

  if (!(memory = wpool_shared_memory_new (WPOOL_SHARED_MEMORY_ARRAY, element_type, size, length,
                                          with_lock ? WPOOL_SHARED_MEMORY_WITH_LOCK : 0, error)))
    return NULL;

  return wpool_shared_array_new_for_memory (memory, error);
}

/**
 * wpool_shared_array_new_for_fd:
 * @fd: a descriptor of an array's memory, from
 *   [method@Wpool.SharedArray.dup_fd] in this process or another, which the
 *   new array takes: it is closed when the array goes, or at once on failure
 * @error: return location for a [type@GLib.Error]
 *
 * Creates an array over the memory of another, as a worker gets the arrays
 * of its pool's shared objects: the same elements, which both read and
 * write, never a copy. Language bindings use it to send arrays inside
 * objects they serialize themselves: the PyGObject override does, for
 * arrays in Python shared objects under `SPAWN` and `FORKSERVER`.
 *
 * Returns: (transfer full): a new [class@Wpool.SharedArray], or %NULL with
 *   @error set when @fd is not the memory of a shared array
 *
 * Since: 0.2
 */
WpoolSharedArray *
wpool_shared_array_new_for_fd (int      fd,
                               GError **error)
{
  g_autoptr(WpoolSharedMemory) memory = NULL;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!(memory = wpool_shared_memory_new_for_fd (fd, error)))
    return NULL;

  return wpool_shared_array_new_for_memory (memory, error);
}

/**
 * wpool_shared_array_dup_fd:
 * @self: a [class@Wpool.SharedArray]
 * @offset: (out) (optional): return location for where the elements start
 *   in the memory
 * @error: return location for a [type@GLib.Error]
 *
 * Duplicates the descriptor of the array's memory, a memfd of fixed size
 * (sealed): mapped shared (`mmap()` with `MAP_SHARED`), it holds the
 * elements themselves from @offset on, which every worker sees. Before
 * @offset is the array's header, with its lock: leave it alone. Language
 * bindings map it to give the array as a buffer of their own without a copy
 * (the PyGObject override's `SharedArray.get_data()`, which numpy takes), or
 * send it to another process, which makes it an array again with
 * [ctor@Wpool.SharedArray.new_for_fd].
 *
 * Returns: a new descriptor, close-on-exec, which the caller closes; -1
 *   with @error set if the process has no descriptor left
 *
 * Since: 0.2
 */
int
wpool_shared_array_dup_fd (WpoolSharedArray  *self,
                           gsize             *offset,
                           GError           **error)
{
  int fd;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if ((fd = fcntl (wpool_shared_memory_get_fd (self->memory), F_DUPFD_CLOEXEC, 3)) < 0)
    {
      int errsv = errno;

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot duplicate the descriptor of a shared array: %s", g_strerror (errsv));
      return -1;
    }

  if (offset != NULL)
    *offset = WPOOL_SHARED_MEMORY_DATA_OFFSET;

  return fd;
}

/**
 * wpool_shared_array_get_element_type:
 * @self: a [class@Wpool.SharedArray]
 *
 * Gets the type of the elements.
 *
 * Returns: the element type
 *
 * Since: 0.1
 */
WpoolSharedArrayType
wpool_shared_array_get_element_type (WpoolSharedArray *self)
{
  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), 0);

  return wpool_shared_memory_get_element_type (self->memory);
}

/**
 * wpool_shared_array_get_length:
 * @self: a [class@Wpool.SharedArray]
 *
 * Gets the number of elements.
 *
 * Returns: the length
 *
 * Since: 0.1
 */
gsize
wpool_shared_array_get_length (WpoolSharedArray *self)
{
  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), 0);

  return wpool_shared_memory_get_length (self->memory);
}

/**
 * wpool_shared_array_get_lock:
 * @self: a [class@Wpool.SharedArray]
 *
 * Gets the lock the array was created with, which every worker shares.
 *
 * Returns: (transfer none) (nullable): the lock, or %NULL for an array
 *   created without one
 *
 * Since: 0.1
 */
WpoolLock *
wpool_shared_array_get_lock (WpoolSharedArray *self)
{
  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), NULL);

  return self->lock;
}

static gpointer
element_at (WpoolSharedArray  *self,
            gsize              index,
            GError           **error)
{
  gsize length = wpool_shared_memory_get_length (self->memory);

  if (index >= length)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "Index %" G_GSIZE_FORMAT " is out of the shared array (%" G_GSIZE_FORMAT " elements)",
                   index, length);
      return NULL;
    }

  return (guint8 *)wpool_shared_memory_get_data (self->memory) +
         index * wpool_shared_memory_get_element_size (self->memory);
}

/* Element @p of @type, as a double and as an integer: each accessor
 * converts from what the element is. */
static void
load (WpoolSharedArrayType  type,
      gconstpointer         p,
      double               *as_double,
      gint64               *as_int64)
{
  switch (type)
    {
    case WPOOL_SHARED_ARRAY_TYPE_INT32: *as_int64 = *(const gint32 *)p; break;
    case WPOOL_SHARED_ARRAY_TYPE_INT64: *as_int64 = *(const gint64 *)p; break;
    case WPOOL_SHARED_ARRAY_TYPE_UINT8: *as_int64 = *(const guint8 *)p; break;
    case WPOOL_SHARED_ARRAY_TYPE_FLOAT: *as_double = *(const float *)p; *as_int64 = (gint64)*as_double; return;
    case WPOOL_SHARED_ARRAY_TYPE_DOUBLE:
    default: *as_double = *(const double *)p; *as_int64 = (gint64)*as_double; return;
    }

  *as_double = *as_int64;
}

/* Stores @as_double, or @as_int64 when @is_integer, converted to @type. */
static void
store (WpoolSharedArrayType  type,
       gpointer              p,
       double                as_double,
       gint64                as_int64,
       gboolean              is_integer)
{
  switch (type)
    {
    case WPOOL_SHARED_ARRAY_TYPE_INT32: *(gint32 *)p = is_integer ? as_int64 : as_double; break;
    case WPOOL_SHARED_ARRAY_TYPE_INT64: *(gint64 *)p = is_integer ? as_int64 : as_double; break;
    case WPOOL_SHARED_ARRAY_TYPE_UINT8: *(guint8 *)p = is_integer ? as_int64 : as_double; break;
    case WPOOL_SHARED_ARRAY_TYPE_FLOAT: *(float *)p = is_integer ? as_int64 : as_double; break;
    case WPOOL_SHARED_ARRAY_TYPE_DOUBLE:
    default: *(double *)p = is_integer ? as_int64 : as_double; break;
    }
}

/**
 * wpool_shared_array_get_double:
 * @self: a [class@Wpool.SharedArray]
 * @index: the index of an element
 * @error: return location for a [type@GLib.Error]
 *
 * Gets element @index as a double, whatever the element type.
 *
 * Returns: the element, or 0 with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when @index is out of the array
 *
 * Since: 0.1
 */
double
wpool_shared_array_get_double (WpoolSharedArray  *self,
                               gsize              index,
                               GError           **error)
{
  double as_double = 0;
  gint64 as_int64;
  gpointer p;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), 0);

  if ((p = element_at (self, index, error)))
    load (wpool_shared_array_get_element_type (self), p, &as_double, &as_int64);

  return as_double;
}

/**
 * wpool_shared_array_set_double:
 * @self: a [class@Wpool.SharedArray]
 * @index: the index of an element
 * @value: the value to store, converted to the element type
 * @error: return location for a [type@GLib.Error]
 *
 * Sets element @index.
 *
 * Returns: %TRUE, or %FALSE with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when @index is out of the array
 *
 * Since: 0.1
 */
gboolean
wpool_shared_array_set_double (WpoolSharedArray  *self,
                               gsize              index,
                               double             value,
                               GError           **error)
{
  gpointer p;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), FALSE);

  if (!(p = element_at (self, index, error)))
    return FALSE;

  store (wpool_shared_array_get_element_type (self), p, value, 0, FALSE);
  return TRUE;
}

/**
 * wpool_shared_array_get_int64:
 * @self: a [class@Wpool.SharedArray]
 * @index: the index of an element
 * @error: return location for a [type@GLib.Error]
 *
 * Gets element @index as a 64-bit integer, whatever the element type
 * (floats are truncated).
 *
 * Returns: the element, or 0 with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when @index is out of the array
 *
 * Since: 0.1
 */
gint64
wpool_shared_array_get_int64 (WpoolSharedArray  *self,
                              gsize              index,
                              GError           **error)
{
  double as_double;
  gint64 as_int64 = 0;
  gpointer p;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), 0);

  if ((p = element_at (self, index, error)))
    load (wpool_shared_array_get_element_type (self), p, &as_double, &as_int64);

  return as_int64;
}

/**
 * wpool_shared_array_set_int64:
 * @self: a [class@Wpool.SharedArray]
 * @index: the index of an element
 * @value: the value to store, converted to the element type
 * @error: return location for a [type@GLib.Error]
 *
 * Sets element @index; integer elements take it exactly when it fits.
 *
 * Returns: %TRUE, or %FALSE with @error set to
 *   %WPOOL_ERROR_INVALID_ARGUMENT when @index is out of the array
 *
 * Since: 0.1
 */
gboolean
wpool_shared_array_set_int64 (WpoolSharedArray  *self,
                              gsize              index,
                              gint64             value,
                              GError           **error)
{
  gpointer p;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), FALSE);

  if (!(p = element_at (self, index, error)))
    return FALSE;

  store (wpool_shared_array_get_element_type (self), p, 0, value, TRUE);
  return TRUE;
}

/**
 * wpool_shared_array_dup_values:
 * @self: a [class@Wpool.SharedArray]
 *
 * Copies the elements into a [struct@GLib.Variant] array: `ai`, `ax`, `ay`,
 * or `ad` for both float types (GVariant has no single-precision type).
 *
 * Returns: (transfer full): a copy of the elements
 *
 * Since: 0.1
 */
GVariant *
wpool_shared_array_dup_values (WpoolSharedArray *self)
{
  gconstpointer data;
  gsize length;
  GVariant *ret;

  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), NULL);

  data = wpool_shared_memory_get_data (self->memory);
  length = wpool_shared_memory_get_length (self->memory);

  switch (wpool_shared_memory_get_element_type (self->memory))
    {
    case WPOOL_SHARED_ARRAY_TYPE_INT32:
      ret = g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, data, length, sizeof (gint32));
      break;

    case WPOOL_SHARED_ARRAY_TYPE_INT64:
      ret = g_variant_new_fixed_array (G_VARIANT_TYPE_INT64, data, length, sizeof (gint64));
      break;

    case WPOOL_SHARED_ARRAY_TYPE_UINT8:
      ret = g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, length, sizeof (guint8));
      break;

    case WPOOL_SHARED_ARRAY_TYPE_FLOAT:
      {
        g_autofree double *values = g_new (double, MAX (length, 1));

        for (gsize i = 0; i < length; i++)
          values[i] = ((const float *)data)[i];
        ret = g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, values, length, sizeof (double));
      }
      break;

    case WPOOL_SHARED_ARRAY_TYPE_DOUBLE:
    default:
      ret = g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, data, length, sizeof (double));
      break;
    }

  return g_variant_ref_sink (ret);
}

/**
 * wpool_shared_array_get_data: (skip)
 * @self: a [class@Wpool.SharedArray]
 * @length: (out) (optional): return location for the number of elements
 *
 * Gets the elements themselves, in the shared memory, for C code: no copy.
 * Bounds are the caller's to keep. Language bindings map the memory
 * themselves: [method@Wpool.SharedArray.dup_fd].
 *
 * Returns: the first element
 */
gpointer
wpool_shared_array_get_data (WpoolSharedArray *self,
                             gsize            *length)
{
  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), NULL);

  if (length != NULL)
    *length = wpool_shared_memory_get_length (self->memory);

  return wpool_shared_memory_get_data (self->memory);
}

/**
 * wpool_shared_array_get_handle:
 * @self: a [class@Wpool.SharedArray]
 *
 * Gets the value that stands for the array in a pool's shared objects,
 * alone or as a member of their tuple. A task gets the array back with
 * [method@Wpool.Worker.get_shared_array].
 *
 * Returns: (transfer none): a new floating reference to the handle, of
 *   type `(st)`, which the shared objects (or a tuple of them) take
 *
 * Since: 0.1
 */
GVariant *
wpool_shared_array_get_handle (WpoolSharedArray *self)
{
  g_return_val_if_fail (WPOOL_IS_SHARED_ARRAY (self), NULL);

  return wpool_shared_memory_handle ("wpool-shared-array", wpool_shared_memory_get_id (self->memory));
}
