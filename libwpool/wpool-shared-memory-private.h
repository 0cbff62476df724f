/* wpool-shared-memory-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>
#include <pthread.h>

G_BEGIN_DECLS

/* Memory that every worker of every start method shares: a memfd mapped
 * MAP_SHARED, inherited by forked workers and passed to spawned ones. Its
 * header says what it holds; a robust process-shared mutex comes first,
 * so that a worker dying with it held does not block the others.
 *
 * Any worker can write the header: each process reads it once, when it
 * makes or maps the memory, checks it against the mapping, and keeps its
 * own copy, which the accessors below return. Only the mutex is used in
 * place. The memfd is sealed against shrinking, which would make the
 * other processes' accesses fault. */
typedef struct _WpoolSharedMemory WpoolSharedMemory;

typedef enum
{
  WPOOL_SHARED_MEMORY_ARRAY = 1,
  WPOOL_SHARED_MEMORY_LOCK,
} WpoolSharedMemoryKind;

typedef struct
{
  pthread_mutex_t mutex;
  guint32         magic;
  guint32         kind;
  guint32         element_type;
  guint32         element_size;
  guint32         flags;
  guint32         reserved;
  guint64         length;
  guint64         id;
} WpoolSharedMemoryHeader;

/* An array whose users take its mutex, as its lock. */
#define WPOOL_SHARED_MEMORY_WITH_LOCK (1u << 0)

/* Where the data starts: past the header, aligned for any element. */
#define WPOOL_SHARED_MEMORY_DATA_OFFSET ((sizeof (WpoolSharedMemoryHeader) + 15) & ~(gsize)15)

WpoolSharedMemory *wpool_shared_memory_new       (WpoolSharedMemoryKind   kind,
                                                  guint                   element_type,
                                                  gsize                   element_size,
                                                  gsize                   length,
                                                  guint32                 flags,
                                                  GError                **error);
WpoolSharedMemory *wpool_shared_memory_new_for_fd (int                    fd,
                                                  GError                **error);
WpoolSharedMemory *wpool_shared_memory_ref       (WpoolSharedMemory      *self);
void               wpool_shared_memory_unref     (WpoolSharedMemory      *self);
WpoolSharedMemoryKind wpool_shared_memory_get_kind (WpoolSharedMemory      *self);
guint              wpool_shared_memory_get_element_type (WpoolSharedMemory *self);
gsize              wpool_shared_memory_get_element_size (WpoolSharedMemory *self);
gsize              wpool_shared_memory_get_length (WpoolSharedMemory     *self);
guint32            wpool_shared_memory_get_flags (WpoolSharedMemory      *self);
guint64            wpool_shared_memory_get_id    (WpoolSharedMemory      *self);
gpointer           wpool_shared_memory_get_data  (WpoolSharedMemory      *self);
int                wpool_shared_memory_get_fd    (WpoolSharedMemory      *self);
gboolean           wpool_shared_memory_lock      (WpoolSharedMemory      *self,
                                                  gboolean                wait);
void               wpool_shared_memory_unlock    (WpoolSharedMemory      *self);

/* Shared arrays and locks travel in the shared objects as handles,
 * "(st)": their kind's name and an id this process resolves. */
GVariant          *wpool_shared_memory_handle    (const char             *kind_name,
                                                  guint64                 id);
gboolean           wpool_shared_memory_parse_handle (GVariant            *handle,
                                                  const char            **kind_name,
                                                  guint64                *id);
void               wpool_shared_memory_register  (guint64                 id,
                                                  GObject                *object);
void               wpool_shared_memory_unregister (guint64                id,
                                                  GObject                *object);
GObject           *wpool_shared_memory_lookup    (guint64                 id);
void               wpool_shared_memory_take_object (GObject              *object);
GPtrArray         *wpool_shared_objects_members  (GVariant               *shared_objects);
GObject           *wpool_shared_objects_resolve  (GVariant               *member);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WpoolSharedMemory, wpool_shared_memory_unref)

G_END_DECLS
