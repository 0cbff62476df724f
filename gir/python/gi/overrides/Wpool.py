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
#    item: pickled for worker processes, by reference for threads. A
#    range is never read into a list: its batches are sub-ranges. Results
#    all float come back from worker processes as machine values rather
#    than pickled objects (batches.py). The C
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
#
# This file is the API: Wpool.Task, Wpool.Pool. Their parts live in the
# private package _wpool beside it, one concern per module: tasks (Python
# task functions, forking), arguments, batches (what a worker runs),
# errors, programs (SPAWN and FORKSERVER workers), maps (one Python map on
# the C pool), running (waiting for it, Ctrl-C) and async_result.

import pickle
import threading
import types
import weakref

from gi.repository import GLib

from ..module import get_introspection_module
from ..overrides import override
from ._wpool import buffers as _buffers
from ._wpool import insights as _insights
from ._wpool.arguments import (_NEW_PROGRAM_METHODS, _check_bool, _check_map_arguments, _check_number,
                               _check_property, _check_start_method, _cpu_ids_variant)
from ._wpool.async_result import AsyncResult
from ._wpool.batches import _Args, _batch_task, _Head, _run_pickled_batch
from ._wpool.errors import TaskTimeoutError, WorkerDiedError
from ._wpool.lifecycle import _exit_results, _lifecycle_task
from ._wpool.maps import _Map, _raise_carried, drop_item_spares
from ._wpool.options import (_APPLY_PARAMETERS, _IMAP_PARAMETERS, _MAP_PARAMETERS, _PROGRESS_KEYWORDS, _options,
                             _Options, _pop_callbacks)
from ._wpool.programs import serve_mpi_ranks as _programs_serve_mpi_ranks
from ._wpool.programs import _shared_variant
from ._wpool.programs import (_check_by_reference, _dumps_shared, _lifecycle_program_task, _program_argv,
                              _runner_task)
from ._wpool.running import _RunningAsync, _RunningMap, _RunningStream
from ._wpool.tasks import _wrap_task_func

Wpool = get_introspection_module('Wpool')

__all__ = ['AsyncResult', 'TaskTimeoutError', 'WorkerDiedError']


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


class SharedArray(Wpool.SharedArray):
    def get_data(self):
        """The elements themselves, without a copy: a writable memoryview of
        the shared memory, in the element type's format ('i', 'q', 'B',
        'f', 'd'), which every worker writes and reads. numpy.asarray() of
        it is a numpy view of that type (numpy.frombuffer() takes it too,
        given the dtype). It stays valid as long as it is referenced, the
        array dropped or not. As Python shared objects (alone or inside
        them), a SharedArray reaches the workers as itself under every
        start method but 'mpi': the very object under 'threading' and
        'fork', an array over the same memory under 'spawn' and
        'forkserver'."""
        return _buffers.shared_array_data(self)


