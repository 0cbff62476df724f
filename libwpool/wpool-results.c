/* wpool-results.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "wpool-error.h"
#include "wpool-results-private.h"
#include "wpool-variant-private.h"

/* Results at least this big are allocated in huge pages where the
 * kernel allows (transparent huge pages, "madvise" or "always"). */
#define HUGE_RESULTS_SIZE ((gsize)4 << 20)
#define HUGE_PAGE_SIZE ((gsize)2 << 20)

/* A buffer for @n results of @size bytes, freed with g_free(). A map's
 * results are often fresh memory (glibc maps big buffers anew), which the
 * workers fill at once: in 4 KiB pages, faulting it in can cost more than
 * filling it (8 MB of doubles: up to 3.3 ns an item of 6.1, bench-peers'
 * chunk task), in 2 MiB pages a few faults in all. */
static gpointer
results_alloc (guint n,
               gsize size)
{
  gsize total;
  gpointer data;

  if (!g_size_checked_mul (&total, MAX (n, 1), size))
    g_error ("%s: overflow allocating %u×%" G_GSIZE_FORMAT " bytes", G_STRLOC, n, size);

  if (total < HUGE_RESULTS_SIZE || posix_memalign (&data, HUGE_PAGE_SIZE, total) != 0)
    return g_malloc (total);

  /* Advice only: without huge pages, the buffer is as any other. */
  madvise (data, total, MADV_HUGEPAGE);

  return data;
}

void
wpool_results_init (WpoolResults       *self,
                    const GVariantType *type,
                    guint               n)
{
  memset (self, 0, sizeof *self);
  self->n = n;

  if (type != NULL)
    self->type = g_variant_type_copy (type);

  if (type != NULL && wpool_variant_type_get_fixed_size (type, &self->fixed_size))
    self->data = results_alloc (n, self->fixed_size);
  else
    self->values = g_new0 (GVariant *, MAX (n, 1));
}

/* Fixed-size results go straight into the caller's @buffer. */
void
wpool_results_use_buffer (WpoolResults *self,
                          gpointer      buffer)
{
  g_assert (self->data != NULL);

  g_free (self->data);
  self->data = buffer;
  self->external = TRUE;
}

void
wpool_results_clear (WpoolResults *self)
{
  if (self->external)
    self->data = NULL;

  if (self->values != NULL)
    for (guint i = 0; i < self->n; i++)
      g_clear_pointer (&self->values[i], g_variant_unref);

  g_clear_pointer (&self->values, g_free);
  g_clear_pointer (&self->data, g_free);
  g_clear_pointer (&self->type, g_variant_type_free);
}

/* @result, of the declared type (checked by the caller), is consumed. */
void
wpool_results_take (WpoolResults *self,
                    guint         index,
                    GVariant     *result)
{
  g_assert (index < self->n);

  if (self->data != NULL)
    {
      /* g_variant_store() relies on the size being computed, which a
       * container in tree form only does on demand (and under a lock,
       * which a basic value, always serialized, need not pay per item). */
      if (g_variant_is_container (result))
        {
          gsize size G_GNUC_UNUSED = g_variant_get_size (result);

          g_assert (size == self->fixed_size);
        }
      g_variant_store (result, self->data + (gsize)index * self->fixed_size);
      g_variant_unref (result);
    }
  else if (self->type == NULL)
    {
      self->values[index] = g_variant_ref_sink (g_variant_new_variant (result));
      g_variant_unref (result);
    }
  else
    {
      self->values[index] = result;
    }
}

/* The results of items @first… as another WpoolResults ended them, for
 * instance in a worker process. The array is checked, as it crossed a
 * process boundary. */
/* A placeholder for an item that failed, under a map that goes on: the
 * type's default value, as GVariant reads data of the wrong size. */
void
wpool_results_skip (WpoolResults *self,
                    guint         index)
{
  g_assert (index < self->n);

  if (self->data != NULL)
    memset (self->data + (gsize)index * self->fixed_size, 0, self->fixed_size);
  else
    wpool_results_take (self, index,
                        g_variant_ref_sink (g_variant_new_from_data (self->type ? self->type : G_VARIANT_TYPE_UNIT,
                                                                     NULL, 0, FALSE, NULL, NULL)));
}

/* The result of item @index as the task returned it, for a map that
 * hands out results one by one: taken out of @self unless it has a fixed
 * size. */
GVariant *
wpool_results_steal (WpoolResults *self,
                     guint         index)
{
  g_autoptr(GVariant) value = NULL;

  g_assert (index < self->n);

  if (self->data != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (self->data + (gsize)index * self->fixed_size, self->fixed_size);

      return g_variant_ref_sink (g_variant_new_from_bytes (self->type, bytes, FALSE));
    }

  value = g_steal_pointer (&self->values[index]);
  g_assert (value != NULL);

  return self->type != NULL ? g_steal_pointer (&value) : g_variant_get_variant (value);
}

gboolean
wpool_results_take_array (WpoolResults  *self,
                          guint          first,
                          GVariant      *array,
                          GError       **error)
{
  g_autoptr(GVariantType) array_type = g_variant_type_new_array (self->type ? self->type : G_VARIANT_TYPE_VARIANT);
  gsize n = g_variant_n_children (array);

  if (!g_variant_is_of_type (array, array_type) || first > self->n || n > self->n - first)
    {
      g_autofree char *expected = g_variant_type_dup_string (array_type);

      g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                   "A worker sent %" G_GSIZE_FORMAT " results of type “%s” for item %u, "
                   "expected at most %u of type “%s”",
                   n, g_variant_get_type_string (array), first, self->n - MIN (first, self->n), expected);
      return FALSE;
    }

  if (self->data != NULL)
    {
      if (g_variant_get_size (array) != n * self->fixed_size)
        {
          g_set_error (error, WPOOL_ERROR, WPOOL_ERROR_FAILED,
                       "A worker sent %" G_GSIZE_FORMAT " bytes of results for %" G_GSIZE_FORMAT " items",
                       g_variant_get_size (array), n);
          return FALSE;
        }

      if (n > 0)
        g_variant_store (array, self->data + (gsize)first * self->fixed_size);
      return TRUE;
    }

  for (gsize i = 0; i < n; i++)
    {
      g_clear_pointer (&self->values[first + i], g_variant_unref);
      self->values[first + i] = g_variant_get_child_value (array, i);
    }

  return TRUE;
}

/* The array of all results, which the results no longer hold. */
GVariant *
wpool_results_end (WpoolResults *self)
{
  const GVariantType *element = self->type ? self->type : G_VARIANT_TYPE_VARIANT;
  GVariant *ret;

  if (self->data != NULL)
    {
      g_autoptr(GVariantType) array_type = g_variant_type_new_array (element);
      guint8 *data = g_steal_pointer (&self->data);

      /* Not trusted: a task may return a value that is not in normal
       * form, and GVariant then checks before it relies on it. */
      return g_variant_ref_sink (g_variant_new_from_data (array_type, data,
                                                          (gsize)self->n * self->fixed_size,
                                                          FALSE, g_free, data));
    }

  ret = g_variant_ref_sink (g_variant_new_array (element, self->values, self->n));
  for (guint i = 0; i < self->n; i++)
    g_clear_pointer (&self->values[i], g_variant_unref);

  return ret;
}
