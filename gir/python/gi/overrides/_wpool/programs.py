# SPDX-License-Identifier: LGPL-2.1-or-later
#

import base64
import importlib
import itertools
import os
import pickle
import signal
import sys
import traceback

from gi.repository import GLib

from . import Wpool
from . import buffers as _buffers
from .batches import _BYTES, _batch_task, _bytes_variant, _codec, _run_pickled_batch, _variant_bytes
from .lifecycle import _program_task_name, _resolve_program_task
from .tasks import new_task

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
# ('pickle' or 'dill'), multiprocessing's key, the pickled objects (empty
# for none), and a serial number unique to this pickling in the caller: a
# worker that serves pool after pool (a rank of an MPI job) unpickles
# each pool's objects, once.
_SHARED = GLib.VariantType.new('(sayayt)')
_shared_serials = itertools.count(1)


def _shared_variant(codec_name, authkey, pickled):
    """The C pool's shared objects for pickled Python ones."""
    return GLib.Variant.new_tuple(GLib.Variant('s', codec_name), _bytes_variant(authkey), _bytes_variant(pickled),
                                  GLib.Variant('t', next(_shared_serials)))
# The caller's sys.path first, where it may have found gi and this file.
_PROGRAM = (
    'import base64, pickle, sys\n'
    'sys.path = pickle.loads(base64.b64decode(sys.argv[1]))["sys_path"]\n'
    'import gi\n'
    'gi.require_version("Wpool", "1")\n'
    'from gi.repository import Wpool\n'
    'sys.exit(sys.modules["gi.overrides._wpool.programs"]._worker_main(sys.argv))\n'
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
        # What holds the memfds of the shared objects, under 'spawn' and
        # 'forkserver'.
        shared_buffers = None

        def reducer_override(self, obj):
            if start_method == 'mpi' and (isinstance(obj, (synchronize.SemLock, Wpool.SharedArray)) or
                                          type(obj) in reduction.ForkingPickler._extra_reducers):
                # Named semaphores and shared memory are one machine's.
                raise TypeError(
                    'The shared objects cannot be sent to “mpi” workers, which may run on other machines: {!r} '
                    'is memory or a lock of this machine. Share plain values, and return what the workers '
                    'compute'.format(obj))
            if isinstance(obj, synchronize.SemLock) and obj._semlock.name is None:
                # Unlinked at once in the “fork” context: nothing can open it.
                raise TypeError(
                    'The shared objects cannot be sent to “{}” workers: {!r} was made in multiprocessing\'s '
                    '“fork” context (the default), whose locks only forked processes inherit. Use '
                    'multiprocessing.get_context("spawn").Lock() (or .Value(), .Array()), a lock=False '
                    'Value or Array, a multiprocessing.Manager()\'s objects, or start_method="fork"'.format(
                        start_method, obj))
            if isinstance(obj, Wpool.SharedArray) and self.shared_buffers is not None:
                return self.shared_buffers.reduce_shared_array(obj)
            # ctypes objects in shared memory (dill knows no better than
            # copying them).
            reduce = reduction.ForkingPickler._extra_reducers.get(type(obj))
            return reduce(obj) if reduce is not None else NotImplemented

    return Pickler


def _dumps_shared(codec, objects, start_method):
    """The shared objects pickled for worker programs, as multiprocessing
    pickles a process's arguments as it spawns it: its shared memory and
    named locks travel as such, not as copies. Their big buffers go to a
    sealed memfd under 'spawn' and 'forkserver' (see buffers.py): returns
    the pickle and the SharedBuffers that hold that memfd open (None if
    there is none), which the caller keeps as long as it shares them."""
    import io
    from multiprocessing import context, reduction

    pickler = _sharing_pickler(codec.Pickler if codec is not pickle else reduction.ForkingPickler, start_method)
    data = io.BytesIO()
    pickler = pickler(data, pickle.HIGHEST_PROTOCOL)
    shared_buffers = None
    if start_method in ('spawn', 'forkserver'):
        shared_buffers = pickler.shared_buffers = _buffers.SharedBuffers()
        pickler.persistent_id = shared_buffers.persistent_id
    context.set_spawning_popen(_SpawningPopen)
    try:
        pickler.dump(objects)
    finally:
        context.set_spawning_popen(None)
    if shared_buffers is not None:
        shared_buffers.seal()
        if shared_buffers.count == 0 and not shared_buffers.array_fds:
            shared_buffers = None
    return data.getvalue(), shared_buffers


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
        self.serial = None
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
        if self.prep is None:
            # A rank of the caller's MPI job: the caller's script runs here
            # already, as __main__ (serve_mpi_ranks()).
            if ours:
                process.current_process().authkey = _variant_bytes(shared.get_child_value(1))
        else:
            data = dict(pickle.loads(base64.b64decode(self.prep)))
            if ours:
                data['authkey'] = _variant_bytes(shared.get_child_value(1))
            # As in multiprocessing's spawned children: a script that
            # starts workers at import (no `if __name__ == '__main__':`) is
            # told so, rather than starting workers recursively.
            process.current_process()._inheriting = True
            try:
                spawn.prepare(data)
            finally:
                process.current_process()._inheriting = False
        self.prepared = True

    def _take_shared(self, shared):
        """The shared objects of the pool being served: a C pool's, or
        Python ones unpickled once per pickling."""
        if shared is None or not shared.get_type().equal(_SHARED):
            # A C pool's shared objects, or none.
            self.python_objects = False
            self.objects = None
            self.variant = shared
            return
        serial = shared.get_child_value(3).get_uint64()
        if self.python_objects and serial == self.serial:
            return
        self.python_objects = True
        self.serial = serial
        self.variant = None
        self.objects = None
        objects = _variant_bytes(shared.get_child_value(2))
        if objects:
            self.objects = _buffers.loads(_codec(shared.get_child_value(0).get_string()), objects)

    def _resolve(self, module, name, shared):
        if not self.prepared:
            self._prepare(shared)
        self._take_shared(shared)
        if module == __name__ and name.startswith(_RUNNER + '.'):
            codec = _codec(name[len(_RUNNER) + 1:])
            objects = self.objects

            def run(worker, shared_objects, item):
                return _run_pickled_batch(worker, item, codec, objects)

            return _batch_task(run)
        if module == __name__:
            task = _resolve_program_task(name, lambda: self.objects)
            if task is not None:
                return task

        # Task.new_for_python(): func(worker, shared_objects, item).
        func = sys.modules['__main__'] if module == '__main__' else importlib.import_module(module)
        for part in name.split('.'):
            func = getattr(func, part)
        # A Python pool's: its Python shared objects, not their wrapping.
        shared_objects = self.objects if self.python_objects else self.variant
        return new_task(lambda worker, _shared_objects, item: func(worker, shared_objects, item))


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


def serve_mpi_ranks():
    """Under `mpirun -np N`, makes ranks 1 to N-1 the workers of rank 0's
    'mpi' pools: on those ranks it serves them, running the script's own
    functions, and exits the process once rank 0 is done. On rank 0 it
    starts MPI, so that the other ranks are let go when the script ends,
    and returns; outside such a job it returns at once. Call it in the
    script's `if __name__ == '__main__':` block, after the functions the
    pools run are defined and before any pool starts, as mpi4py.futures'
    scripts do under `python -m mpi4py.futures`."""
    size = os.environ.get('OMPI_COMM_WORLD_SIZE', '')
    rank = os.environ.get('OMPI_COMM_WORLD_RANK', '0')
    if not size.isdigit() or int(size) < 2:
        return
    if rank != '0':
        # As MPIRE's workers: a terminal's Ctrl-C goes to the caller alone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    program = _WorkerProgram(None)
    try:
        Wpool.Worker.serve(sys.argv[:1], Wpool.ServeFlags.TAKE_SHARED_OBJECTS | Wpool.ServeFlags.MPI_RANKS,
                           program.resolve)
    except GLib.Error as error:
        if rank == '0' and error.matches(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT):
            return
        sys.stderr.write('wpool: MPI rank {}: {}\n'.format(rank, error.message))
        sys.stderr.flush()
        os._exit(1)
    _end_worker()


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


def _runner_task(argv, use_dill):
    """The task of worker programs @argv that runs a Python pool's batches,
    pickled with dill if @use_dill."""
    task = Wpool.Task.new_for_program(argv, __name__, '{}.{}'.format(_RUNNER, 'dill' if use_dill else 'pickle'))
    task.set_result_type(_BYTES)
    return task


def _lifecycle_program_task(argv, what, func, head, use_dill):
    """The task of worker programs @argv that calls worker_init or
    worker_exit (@what 'init' or 'exit'), sent by reference (by value with
    dill) in the task's name."""
    codec_name = 'dill' if use_dill else 'pickle'
    task = Wpool.Task.new_for_program(argv, __name__, _program_task_name(what, func, head, codec_name))
    if what == 'exit':
        task.set_result_type(_BYTES)
    return task
