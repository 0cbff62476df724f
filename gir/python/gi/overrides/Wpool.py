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
#
#    Under “spawn” and “forkserver”, the workers are Python processes of
#    their own (worker programs, Wpool.Task.new_for_program()), which
#    import the caller's main script as multiprocessing's spawn does and
#    find functions by reference, or get them by value with dill.
#
# 3. Waiting. A Python map runs through the C API's async calls, completed
#    on a main context of its own that the caller iterates (_Running), so
#    that Ctrl-C stops the map, and leaving a `with` block stops the maps
#    left unfinished. Every argument is checked first, as MPIRE does.

import base64
import collections.abc
import errno
import functools
import importlib
import itertools
import math
import os
import pickle
import re
import signal
import sys
import threading
import traceback
import types
import weakref

from gi.repository import Gio, GLib, GObject

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


# libwpool forks FORK and FORKSERVER workers with os.fork() (_fork()),
# whose at-fork hooks reseed `random` in each worker. multiprocessing runs
# its own after-fork hooks in the processes it starts, not at os.fork():
# a manager's proxy the caller used would share its connection with every
# worker. At a worker's first Python task, they run, as in multiprocessing's
# forked processes.
_forked_pid = os.getpid()


def _after_fork():
    global _forked_pid
    if os.getpid() != _forked_pid:
        _forked_pid = os.getpid()
        if 'multiprocessing.util' in sys.modules:
            sys.modules['multiprocessing.util']._run_after_forkers()


def _fork():
    """Forks for libwpool (Wpool.set_fork_func()) as os.fork() does: with
    the GIL held across the fork, which another Python thread could hold
    at the moment a C fork() happens (the child would inherit it held by a
    thread it does not have), and the interpreter repaired in the child
    (its other threads forgotten, `random` reseeded, os.register_at_fork()
    hooks run)."""
    try:
        return os.fork()
    except BaseException as error:  # noqa: B902 - a negative errno, never 0: that is the child
        return -(getattr(error, 'errno', None) or errno.EAGAIN)


Wpool.set_fork_func(_fork)


def _wrap_task_func(func):
    if not callable(func):
        raise TypeError('a task function must be callable, not {}'.format(type(func).__name__))

    def task_func(worker, shared_objects, item, *user_data):
        _after_fork()
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

    @classmethod
    def new_for_python(cls, func):
        """Creates a task that runs func(worker, shared_objects, item), as
        Task.new() does, in Python worker processes of a SPAWN or
        FORKSERVER pool, which find func by its module and name (so it must
        be defined at module level, and a script's functions need its
        `if __name__ == '__main__':` guard). With a pool's other Python
        tasks, it can be the pool's worker-init or worker-exit."""
        if not isinstance(func, types.FunctionType):
            raise TypeError('Task.new_for_python() takes a function defined at module level, not {}'.format(
                type(func).__name__))
        _check_by_reference(func, 'Task.new_for_python()')
        return Wpool.Task.new_for_program(_program_argv(), func.__module__, func.__qualname__)


Task = override(Task)
__all__.append('Task')


_START_METHODS = {
    'fork': Wpool.StartMethod.FORK,
    'forkserver': Wpool.StartMethod.FORKSERVER,
    'spawn': Wpool.StartMethod.SPAWN,
    'threading': Wpool.StartMethod.THREADING,
}

_BYTES = GLib.VariantType.new('ay')


# Arguments are checked as MPIRE's check_number() does, a little stricter:
# a bool is no count, and a bad value is refused, never clamped or ignored
# (GObject only warns about an out-of-range property and keeps its default).

def _check_number(name, value, minimum, maximum=None, floats=False):
    kinds = (int, float) if floats else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError('{} must be {}, not {}'.format(
            name, 'a number' if floats else 'an int', type(value).__name__))
    if not minimum <= value <= (math.inf if maximum is None else maximum) or math.isinf(value):
        raise ValueError('{} must be {}, not {!r}'.format(
            name, 'from {} to {}'.format(minimum, maximum) if maximum is not None else '>= {}'.format(minimum),
            value))
    return value


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError('{} must be a bool, not {}'.format(name, type(value).__name__))
    return value


def _check_start_method(start_method):
    if isinstance(start_method, str):
        try:
            return _START_METHODS[start_method]
        except KeyError:
            raise ValueError('unknown start method {!r}: one of {}'.format(
                start_method, ', '.join(sorted(_START_METHODS)))) from None
    if not isinstance(start_method, Wpool.StartMethod):
        raise TypeError('start_method must be one of {} or a Wpool.StartMethod, not {}'.format(
            ', '.join(sorted(_START_METHODS)), type(start_method).__name__))
    return start_method


def _check_property(name, value):
    """Checks a Pool() keyword naming a pool property against its GParamSpec."""
    pspec = Wpool.Pool.find_property(name.replace('_', '-'))
    if pspec is None or not pspec.flags & GObject.ParamFlags.WRITABLE:
        raise TypeError('Pool() got an unexpected keyword argument {!r}'.format(name))
    if pspec.value_type == GObject.TYPE_UINT:
        _check_number(name, value, pspec.minimum, pspec.maximum)
    elif pspec.value_type == GObject.TYPE_DOUBLE:
        # Seconds; 0 is no limit (as None in MPIRE).
        _check_number(name, value, pspec.minimum, pspec.maximum, floats=True)
    elif pspec.value_type == GObject.TYPE_BOOLEAN:
        _check_bool(name, value)
    elif pspec.value_type.is_a(GObject.TYPE_OBJECT) and value is not None and \
            not isinstance(value, pspec.value_type.pytype):
        raise TypeError('{} must be a {}, not {}'.format(name, pspec.value_type.name, type(value).__name__))


