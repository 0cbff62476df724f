# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What a worker runs: batches of items, called as MPIRE calls a function
# (worker id, shared objects, worker state, then the item's arguments),
# and a failure that stops the map and travels back to the caller.

import array
import base64
import collections.abc
import functools
import heapq
import itertools
import operator
import pickle
import re
import struct
import sys
import time
import traceback

from gi.repository import GLib

from . import Wpool
from . import buffers as _buffers
from .tasks import new_task

_BYTES = GLib.VariantType.new('ay')


class _Failure:
    """The failed item of a batch, as a worker sends it back: the exception
    and its traceback as text."""

    def __init__(self, error, text):
        self.error = error
        self.text = text


def _failure(error):
    return _Failure(error, ''.join(traceback.format_exception(error)).rstrip())


class _Args:
    """The arguments of apply(): positional and keyword ones. As MPIRE's,
    a dict with no kwargs is the keyword arguments, and anything but an
    iterable (a string, bytes, a numpy array) one argument."""

    def __init__(self, args, kwargs, method='apply'):
        if kwargs is not None and not isinstance(kwargs, collections.abc.Mapping):
            raise TypeError('{}(): kwargs must be a dict, not {}'.format(method, type(kwargs).__name__))
        if isinstance(args, dict) and kwargs is None:
            args, kwargs = (), args
        elif not _unpacks(type(args)):
            args = (args,)
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})


def _unpacks(kind):
    """Whether an item of @kind is unpacked into arguments, as MPIRE's
    are: an iterable but a string, bytes or a numpy array."""
    return (issubclass(kind, collections.abc.Iterable) and not issubclass(kind, (str, bytes, bytearray)) and
            not (kind.__name__ == 'ndarray' and kind.__module__ == 'numpy'))


def _call(call, args):
    """Calls @call (the function, with its leading arguments) as MPIRE
    does: apply()'s arguments as given, a dict item as keyword arguments,
    any other iterable but a string, bytes or numpy array as positional
    ones, anything else as one."""
    if isinstance(args, _Args):
        return call(*args.args, **args.kwargs)
    if isinstance(args, dict):
        return call(**args)
    if _unpacks(type(args)):
        return call(*args)
    return call(args)


class _Head:
    """What a map's function takes before an item's own arguments, as in
    MPIRE: the worker's id, the shared objects, the worker's state (a dict
    that lives as long as the worker), each if the pool says so. With
    insights on, @insights is the token of the pool's insights (see
    _batch_record()); never set otherwise, which pickles nothing more."""

    insights = None

    def __init__(self, pass_worker_id, has_shared_objects, use_worker_state):
        self.pass_worker_id = pass_worker_id
        self.has_shared_objects = has_shared_objects
        self.use_worker_state = use_worker_state

    def arguments(self, worker, shared_objects):
        head = []
        if self.pass_worker_id:
            head.append(worker.get_id())
        if self.has_shared_objects:
            head.append(shared_objects)
        if self.use_worker_state:
            head.append(_worker_state(worker))
        return head


def _worker_state(worker):
    """The state of @worker: kept on the Wpool.Worker, which lives as long
    as the worker (a thread, or a process), and which PyGObject keeps
    while it has Python attributes."""
    state = getattr(worker, '_wpool_state', None)
    if state is None:
        state = worker._wpool_state = {}
    return state


def _stamped(items, stamps):
    """@items, appending to @stamps the clock as each is taken and once
    more at their end: as a map() takes its next item when the last one
    returned, the stamps bound each completed item's call, and timing
    costs a clock reading per item, the calls staying in a C loop."""
    clock = time.perf_counter
    for args in items:
        stamps.append(clock())
        yield args
    stamps.append(clock())


