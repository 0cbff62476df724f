/* wpool-trace.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <pthread.h>
#include <string.h>
#include <sysprof-capture.h>

#include "wpool-enums.h"
#include "wpool-task-private.h"
#include "wpool-trace-private.h"

#define GROUP "libwpool"

/* Set in every forked child. The collector keeps a ring buffer per
 * thread, which a child's thread inherits from its parent's, mapped
 * shared: a child writing there would corrupt the parent's marks, and a
 * new thread of the child would ask the parent's profiler for a ring on
 * the parent's socket. Worker processes emit nothing anyway. */
static gboolean forked;

static void
trace_forked (void)
{
  forked = TRUE;
}

/* At load, so that a child forked before the first mark knows it too. */
__attribute__((constructor)) static void
trace_init (void)
{
  pthread_atfork (NULL, NULL, trace_forked);
}

static inline gboolean
trace_active (void)
{
  return !forked && sysprof_collector_is_active ();
}

gint64
wpool_trace_now (void)
{
  if (!trace_active ())
    return 0;

  return g_get_monotonic_time ();
}

/* A mark from @begin (µs) to now. */
static void
trace_mark (gint64      begin,
            const char *name,
            const char *message)
{
  gint64 now = g_get_monotonic_time ();

  sysprof_collector_mark (begin * 1000, (now - begin) * 1000, GROUP, name, message);
}

/* Each worker's marks on a row of its own, whoever emits them. */
static void
trace_worker_mark (gint64      begin,
                   guint       worker_id,
                   const char *message)
{
  char name[32];

  g_snprintf (name, sizeof name, "worker %u", worker_id);
  trace_mark (begin, name, message);
}

/* "items 3–9", "item 3", or nothing for no items; and the pid, if any. */
static void
append_items (GString *message,
              guint    first,
              guint    last,
              GPid     pid)
{
  if (last == first + 1)
    g_string_append_printf (message, "item %u", first);
  else if (last > first)
    g_string_append_printf (message, "items %u–%u", first, last - 1);

  if (pid > 0)
    g_string_append_printf (message, "%spid %d", last > first ? ", " : "", (int)pid);
}

void
wpool_trace_map (gint64            begin,
                 guint             n_items,
                 WpoolStartMethod  start_method,
                 WpoolTask        *task)
{
  g_autofree char *message = NULL;
  GEnumClass *methods;
  GEnumValue *method;
  const char *symbol;

  if (begin == 0 || !trace_active ())
    return;

  methods = g_type_class_ref (WPOOL_TYPE_START_METHOD);
  method = g_enum_get_value (methods, start_method);
  symbol = task != NULL ? wpool_task_get_symbol (task) : NULL;
  message = g_strdup_printf ("%u item%s, %s, %s%s%s%s",
                             n_items, n_items == 1 ? "" : "s",
                             method != NULL ? method->value_name + strlen ("WPOOL_START_METHOD_") : "?",
                             task != NULL && wpool_task_is_chunk_task (task) ? "chunk task " : "task ",
                             symbol != NULL ? "“" : "", symbol != NULL ? symbol : "function",
                             symbol != NULL ? "”" : "");
  g_type_class_unref (methods);

  trace_mark (begin, "map", message);
}

void
wpool_trace_chunk (gint64 begin,
                   guint  worker_id,
                   GPid   pid,
                   guint  first,
                   guint  last,
                   guint  n_done)
{
  g_autoptr(GString) message = NULL;

  if (begin == 0 || !trace_active ())
    return;

  message = g_string_new (NULL);
  append_items (message, first, last, pid);
  if (n_done < last - first)
    g_string_append_printf (message, "; stopped after %u", n_done);

  trace_worker_mark (begin, worker_id, message->str);
}

void
wpool_trace_worker_start (gint64 begin,
                          guint  worker_id,
                          GPid   pid)
{
  g_autofree char *message = NULL;

  if (begin == 0 || !trace_active ())
    return;

  if (pid > 0)
    message = g_strdup_printf ("start: pid %d, %.3f ms", (int)pid,
                               (g_get_monotonic_time () - begin) / 1000.0);
  else
    message = g_strdup_printf ("start: a thread, %.3f ms", (g_get_monotonic_time () - begin) / 1000.0);

  trace_worker_mark (begin, worker_id, message);
}

void
wpool_trace_worker_restart (guint       worker_id,
                            const char *why)
{
  g_autofree char *message = NULL;
  gint64 now = wpool_trace_now ();

  if (now == 0)
    return;

  message = g_strdup_printf ("restart: %s", why);
  trace_worker_mark (now, worker_id, message);
}

void
wpool_trace_worker_lost (guint       worker_id,
                         GPid        pid,
                         guint       first,
                         guint       last,
                         gboolean    timed_out,
                         const char *why)
{
  g_autoptr(GString) message = NULL;
  gint64 now = wpool_trace_now ();

  if (now == 0)
    return;

  message = g_string_new (timed_out ? "timeout: " : "died: ");
  append_items (message, first, last, pid);
  g_string_append_printf (message, "%s%s", last > first || pid > 0 ? ": " : "", why);

  trace_worker_mark (now, worker_id, message->str);
}