def _cpu_ids_variant(cpu_ids, n_jobs):
    """MPIRE's cpu_ids, one CPU or list of CPUs for all workers or for
    each, as the pool's `aau`."""
    if isinstance(cpu_ids, GLib.Variant):
        if cpu_ids.get_type_string() != 'aau':
            raise TypeError("cpu_ids must be a list or a GLib.Variant of type 'aau', not '{}'".format(
                cpu_ids.get_type_string()))
        cpu_ids = cpu_ids.unpack()
    if not isinstance(cpu_ids, (list, tuple)):
        raise TypeError('cpu_ids must be a list of CPU IDs or of lists of them, not {}'.format(
            type(cpu_ids).__name__))
    if len(cpu_ids) not in (1, n_jobs):
        raise ValueError('cpu_ids has {} entries: it must have 1 (for all workers) or n_jobs ({})'.format(
            len(cpu_ids), n_jobs))
    lists = []
    for entry in cpu_ids:
        cpus = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if not cpus:
            raise ValueError('cpu_ids: a worker has an empty list of CPUs')
        for cpu in cpus:
            if isinstance(cpu, bool) or not isinstance(cpu, int):
                raise TypeError('cpu_ids: a CPU ID must be an int, not {}'.format(type(cpu).__name__))
            if not 0 <= cpu < (os.cpu_count() or 1):
                raise ValueError('cpu_ids: there is no CPU {}: CPU IDs go from 0 to {}'.format(
                    cpu, (os.cpu_count() or 1) - 1))
        lists.append(cpus)
    return GLib.Variant('aau', lists)


def _check_map_arguments(method, func, iterable, iterable_len, chunk_size, c_api_args=()):
    if c_api_args:
        raise TypeError('{}() takes a cancellable (and the C API\'s other arguments) only with a '
                        'Wpool.Task, not with a Python function'.format(method))
    if not callable(func):
        raise TypeError('{}() takes a callable, not {}'.format(method, type(func).__name__))
    if not isinstance(iterable, collections.abc.Iterable):
        raise TypeError('{}(): iterable must be iterable, not {}'.format(method, type(iterable).__name__))
    if iterable_len is not None:
        _check_number('iterable_len', iterable_len, 0)
    if chunk_size is not None:
        # As MPIRE, a float chunk size gives chunks of that size on average.
        _check_number('chunk_size', chunk_size, 1, floats=True)


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

    def __init__(self, args, kwargs):
        if kwargs is not None and not isinstance(kwargs, collections.abc.Mapping):
            raise TypeError('apply(): kwargs must be a dict, not {}'.format(type(kwargs).__name__))
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
    that lives as long as the worker), each if the pool says so."""

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


def _run_batch(func, head, batch, items=None):
    """The results of a batch, or up to its first failure, then a _Failure.
    @head are the arguments before each item's (_Head.arguments()). @items
    iterates @batch (by default from its start): a canceller may exhaust
    it to end the batch early.

    Batches of one kind of item run in a C loop (map(), starmap()), as
    multiprocessing's workers do: a Python loop with _call() per item cost
    as much again as a trivial body."""
    call = functools.partial(func, *head) if head else func
    kinds = set(map(type, batch))
    items = iter(batch) if items is None else items
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


class WorkerDiedError(GLib.Error):
    """A worker process died in an item (a signal, an exit): what a Python
    map raises, with the item, the worker and how it ended. MPIRE raises a
    RuntimeError there, which this is too, as a GLib.Error of
    Wpool.Error.WORKER_DIED."""


class TaskTimeoutError(TimeoutError):
    """An item ran past task_timeout, or a worker's start, init or exit
    past theirs: what a Python map raises, a TimeoutError as MPIRE's. Its
    domain, code and message are the GLib.Error's (Wpool.Error.TIMED_OUT),
    which is its __cause__."""

    def __init__(self, error):
        super().__init__(error.message)
        self.domain, self.code, self.message = error.domain, error.code, error.message

    def matches(self, domain, code):
        return GLib.quark_from_string(self.domain) == domain and self.code == code


__all__ += ['WorkerDiedError', 'TaskTimeoutError']


def _as_mpire_error(error):
    """The exception a Python map raises for the GLib.Error that ended it:
    a dead worker's and a timeout's have types of their own, as in MPIRE."""
    if not isinstance(error, GLib.Error) or error.domain != 'wpool-error-quark':
        return error
    if error.code == Wpool.Error.WORKER_DIED:
        raised = WorkerDiedError(error.message, error.domain, error.code)
    elif error.code == Wpool.Error.TIMED_OUT:
        raised = TaskTimeoutError(error)
    else:
        return error
    raised.__cause__ = error
    return raised


def _raise_failure(error, text, where):
    """Raises a worker's exception, its traceback in a note as MPIRE shows it."""
    error.add_note('\nRaised in {}:\n{}'.format(where, text))
    raise error


def _bytes_variant(data):
    return GLib.Variant.new_from_bytes(_BYTES, GLib.Bytes.new(data), True)


def _variant_bytes(variant):
    return variant.get_data_as_bytes().get_data()


def _run_pickled_batch(worker, item, codec, shared_objects, functions=None):
    """Runs a batch of worker processes: @item is an `ay` of the pickled
    (pickled function, _Head, batch), the result the pickled results; a
    failure stops the map (_stop_map()). @codec is pickle or dill;
    @functions the functions forked workers find by key (those pickle
    cannot name)."""
    try:
        reference, head, batch = codec.loads(_variant_bytes(item))
        function = codec.loads(reference)
        if functions is not None and not callable(function):
            function = functions[function]
    except BaseException as error:  # noqa: B902 - e.g. a function the worker cannot find
        _stop_map(worker, _failure(error), carry=True, codec=codec)
        return None

    results = _run_batch(function, head.arguments(worker, shared_objects), batch)
    try:
        if results and isinstance(results[-1], _Failure):
            failure = results[-1]
        else:
            return _bytes_variant(codec.dumps(results))
    except Exception as error:  # noqa: B902 - an unpicklable result
        failure = _Failure(RuntimeError('A result cannot be sent back from the worker: {}'.format(error)),
                           _failure(error).text)
    _stop_map(worker, failure, carry=True, codec=codec)
    return None