def _run_batch(func, head, batch, items=None, stamps=None):
    """The results of a batch, or up to its first failure, then a _Failure.
    @head are the arguments before each item's (_Head.arguments()). @items
    iterates @batch (by default from its start): a canceller may exhaust
    it to end the batch early. A list as @stamps gets the clock readings
    around each item (_stamped(), for insights); None times nothing, and
    costs nothing.

    Batches of one kind of item run in a C loop (map(), starmap()), as
    multiprocessing's workers do: a Python loop with _call() per item cost
    as much again as a trivial body. A range's items are all int, which
    is not worth iterating it to learn."""
    call = functools.partial(func, *head) if head else func
    items = iter(batch) if items is None else items
    if stamps is not None:
        items = _stamped(items, stamps)
    kinds = (int,) if type(batch) is range else set(map(type, batch))
    results = []
    try:
        if not any(issubclass(kind, (dict, _Args)) or _unpacks(kind) for kind in kinds):
            results.extend(map(call, items))
        elif all(issubclass(kind, (tuple, list)) for kind in kinds):
            results.extend(itertools.starmap(call, items))
        else:
            for args in items:
                results.append(_call(call, args))
    except BaseException as error:  # noqa: B902 - SystemExit and KeyboardInterrupt too, as MPIRE's
        # list.extend() kept the results before the failed item.
        results.append(_failure(error))
    return results


def _args_text(args):
    """An item's arguments as MPIRE's insights show them: "Arg 0: 1 | Arg
    key: 'value'", as _call() passes them."""
    if isinstance(args, _Args):
        positional, keywords = args.args, args.kwargs
    elif isinstance(args, dict):
        positional, keywords = (), args
    elif _unpacks(type(args)):
        positional, keywords = args, {}
    else:
        positional, keywords = (args,), {}
    try:
        return ' | '.join(['Arg {}: {!r}'.format(i, value) for i, value in enumerate(positional)] +
                          ['Arg {}: {!r}'.format(key, value) for key, value in keywords.items()])
    except Exception as error:  # noqa: B902 - a broken __repr__ must not fail the batch
        return '<arguments without a repr: {}: {}>'.format(type(error).__name__, error)


# How many of the slowest items insights keep, as MPIRE.
_N_SLOWEST = 5


def _batch_record(worker, token, batch, stamps):
    """What a batch timed by @stamps (_run_batch()) tells the pool's
    insights (_Insights.add()): the worker's id, its items completed and
    their total seconds, and the (seconds, arguments) of those among the
    worker's 5 slowest so far.

    The worker keeps its 5 slowest for the insights of @token, so that an
    item's arguments are formatted only if it is among them (as MPIRE's
    workers do): one that is not can never be among the pool's 5."""
    kept = getattr(worker, '_wpool_slowest', None)
    if kept is None or kept[0] != token:
        kept = worker._wpool_slowest = (token, [])
    slowest = kept[1]
    # A failed item has its start stamp only, an interrupted batch's
    # last item none at all.
    durations = list(map(operator.sub, stamps[1:], stamps))
    new = []
    for index in heapq.nlargest(_N_SLOWEST, range(len(durations)), key=durations.__getitem__):
        duration = durations[index]
        if len(slowest) == _N_SLOWEST and duration <= slowest[0]:
            break
        if len(slowest) == _N_SLOWEST:
            heapq.heapreplace(slowest, duration)
        else:
            heapq.heappush(slowest, duration)
        new.append((duration, _args_text(batch[index])))
    return worker.get_id(), len(durations), stamps[-1] - stamps[0] if stamps else 0.0, new


# A batch's failure stops its map: the worker fails the C item with an
# error that carries the failure (pickled, for worker processes), which the
# caller raises as it was.
_STOP = re.compile(r'\[wpool-python-failure:([A-Za-z0-9+/=]*)\]')


def _stop_map(worker, failure, carry, codec=pickle):
    """Fails the worker's current C item, which stops the map, with an
    error naming the failure, and carrying it pickled by @codec if @carry."""
    payload = ''
    if carry:
        try:
            payload = base64.b64encode(codec.dumps(failure)).decode('ascii')
        except Exception as error:  # noqa: B902 - an unpicklable exception
            payload = base64.b64encode(codec.dumps(_Failure(RuntimeError(
                'An exception cannot be sent back from the worker: {}'.format(error)), failure.text))).decode('ascii')
    message = '{}: {} [wpool-python-failure:{}]'.format(type(failure.error).__name__, failure.error, payload)
    worker.report_error(Wpool.error_quark(), Wpool.Error.FAILED, message)


