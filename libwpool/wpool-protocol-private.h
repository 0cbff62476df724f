/* wpool-protocol-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* What a pool and a worker process say to each other over their socket:
 * frames of a fixed header and a serialized GVariant whose type each kind
 * fixes. */
typedef enum
{
  /* pool → worker, "(uusuv)": first item, number of items, declared
   * result type ("" for none), WpoolChunkFlags, the items as an array */
  WPOOL_FRAME_RUN_CHUNK = 1,
  /* worker → pool, "(uvat)": first item, the results as `a<T>` or `av`,
   * and with WPOOL_CHUNK_TIMED how long each item took, in µs */
  WPOOL_FRAME_RESULTS,
  /* worker → pool, "(usis)": the failed item, the error's domain, code
   * and message. It ends the chunk, unless the chunk keeps going: then
   * the RESULTS follow, the failed items' results the type's default */
  WPOOL_FRAME_ERROR,
  /* pool → spawned worker, first, "(ua(ssss)s)": the worker's id, the
   * module, symbol, and for a chunk task item and result types, of the
   * task, the worker-init and the worker-exit (empty strings for none), the shared objects' type ("" for none) */
  WPOOL_FRAME_SETUP,
  /* pool → spawned worker, after SETUP when there are shared objects:
   * their serialized data, of the type SETUP gave; for a tuple, one frame
   * per member */
  WPOOL_FRAME_SHARED_OBJECTS,
  /* spawned worker → pool, "(s)": "" once it is ready to serve, else why
   * it cannot */
  WPOOL_FRAME_READY,
  /* pool → fork server, "(ua(ssss))" and a socket passed along: fork worker
   * <id> to run the task, worker-init and worker-exit at these modules
   * and symbols, as in SETUP, on that socket. A FORK template, which has
   * them in memory, is sent an empty array */
  WPOOL_FRAME_FORK_WORKER,
  /* fork server → pool, "(i)": the worker's pid, or minus an errno */
  WPOOL_FRAME_STARTED,
  /* pool → fork server, "(i)": wait for this worker, which ended or was
   * told to */
  WPOOL_FRAME_REAP,
  /* fork server → pool, "(i)": its wait status */
  WPOOL_FRAME_REAPED,
  /* pool → spawned worker, after the shared objects, one for each member
   * that is the handle of a shared array or lock, "(t)": its id, and its
   * memfd passed along (none when it no longer exists) */
  WPOOL_FRAME_SHARED_MEMORY,
  /* pool → worker, "(s)": run the worker-exit, as the worker stops, and
   * check its result against this type ("" for none), the one it
   * declares now: it may have changed since the worker started */
  WPOOL_FRAME_EXIT,
  /* worker → pool, "(v)": the worker-exit's result; or an ERROR */
  WPOOL_FRAME_EXIT_RESULT,
  /* pool → worker, "(t)" and a memfd passed along: the worker's transfer
   * area, of that many bytes, replacing any before; no answer */
  WPOOL_FRAME_TRANSFER,
} WpoolFrameKind;

typedef enum
{
  /* Go on past a failed item: ERROR frames, then the RESULTS. */
  WPOOL_CHUNK_KEEP_GOING = 1 << 0,
  /* Time every item, for insights. */
  WPOOL_CHUNK_TIMED      = 1 << 1,
  /* Items have a deadline: say when each starts. Otherwise the worker
   * reads no clock per item. */
  WPOOL_CHUNK_DEADLINE   = 1 << 2,
  /* A chunk task's items are at the start of the transfer area and its
   * results go at wpool_transfer_results_offset(): RUN_CHUNK and RESULTS
   * carry empty arrays. Big chunks cross so with one copy each way (into
   * the area, out of it), not four through the socket. */
  WPOOL_CHUNK_TRANSFER   = 1 << 3,
} WpoolChunkFlags;

#define WPOOL_FRAME_LAST WPOOL_FRAME_TRANSFER

