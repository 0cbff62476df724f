# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One map of a Python function over Python items: the task and the
# GVariant items the C pool runs, and the decoding of its results.

import base64
import collections.abc
import itertools
import math
import weakref

from gi.repository import Gio, GLib

from . import Wpool
from . import buffers as _buffers
from .arguments import _NEW_PROGRAM_METHODS
from .batches import (_BYTES, _STOP, _Args, _batch_record, _bytes_variant, _Failure, _raise_failure, _run_batch,
                      _stop_map, _unpacked_results, _variant_bytes)
from .errors import _as_mpire_error
from .insights import _begin_map
from .programs import _check_by_reference
from .tasks import new_task

def _is_ndarray(value):
    kind = type(value)
    return kind.__name__ == 'ndarray' and kind.__module__ == 'numpy'


def item_spares(pool):
    """The pool's item memfds kept for its next batches (buffers.Spares)."""
    spares = pool.__dict__.get('_wpool_item_spares')
    if spares is None:
        spares = pool._wpool_item_spares = _buffers.Spares()
    return spares


def drop_item_spares(pool):
    """The workers stop: the memfds kept for their batches are closed."""
    spares = pool.__dict__.pop('_wpool_item_spares', None)
    if spares is not None:
        spares.close()


def _arguments(item):
    """The arguments an item passes, where they are not the item itself."""
    kind = type(item)
    if kind is tuple or kind is list:
        return item
    if kind is dict:
        return item.values()
    if kind is _Args:
        return item.args + tuple(item.kwargs.values())
    return ()


_CONTAINERS = frozenset((tuple, list, dict, _Args))

# A default batch of a map() whose items hold big buffers holds about this
# many bytes of them: 10^4 arrays of 80 kB in batches of 32 MB mapped 25–30 %
# faster than in the eight of 100 MB that four per worker would make, and
# than in batches of 2 MB (bench/README.md).
_BATCH_BYTES = 32 * 1024 * 1024


def _buffer_bytes(item, kinds):
    """The bytes of the buffers an item is or passes."""
    n_bytes = 0
    for value in itertools.chain((item,), _arguments(item)):
        if type(value) in kinds:
            n_bytes += value.nbytes if hasattr(value, 'nbytes') else len(value) * getattr(value, 'itemsize', 1)
    return n_bytes


def _may_hold_buffers(batch, kinds):
    """Whether an item of @batch, or an argument it passes, is of one of
    @kinds: the test is a pass of C loops over the batch, as it is made
    for every batch of every map."""
    found = set(map(type, batch))
    if not kinds.isdisjoint(found):
        return True
    if found <= {tuple, list}:
        return not kinds.isdisjoint(map(type, itertools.chain.from_iterable(batch)))
    if found.isdisjoint(_CONTAINERS):
        return False
    return not kinds.isdisjoint(map(type, itertools.chain.from_iterable(map(_arguments, batch))))


def _batch_bounds(n_items, batch_size):
    """The [start, end) of the batches of @batch_size (a float is an
    average: batch k ends at item ceil((k + 1) * batch_size), as in
    MPIRE), of @n_items items, or without end for None."""
    start = k = 0
    while n_items is None or start < n_items:
        end = max(math.ceil((k + 1) * batch_size), start + 1)
        if n_items is not None:
            end = min(end, n_items)
        yield start, end
        start, k = end, k + 1