def _raise_failure(error, text, where):
    """Raises a worker's exception, its traceback in a note as MPIRE shows it."""
    error.add_note('\nRaised in {}:\n{}'.format(where, text))
    raise error


def _bytes_variant(data):
    return GLib.Variant.new_from_bytes(_BYTES, GLib.Bytes.new(data), True)


def _variant_bytes(variant):
    return variant.get_data_as_bytes().get_data()


# Results that are all float travel as machine values, little-endian (an
# 'mpi' pool's ranks may be other machines), in a (type code, bytes) tuple
# where other results are a list: the caller turns 8 bytes a number into
# floats in a third of the time it unpickles them (issue 20). An exact
# type, never a subclass: a numpy.float64 stays one. Ints stay pickled,
# though 'q' would carry those within int64 (bools excluded, being
# another type): the caller makes the same int objects either way, and a
# type check and struct.pack() cost the workers more than pickling small
# ints does; measured, 10^6 ints came back no faster beyond 2^31 and 7 %
# slower below (bench/README.md).
_PACKED = {float: 'd'}


def _packed_results(results):
    """@results as they are sent back: a (type code, bytes) tuple of
    machine values if they are all of a type of _PACKED, else the list
    itself. Results of another type than the first's cost one look."""
    code = _PACKED.get(type(results[0])) if results else None
    if code is None or len(set(map(type, results))) != 1:
        return results
    return code, struct.pack('<{}{}'.format(len(results), code), *results)


def _unpacked_results(results):
    """A batch's results as _packed_results() sent them, as a list, and
    how they came: 'raw' (machine values) or 'pickled' (objects)."""
    if type(results) is list:
        return results, 'pickled'
    code, data = results
    values = array.array(code)
    values.frombytes(data)
    if sys.byteorder != 'little':
        values.byteswap()
    return values.tolist(), 'raw'


def _run_pickled_batch(worker, item, codec, shared_objects, functions=None):
    """_run_loaded_batch(), and then its buffers released (buffers.release()):
    its frame, which holds the batch, is gone by then."""
    mappings = {}
    try:
        return _run_loaded_batch(worker, item, codec, shared_objects, functions, mappings)
    finally:
        _buffers.release(mappings)


def _run_loaded_batch(worker, item, codec, shared_objects, functions, mappings):
    """Runs a batch of worker processes: @item is an `ay` of the pickled
    (pickled function, _Head, batch), the result the pickled results as
    _packed_results() sends them (with insights on, the pickled (results,
    _batch_record())); a failure stops
    the map (_stop_map()). @codec is pickle or dill;
    @functions the functions forked workers find by key (those pickle
    cannot name); @mappings gets the memfds its buffers were mapped from."""
    try:
        reference, head, batch = _buffers.loads_batch(codec, _variant_bytes(item), mappings)
        function = codec.loads(reference)
        if functions is not None and not callable(function):
            function = functions[function]
    except BaseException as error:  # noqa: B902 - e.g. a function the worker cannot find
        _stop_map(worker, _failure(error), carry=True, codec=codec)
        return None

    stamps = None if head.insights is None else []
    results = _run_batch(function, head.arguments(worker, shared_objects), batch, stamps=stamps)
    try:
        if results and isinstance(results[-1], _Failure):
            failure = results[-1]
        elif stamps is None:
            return _bytes_variant(codec.dumps(_packed_results(results)))
        else:
            return _bytes_variant(codec.dumps((_packed_results(results),
                                               _batch_record(worker, head.insights, batch, stamps))))
    except Exception as error:  # noqa: B902 - an unpicklable result
        failure = _Failure(RuntimeError('A result cannot be sent back from the worker: {}'.format(error)),
                           _failure(error).text)
    _stop_map(worker, failure, carry=True, codec=codec)
    return None


def _codec(name):
    """What pickles by @name: 'pickle' or 'dill' (imported when asked for)."""
    if name == 'dill':
        import dill
        return dill
    return pickle


def _batch_task(run):
    task = new_task(run)
    task.set_result_type(_BYTES)
    return task