def _batch_task(run):
    task = Task.new(run)
    task.set_result_type(_BYTES)
    return task


# Python functions in SPAWN and FORKSERVER workers. The workers are Python
# processes running _PROGRAM, a worker program (Task.new_for_program())
# that serves the pool (Wpool.Worker.serve()) with the tasks _resolve()
# makes. As multiprocessing's spawn does, a worker first imports the
# caller's main script as __mp_main__ (so that __main__.func unpickles),
# from the caller's sys.path and directory, which travel pickled in the
# command line: what ps shows anyway, but not the authentication key of
# multiprocessing's managers, which travels with the shared objects. The
# runner's name says how batches are pickled: _run_batches.pickle or .dill.
_RUNNER = '_run_batches'
# A Python pool's shared objects, as the C pool's: how they are pickled
# ('pickle' or 'dill'), multiprocessing's key, and the pickled objects
# (empty for none).
_SHARED = GLib.VariantType.new('(sayay)')
# The caller's sys.path first, where it may have found gi and this file.
_PROGRAM = (
    'import base64, pickle, sys\n'
    'sys.path = pickle.loads(base64.b64decode(sys.argv[1]))["sys_path"]\n'
    'import gi\n'
    'gi.require_version("Wpool", "1")\n'
    'from gi.repository import Wpool\n'
    'sys.exit(sys.modules["gi.overrides.Wpool"]._worker_main(sys.argv))\n'
)


def _program_argv():
    """The worker program's command line: the same as long as the caller's
    sys.path, directory and main script are, so that kept-alive workers
    serve every map."""
    import multiprocessing
    from multiprocessing import spawn

    # get_preparation_data() fixes multiprocessing's start method, which
    # the caller may want to set later.
    unset = multiprocessing.get_start_method(allow_none=True) is None
    data = spawn.get_preparation_data('wpool-worker')
    if unset:
        multiprocessing.context._default_context._actual_context = None
        data.pop('start_method', None)
    # Only builtins remain, which the program unpickles before any import.
    del data['authkey']
    return [sys.executable, '-c', _PROGRAM, base64.b64encode(pickle.dumps(data)).decode('ascii')]


def _check_by_reference(func, what, use_dill=None):
    """Refuses a function that a new process cannot find, before anything
    starts: pickle sends functions by module and name. @use_dill: whether
    the pool pickles with dill, None where dill cannot help."""
    if use_dill:
        return
    try:
        pickle.dumps(func)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError('{}: {!r} cannot be sent to “spawn” and “forkserver” workers, which find a '
                        'function by its module and name ({}): define it at module level{}'.format(
                            what, func, error, '' if use_dill is None else
                            ', or pass use_dill=True to Pool() (with dill installed) to send it by value')) from None
    main = sys.modules['__main__']
    if getattr(func, '__module__', None) == '__main__' and getattr(main, '__file__', None) is None and \
            getattr(main.__spec__, 'name', None) is None:
        raise TypeError('{}: {!r} is defined in an interactive __main__, which “spawn” and “forkserver” '
                        'workers cannot import: define it in a module or a script, or use '
                        'start_method="fork"'.format(what, func))


class _SpawningPopen:
    """What multiprocessing's reducers ask of the process it spawns, to
    which shared objects go as to its Process(args=…): the descriptors of
    its shared memory (Value, Array, RawArray…), which each worker (or the
    fork server, once) opens again from /proc, mapping the same memory."""

    @staticmethod
    def duplicate_for_child(fd):
        return fd

    @staticmethod
    def DupFd(fd):  # noqa: N802 - multiprocessing's name
        return _ProcFd(os.getpid(), fd)


class _ProcFd:
    def __init__(self, pid, fd):
        self.pid, self.fd = pid, fd

    def detach(self):
        return os.open('/proc/{}/fd/{}'.format(self.pid, self.fd), os.O_RDWR | os.O_CLOEXEC)


def _sharing_pickler(base, start_method):
    from multiprocessing import reduction, synchronize

    class Pickler(base):
        def reducer_override(self, obj):
            if isinstance(obj, synchronize.SemLock) and obj._semlock.name is None:
                # Unlinked at once in the “fork” context: nothing can open it.
                raise TypeError(
                    'The shared objects cannot be sent to “{}” workers: {!r} was made in multiprocessing\'s '
                    '“fork” context (the default), whose locks only forked processes inherit. Use '
                    'multiprocessing.get_context("spawn").Lock() (or .Value(), .Array()), a lock=False '
                    'Value or Array, a multiprocessing.Manager()\'s objects, or start_method="fork"'.format(
                        start_method, obj))
            # ctypes objects in shared memory (dill knows no better than
            # copying them).
            reduce = reduction.ForkingPickler._extra_reducers.get(type(obj))
            return reduce(obj) if reduce is not None else NotImplemented

    return Pickler


def _dumps_shared(codec, objects, start_method):
    """The shared objects pickled for worker programs, as multiprocessing
    pickles a process's arguments as it spawns it: its shared memory and
    named locks travel as such, not as copies."""
    import io
    from multiprocessing import context, reduction

    pickler = _sharing_pickler(codec.Pickler if codec is not pickle else reduction.ForkingPickler, start_method)
    data = io.BytesIO()
    context.set_spawning_popen(_SpawningPopen)
    try:
        pickler(data, pickle.HIGHEST_PROTOCOL).dump(objects)
    finally:
        context.set_spawning_popen(None)
    return data.getvalue()


def _codec(name):
    if name == 'dill':
        import dill
        return dill
    return pickle


