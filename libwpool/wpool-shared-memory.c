/* wpool-shared-memory.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wpool-error.h"
#include "wpool-shared-memory-private.h"

#define MAGIC 0x4c4f5057 /* "WPOL" */

#define DATA_OFFSET WPOOL_SHARED_MEMORY_DATA_OFFSET

/* The seals every shared memory has: its size is fixed, so that a worker
 * cannot make the others' accesses past the end of the memfd fault. */
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct _WpoolSharedMemory
{
  gatomicrefcount          ref_count;
  int                      fd;
  WpoolSharedMemoryHeader *header;
  gsize                    size;

  /* What the header said when this process made or mapped the memory,
   * checked against @size: workers can write the header, and a length
   * read from it again could take any accessor out of the mapping. */
  WpoolSharedMemoryKind    kind;
  guint                    element_type;
  gsize                    element_size;
  gsize                    length;
  guint32                  flags;
  guint64                  id;
};

static WpoolSharedMemory *
map_fd (int      fd,
        gsize    size,
        GError **error)
{
  WpoolSharedMemory *self;
  gpointer addr = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

  if (addr == MAP_FAILED)
    {
      int errsv = errno;

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot map shared memory: %s", g_strerror (errsv));
      return NULL;
    }

  self = g_new0 (WpoolSharedMemory, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->fd = fd;
  self->header = addr;
  self->size = size;

  return self;
}

WpoolSharedMemory *
wpool_shared_memory_new (WpoolSharedMemoryKind   kind,
                         guint                   element_type,
                         gsize                   element_size,
                         gsize                   length,
                         guint32                 flags,
                         GError                **error)
{
  static gint next_id;
  WpoolSharedMemory *self;
  pthread_mutexattr_t attr;
  gsize size;
  int fd;

  if (element_size > 0 && length > (G_MAXSIZE - DATA_OFFSET) / element_size)
    {
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_INVALID_ARGUMENT,
                   "A shared array of %" G_GSIZE_FORMAT " elements is too large", length);
      return NULL;
    }
  size = DATA_OFFSET + element_size * length;

  if ((fd = memfd_create ("wpool-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0 ||
      ftruncate (fd, size) < 0 || fcntl (fd, F_ADD_SEALS, SEALS) < 0)
    {
      int errsv = errno;

      if (fd >= 0)
        close (fd);
      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "Cannot make %" G_GSIZE_FORMAT " bytes of shared memory: %s", size, g_strerror (errsv));
      return NULL;
    }

  if (!(self = map_fd (fd, size, error)))
    {
      close (fd);
      return NULL;
    }

  self->kind = kind;
  self->element_type = element_type;
  self->element_size = element_size;
  self->length = length;
  self->flags = flags;
  /* Unique across the processes of a pool: they all come from this one. */
  self->id = ((guint64)getpid () << 32) | (guint32)g_atomic_int_add (&next_id, 1);

  /* Robust: a worker that dies holding it hands it to the next one. */
  pthread_mutexattr_init (&attr);
  pthread_mutexattr_setpshared (&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust (&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init (&self->header->mutex, &attr);
  pthread_mutexattr_destroy (&attr);

  /* For the processes that map it later, which check it. */
  self->header->magic = MAGIC;
  self->header->kind = kind;
  self->header->element_type = element_type;
  self->header->element_size = element_size;
  self->header->flags = flags;
  self->header->length = length;
  self->header->id = self->id;

  return self;
}

/* Memory made by another process of the pool, handed over as @fd, which
 * the new object owns. Its header is read once, into this process's own
 * memory, and refused unless it fits the memfd, whose size is sealed. */
WpoolSharedMemory *
wpool_shared_memory_new_for_fd (int      fd,
                                GError **error)
{
  g_autoptr(WpoolSharedMemory) self = NULL;
  WpoolSharedMemoryHeader header;
  struct stat st;
  int seals;

  if (fstat (fd, &st) < 0 || (gsize)st.st_size < DATA_OFFSET ||
      (seals = fcntl (fd, F_GET_SEALS)) < 0 || (seals & SEALS) != SEALS ||
      !(self = map_fd (fd, st.st_size, error)))
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Bad shared memory");
      close (fd);
      return NULL;
    }

  /* One snapshot: another process may be writing it. */
  memcpy (&header, self->header, sizeof header);

  if (header.magic != MAGIC ||
      (header.kind != WPOOL_SHARED_MEMORY_ARRAY && header.kind != WPOOL_SHARED_MEMORY_LOCK) ||
      (header.kind == WPOOL_SHARED_MEMORY_ARRAY && header.element_size == 0) ||
      (header.element_size > 0 && header.length > (self->size - DATA_OFFSET) / header.element_size))
    {
      g_set_error_literal (error, WPOOL_ERROR, WPOOL_ERROR_FAILED, "Bad shared memory");
      return NULL;
    }

  self->kind = header.kind;
  self->element_type = header.element_type;
  self->element_size = header.element_size;
  self->length = header.length;
  self->flags = header.flags;
  self->id = header.id;

  return g_steal_pointer (&self);
}

WpoolSharedMemory *
wpool_shared_memory_ref (WpoolSharedMemory *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
wpool_shared_memory_unref (WpoolSharedMemory *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  munmap (self->header, self->size);
  close (self->fd);
  g_free (self);
}

WpoolSharedMemoryKind
wpool_shared_memory_get_kind (WpoolSharedMemory *self)
{
  return self->kind;
}

guint
wpool_shared_memory_get_element_type (WpoolSharedMemory *self)
{
  return self->element_type;
}

gsize
wpool_shared_memory_get_element_size (WpoolSharedMemory *self)
{
  return self->element_size;
}

gsize
wpool_shared_memory_get_length (WpoolSharedMemory *self)
{
  return self->length;
}

guint32
wpool_shared_memory_get_flags (WpoolSharedMemory *self)
{
  return self->flags;
}

guint64
wpool_shared_memory_get_id (WpoolSharedMemory *self)
{
  return self->id;
}

gpointer
wpool_shared_memory_get_data (WpoolSharedMemory *self)
{
  return (guint8 *)self->header + DATA_OFFSET;
}

int
wpool_shared_memory_get_fd (WpoolSharedMemory *self)
{
  return self->fd;
}

/* Takes the mutex, waiting for it or not. One whose holder died is taken
 * over and made consistent: what the dead worker was writing may be half
 * done, which is the price of not blocking everyone. */
gboolean
wpool_shared_memory_lock (WpoolSharedMemory *self,
                          gboolean           wait)
{
  int ret = wait ? pthread_mutex_lock (&self->header->mutex)
                 : pthread_mutex_trylock (&self->header->mutex);

  if (ret == EOWNERDEAD)
    {
      pthread_mutex_consistent (&self->header->mutex);
      return TRUE;
    }

  return ret == 0;
}

void
wpool_shared_memory_unlock (WpoolSharedMemory *self)
{
  pthread_mutex_unlock (&self->header->mutex);
}

GVariant *
wpool_shared_memory_handle (const char *kind_name,
                            guint64     id)
{
  return g_variant_new ("(st)", kind_name, id);
}

gboolean
wpool_shared_memory_parse_handle (GVariant    *handle,
                                  const char **kind_name,
                                  guint64     *id)
{
  if (handle == NULL || !g_variant_is_of_type (handle, G_VARIANT_TYPE ("(st)")))
    return FALSE;

  g_variant_get (handle, "(&st)", kind_name, id);
  return g_str_has_prefix (*kind_name, "wpool-");
}

/* The shared arrays and locks of this process, by id: weak entries,
 * removed when the object goes. Two objects over the same memory (one made
 * with wpool_shared_array_new_for_fd() beside the one a worker was sent)
 * are one for handles: the first stays registered. */
static GMutex registry_lock;
static GHashTable *registry;

void
wpool_shared_memory_register (guint64  id,
                              GObject *object)
{
  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  if (!g_hash_table_contains (registry, &id))
    g_hash_table_insert (registry, g_memdup2 (&id, sizeof id), object);
  g_mutex_unlock (&registry_lock);
}

void
wpool_shared_memory_unregister (guint64  id,
                                GObject *object)
{
  g_mutex_lock (&registry_lock);
  if (registry != NULL && g_hash_table_lookup (registry, &id) == object)
    g_hash_table_remove (registry, &id);
  g_mutex_unlock (&registry_lock);
}

/* A new reference to the object with @id, or NULL. */
GObject *
wpool_shared_memory_lookup (guint64 id)
{
  GObject *object = NULL;

  g_mutex_lock (&registry_lock);
  if (registry != NULL && (object = g_hash_table_lookup (registry, &id)) != NULL)
    object = g_object_ref (object);
  g_mutex_unlock (&registry_lock);

  return object;
}

/* A worker process keeps the objects it was sent for its whole life. */
static GPtrArray *kept_objects;

void
wpool_shared_memory_take_object (GObject *object)
{
  if (kept_objects == NULL)
    kept_objects = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (kept_objects, object);
}

/* The members of the shared objects as tasks number them: a tuple's, or
 * the shared objects themselves when they are a lone handle or no tuple. */
GPtrArray *
wpool_shared_objects_members (GVariant *shared_objects)
{
  GPtrArray *members = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  const char *kind_name;
  guint64 id;

  if (shared_objects == NULL)
    return members;

  if (!g_variant_is_of_type (shared_objects, G_VARIANT_TYPE_TUPLE) ||
      wpool_shared_memory_parse_handle (shared_objects, &kind_name, &id))
    {
      g_ptr_array_add (members, g_variant_ref (shared_objects));
      return members;
    }

  for (gsize i = 0; i < g_variant_n_children (shared_objects); i++)
    g_ptr_array_add (members, g_variant_get_child_value (shared_objects, i));

  return members;
}

/* The shared array or lock a member stands for in this process, or NULL. */
GObject *
wpool_shared_objects_resolve (GVariant *member)
{
  const char *kind_name;
  guint64 id;

  if (!wpool_shared_memory_parse_handle (member, &kind_name, &id))
    return NULL;

  return wpool_shared_memory_lookup (id);
}