SharedArray = override(SharedArray)
__all__.append('SharedArray')

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
    # MPIRE's worker_init and worker_exit of the last map, and the C tasks
    # they became; the last exit results decoded.
    _lifecycle = None
    _exit_results = None

    def __init__(self, n_jobs=None, shared_objects=None, start_method=None, cpu_ids=None, use_dill=False,
                 pass_worker_id=False, use_worker_state=False, daemon=True, order_tasks=False, **properties):
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
        # Workers always die with the caller, and a task may always make a
        # pool of its own: MPIRE's daemon=False is what libwpool does.
        _check_bool('daemon', daemon)
        self._check_order_tasks(order_tasks)
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
            super().terminate()
        except GLib.Error:
            pass

    def _stop_running(self):
        """Stops the Python maps that run (an unfinished imap(), an
        apply_async() or map_async() not waited for): their results are
        lost, and reading them raises RuntimeError, as in MPIRE. Returns
        whether there were any."""
        unfinished = list(self._running)
        for running in unfinished:
            running.terminated = True
            running.abort()
        self._join_threads()
        return bool(unfinished)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        # As MPIRE: a map left unfinished (an imap, an apply_async not
        # waited for) is stopped, its results lost, and the workers are
        # terminated; an exception leaving the block goes on as it is.
        # Otherwise the workers stop and join, running their worker_exit.
        unfinished = self._stop_running()
        if exc_type is None and not unfinished:
            self.stop_and_join()
        else:
            self._terminate_quietly()
        drop_item_spares(self)
        return False

    def stop_and_join(self, keep_alive=False):
        """Waits for the maps started without waiting (apply_async(),
        map_async()) to end, then stops the workers, each running its
        worker_exit (see get_exit_results()), and waits for them, as MPIRE's
        stop_and_join(); with keep_alive=True, the workers are kept for the
        next map. The first exception a worker_exit raised is raised here.
        join() is the same. Returns True."""
        _check_bool('keep_alive', keep_alive)
        for running in list(self._running):
            # Its thread ends once its AsyncResult settled.
            if isinstance(running, _RunningAsync) and running.thread not in (None, threading.current_thread()):
                running.thread.join()
        self._join_threads()
        if keep_alive:
            return True
        drop_item_spares(self)
        try:
            return super().stop_and_join()
        except GLib.Error as error:
            self._raise_exit_error(error, as_is=not self._exit_is_ours())

    join = stop_and_join

    def terminate(self):
        """Stops the workers now, as MPIRE's terminate(): worker processes
        are killed, worker threads left to end their item; the maps that
        run are stopped, and reading their results raises RuntimeError. No
        worker_exit runs."""
        self._stop_running()
        drop_item_spares(self)
        return super().terminate()

    def set_keep_alive(self, keep_alive=True):
        """Keeps the workers between maps (or not), as MPIRE's
        set_keep_alive(): the keep-alive property. Idle workers stop when
        it is unset."""
        self.props.keep_alive = _check_bool('keep_alive', keep_alive)

    @staticmethod
    def _check_order_tasks(order_tasks):
        if _check_bool('order_tasks', order_tasks):
            raise NotImplementedError(
                'order_tasks=True (chunk k to worker k % n_jobs) is not supported: libwpool hands each chunk to '
                'the first idle worker, which keeps every worker busy; a worker can find its own share with '
                'pass_worker_id=True')

    def set_order_tasks(self, order_tasks=True):
        """MPIRE's set_order_tasks(): only False is supported (see Pool())."""
        self._check_order_tasks(order_tasks)

    def set_shared_objects(self, shared_objects):
        """Sets the objects the workers share: a GLib.Variant for the C pool
        (C tasks, any start method), any Python object for Python functions
        (threads share the very object, forked workers see it copy-on-write,
        spawned workers get a copy each, and a fork server one copy that its
        workers share copy-on-write: pickled once, at the next map; but the
        numpy arrays, bytes, bytearrays, memoryviews and array.arrays of
        64 KiB or more in them, which go once to a memfd sealed read-only
        that spawned workers and the fork server map: read-only numpy arrays
        and memoryviews over it in the workers).
        Kept-alive idle workers stop, to start again with them at the next
        map, as MPIRE's restart; refused with Wpool.Error.WORKERS_RUNNING
        while a map runs. A GLib.Variant is refused while workers run, as
        in C."""
        if isinstance(shared_objects, GLib.Variant) or shared_objects is None:
            super().set_shared_objects(shared_objects)
            self._shared_objects, self._has_shared_objects = None, False
            self._drop_shared()
            return True

        if self.props.workers_running and self._running:
            raise GLib.Error('Cannot change the shared objects while a map runs on the workers: they '
                             'received them when they started', 'wpool-error-quark', Wpool.Error.WORKERS_RUNNING)
        # As MPIRE restarts kept-alive workers whose parameters changed:
        # idle ones stop now (running their worker_exit), and the next map
        # starts new ones with these objects.
        self._restart_idle_workers()
        self._shared_objects, self._has_shared_objects = shared_objects, True
        self._drop_shared()
        return True

    def _drop_shared(self):
        """Forgets the shared objects as worker programs had them: pickled
        again at the next map, and the memfd of their big buffers closed
        now (no worker that started with them is left)."""
        self._shared_version += 1
        self._shared_variant = None

    def pass_on_worker_id(self, pass_on=True):
        """Passes the worker's id (0 to n_jobs - 1) as the first argument of
        the functions of the next maps, as MPIRE's pass_on_worker_id()."""
        self._pass_worker_id = _check_bool('pass_on', pass_on)

    def set_use_worker_state(self, use_worker_state=True):
        """Passes the worker's state, a dict that lives as long as the
        worker, as the argument after the shared objects, as MPIRE's
        set_use_worker_state()."""
        self._use_worker_state = _check_bool('use_worker_state', use_worker_state)

    def _restart_idle_workers(self):
        """Stops kept-alive workers no map uses, so that the next map starts
        them with settings they take as they start (MPIRE restarts its
        workers when a map's settings change)."""
        if self.props.workers_running and not self._running:
            Wpool.Pool.stop_and_join(self)

    def _set_lifecycle(self, worker_init, worker_exit, method):
        """Makes MPIRE's worker_init and worker_exit of a map the C pool's
        worker-init and worker-exit tasks, restarting idle kept-alive
        workers if they change. A pool whose lifecycle tasks are the C
        API's (set_worker_init()) keeps them for maps without any."""
        start_method = self.props.start_method
        head = self._head()
        key = (worker_init, worker_exit, head.pass_worker_id, head.has_shared_objects, head.use_worker_state,
               start_method, self._use_dill, self._shared_version)
        ours = self._lifecycle is not None and \
            (self.props.worker_init, self.props.worker_exit) == self._lifecycle[1]
        if worker_init is None and worker_exit is None and not ours:
            return
        if ours and self._lifecycle[0] == key:
            return

        tasks = []
        for what, func in (('init', worker_init), ('exit', worker_exit)):
            if func is None:
                tasks.append(None)
            elif start_method in _NEW_PROGRAM_METHODS:
                _check_by_reference(func, 'worker_{}'.format(what), self._use_dill)
                self._share_with_programs()
                tasks.append(_lifecycle_program_task(_program_argv(), what, func, head, self._use_dill))
            else:
                pool = weakref.ref(self)
                tasks.append(_lifecycle_task(what, func, head, self._codec, lambda: pool()._shared_objects,
                                             threads=start_method == Wpool.StartMethod.THREADING))
        self._restart_idle_workers()
        try:
            super().set_worker_init(tasks[0])
            super().set_worker_exit(tasks[1])
        except GLib.Error as error:
            if error.matches(Wpool.error_quark(), Wpool.Error.WORKERS_RUNNING):
                raise GLib.Error('{}(): worker_init and worker_exit cannot change while another map runs on '
                                 'the workers: {}'.format(method, error.message), error.domain, error.code) from None
            raise
        self._lifecycle = (key, (tasks[0], tasks[1]))

    def get_exit_results(self):
        """What worker_exit returned in every worker the last time the
        workers stopped (after a map without keep-alive, or as stop_and_join()
        or a map with another worker_init or worker_exit stopped them), as
        MPIRE's get_exit_results(): a list, [] when there are none (workers
        restarted for their lifespan first); the first exception a
        worker_exit raised instead. With a worker-exit task of
        the C API's (set_worker_exit()), the C API's GLib.Variant, or None
        before any worker stopped."""
        c_exit = self.props.worker_exit is not None and not self._exit_is_ours()
        try:
            variant = super().get_exit_results()
        except GLib.Error as error:
            self._raise_exit_error(error, as_is=c_exit)
        if c_exit:
            return variant
        if variant is None or self._lifecycle is None or variant.get_type_string() != 'aay':
            # The workers stopped last without a worker_exit.
            return []
        data = variant.get_data_as_bytes().get_data()
        if self._exit_results is None or self._exit_results[0] != data:
            self._exit_results = (data, _exit_results(variant, self._codec,
                                                      self.props.start_method == Wpool.StartMethod.THREADING))
        return list(self._exit_results[1])

    def _exit_is_ours(self):
        """Whether the worker-exit is a map's worker_exit (or none after
        one), not a task of the C API's."""
        return self._lifecycle is not None and self.props.worker_exit == self._lifecycle[1][1]

    def _raise_exit_error(self, error, as_is):
        """Raises a worker-exit's @error: @as_is, or as the exception a
        map's worker_exit raised (carried in the error)."""
        if as_is:
            raise error
        _raise_carried(error, self._codec, self.props.start_method == Wpool.StartMethod.THREADING)

    def _head(self):
        """What the functions of a map take before an item's arguments."""
        return _Head(self._pass_worker_id, self._has_shared_objects, self._use_worker_state)

    def _forked_task(self, func):
        """The task of forked workers, and func pickled, or the name under
        which func is kept for functions pickle cannot name (lambdas,
        closures): those need workers forked after them."""
        try:
            # By value with dill: no restart for a lambda either.
            reference = self._codec.dumps(func)
        except (pickle.PicklingError, AttributeError, TypeError):
            if self._functions is None:
                self._functions = {}
            key = len(self._functions)
            self._functions[key] = func
            reference = pickle.dumps(key)
            # A new task: running workers restart, and see the function.
            self._fork_task = None

        if self._fork_task is None:
            # The pool weakly: it holds the task, whose closure the garbage
            # collector cannot see (a forked worker has its copy of both).
            pool = weakref.ref(self)

            def run(worker, shared_objects, item):
                self = pool()
                return _run_pickled_batch(worker, item, self._codec, self._shared_objects, self._functions)

            self._fork_task = _batch_task(run)

        # Inherited, functions need no dill; items and results may.
        return self._fork_task, reference

    def _program_task(self, func):
        """The task of worker programs (SPAWN, FORKSERVER), and func pickled
        (by reference; by value with dill). The Python shared objects
        become the C pool's, pickled once."""
        self._share_with_programs()
        argv = _program_argv()
        if self._program is None or list(self._program.get_program()) != argv:
            self._program = _runner_task(argv, self._use_dill)
        return self._program, self._codec.dumps(func)

    def _share_with_python_tasks(self, task):
        """Before a C API map of a Task.new_for_python() task: the Python
        shared objects, which it takes, go to its workers too."""
        _insights.c_api_map(self)
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
            pickled, shared_buffers = b'', None
            if self._has_shared_objects:
                pickled, shared_buffers = _dumps_shared(self._codec, self._shared_objects,
                                                        self.props.start_method.value_nick)

            import multiprocessing

            variant = _shared_variant('dill' if self._use_dill else 'pickle',
                                      bytes(multiprocessing.current_process().authkey), pickled)
            # The memfd of their big buffers stays open with them.
            self._shared_variant = (self._shared_version, variant, shared_buffers)

        variant = self._shared_variant[1]
        if current is not None and current.equal(variant):
            return
        # Workers that C tasks started, with no shared objects, serve as
        # they are (only multiprocessing's key, for proxies, is missing);
        # else refused while workers run with other objects.
        if current is None and not self._has_shared_objects and self.props.workers_running:
            return
        super().set_shared_objects(variant)

    def _job(self, method, parameters, func, iterable, args, kwargs, lazy=False, streamed=False):
        """The _Map of a Python map form's call, all its arguments checked."""
        _check_map_arguments(method, func, iterable)
        options = _Options(method, **_options(method, parameters, args, kwargs))
        return _Map(self, func, iterable, options, lazy, streamed)

    def map(self, func, iterable, *args, **kwargs):
        """map(func, iterable, iterable_len=None, max_tasks_active=None,
        chunk_size=None, n_splits=None, worker_lifespan=None,
        progress_bar=False, concatenate_numpy_output=True, worker_init=None,
        worker_exit=None, task_timeout=None, worker_init_timeout=None,
        worker_exit_timeout=None, progress_bar_options=None,
        progress_bar_style=None): func applied to every item, as a list in
        item order, as MPIRE's WorkerPool.map(); a dict item is passed as
        keyword arguments, any other iterable but a string, bytes or numpy
        array as positional ones; before them the worker's id
        (pass_worker_id), the shared objects and the worker's state
        (use_worker_state). A numpy array is mapped in chunks of rows, one
        per call, and the results concatenated. The first exception raised
        by func is raised here, the worker's traceback in a note. Ctrl-C
        stops the map, terminates the workers and raises KeyboardInterrupt.
        The keywords are MPIRE's; one left None is the pool's own setting.

        map(task, items, cancellable): the C API, a Wpool.Task over a
        GLib.Variant array.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map(func, iterable, *args, **kwargs)
        job = self._job('map', _MAP_PARAMETERS, func, iterable, args, kwargs,
                        streamed=self.props.start_method != Wpool.StartMethod.THREADING)
        # Worker processes' results are decoded as their batches come.
        return (_RunningMap if job.threads else _RunningStream)(self, job).run()

    def imap(self, func, iterable, *args, **kwargs):
        """imap(func, iterable, …): map() as a generator, as MPIRE's imap(),
        with map()'s keywords but concatenate_numpy_output: results in item
        order as batches complete. The iterable is read as the workers need
        items, at most max_tasks_active batches ahead (by default two per
        worker): a generator that never ends works.

        imap(task, items, flags, cancellable): the C API, a Wpool.MapStream.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().imap(func, iterable, *args, **kwargs)
        return self._imap('imap', func, iterable, args, kwargs, Wpool.MapFlags.NONE)

    def imap_unordered(self, func, iterable, *args, **kwargs):
        """As imap(), results in the order batches complete."""
        return self._imap('imap_unordered', func, iterable, args, kwargs, Wpool.MapFlags.UNORDERED)

    def _imap(self, method, func, iterable, args, kwargs, flags):
        running = _RunningStream(self, self._job(method, _IMAP_PARAMETERS, func, iterable, args, kwargs, lazy=True))
        running.start(flags)
        results = running.results()
        # Dropped before its first next(), a generator runs no `finally`:
        # the map stops, and its settings go, all the same.
        weakref.finalize(results, running.abort).atexit = False
        return results

    def map_unordered(self, func, iterable, *args, **kwargs):
        """map_unordered(func, iterable, …): map()'s results in the order
        their batches complete, as MPIRE's map_unordered(), with imap()'s
        keywords.

        map_unordered(task, items, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map_unordered(func, iterable, *args, **kwargs)
        return list(self._imap('map_unordered', func, iterable, args, kwargs, Wpool.MapFlags.UNORDERED))

    def apply(self, func, args=(), kwargs=None, *rest, **options):
        """apply(func, args=(), kwargs=None, callback=None,
        error_callback=None, worker_init=None, worker_exit=None,
        task_timeout=None, worker_init_timeout=None,
        worker_exit_timeout=None): func(*args, **kwargs) on a worker (the
        shared objects first), as MPIRE's apply(); the callback is called
        with the result, the error callback with the exception, before
        this returns or raises.

        apply(task, item, cancellable): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().apply(func, args, kwargs, *rest, **options)
        job, callback, error_callback = self._apply_job('apply', func, args, kwargs, rest, options)
        try:
            result = _RunningMap(self, job).run()[0]
        except Exception as error:  # noqa: B902 - handed over, then raised as it is
            if error_callback is not None:
                error_callback(error)
            raise
        if callback is not None:
            callback(result)
        return result

    def apply_async(self, func, args=(), kwargs=None, *rest, **options):
        """apply_async(func, args=(), kwargs=None, callback=None,
        error_callback=None, …): apply() without waiting, as MPIRE's: a
        Wpool.AsyncResult, whose get() gives the result, and which `await`
        gives on an asyncio loop. The callback and error callback run on a
        thread of the pool's as the call ends.

        apply_async(task, item, cancellable, callback, *user_data): the C API.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().apply_async(func, args, kwargs, *rest, **options)
        return self._start_async(*self._apply_job('apply_async', func, args, kwargs, rest, options), single=True)

    def _apply_job(self, method, func, args, kwargs, rest, options):
        """The _Map of an apply() or apply_async() call, its callback and
        its error callback."""
        _check_map_arguments(method, func, ())
        options = _options(method, _APPLY_PARAMETERS, rest, options, _PROGRESS_KEYWORDS)
        callbacks = _pop_callbacks(options)
        return (_Map(self, func, [_Args(args, kwargs, method)], _Options(method, **options)),) + callbacks

    def map_async(self, func, iterable, *args, **kwargs):
        """map_async(func, iterable, …, callback=None, error_callback=None):
        map() without waiting, with map()'s keywords: a Wpool.AsyncResult,
        whose get() gives the results. `await pool.map_async(...)` runs on
        an asyncio loop, which is not blocked meanwhile; cancelled (as
        asyncio.run() does on Ctrl-C), the map stops and the workers are
        terminated.

        map_async(task, items, cancellable, callback, *user_data): the C
        API, the callback on the thread-default main context.
        """
        if isinstance(func, Wpool.Task):
            self._share_with_python_tasks(func)
            return super().map_async(func, iterable, *args, **kwargs)
        callbacks = _pop_callbacks(kwargs)
        job = self._job('map_async', _MAP_PARAMETERS, func, iterable, args, kwargs)
        return self._start_async(job, *callbacks, single=False)

    def _start_async(self, job, callback, error_callback, single):
        return AsyncResult(_RunningAsync(self, job), single, callback, error_callback)

    def get_insights(self):
        """As MPIRE's get_insights(), after Python maps: a dict of where the
        workers' time went, counting the items, {} if insights were off.
        After C API maps (a Wpool.Task): the C pool's GVariant, as in C."""
        return _insights.get_insights(self)

    def print_insights(self):
        """As MPIRE's print_insights(): get_insights() as a summary."""
        _insights.print_insights(self)

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

serve_mpi_ranks = _programs_serve_mpi_ranks
__all__.append('serve_mpi_ranks')