def _describe(error):
    """An exception as a GLib.Error's message: its type, message and
    traceback."""
    summary = ''.join(traceback.format_exception_only(type(error), error)).strip()
    details = ''.join(traceback.format_exception(error)).rstrip()
    return '{}\n\n{}'.format(summary, details)


class _WorkerProgram:
    """The worker side: prepares the process as multiprocessing's spawn
    does, once, and resolves the pool's tasks. In a fork server this runs
    once, before it forks: its workers share the shared objects
    unpickled here, copy-on-write."""

    def __init__(self, prep):
        self.prep = prep
        self.prepared = False
        self.python_objects = False
        self.objects = None
        # A C pool's shared objects, for Task.new_for_python() tasks: the
        # worker keeps no reference of its own (TAKE_SHARED_OBJECTS).
        self.variant = None

    def resolve(self, module, name, shared):
        try:
            return self._resolve(module, name, shared)
        except GLib.Error:
            raise
        except BaseException as error:  # noqa: B902 - PyGObject would only print it
            raise GLib.Error(_describe(error), 'wpool-error-quark', Wpool.Error.FAILED) from None

    def _prepare(self, shared):
        from multiprocessing import process, spawn

        ours = shared is not None and shared.get_type().equal(_SHARED)
        data = dict(pickle.loads(base64.b64decode(self.prep)))
        if ours:
            data['authkey'] = _variant_bytes(shared.get_child_value(1))
        # As in multiprocessing's spawned children: a script that starts
        # workers at import (no `if __name__ == '__main__':`) is told so,
        # rather than starting workers recursively.
        process.current_process()._inheriting = True
        try:
            spawn.prepare(data)
        finally:
            process.current_process()._inheriting = False
        self.prepared = True

        if not ours:
            # A C pool's shared objects, or none.
            self.variant = shared
        else:
            self.python_objects = True
            objects = _variant_bytes(shared.get_child_value(2))
            if objects:
                self.objects = _codec(shared.get_child_value(0).get_string()).loads(objects)

    def _resolve(self, module, name, shared):
        if not self.prepared:
            self._prepare(shared)
        if module == __name__ and name.startswith(_RUNNER + '.'):
            codec = _codec(name[len(_RUNNER) + 1:])
            objects = self.objects

            def run(worker, shared_objects, item):
                return _run_pickled_batch(worker, item, codec, objects)

            return _batch_task(run)

        # Task.new_for_python(): func(worker, shared_objects, item).
        func = sys.modules['__main__'] if module == '__main__' else importlib.import_module(module)
        for part in name.split('.'):
            func = getattr(func, part)
        # A Python pool's: its Python shared objects, not their wrapping.
        shared_objects = self.objects if self.python_objects else self.variant
        return Task.new(lambda worker, _shared_objects, item: func(worker, shared_objects, item))


def _worker_main(argv):
    """The worker program's main function: serves the pool that started
    it, and returns the exit status."""
    # As MPIRE's workers: a terminal's Ctrl-C goes to the caller alone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    program = _WorkerProgram(argv[1])
    try:
        # Unpickled once, in resolve(): the worker need not keep them as
        # received as well, a second copy.
        Wpool.Worker.serve(argv, Wpool.ServeFlags.TAKE_SHARED_OBJECTS, program.resolve)
    except GLib.Error as error:
        # The pool reports a failure to serve it; not one to start.
        if error.matches(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT):
            sys.stderr.write('{}\n'.format(error.message))
        return 1
    _end_worker()
    return 0


def _end_worker():
    """Ends a worker the pool is done with as multiprocessing ends its forked
    processes: exit handlers and multiprocessing's finalizers run and the
    standard streams are flushed, but not the interpreter's teardown, which
    a pool that waits for its workers to stop would wait for too (some
    30 ms with gi loaded)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    os._exit(0)


def _batches(items, chunk_size):
    """@items in batches of @chunk_size, which may be a float: then, as in
    MPIRE, batch k ends at item ceil((k + 1) * chunk_size)."""
    batches, start = [], 0
    while start < len(items):
        end = max(math.ceil((len(batches) + 1) * chunk_size), start + 1)
        batches.append(items[start:end])
        start = end
    return batches


def _pickled_batches(codec, reference, head, batches):
    """The items of a map of worker processes: each batch, pickled with
    the function's pickled @reference and the _Head of its arguments."""
    return GLib.Variant.new_array(_BYTES, [_bytes_variant(codec.dumps((reference, head, batch)))
                                           for batch in batches])


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

        task = Task.new(run)
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


# How often, in ms, a caller waiting for a map checks for a Ctrl-C that
# another thread received (Linux gives a process's SIGINT to its main
# thread, whose wait it interrupts at once, unless that thread blocks it).
_SIGNAL_CHECK_MS = 100


class _SigintDeferred:
    """Starts a map with SIGINT blocked in the starting thread, whose mask
    the threads and processes it starts inherit: a terminal's Ctrl-C, sent
    to the whole process group, then raises no KeyboardInterrupt in each
    forked worker (MPIRE's workers ignore SIGINT). KeyboardInterrupt is
    deferred to the end of the block, as MPIRE's DelayedKeyboardInterrupt
    does, so that it comes before the map starts or after, never between.
    Python handles signals in its main thread only: elsewhere this does
    nothing."""

    def __enter__(self):
        self.received = []
        # A pending Ctrl-C raises here, before anything started.
        self.handler = _hold_sigint(self.received)
        self.main = self.handler is not None
        if self.main:
            self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        if self.main:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
            signal.signal(signal.SIGINT, self.handler)
            if self.received:
                _deliver_sigint(self.handler, self.received[-1])
        return False