class _Map:
    """One map of a Python function over Python items, in batches: the
    Wpool.Task and the GVariant items the C pool runs, and the decoding of
    its results. Eager, all items are read first (map(), apply()…);
    @lazy, they are read as the workers need them (imap()), through
    next_item(), the source of Wpool.Pool.imap_source(); so are those of
    a @streamed map (a map() read as a stream) with big buffers.

    A numpy array is split into arrays of rows, as MPIRE splits it: the
    function gets one such array per call. A range is never read into a
    list: its batches are ranges (a slice of one is a range, which pickles
    in a few bytes), which the workers iterate."""

    def __init__(self, pool, func, iterable, options, lazy=False, streamed=False):
        method = pool.props.start_method
        self.pool = pool
        self.options = options
        self.codec = pool._codec
        if method in _NEW_PROGRAM_METHODS:
            # Refused before anything starts.
            _check_by_reference(func, options.method, pool._use_dill)

        self.numpy = _is_ndarray(iterable)
        # Only a range: the one sequence whose slices are as cheap to make
        # and to pickle whatever their length (a list's or a tuple's are
        # copies; a numpy array's are views, but one call's argument each).
        sliced = self.numpy or type(iterable) is range
        n_items = options.iterable_len
        if sliced:
            # A range's slice, unlike its len(), has no bound (sys.maxsize).
            self.items = iterable[:n_items]
            n_items = len(self.items)
        elif isinstance(iterable, collections.abc.Sized):
            n_items = len(iterable) if n_items is None else min(n_items, len(iterable))
        self.n_items = n_items
        if not sliced and not lazy:
            self.items = list(iterable if n_items is None else itertools.islice(iterable, n_items))
            self.n_items = len(self.items)
        # A numpy array's chunks are calls' arguments: as many as MPIRE's.
        self.chunk_size = options.batch_size(pool, self.n_items, capped=not self.numpy)
        self.threads = method == Wpool.StartMethod.THREADING
        # Threads: the batches they run, and their results, by index.
        self.batches = {}
        self.results = {}
        # The batches worker threads run, by index, as iterators that
        # interrupt() exhausts: a thread cannot be killed.
        self.running = {}
        self.interrupted = False
        # The items read so far, and an exception the iterable raised.
        self.n_read = 0
        self.iterable_error = None
        # The pool's Python insights this map adds to, None if off.
        self.insights = _begin_map(pool)
        # Where big buffers among the items go (buffers.py), if anywhere.
        self.item_buffers = None

        if self.threads:
            self.task = self._by_reference(func)
            self.encode = self._batch_index
        else:
            if method == Wpool.StartMethod.FORK:
                self.task, reference = pool._forked_task(func)
            else:
                self.task, reference = pool._program_task(func)
            head = pool._head()
            if self.insights is not None:
                head.insights = self.insights.token
            # Big buffers among the items go to memfds that the workers map,
            # not into the pickle ('mpi' ranks may be other machines).
            if method != Wpool.StartMethod.MPI:
                self.item_buffers = _buffers.ItemBuffers(item_spares(pool))
            self.encode = lambda index, batch: self._pickled_batch(reference, head, index, batch)

        if lazy and not sliced:
            self._next_batches = self._read_batches(iter(iterable))
        else:
            self._next_batches = self._slice_batches()
        self.next_index = 0
        self.variant = None
        # A map whose results are read as a stream (@streamed) makes its
        # batches of big buffers as the workers need them, as imap() does:
        # writing them overlaps the workers' reading, and a few memfds at a
        # time hold them.
        if streamed and self.item_buffers is not None and type(self.items) is not range:
            if self.numpy or _may_hold_buffers(self.items, self.item_buffers.kinds):
                lazy = True
                # By default, batches of about _BATCH_BYTES of buffers.
                if not self.numpy and self.items and options.chunk_size is None and options.n_splits is None:
                    per_item = _buffer_bytes(self.items[0], self.item_buffers.kinds)
                    self.chunk_size = min(self.chunk_size, max(_BATCH_BYTES // max(per_item, 1), 1))
            else:
                # None: no batch need look again.
                self.item_buffers = None
        if not lazy:
            self.variant = GLib.Variant.new_array(self.item_type, [
                self.encode(index, batch) for index, batch in enumerate(self._next_batches)])

    @property
    def item_type(self):
        return GLib.VariantType.new('u') if self.threads else _BYTES

    def _slice_batches(self):
        for start, end in _batch_bounds(self.n_items, self.chunk_size):
            # A numpy chunk is one call's argument: a batch of one item.
            yield [self.items[start:end]] if self.numpy else self.items[start:end]
            self.n_read = end

    def _read_batches(self, iterator):
        for start, end in _batch_bounds(self.n_items, self.chunk_size):
            batch = list(itertools.islice(iterator, end - start))
            if not batch:
                return
            self.n_read = start + len(batch)
            yield batch
            if len(batch) < end - start:
                return

    def next_item(self, *user_data):
        """The next batch as the C pool's item, or None at the end: the
        source of a lazy map, on the thread that reads its stream. An
        exception of the iterable's ends the items and is raised by the
        map (PyGObject cannot pass it as the source's GError)."""
        try:
            batch = next(self._next_batches, None)
        except BaseException as error:  # noqa: B902 - the caller's, raised from the map
            self.iterable_error = error
            return None
        if batch is None:
            return None
        index, self.next_index = self.next_index, self.next_index + 1
        return self.encode(index, batch)

    def _pickled_batch(self, reference, head, index, batch):
        buffers = self.item_buffers
        if buffers is not None and type(batch) is not range and _may_hold_buffers(batch, buffers.kinds):
            placed = buffers.n_bytes
            data = buffers.dumps(self.codec, (reference, head, batch), index)
            if self.insights is not None:
                self.insights.add_bytes('items', 'shared_memory', buffers.n_bytes - placed)
        else:
            data = self.codec.dumps((reference, head, batch))
        if self.insights is not None:
            self.insights.add_bytes('items', 'pickled', len(data))
        return _bytes_variant(data)

    def _batch_index(self, index, batch):
        self.batches[index] = batch
        return GLib.Variant.new_uint32(index)

    def _by_reference(self, func):
        """Threads share this process: batches and results by index. The
        task holds the map weakly: a closure held by a C task is out of the
        garbage collector's sight, and the map (which holds the task) and
        its pool would never be freed."""
        job = weakref.ref(self)
        insights = self.insights

        def run(worker, shared_objects, item):
            self = job()
            if self is None:
                worker.report_error(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED, 'Operation was cancelled')
                return None
            pool = self.pool
            index = item.get_uint32()
            batch = self.batches[index]
            self.running[index] = items = iter(batch)
            if self.interrupted:
                items.__setstate__(len(batch))
            stamps = None if insights is None else []
            try:
                results = _run_batch(func, pool._head().arguments(worker, pool._shared_objects), batch, items,
                                     stamps)
            finally:
                del self.running[index]
            if stamps is not None:
                insights.add(_batch_record(worker, insights.token, batch, stamps))
            self.results[index] = results
            if results and isinstance(results[-1], _Failure):
                _stop_map(worker, results[-1], carry=False)
                return None
            if len(results) < len(batch):
                # Cut short by interrupt(): never a short result.
                worker.report_error(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED, 'Operation was cancelled')
                return None
            return GLib.Variant.new_boolean(True)

        task = new_task(run)
        task.set_result_type(GLib.VariantType.new('b'))
        return task

    def interrupt(self):
        """Ends the batches worker threads run at their next item; the map
        must be cancelled first, so that it fails rather than ends short.
        Worker processes are killed by the cancellation itself."""
        self.interrupted = True
        for index, items in list(self.running.items()):
            items.__setstate__(len(self.batches.get(index, ())))

    def batch_results(self, index, variant):
        """The results of batch @index, whose GVariant result is @variant. A
        failed batch never comes here: it stopped the map (raise_error())."""
        if self.threads:
            self.batches.pop(index, None)
            return self.results.pop(index)
        if self.item_buffers is not None:
            self.item_buffers.done(index)
        data = _variant_bytes(variant)
        if self.insights is None:
            return _unpacked_results(self.codec.loads(data))[0]
        results, record = self.codec.loads(data)
        results, how = _unpacked_results(results)
        self.insights.add(record)
        self.insights.add_bytes('results', how, len(data))
        return results

    def close(self):
        """The map ended: the memfds of its items' buffers go back to the
        pool (or are closed, if a batch not done may still read them) now,
        not when the last reference to it goes (an exception kept by the
        caller holds one)."""
        if self.item_buffers is not None:
            self.item_buffers.close()

    def raise_error(self, error):
        """Raises the GLib.Error that ended the map: as the task's own
        exception if a batch failed, else as it is."""
        if self.threads and isinstance(error, GLib.Error) and _STOP.search(error.message) and \
                not _STOP.search(error.message).group(1):
            failures = [batch[-1] for batch in self.results.values() if batch and isinstance(batch[-1], _Failure)]
            _raise_failure(failures[0].error, failures[0].text, 'a worker thread')
        _raise_carried(error, self.codec, self.threads)

    def finish(self, variant):
        """The map's results in item order, or the first item's exception;
        as MPIRE's map(), numpy arrays from numpy chunks concatenated into
        one unless told not to."""
        results = []
        for index in range(variant.n_children()):
            results.extend(self.batch_results(index, variant.get_child_value(index)))
        return self.concatenated(results)

    def concatenated(self, results):
        """map()'s @results: numpy arrays from numpy chunks concatenated
        into one, unless told not to."""
        if self.numpy and self.options.concatenate_numpy_output and results and \
                all(_is_ndarray(result) for result in results):
            import numpy
            return numpy.concatenate(results)
        return results


def _raise_carried(error, codec, threads):
    """Raises @error, or the exception a worker's failure carried back in
    its message (_stop_map()) as it was raised, its traceback in a note."""
    found = _STOP.search(error.message) if isinstance(error, GLib.Error) else None
    if found is None or not found.group(1):
        raise _as_mpire_error(error)
    failure = codec.loads(base64.b64decode(found.group(1)))
    _raise_failure(failure.error, failure.text, 'a worker thread' if threads else 'a worker process')
