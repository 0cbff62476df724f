/* wpool-results-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The results of a run of items, in input order, as they become an array:
 * `a<T>` for a declared type T, else `av`. With a fixed-size T the values
 * are serialized side by side as they come, which already is the array;
 * otherwise they are kept until the end. Used by a map's job for all its
 * items, and by a worker process for one chunk. Each index is set by one
 * thread at most. */
typedef struct
{
  GVariantType  *type;
  guint          n;
  gsize          fixed_size;
  guint8        *data;
  GVariant     **values;
  /* Whether @data is the caller's, written in place and never freed. */
  gboolean       external;
} WpoolResults;

void      wpool_results_init      (WpoolResults        *self,
                                   const GVariantType  *type,
                                   guint                n);
void      wpool_results_use_buffer (WpoolResults       *self,
                                   gpointer            buffer);
void      wpool_results_clear     (WpoolResults        *self);
void      wpool_results_take      (WpoolResults        *self,
                                   guint                index,
                                   GVariant            *result);
void      wpool_results_skip      (WpoolResults        *self,
                                   guint                index);
GVariant *wpool_results_steal     (WpoolResults        *self,
                                   guint                index);
gboolean  wpool_results_take_array (WpoolResults       *self,
                                   guint                first,
                                   GVariant            *array,
                                   GError             **error);
GVariant *wpool_results_end       (WpoolResults        *self);

G_END_DECLS