def _hold_sigint(received):
    """Replaces the SIGINT handler with one that appends to @received, and
    returns the one it replaced; None, and nothing replaced, outside the
    main thread or if that one is not Python's (it could not be put back)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))


def _deliver_sigint(handler, frame):
    """Hands a SIGINT that was held back to the handler it was meant for:
    Python's default one raises KeyboardInterrupt."""
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


class _Running:
    """A Python map on the C pool, started through the C API's async calls
    on a main context of its own, and waited for by iterating that context
    on the caller's thread (where the C pool ends its maps). While it
    waits, a Ctrl-C is noted rather than raised, so that it interrupts no
    callback, and handed to the SIGINT handler between iterations: Python's
    raises KeyboardInterrupt, and the map is aborted and the pool
    terminated, as MPIRE's is."""

    def __init__(self, pool, job):
        self.pool = pool
        self.job = job
        self.cancellable = Gio.Cancellable.new()
        self.context = GLib.MainContext.new()
        self.answered = threading.Event()
        self.answered.set()
        self.result = None
        self.on_answer = None
        self.ended = False
        pool._running.add(self)

    def _answer(self, source, result):
        self.result = result
        self.answered.set()
        if self.on_answer is not None:
            self.on_answer()

    def begin(self, start, answered=True):
        """Calls start(callback), a call of the C API whose callback, if
        @answered, comes to this map's context. Ctrl-C meanwhile comes
        after, and aborts the map."""
        self.pool._join_threads()
        try:
            with _SigintDeferred():
                self.context.push_thread_default()
                try:
                    if answered:
                        self.answered.clear()
                    start(self._answer)
                except BaseException:
                    self.answered.set()
                    raise
                finally:
                    self.context.pop_thread_default()
        except KeyboardInterrupt:
            self.interrupted()
            raise

    def _iterate(self, interruptible):
        """Iterates the map's context until the last call is answered."""
        received = []
        handler = _hold_sigint(received)
        tick = GLib.timeout_source_new(_SIGNAL_CHECK_MS)
        tick.set_callback(lambda *args: GLib.SOURCE_CONTINUE)
        tick.attach(self.context)
        try:
            while not self.answered.is_set():
                self.context.iteration(True)
                if received and interruptible:
                    signal.signal(signal.SIGINT, handler)
                    _deliver_sigint(handler, received.pop())
                    # A handler of the caller's own, which did not raise.
                    _hold_sigint(received)
        finally:
            tick.destroy()
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
        if received and interruptible:
            _deliver_sigint(handler, received.pop())

    def wait(self):
        """Waits for the answer to the last call: Ctrl-C aborts the map and
        terminates the pool, and raises KeyboardInterrupt."""
        try:
            self._iterate(interruptible=True)
        except KeyboardInterrupt:
            self.interrupted()
            raise
        return self.result

    def interrupted(self):
        self.abort()
        self.pool._terminate_quietly()

    def abort(self):
        """Cancels the map and waits for it to end (a further Ctrl-C
        meanwhile is ignored: a thread ends its item first)."""
        if self.ended:
            return
        self.cancellable.cancel()
        self.job.interrupt()
        if not self.answered.is_set():
            self._iterate(interruptible=False)
        self.drain()
        self.end()

    def drain(self):
        """Waits for the end of a cancelled map, whose last call answered."""

    def end(self):
        self.ended = True
        self.pool._running.discard(self)


class _RunningMap(_Running):
    """A map(), map_async() or apply(): one call, whose answer is the map's."""

    def run(self):
        """The map's results, or its exception."""
        self.start()
        self.wait()
        return self.finish()

    def start(self):
        self.begin(lambda callback: Wpool.Pool.map_async(self.pool, self.job.task, self.job.variant,
                                                         self.cancellable, callback))

    def finish(self):
        self.end()
        try:
            variant = Wpool.Pool.map_finish(self.pool, self.result)
        except GLib.Error as error:
            self.job.raise_error(error)
        return self.job.finish(variant)


class _RunningStream(_Running):
    """An imap(): a Wpool.MapStream of the map's batches, read with
    next_async()."""

    stream = None

    def start(self, flags):
        def start(callback):
            self.stream = Wpool.Pool.imap(self.pool, self.job.task, self.job.variant, flags, self.cancellable)

        self.begin(start, answered=False)

    def drain(self):
        if self.stream is None:
            return
        try:
            while self.stream.next()[0]:
                pass
        except GLib.Error:
            pass

    def results(self):
        """The map's results, batch by batch as the stream gives them. Left
        early (an exception, a break, the generator dropped), the map is
        cancelled and waited for, so the pool is free again."""
        try:
            while True:
                if self.ended:
                    raise RuntimeError('The pool was terminated while this map ran: its results are lost')
                self.begin(lambda callback: self.stream.next_async(None, callback))
                self.wait()
                try:
                    found, index, result, item_error = self.stream.next_finish(self.result)
                except GLib.Error as error:
                    self.end()
                    self.job.raise_error(error)
                if not found:
                    self.end()
                    return
                yield from self.job.batch_results(index, result)
        finally:
            self.abort()


class _RunningAsync(_RunningMap):
    """A map_async() or apply_async(): neither asyncio nor a caller that
    calls get() later iterates GLib's contexts, so a thread of its own
    iterates the map's, on which @on_answer settles the AsyncResult."""

    thread = None

    def start(self, on_answer):
        self.on_answer = on_answer
        # Started here, so that workers fork from the caller's thread, and
        # before any other Python thread runs, which could hold the GIL
        # across the fork.
        super().start()
        self.thread = threading.Thread(target=self._iterate_thread, name='wpool-map-async', daemon=True)
        self.thread.start()

    def _iterate_thread(self):
        self.context.push_thread_default()
        while not self.answered.is_set():
            self.context.iteration(True)
        self.context.pop_thread_default()

    def abort(self):
        if self.thread is None or self.ended:
            # Not started, or interrupted as it started: no thread iterates.
            super().abort()
            return
        self.cancellable.cancel()
        self.job.interrupt()
        self.answered.wait()
        self.end()

    def end(self):
        # No thread is left behind: ended on the thread itself (the
        # AsyncResult settles there), the pool joins it before its next
        # map, or as the `with` block ends.
        if self.thread is threading.current_thread():
            self.pool._threads_to_join.append(self.thread)
        elif self.thread is not None:
            self.thread.join()
        super().end()