/* Chunks smaller than this go through the socket: one copy fewer is
 * worth little there. */
#define WPOOL_TRANSFER_MIN_SIZE ((gsize)64 << 10)
/* The largest transfer area: larger chunks go through the socket. */
#define WPOOL_TRANSFER_MAX_SIZE ((gsize)1 << 30)

/* Where the results of a chunk whose items take @items_size bytes start
 * in the transfer area: cache-line aligned, and G_MAXSIZE on overflow. */
static inline gsize
wpool_transfer_results_offset (gsize items_size)
{
  return items_size > G_MAXSIZE - 63 ? G_MAXSIZE : (items_size + 63) & ~(gsize)63;
}

/* Frames larger than this are refused, whoever sends them. */
#define WPOOL_FRAME_MAX_SIZE ((guint64)1 << 32)

gboolean  wpool_frame_write      (int               fd,
                                  WpoolFrameKind    kind,
                                  GVariant         *payload,
                                  GError          **error);
gboolean  wpool_frame_write_data (int               fd,
                                  WpoolFrameKind    kind,
                                  gconstpointer     data,
                                  guint64           size,
                                  GError          **error);
gboolean  wpool_frame_write_fd   (int               fd,
                                  WpoolFrameKind    kind,
                                  GVariant         *payload,
                                  int               passed_fd,
                                  GError          **error);
gboolean  wpool_frame_check_header (guint32          kind,
                                    guint64          size,
                                    GError         **error);
GVariant *wpool_frame_decode     (WpoolFrameKind    kind,
                                  GBytes           *bytes,
                                  GError          **error);
GVariant *wpool_frame_read       (int               fd,
                                  WpoolFrameKind   *kind,
                                  GError          **error);
GBytes   *wpool_frame_read_data  (int               fd,
                                  WpoolFrameKind   *kind,
                                  GError          **error);
GVariant *wpool_frame_read_fd    (int               fd,
                                  WpoolFrameKind   *kind,
                                  int              *passed_fd,
                                  GError          **error);
/* Where a worker's frames go and come from: its socket, with
 * descriptors passed along (wpool_frame_port_init_fd()), or another
 * transport, such as MPI messages to the pool's rank. read() returns
 * %NULL without @error set once the pool ended the conversation. */
typedef struct _WpoolFramePort WpoolFramePort;

struct _WpoolFramePort
{
  gboolean  (*write) (WpoolFramePort   *port,
                      WpoolFrameKind    kind,
                      GVariant         *payload,
                      GError          **error);
  GVariant *(*read)  (WpoolFramePort   *port,
                      WpoolFrameKind   *kind,
                      int              *passed_fd,
                      GError          **error);
  int fd;
};

void      wpool_frame_port_init_fd (WpoolFramePort   *port,
                                    int               fd);
gboolean  wpool_frame_port_write   (WpoolFramePort   *port,
                                    WpoolFrameKind    kind,
                                    GVariant         *payload,
                                    GError          **error);
GVariant *wpool_frame_port_read    (WpoolFramePort   *port,
                                    WpoolFrameKind   *kind,
                                    int              *passed_fd,
                                    GError          **error);

void      wpool_frame_watch_begin (GCancellable     *cancellable);
void      wpool_frame_watch_arm   (gint64            timeout);
void      wpool_frame_watch_disarm (void);
void      wpool_frame_watch_end   (void);
GCancellable *wpool_frame_watch_get_cancellable (void);
GVariant *wpool_frame_call       (int               fd,
                                  WpoolFrameKind    kind,
                                  GVariant         *payload,
                                  int               passed_fd,
                                  WpoolFrameKind    reply_kind,
                                  GError          **error);

/* The message of a watched start that ran out of time, which callers
 * that know more (a fork server that did not answer) prefix. */
#define WPOOL_FRAME_START_TIMED_OUT "The worker did not start in time"

G_END_DECLS
