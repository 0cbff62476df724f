# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One map of a Python function over Python items: the task and the
# GVariant items the C pool runs, and the decoding of its results.

import base64
import itertools
import math
import os

from gi.repository import Gio, GLib

from . import Wpool
from .batches import _STOP, _batches, _Failure, _raise_failure, _run_batch, _stop_map, _variant_bytes
from .errors import _as_mpire_error
from .programs import _check_by_reference
from .tasks import new_task

class _Map:
    """One map of a Python function over Python items, in batches: the
    Wpool.Task and the GVariant items the C pool runs, and the decoding of
    its results."""

    def __init__(self, pool, func, iterable, iterable_len, chunk_size):
        method = pool.props.start_method
        self.codec = pool._codec
        if method in (Wpool.StartMethod.SPAWN, Wpool.StartMethod.FORKSERVER):
            # Refused before anything starts.
            _check_by_reference(func, 'map', pool._use_dill)

        self.items = list(iterable) if iterable_len is None else list(itertools.islice(iterable, iterable_len))
        self.pool = pool
        n_jobs = pool.props.n_jobs or os.cpu_count() or 1
        # As MPIRE: about four chunks per worker, unless told.
        self.chunk_size = chunk_size or max(math.ceil(len(self.items) / (n_jobs * 4)), 1)
        self.batches = _batches(self.items, self.chunk_size)
        self.threads = method == Wpool.StartMethod.THREADING
        # The batches worker threads run, by index, as iterators that
        # interrupt() exhausts: a thread cannot be killed.
        self.running = {}
        self.interrupted = False

        if self.threads:
            self.task, self.variant = self._by_reference(func)
        elif method == Wpool.StartMethod.FORK:
            self.task, self.variant = pool._forked_task(func, self.batches)
        else:
            self.task, self.variant = pool._program_task(func, self.batches)

    def _by_reference(self, func):
        """Threads share this process: batches and results by index."""
        pool = self.pool
        self.results = [None] * len(self.batches)

        def run(worker, shared_objects, item):
            index = item.get_uint32()
            batch = self.batches[index]
            self.running[index] = items = iter(batch)
            if self.interrupted:
                items.__setstate__(len(batch))
            try:
                results = _run_batch(func, pool._head().arguments(worker, pool._shared_objects), batch, items)
            finally:
                del self.running[index]
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
        return task, GLib.Variant('au', list(range(len(self.batches))))

    def interrupt(self):
        """Ends the batches worker threads run at their next item; the map
        must be cancelled first, so that it fails rather than ends short.
        Worker processes are killed by the cancellation itself."""
        self.interrupted = True
        for index, items in list(self.running.items()):
            items.__setstate__(len(self.batches[index]))

    def batch_results(self, index, variant):
        """The results of batch @index, whose GVariant result is @variant. A
        failed batch never comes here: it stopped the map (raise_error())."""
        if self.threads:
            return self.results[index]
        return self.codec.loads(_variant_bytes(variant))

    def raise_error(self, error):
        """Raises the GLib.Error that ended the map: as the task's own
        exception if a batch failed, else as it is."""
        found = _STOP.search(error.message) if isinstance(error, GLib.Error) else None
        if found is None:
            raise _as_mpire_error(error)
        if self.threads:
            failures = [batch[-1] for batch in self.results if batch and isinstance(batch[-1], _Failure)]
            failure, where = failures[0], 'a worker thread'
        else:
            failure, where = self.codec.loads(base64.b64decode(found.group(1))), 'a worker process'
        _raise_failure(failure.error, failure.text, where)

    def finish(self, variant):
        """The map's results in item order, or the first item's exception."""
        results = []
        for index in range(variant.n_children()):
            results.extend(self.batch_results(index, variant.get_child_value(index)))
        return results