def _settle(future):
    if not future.done():
        future.set_result(None)


class AsyncResult:
    """What apply_async() and map_async() return, as MPIRE's (and
    multiprocessing's) AsyncResult: ready(), successful(), wait(timeout),
    get(timeout), and the callback or error_callback called with the
    result or the exception once the map ends (on a thread of the pool's,
    before get() returns).
    It is awaitable too: `await pool.map_async(...)` runs on an asyncio
    loop without blocking it, and cancelled (as asyncio.run() does on
    Ctrl-C) stops the map and terminates the workers."""

    def __init__(self, running, single, callback, error_callback):
        self._running = running
        self._single = single
        self._callback = callback
        self._error_callback = error_callback
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._waiters = []
        self._value = None
        self._error = None
        running.start(self._settle)

    def _settle(self):
        """On the map's thread, once it answered: the outcome, the
        callbacks, then the waiters (as multiprocessing's: a callback has
        run once get() returns)."""
        try:
            value = self._running.finish()
            self._value = value[0] if self._single else value
        except BaseException as error:  # noqa: B902 - the map's, whatever it is
            self._error = error
        try:
            if self._error is None and self._callback is not None:
                self._callback(self._value)
            elif self._error is not None and self._error_callback is not None:
                self._error_callback(self._error)
        except Exception:  # noqa: B902 - the caller's, reported as a thread's
            traceback.print_exc()
        with self._lock:
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_settle, future)
            except RuntimeError:
                pass  # A loop closed meanwhile.

    def ready(self):
        """Whether the map ended."""
        return self._done.is_set()

    def successful(self):
        """Whether the map ended without an exception; ValueError before it
        ended."""
        if not self.ready():
            raise ValueError('The map has not ended yet')
        return self._error is None

    def wait(self, timeout=None):
        """Waits until the map ends, or @timeout seconds. Ctrl-C meanwhile
        stops the map and terminates the workers, as in map()."""
        if timeout is not None:
            _check_number('timeout', timeout, 0, floats=True)
        try:
            self._done.wait(timeout)
        except KeyboardInterrupt:
            self._running.abort()
            self._running.pool._terminate_quietly()
            raise

    def get(self, timeout=None):
        """The results of map_async() (a list) or apply_async() (the one
        result), or the exception that ended the map; TimeoutError if it did
        not end within @timeout seconds."""
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError('The map did not end within {} s'.format(timeout))
        if self._error is not None:
            raise self._error
        return self._value

    def __await__(self):
        return self._wait_async().__await__()

    async def _wait_async(self):
        import asyncio

        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        with self._lock:
            if self._done.is_set():
                ended.set_result(None)
            else:
                self._waiters.append((loop, ended))
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError:
            # Cancelled (asyncio.run() cancels on Ctrl-C): stopped as map()
            # on Ctrl-C, without blocking the loop meanwhile.
            self._running.cancellable.cancel()
            self._running.job.interrupt()
            await asyncio.shield(ended)
            self._running.pool._terminate_quietly()
            raise
        return self.get()


__all__.append('AsyncResult')


