# SPDX-License-Identifier: LGPL-2.1-or-later
#
# PyGObject override for Wpool.
#
# 1. Task functions. PyGObject 3.42 cannot set the GError out argument of a
#    callback: it prints a Python exception raised in a task and returns
#    NULL, and the map would fail with a bare "returned NULL". Python task
#    functions are wrapped so that an exception fails its item with a GError
#    that says what was raised.
#
# 2. An MPIRE-like pool. Wpool.Pool(n_jobs=4, shared_objects=anything,
#    start_method='fork') is a context manager whose map(func, iterable)
#    takes plain Python callables and iterables, as MPIRE's WorkerPool does.
#    The items travel in batches, one GVariant per batch rather than per
#    item: pickled for worker processes, by reference for threads. The C
#    API (map(task, GLib.Variant, cancellable), …) keeps working: a Wpool.Task
#    as the first argument selects it.

import asyncio
import base64
import functools
import itertools
import math
import os
import pickle
import re
import threading
import traceback

from gi.repository import Gio, GLib

from ..module import get_introspection_module
from ..overrides import override

Wpool = get_introspection_module('Wpool')

__all__ = []


def _report(worker, error):
    if isinstance(error, GLib.Error):
        worker.report_error(GLib.quark_from_string(error.domain), error.code, error.message)
        return

    summary = ''.join(traceback.format_exception_only(type(error), error)).strip()
    details = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    worker.report_error(Wpool.error_quark(), Wpool.Error.FAILED,
                        '{}\n\n{}'.format(summary, details.rstrip()))


def _wrap_task_func(func):
    if not callable(func):
        raise TypeError('a task function must be callable, not {}'.format(type(func).__name__))

    def task_func(worker, shared_objects, item, *user_data):
        try:
            return func(worker, shared_objects, item, *user_data)
        except BaseException as error:  # noqa: B902 - nothing may escape to PyGObject
            _report(worker, error)
            return None

    return task_func


class Task(Wpool.Task):
    @classmethod
    def new(cls, func, *user_data):
        """Creates a task that runs func(worker, shared_objects, item, *user_data).

        An exception raised by func fails its item: a GLib.Error keeps its
        domain and code, any other exception becomes Wpool.Error.FAILED with
        its type, message and traceback in the message.
        """
        return Wpool.Task.new(_wrap_task_func(func), *user_data)


Task = override(Task)
__all__.append('Task')


_START_METHODS = {
    'fork': Wpool.StartMethod.FORK,
    'forkserver': Wpool.StartMethod.FORKSERVER,
    'spawn': Wpool.StartMethod.SPAWN,
    'threading': Wpool.StartMethod.THREADING,
}

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
    """The arguments of apply(): positional and keyword ones."""

    def __init__(self, args, kwargs):
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})


def _call(func, shared_objects, has_shared_objects, args):
    """Calls func as MPIRE does: a dict item as keyword arguments, a tuple
    as positional ones, anything else as one; shared objects first."""
    head = (shared_objects,) if has_shared_objects else ()
    if isinstance(args, _Args):
        return func(*head, *args.args, **args.kwargs)
    if isinstance(args, dict):
        return func(*head, **args)
    if isinstance(args, tuple):
        return func(*head, *args)
    return func(*head, args)


def _run_batch(func, shared_objects, has_shared_objects, batch):
    """The results of a batch, or up to its first failure, then a _Failure.

    Batches of one kind of item run in a C loop (map(), starmap()), as
    multiprocessing's workers do: a Python loop with _call() per item cost
    as much again as a trivial body."""
    call = functools.partial(func, shared_objects) if has_shared_objects else func
    kinds = set(map(type, batch))
    results = []
    try:
        if not any(issubclass(kind, (tuple, dict, _Args)) for kind in kinds):
            results.extend(map(call, batch))
        elif all(issubclass(kind, tuple) for kind in kinds):
            results.extend(itertools.starmap(call, batch))
        else:
            for args in batch:
                results.append(_call(func, shared_objects, has_shared_objects, args))
    except Exception as error:  # noqa: B902 - the caller re-raises it
        # list.extend() kept the results before the failed item.
        results.append(_failure(error))
    return results


# A batch's failure stops its map: the worker fails the C item with an
# error that carries the failure (pickled, for worker processes), which the
# caller raises as it was.
_STOP = re.compile(r'\[wpool-python-failure:([A-Za-z0-9+/=]*)\]')