class Pool(Wpool.Pool):
    """A pool of workers, with MPIRE's WorkerPool API for Python functions.

    Wpool.Pool(n_jobs=4, shared_objects=dataset, start_method='fork') takes
    MPIRE's start method names as well as Wpool.StartMethod, any Python
    object as shared objects (a GLib.Variant goes to the C pool, for C
    tasks), MPIRE's cpu_ids, use_dill (functions, items, results and
    shared objects pickled with dill, which sends lambdas and closures to
    “spawn” and “forkserver” workers by value), pass_worker_id and
    use_worker_state, and the pool's other properties as keywords, all
    checked. Used as a context manager, it stops and joins its workers on
    leaving, or terminates them if an exception is leaving or a Python map
    is unfinished.
    """

    # Python shared objects; the task of forked workers, which learn the
    # function of each map from its batches; functions pickle cannot name
    # (lambdas, closures), kept where workers forked from then on find
    # them. Class defaults, for pools made with Wpool.Pool.new().
    _shared_objects = None
    _has_shared_objects = False
    _fork_task = None
    _functions = None
    # Worker programs (SPAWN, FORKSERVER): how functions, items and shared
    # objects are pickled; the program task, kept while its command line
    # is the same; the shared objects as the C pool's, and what changes
    # them (set_shared_objects() counts).
    _use_dill = False
    _codec = pickle
    _program = None
    _shared_variant = None
    _shared_version = 0
    # MPIRE's arguments before an item's own: the worker's id, the worker's
    # state (after the shared objects).
    _pass_worker_id = False
    _use_worker_state = False

    def __init__(self, n_jobs=None, shared_objects=None, start_method=None, cpu_ids=None, use_dill=False,
                 pass_worker_id=False, use_worker_state=False, **properties):
        # n_jobs 0 or None is the number of processors, as in MPIRE; the
        # bound is the C pool's: a worker is a thread or process, and
        # thousands of them would exhaust the machine, not speed anything.
        if n_jobs is not None:
            properties['n_jobs'] = _check_number('n_jobs', n_jobs, 0, Wpool.MAX_N_JOBS)
        if start_method is not None:
            properties['start_method'] = _check_start_method(start_method)
        for name, value in properties.items():
            _check_property(name, value)
        if _check_bool('use_dill', use_dill):
            try:
                import dill
            except ImportError:
                raise ImportError('use_dill=True needs dill, which is not installed: install it '
                                  '(Debian: python3-dill; pip: dill), or define the functions at '
                                  'module level and leave use_dill False') from None
            self._use_dill, self._codec = True, dill
        _check_bool('pass_worker_id', pass_worker_id)
        _check_bool('use_worker_state', use_worker_state)
        super().__init__(**properties)
        self._pass_worker_id, self._use_worker_state = pass_worker_id, use_worker_state

        if cpu_ids is not None:
            try:
                self.set_cpu_ids(_cpu_ids_variant(cpu_ids, self.props.n_jobs))
            except GLib.Error as error:
                raise ValueError('cpu_ids: {}'.format(error.message)) from None
        if shared_objects is not None:
            self.set_shared_objects(shared_objects)

    @property
    def _running(self):
        """The Python maps that run, which __exit__() stops."""
        running = self.__dict__.get('_running_maps')
        if running is None:
            running = self.__dict__['_running_maps'] = weakref.WeakSet()
        return running

    def _terminate_quietly(self):
        """Terminates the workers, after an interruption: another thread's
        map may still run, which the C API's terminate() refuses."""
        try:
            self.terminate()
        except GLib.Error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        # As MPIRE: leaving terminates the workers, and a map left
        # unfinished (an imap, a map_async not awaited) is stopped, its
        # results lost; an exception leaving the block goes on as it is.
        unfinished = list(self._running)
        for running in unfinished:
            running.abort()
        self._join_threads()
        if exc_type is None and not unfinished:
            self.stop_and_join()
        elif exc_type is None:
            self.terminate()
        else:
            self._terminate_quietly()
        return False

    def set_shared_objects(self, shared_objects):
        """Sets the objects the workers share: a GLib.Variant for the C pool
        (C tasks, any start method), any Python object for Python functions
        (threads share the very object, forked workers see it copy-on-write,
        spawned workers get a copy each, and a fork server one copy that its
        workers share copy-on-write: pickled once, at the next map).
        Refused with Wpool.Error.WORKERS_RUNNING while the workers run."""
        if isinstance(shared_objects, GLib.Variant) or shared_objects is None:
            super().set_shared_objects(shared_objects)
            self._shared_objects, self._has_shared_objects = None, False
            self._shared_version += 1
            return True

        if self.props.workers_running:
            raise GLib.Error('Cannot change the shared objects while the workers run: they received '
                             'them when they started. Set “keep-alive” to FALSE (which stops idle '
                             'workers) before changing them', 'wpool-error-quark',
                             Wpool.Error.WORKERS_RUNNING)
        self._shared_objects, self._has_shared_objects = shared_objects, True
        self._shared_version += 1
        return True

    def pass_on_worker_id(self, pass_on=True):
        """Passes the worker's id (0 to n_jobs - 1) as the first argument of
        the functions of the next maps, as MPIRE's pass_on_worker_id()."""
        self._pass_worker_id = _check_bool('pass_on', pass_on)

    def set_use_worker_state(self, use_worker_state=True):
        """Passes the worker's state, a dict that lives as long as the
        worker, as the argument after the shared objects, as MPIRE's
        set_use_worker_state()."""
        self._use_worker_state = _check_bool('use_worker_state', use_worker_state)

    def _head(self):
        """What the functions of a map take before an item's arguments."""
        return _Head(self._pass_worker_id, self._has_shared_objects, self._use_worker_state)

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
                return _run_pickled_batch(worker, item, self._codec, self._shared_objects, self._functions)

            self._fork_task = _batch_task(run)

        # Inherited, functions need no dill; items and results may.
        return self._fork_task, _pickled_batches(self._codec, reference, self._head(), batches)

    def _program_task(self, func, batches):
        """The task of worker programs (SPAWN, FORKSERVER), and the batches
        pickled with func (by reference; by value with dill). The Python
        shared objects become the C pool's, pickled once."""
        self._share_with_programs()
        argv = _program_argv()
        if self._program is None or list(self._program.get_program()) != argv:
            self._program = Wpool.Task.new_for_program(argv, __name__, '{}.{}'.format(
                _RUNNER, 'dill' if self._use_dill else 'pickle'))
            self._program.set_result_type(_BYTES)
        return self._program, _pickled_batches(self._codec, self._codec.dumps(func), self._head(), batches)

    def _share_with_python_tasks(self, task):
        """Before a C API map of a Task.new_for_python() task: the Python
        shared objects, which it takes, go to its workers too."""
        program = task.get_program()
        if self._has_shared_objects and program is not None and list(program) == _program_argv():
            self._share_with_programs()

    def _share_with_programs(self):
        """Makes the Python shared objects, pickled once (again only once
        set again), the C pool's shared objects, with multiprocessing's
        key for its managers' proxies."""
        current = self.props.shared_objects
        if self._shared_variant is None or self._shared_variant[0] != self._shared_version:
            if not self._has_shared_objects and current is not None:
                raise TypeError('This pool\'s shared objects are a GLib.Variant, for C tasks: Python '
                                'functions take Python shared objects (Pool(shared_objects=…) or '
                                'set_shared_objects())')
            pickled = b''
            if self._has_shared_objects:
                pickled = _dumps_shared(self._codec, self._shared_objects, self.props.start_method.value_nick)

            import multiprocessing

            variant = GLib.Variant.new_tuple(GLib.Variant('s', 'dill' if self._use_dill else 'pickle'),
                                             _bytes_variant(bytes(multiprocessing.current_process().authkey)),
                                             _bytes_variant(pickled))
            self._shared_variant = (self._shared_version, variant)

        variant = self._shared_variant[1]
        if current is not None and current.equal(variant):
            return
        # Workers that C tasks started, with no shared objects, serve as
        # they are (only multiprocessing's key, for proxies, is missing);
        # else refused while workers run with other objects.
        if current is None and not self._has_shared_objects and self.props.workers_running:
            return
        super().set_shared_objects(variant)

    def _run(self, job, on_progress=None):
        """Runs @job to its end: its results, or its exception."""
        handler = self.connect('notify::n-completed', on_progress) if on_progress else None
        try:
            return _RunningMap(self, job).run()
        finally:
            if handler is not None:
                self.disconnect(handler)

    def map(self, func, iterable, *args, iterable_len=None, chunk_size=None, progress_bar=False):
        """map(func, iterable): func applied to every item, as a list in item
        order, as MPIRE's WorkerPool.map(); a dict item is passed as keyword
        arguments, any other iterable but a string, bytes or numpy array as
        positional ones; before them the worker's id (pass_worker_id), the
        shared objects and the worker's state (use_worker_state).
        The first exception raised by func is raised here, the worker's
        traceback in a note. progress_bar=True shows a tqdm bar. Ctrl-C
        stops the map, terminates the workers and raises KeyboardInterrupt.

        map(task, items, cancellable): the C API, a Wpool.Task over a
        GLib.Variant array.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map(func, iterable, *args)

        _check_map_arguments('map', func, iterable, iterable_len, chunk_size, args)
        _check_bool('progress_bar', progress_bar)
        job = _Map(self, func, iterable, iterable_len, chunk_size)
        if not progress_bar:
            return self._run(job)

        from tqdm import tqdm

        with tqdm(total=len(job.items)) as bar:
            # On the map's own thread: tqdm locks its updates.
            def progress(pool, pspec):
                bar.update(min(math.ceil(pool.props.n_completed * job.chunk_size), len(job.items)) - bar.n)

            results = self._run(job, progress)
            bar.update(len(job.items) - bar.n)
        return results

    def imap(self, func, iterable, *args, iterable_len=None, chunk_size=None):
        """imap(func, iterable): map() as a generator, results in item order
        as batches complete, as MPIRE's imap().

        imap(task, items, flags, cancellable): the C API, a Wpool.MapStream.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().imap(func, iterable, *args)
        return self._imap('imap', func, iterable, args, iterable_len, chunk_size, Wpool.MapFlags.NONE)

    def imap_unordered(self, func, iterable, iterable_len=None, chunk_size=None):
        """As imap(), results in the order batches complete."""
        return self._imap('imap_unordered', func, iterable, (), iterable_len, chunk_size,
                          Wpool.MapFlags.UNORDERED)

    def _imap(self, method, func, iterable, args, iterable_len, chunk_size, flags):
        _check_map_arguments(method, func, iterable, iterable_len, chunk_size, args)
        running = _RunningStream(self, _Map(self, func, iterable, iterable_len, chunk_size))
        running.start(flags)
        return running.results()

    def map_unordered(self, func, iterable, *args, iterable_len=None, chunk_size=None):
        """map_unordered(func, iterable): map()'s results in the order their
        batches complete, as MPIRE's map_unordered().

        map_unordered(task, items, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map_unordered(func, iterable, *args)
        _check_map_arguments('map_unordered', func, iterable, iterable_len, chunk_size, args)
        return list(self.imap_unordered(func, iterable, iterable_len=iterable_len, chunk_size=chunk_size))

    def apply(self, func, args=(), kwargs=None, *rest):
        """apply(func, args=(), kwargs=None): func(*args, **kwargs) on a
        worker (the shared objects first), as MPIRE's apply().

        apply(task, item, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().apply(func, args, kwargs, *rest)
        _check_map_arguments('apply', func, (), None, None, rest)
        return self.map(func, [_Args(args, kwargs)])[0]

    def apply_async(self, func, args=(), kwargs=None, *rest, callback=None, error_callback=None):
        """apply_async(func, args, kwargs, callback=None, error_callback=None):
        apply() without waiting, as MPIRE's: an AsyncResult, whose get()
        gives the result, or which `await` gives on an asyncio loop.

        apply_async(task, item, cancellable, callback, *user_data): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().apply_async(func, args, kwargs, *rest)
        _check_map_arguments('apply_async', func, (), None, None, rest)
        return self._map_async(func, [_Args(args, kwargs)], None, None, True, callback, error_callback)

    def map_async(self, func, iterable, *args, iterable_len=None, chunk_size=None, callback=None,
                  error_callback=None):
        """map_async(func, iterable, callback=None, error_callback=None):
        map() without waiting, as MPIRE's: an AsyncResult, whose get() gives
        the results. `await pool.map_async(...)` runs on an asyncio loop,
        which is not blocked meanwhile; cancelled (as asyncio.run() does on
        Ctrl-C), the map stops and the workers are terminated.

        map_async(task, items, cancellable, callback, *user_data): the C
        API, the callback on the thread-default main context.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map_async(func, iterable, *args)

        _check_map_arguments('map_async', func, iterable, iterable_len, chunk_size, args)
        return self._map_async(func, iterable, iterable_len, chunk_size, False, callback, error_callback)

    def _map_async(self, func, iterable, iterable_len, chunk_size, single, callback, error_callback):
        for name, value in (('callback', callback), ('error_callback', error_callback)):
            if value is not None and not callable(value):
                raise TypeError('{} must be callable, not {}'.format(name, type(value).__name__))
        return AsyncResult(_RunningAsync(self, _Map(self, func, iterable, iterable_len, chunk_size)), single,
                           callback, error_callback)

    @property
    def _threads_to_join(self):
        """The threads of async maps that ended on themselves, which the
        next map joins first."""
        threads = self.__dict__.get('_async_threads')
        if threads is None:
            threads = self.__dict__['_async_threads'] = []
        return threads

    def _join_threads(self):
        while self._threads_to_join:
            thread = self._threads_to_join.pop()
            if thread is not threading.current_thread():
                thread.join()


Pool = override(Pool)
__all__.append('Pool')