def _stop_map(worker, failure, carry):
    """Fails the worker's current C item, which stops the map, with an
    error naming the failure, and carrying it pickled if @carry."""
    payload = ''
    if carry:
        try:
            payload = base64.b64encode(pickle.dumps(failure)).decode('ascii')
        except Exception as error:  # noqa: B902 - an unpicklable exception
            payload = base64.b64encode(pickle.dumps(_Failure(RuntimeError(
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


class _Map:
    """One map of a Python function over Python items, in batches: the
    Wpool.Task and the GVariant items the C pool runs, and the decoding of
    its results."""

    def __init__(self, pool, func, iterable, iterable_len, chunk_size):
        if not callable(func):
            raise TypeError('map() takes a callable, not {}'.format(type(func).__name__))

        method = pool.props.start_method
        if method not in (Wpool.StartMethod.FORK, Wpool.StartMethod.THREADING):
            raise GLib.Error('Python functions run in “fork” and “threading” workers only: a new '
                             'process cannot find them. Under “spawn” and “forkserver”, map a C '
                             'task (Wpool.Task.new_for_symbol()) over GLib.Variant items',
                             'wpool-error-quark', Wpool.Error.NOT_SUPPORTED)

        self.items = list(iterable) if iterable_len is None else list(itertools.islice(iterable, iterable_len))
        self.pool = pool
        n_jobs = pool.props.n_jobs or os.cpu_count() or 1
        # As MPIRE: about four chunks per worker, unless told.
        self.chunk_size = chunk_size or max(math.ceil(len(self.items) / (n_jobs * 4)), 1)
        self.batches = [self.items[i:i + self.chunk_size] for i in range(0, len(self.items), self.chunk_size)]
        self.threads = method == Wpool.StartMethod.THREADING

        if self.threads:
            self.task, self.variant = self._by_reference(func)
        else:
            self.task, self.variant = pool._forked_task(func, self.batches)

    def _by_reference(self, func):
        """Threads share this process: batches and results by index."""
        pool = self.pool
        self.results = [None] * len(self.batches)

        def run(worker, shared_objects, item):
            index = item.get_uint32()
            results = _run_batch(func, pool._shared_objects, pool._has_shared_objects, self.batches[index])
            self.results[index] = results
            if results and isinstance(results[-1], _Failure):
                _stop_map(worker, results[-1], carry=False)
                return None
            return GLib.Variant.new_boolean(True)

        task = Task.new(run)
        task.set_result_type(GLib.VariantType.new('b'))
        return task, GLib.Variant('au', list(range(len(self.batches))))

    def batch_results(self, index, variant):
        """The results of batch @index, whose GVariant result is @variant. A
        failed batch never comes here: it stopped the map (raise_error())."""
        if self.threads:
            return self.results[index]
        return pickle.loads(_variant_bytes(variant))

    def raise_error(self, error):
        """Raises the GLib.Error that ended the map: as the task's own
        exception if a batch failed, else as it is."""
        found = _STOP.search(error.message) if isinstance(error, GLib.Error) else None
        if found is None:
            raise error
        if self.threads:
            failures = [batch[-1] for batch in self.results if batch and isinstance(batch[-1], _Failure)]
            failure, where = failures[0], 'a worker thread'
        else:
            failure, where = pickle.loads(base64.b64decode(found.group(1))), 'a worker process'
        _raise_failure(failure.error, failure.text, where)

    def finish(self, variant):
        """The map's results in item order, or the first item's exception."""
        results = []
        for index in range(variant.n_children()):
            results.extend(self.batch_results(index, variant.get_child_value(index)))
        return results

    def stream(self, stream, cancellable):
        """The results of a Wpool.MapStream of this map's batches, batch by
        batch as the stream gives them. Left early (an exception, a break,
        the generator dropped), the map is cancelled and waited for, so the
        pool is free again."""
        done = False
        try:
            while True:
                try:
                    ok, index, result, item_error = stream.next()
                except GLib.Error as error:
                    self.raise_error(error)
                if not ok:
                    done = True
                    return
                if item_error is not None:
                    self.raise_error(item_error)
                yield from self.batch_results(index, result)
        finally:
            if not done:
                cancellable.cancel()
                try:
                    while stream.next()[0]:
                        pass
                except GLib.Error:
                    pass


class Pool(Wpool.Pool):
    """A pool of workers, with MPIRE's WorkerPool API for Python functions.

    Wpool.Pool(n_jobs=4, shared_objects=dataset, start_method='fork') takes
    MPIRE's start method names as well as Wpool.StartMethod, any Python
    object as shared objects (a GLib.Variant goes to the C pool, for C
    tasks), and the pool's other properties as keywords. Used as a context
    manager, it stops and joins its workers on leaving, or terminates them
    if an exception is leaving.
    """

    # Python shared objects; the task of forked workers, which learn the
    # function of each map from its batches; functions pickle cannot name
    # (lambdas, closures), kept where workers forked from then on find
    # them. Class defaults, for pools made with Wpool.Pool.new().
    _shared_objects = None
    _has_shared_objects = False
    _fork_task = None
    _functions = None

    def __init__(self, n_jobs=None, shared_objects=None, start_method=None, **properties):
        if isinstance(start_method, str):
            try:
                start_method = _START_METHODS[start_method]
            except KeyError:
                raise ValueError('unknown start method {!r}: one of {}'.format(
                    start_method, ', '.join(sorted(_START_METHODS)))) from None
        if n_jobs is not None:
            properties['n_jobs'] = n_jobs
        if start_method is not None:
            properties['start_method'] = start_method
        super().__init__(**properties)

        if shared_objects is not None:
            self.set_shared_objects(shared_objects)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        if exc_type is None:
            self.stop_and_join()
        else:
            self.terminate()
        return False

    def set_shared_objects(self, shared_objects):
        """Sets the objects the workers share: a GLib.Variant for the C pool
        (C tasks, any start method), any Python object for Python functions
        (threads share the very object, forked workers see it copy-on-write).
        Refused with Wpool.Error.WORKERS_RUNNING while the workers run."""
        if isinstance(shared_objects, GLib.Variant) or shared_objects is None:
            self._shared_objects, self._has_shared_objects = None, False
            return super().set_shared_objects(shared_objects)

        if self.props.workers_running:
            raise GLib.Error('Cannot change the shared objects while the workers run: they received '
                             'them when they started. Set “keep-alive” to FALSE (which stops idle '
                             'workers) before changing them', 'wpool-error-quark',
                             Wpool.Error.WORKERS_RUNNING)
        self._shared_objects, self._has_shared_objects = shared_objects, True
        return True

    def _forked_task(self, func, batches):
        """The task of forked workers, and the batches pickled with func,
        or the name under which func is kept for functions pickle cannot
        name (lambdas, closures): those need workers forked after them."""
        try:
            reference = pickle.dumps(func)
        except (pickle.PicklingError, AttributeError, TypeError):
            if self._functions is None:
                self._functions = {}
            key = len(self._functions)
            self._functions[key] = func
            reference = pickle.dumps(key)
            # A new task: running workers restart, and see the function.
            self._fork_task = None

        if self._fork_task is None:
            def run(worker, shared_objects, item):
                function, batch = pickle.loads(_variant_bytes(item))
                function = pickle.loads(function)
                if not callable(function):
                    function = self._functions[function]
                results = _run_batch(function, self._shared_objects, self._has_shared_objects, batch)
                try:
                    if results and isinstance(results[-1], _Failure):
                        failure = results[-1]
                    else:
                        return _bytes_variant(pickle.dumps(results))
                except Exception as error:  # noqa: B902 - an unpicklable result
                    failure = _Failure(RuntimeError('A result cannot be sent back from the worker: {}'.format(error)),
                                       _failure(error).text)
                _stop_map(worker, failure, carry=True)
                return None

            self._fork_task = Task.new(run)
            self._fork_task.set_result_type(_BYTES)

        variant = GLib.Variant.new_array(_BYTES, [_bytes_variant(pickle.dumps((reference, batch)))
                                                  for batch in batches])
        return self._fork_task, variant

    def map(self, func, iterable, *args, iterable_len=None, chunk_size=None, progress_bar=False):
        """map(func, iterable): func applied to every item, as a list in item
        order, as MPIRE's WorkerPool.map(); a dict item is passed as keyword
        arguments, a tuple as positional ones, the shared objects first.
        The first exception raised by func is raised here, the worker's
        traceback in a note. progress_bar=True shows a tqdm bar.

        map(task, items, cancellable): the C API, a Wpool.Task over a
        GLib.Variant array.
        """
        if isinstance(func, Wpool.Task):
            return super().map(func, iterable, *args)

        job = _Map(self, func, iterable, iterable_len, chunk_size)
        if not progress_bar:
            try:
                variant = super().map(job.task, job.variant, None)
            except GLib.Error as error:
                job.raise_error(error)
            return job.finish(variant)

        return self._map_with_progress(job)

    def _map_with_progress(self, job):
        """A map on a private main context, where the pool's progress
        notifications drive a tqdm bar."""
        from tqdm import tqdm

        context = GLib.MainContext.new()
        outcome = {}

        def done(pool, result):
            try:
                outcome['variant'] = Wpool.Pool.map_finish(pool, result)
            except GLib.Error as error:
                outcome['error'] = error

        with tqdm(total=len(job.items)) as bar:
            def progress(pool, pspec):
                bar.update(min(pool.props.n_completed * job.chunk_size, len(job.items)) - bar.n)

            handler = self.connect('notify::n-completed', progress)
            context.push_thread_default()
            try:
                Wpool.Pool.map_async(self, job.task, job.variant, None, done)
                while not outcome:
                    context.iteration(True)
            finally:
                context.pop_thread_default()
                self.disconnect(handler)
            if 'error' in outcome:
                job.raise_error(outcome['error'])
            bar.update(len(job.items) - bar.n)

        return job.finish(outcome['variant'])

    def imap(self, func, iterable, *args, iterable_len=None, chunk_size=None):
        """imap(func, iterable): map() as a generator, results in item order
        as batches complete, as MPIRE's imap().

        imap(task, items, flags, cancellable): the C API, a Wpool.MapStream.
        """
        if isinstance(func, Wpool.Task):
            return super().imap(func, iterable, *args)
        return self._imap(func, iterable, iterable_len, chunk_size, Wpool.MapFlags.NONE)

    def imap_unordered(self, func, iterable, iterable_len=None, chunk_size=None):
        """As imap(), results in the order batches complete."""
        return self._imap(func, iterable, iterable_len, chunk_size, Wpool.MapFlags.UNORDERED)

    def _imap(self, func, iterable, iterable_len, chunk_size, flags):
        job = _Map(self, func, iterable, iterable_len, chunk_size)
        cancellable = Gio.Cancellable.new()
        return job.stream(Wpool.Pool.imap(self, job.task, job.variant, flags, cancellable), cancellable)

    def map_unordered(self, func, iterable, *args, iterable_len=None, chunk_size=None):
        """map_unordered(func, iterable): map()'s results in the order their
        batches complete, as MPIRE's map_unordered().

        map_unordered(task, items, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            return super().map_unordered(func, iterable, *args)
        return list(self.imap_unordered(func, iterable, iterable_len=iterable_len, chunk_size=chunk_size))

    def apply(self, func, args=(), kwargs=None, *rest):
        """apply(func, args=(), kwargs=None): func(*args, **kwargs) on a
        worker (the shared objects first), as MPIRE's apply().

        apply(task, item, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            return super().apply(func, args, kwargs, *rest)
        return self.map(func, [_Args(args, kwargs)])[0]

    async def _apply_async(self, func, args, kwargs):
        return (await self.map_async(func, [_Args(args, kwargs)]))[0]

    def apply_async(self, func, args=(), kwargs=None, *rest):
        """await pool.apply_async(func, args, kwargs): apply() for asyncio.

        apply_async(task, item, cancellable, callback, *user_data): the C API.
        """
        if isinstance(func, Wpool.Task):
            return super().apply_async(func, args, kwargs, *rest)
        return self._apply_async(func, args, kwargs)

    def map_async(self, func, iterable, *args, iterable_len=None, chunk_size=None):
        """await pool.map_async(func, iterable): map() for asyncio code, on
        the running event loop, which is not blocked meanwhile.

        map_async(task, items, cancellable, callback, *user_data): the C
        API, the callback on the thread-default main context.
        """
        if isinstance(func, Wpool.Task):
            return super().map_async(func, iterable, *args)

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = _Map(self, func, iterable, iterable_len, chunk_size)
        context = GLib.MainContext.new()
        done = threading.Event()

        def finished(pool, result):
            # On the thread that iterates the map's context, below.
            try:
                try:
                    variant = Wpool.Pool.map_finish(pool, result)
                except GLib.Error as error:
                    job.raise_error(error)
                outcome = (job.finish(variant), None)
            except BaseException as error:  # noqa: B902 - handed to the awaiting coroutine
                outcome = (None, error)
            done.set()
            loop.call_soon_threadsafe(_settle, future, *outcome)

        # Started here, so that workers fork from the caller's thread; the
        # completion comes on a context of its own, which a thread iterates,
        # as asyncio does not run GLib's.
        context.push_thread_default()
        try:
            Wpool.Pool.map_async(self, job.task, job.variant, None, finished)
        finally:
            context.pop_thread_default()

        def iterate():
            while not done.is_set():
                context.iteration(True)

        threading.Thread(target=iterate, name='wpool-map-async', daemon=True).start()
        return future


def _settle(future, result, error):
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


Pool = override(Pool)
__all__.append('Pool')
