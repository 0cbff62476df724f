#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Plain Python functions under every start method, through the override's
MPIRE-like API: SPAWN and FORKSERVER run them in Python worker programs,
which import this script as __mp_main__ (so it keeps its work under
`if __name__ == '__main__':`, as multiprocessing needs)."""

import asyncio
import contextlib
import io
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402

import taptestrunner  # noqa: E402
from wpool_testing import children_of, workers_left  # noqa: E402

METHODS = ('fork', 'threading', 'spawn', 'forkserver')
PROGRAMS = ('spawn', 'forkserver')


class CustomError(Exception):
    """Defined here: a worker program raises it as __mp_main__.CustomError,
    which the caller unpickles as its own."""

    def __init__(self, value):
        super().__init__('custom {}'.format(value))
        self.value = value


class Unpickled:
    """Notes where and how often it was unpickled."""

    def __init__(self):
        self.unpickled_in = None

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.unpickled_in = os.getpid()


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def where(shared, x):
    return os.getpid(), id(shared), shared.unpickled_in, x


def item_of(shared, x):
    return shared[x]


def grow(shared, x):
    shared.append(x)
    return os.getpid(), len(shared)


def counts_per_worker(worker_id, shared, state, x):
    """MPIRE's order: the worker's id, the shared objects, the state."""
    state['n'] = state.get('n', 0) + 1
    return worker_id, shared, state['n'], os.getpid(), x


def id_only(worker_id, x):
    return worker_id, os.getpid(), x


def fails_at_seven(x):
    if x == 7:
        raise CustomError(x)
    return x


def killed_at_three(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def sleeps(seconds):
    time.sleep(seconds)
    return seconds


def first_random(x):
    time.sleep(0.02)
    return os.getpid(), random.random()


def append_to(shared, x):
    shared.append(x)
    return x


def add_to_value(shared, x):
    with shared.get_lock():
        shared.value += x
    return x


def add_to_proxy(shared, x):
    with shared['lock']:
        shared['value'].value += x
    return x


# C-API tasks (Wpool.Task.new_for_python()): func(worker, shared, item).
def counter_init(worker, shared, item):
    worker.get_state().insert_value('seen', GLib.Variant('u', 0))
    return GLib.Variant('()', ())


def counted(worker, shared, item):
    state = worker.get_state()
    seen = state.lookup_value('seen', GLib.VariantType('u')).unpack() + 1
    state.insert_value('seen', GLib.Variant('u', seen))
    return GLib.Variant('(uu)', (os.getpid(), seen))


def counter_exit(worker, shared, item):
    seen = worker.get_state().lookup_value('seen', GLib.VariantType('u')).unpack()
    return GLib.Variant('(uu)', (worker.get_id(), seen))


def shared_at(worker, shared, item):
    return GLib.Variant('s', shared[item.unpack()])


def dies_on_negative(worker, shared, item):
    if item.unpack() < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return GLib.Variant('i', item.unpack())


def sleeps_ms(worker, shared, item):
    time.sleep(item.unpack() / 1000)
    return GLib.Variant('u', item.unpack())


# MPIRE's worker_init and worker_exit: the worker's id, the shared
# objects, the state, as the map's function.
def init_state(worker_id, shared, state):
    state.update(worker=worker_id, pid=os.getpid(), n=0, shared=shared)


def counted_item(worker_id, shared, state, x):
    state['n'] += 1
    return state['pid'], x


def exit_state(worker_id, shared, state):
    return state['worker'], state['pid'], state['n'], state['shared']


def pid_of_exit():
    return os.getpid()


def square_of_nothing():
    return 0


def init_fails():
    raise CustomError('init')


def exit_fails():
    raise CustomError('exit')


def init_hangs():
    time.sleep(30)


def pid_and(x):
    return os.getpid(), x


def nested_maps(x):
    """A task with pools of its own: libwpool's and multiprocessing's."""
    with Wpool.Pool(n_jobs=2, start_method='fork') as inner:
        ours = sum(inner.map(square, range(x)))
    with multiprocessing.get_context('fork').Pool(2) as theirs:
        others = sum(theirs.map(square, range(x)))
    return ours, others


def run_script(text, *args):
    """Runs @text as a script of its own: its exit status and output."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'script.py')
        with open(path, 'w') as script:
            script.write(textwrap.dedent(text))
        done = subprocess.run([sys.executable, path, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


class TestEveryStartMethod(unittest.TestCase):
    """One pool per start method, kept alive across the forms."""

    def test_forms(self):
        async def in_asyncio(pool):
            results = await pool.map_async(square, range(50))
            applied = await pool.apply_async(add, (1,), {'b': 2})
            return results, applied

        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                self.assertEqual(pool.map(square, range(200)), [x * x for x in range(200)])
                self.assertEqual(pool.map(add, [(1, 2), (3, 4)]), [3, 7])
                self.assertEqual(pool.map(add, [dict(a=5, b=1), dict(a=2)]), [6, 2])
                self.assertEqual(list(pool.imap(square, range(30), chunk_size=4)), [x * x for x in range(30)])
                self.assertEqual(sorted(pool.imap_unordered(square, range(30), chunk_size=4)),
                                 [x * x for x in range(30)])
                self.assertEqual(sorted(pool.map_unordered(square, range(30))), [x * x for x in range(30)])
                self.assertEqual(pool.apply(add, (1,), {'b': 41}), 42)
                self.assertEqual(asyncio.run(in_asyncio(pool)), ([x * x for x in range(50)], 3))

    def test_exceptions_keep_their_type(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                with self.assertRaises(CustomError) as raised:
                    pool.map(fails_at_seven, range(20), chunk_size=3)
                self.assertIs(type(raised.exception), CustomError)
                self.assertEqual(raised.exception.value, 7)
                note = '\n'.join(raised.exception.__notes__)
                self.assertIn('Raised in a worker', note)
                self.assertIn('fails_at_seven', note)
                # The pool goes on.
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])

    def test_timeout_is_a_timeout_error(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, task_timeout=0.2) as pool:
                with self.assertRaises(TimeoutError) as raised:
                    pool.map(sleeps, [0, 1, 0], chunk_size=1)
                self.assertIsInstance(raised.exception, Wpool.TaskTimeoutError)
                self.assertEqual(raised.exception.code, Wpool.Error.TIMED_OUT)
                self.assertIn('task timeout (0.2 s)', raised.exception.message)
                # Other errors are raised as they are: an item's own.
                with self.assertRaises(CustomError):
                    pool.map(fails_at_seven, [7])

    def test_random_differs_per_worker(self):
        # FORK and FORKSERVER workers are forked in C: reseeded at their
        # first task, they do not share one sequence.
        for method in ('fork', 'spawn', 'forkserver'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                draws = dict(reversed(pool.map(first_random, range(8), chunk_size=1)))
                self.assertEqual(len(draws), 2)
                self.assertEqual(len(set(draws.values())), 2, draws)


class TestWorkerIdAndState(unittest.TestCase):
    """MPIRE's pass_worker_id and use_worker_state, under every start
    method."""

    def assert_states(self, results, first_count=1):
        """Each worker's state counted its own items, from @first_count."""
        counts = {}
        for worker_id, _, count, _, _ in results:
            counts.setdefault(worker_id, []).append(count)
        for worker_id, seen in counts.items():
            self.assertEqual(sorted(seen), list(range(first_count, first_count + len(seen))), counts)
        return counts

    def test_id_shared_objects_state(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, shared_objects='dataset',
                                                         pass_worker_id=True, use_worker_state=True,
                                                         keep_alive=True) as pool:
                results = pool.map(counts_per_worker, range(12), chunk_size=1)
                self.assertEqual([x for *_, x in results], list(range(12)))
                self.assertEqual({shared for _, shared, *_ in results}, {'dataset'})
                self.assertLessEqual({worker_id for worker_id, *_ in results}, {0, 1})
                # A worker id is one worker: one process (threads: this one).
                for worker_id in {worker_id for worker_id, *_ in results}:
                    self.assertEqual(len({pid for w, _, _, pid, _ in results if w == worker_id}), 1)
                counts = self.assert_states(results)

                # The state lives as long as the worker: kept alive, it
                # counts on in the next map.
                again = pool.map(counts_per_worker, range(4), chunk_size=1)
                for worker_id, _, count, _, _ in again:
                    self.assertGreater(count, len(counts.get(worker_id, [])))

                # New workers start with a new state.
                pool.stop_and_join()
                self.assert_states(pool.map(counts_per_worker, range(6), chunk_size=1))

    def test_methods_and_defaults(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                # Neither by default.
                self.assertEqual(pool.map(square, range(4)), [0, 1, 4, 9])
                pool.pass_on_worker_id()
                results = pool.map(id_only, range(6), chunk_size=1)
                self.assertEqual([x for *_, x in results], list(range(6)))
                self.assertLessEqual({worker_id for worker_id, _, _ in results}, {0, 1})
                pool.pass_on_worker_id(False)
                pool.set_shared_objects('shared')
                pool.set_use_worker_state()
                results = pool.map(lambda_free_state, range(4), chunk_size=1)
                self.assertEqual([x for *_, x in results], list(range(4)))
                self.assertEqual({shared for shared, _, _ in results}, {'shared'})

    def test_bad_arguments(self):
        with self.assertRaisesRegex(TypeError, 'pass_worker_id must be a bool'):
            Wpool.Pool(pass_worker_id='yes')
        with self.assertRaisesRegex(TypeError, 'use_worker_state must be a bool'):
            Wpool.Pool(use_worker_state=1)
        with Wpool.Pool(n_jobs=1) as pool:
            with self.assertRaisesRegex(TypeError, 'pass_on must be a bool'):
                pool.pass_on_worker_id(None)


def slow_square(x):
    time.sleep(0.02)
    return x * x


class TestAsyncResult(unittest.TestCase):
    """apply_async() and map_async() return MPIRE's AsyncResult, which
    asyncio code can still await."""

    def test_get_callbacks_and_state(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                called, failed = [], []
                results = [pool.apply_async(slow_square, (x,), callback=called.append) for x in range(6)]
                self.assertEqual([result.get() for result in results], [x * x for x in range(6)])
                for result in results:
                    self.assertTrue(result.ready())
                    self.assertTrue(result.successful())
                # Called on the pool's thread as each map ended, before get() returned.
                self.assertEqual(sorted(called), [x * x for x in range(6)])

                mapped = pool.map_async(slow_square, range(10), callback=called.append)
                mapped.wait()
                self.assertEqual(mapped.get(timeout=60), [x * x for x in range(10)])
                self.assertEqual(called[-1], [x * x for x in range(10)])

                failing = pool.apply_async(fails_at_seven, (7,), error_callback=failed.append)
                with self.assertRaises(CustomError):
                    failing.get()
                self.assertFalse(failing.successful())
                self.assertEqual(len(failed), 1)
                self.assertIs(type(failed[0]), CustomError)

    def test_not_ready(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                result = pool.apply_async(sleeps, (0.5,))
                self.assertFalse(result.ready())
                with self.assertRaises(ValueError):
                    result.successful()
                with self.assertRaises(TimeoutError):
                    result.get(timeout=0.01)
                result.wait(0.01)
                self.assertEqual(result.get(timeout=60), 0.5)

    def test_awaitable(self):
        async def both(pool):
            return await pool.map_async(square, range(5)), await pool.apply_async(add, 2, {'b': 3})

        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(asyncio.run(both(pool)), ([0, 1, 4, 9, 16], 5))
                # An AsyncResult that ended before it is awaited.
                result = pool.apply_async(square, 4)
                result.wait()
                self.assertEqual(asyncio.run(_await(result)), 16)

    def test_bad_arguments(self):
        with Wpool.Pool(n_jobs=1) as pool:
            with self.assertRaisesRegex(TypeError, 'callback must be callable'):
                pool.apply_async(square, 1, callback=3)
            with self.assertRaisesRegex(TypeError, 'error_callback must be callable'):
                pool.map_async(square, [1], error_callback='no')
            result = pool.apply_async(square, 2)
            with self.assertRaisesRegex(ValueError, 'timeout'):
                result.get(timeout=-1)
            self.assertEqual(result.get(), 4)


    def test_fork_beside_busy_threads(self):
        # Another Python thread may hold the GIL at the moment the pool
        # forks: its workers hung (without Wpool.set_fork_func(os.fork)),
        # here within some 30 maps, which the task timeout turns into an
        # error rather than a hung test.
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                garbage = [{'a': [i] * 3} for i in range(200)]
                del garbage

        threads = [threading.Thread(target=churn) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(40):
                with Wpool.Pool(n_jobs=2, start_method='fork', task_timeout=20) as pool:
                    result = pool.apply_async(square, 3)
                    self.assertEqual(pool.map(square, range(50)), [x * x for x in range(50)])
                    self.assertEqual(result.get(), 9)
        finally:
            stop.set()
            for thread in threads:
                thread.join()


class TestWorkerLifecycle(unittest.TestCase):
    """MPIRE's worker_init, worker_exit, get_exit_results() and the pool's
    lifecycle methods, for Python functions."""

    def test_init_and_exit(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, shared_objects='data',
                                                         pass_worker_id=True, use_worker_state=True) as pool:
                self.assertEqual(pool.get_exit_results(), [])
                results = pool.map(counted_item, range(20), chunk_size=2, worker_init=init_state,
                                   worker_exit=exit_state)
                self.assertEqual([x for _, x in results], list(range(20)))
                exits = pool.get_exit_results()
                # One per worker, in worker order; what each counted, with
                # the state its worker_init made.
                self.assertEqual([worker for worker, _, _, _ in exits], [0, 1])
                self.assertEqual(sum(n for _, _, n, _ in exits), 20)
                self.assertEqual({shared for _, _, _, shared in exits}, {'data'})
                if method != 'threading':
                    self.assertLessEqual({pid for pid, _ in results}, {pid for _, pid, _, _ in exits})
                # A map without them has none, as MPIRE's.
                self.assertEqual(len(pool.map(counted_item, range(3), worker_init=init_state)), 3)
                self.assertEqual(pool.get_exit_results(), [])

    def test_errors_raise_as_they_were(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                with self.assertRaises(CustomError) as caught:
                    pool.map(square, range(10), worker_init=init_fails)
                self.assertEqual(caught.exception.value, 'init')
                with self.assertRaises(CustomError) as caught:
                    pool.map(square, range(10), worker_exit=exit_fails)
                self.assertEqual(caught.exception.value, 'exit')
                with self.assertRaises(CustomError):
                    pool.get_exit_results()
                # Said once: the pool goes on, and leaving it raises nothing.
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])
                with self.assertRaisesRegex(TypeError, 'worker_exit must be callable'):
                    pool.map(square, range(3), worker_exit=3)
                with self.assertRaisesRegex(ValueError, 'worker_init_timeout'):
                    pool.map(square, range(3), worker_init_timeout=0)

    def test_init_timeout(self):
        for method in ('fork', 'spawn'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=1, start_method=method) as pool:
                started = time.monotonic()
                with self.assertRaises(Wpool.TaskTimeoutError) as caught:
                    pool.map(square, range(3), worker_init=init_hangs, worker_init_timeout=0.3)
                self.assertIn('worker-init', caught.exception.message)
                self.assertLess(time.monotonic() - started, 20)
                # The pool's own setting again: none.
                self.assertEqual(pool.props.worker_init_timeout, 0)
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])

    def test_keep_alive_and_stop_and_join(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                first = pool.map(pid_and, range(8), chunk_size=1, worker_exit=pid_of_exit)
                self.assertTrue(pool.props.workers_running)
                self.assertEqual(pool.get_exit_results(), [])
                # The same worker_exit: the same workers serve the next map.
                second = pool.map(pid_and, range(8), chunk_size=1, worker_exit=pid_of_exit)

                # The same worker_exit (MPIRE's apply_async() takes it too).
                pending = pool.apply_async(sleeps, (0.2,), worker_exit=pid_of_exit)
                self.assertTrue(pool.stop_and_join(keep_alive=True))
                self.assertTrue(pending.ready())
                self.assertTrue(pool.props.workers_running)
                pool.join()
                self.assertFalse(pool.props.workers_running)
                exits = pool.get_exit_results()
                self.assertEqual(len(exits), 2)
                if method != 'threading':
                    # Both maps and the apply ran in the workers that exited
                    # now: kept alive, not restarted.
                    self.assertLessEqual({pid for pid, _ in first + second}, set(exits))
                # Another worker_init restarts kept-alive workers.
                before = pool.map(pid_and, range(8), chunk_size=1, worker_init=pid_of_exit)
                after = pool.map(pid_and, range(8), chunk_size=1, worker_init=square_of_nothing)
                if method != 'threading':
                    self.assertFalse({pid for pid, _ in before} & {pid for pid, _ in after})
                with self.assertRaisesRegex(TypeError, 'keep_alive'):
                    pool.stop_and_join(keep_alive=1)
                pool.set_keep_alive(False)
                self.assertFalse(pool.props.keep_alive)

    def test_terminate(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                pending = pool.apply_async(sleeps, (0.5,))
                pool.terminate()
                with self.assertRaisesRegex(RuntimeError, 'terminated'):
                    pending.get(timeout=30)
                self.assertFalse(pool.props.workers_running)
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])
        self.assertEqual(workers_left(os.getpid()), set())

    def test_order_tasks_and_daemon(self):
        with self.assertRaisesRegex(NotImplementedError, 'order_tasks'):
            Wpool.Pool(n_jobs=2, order_tasks=True)
        with Wpool.Pool(n_jobs=2, order_tasks=False) as pool:
            pool.set_order_tasks(False)
            with self.assertRaisesRegex(NotImplementedError, 'pass_worker_id'):
                pool.set_order_tasks()
        with self.assertRaisesRegex(TypeError, 'daemon'):
            Wpool.Pool(n_jobs=2, daemon='no')
        # daemon=False, as MPIRE's, lets a task make pools of its own (any
        # libwpool pool does).
        for method in ('fork', 'spawn', 'forkserver'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, daemon=False) as pool:
                self.assertEqual(pool.map(nested_maps, [3, 4], chunk_size=1), [(5, 5), (14, 14)])
        self.assertEqual(workers_left(os.getpid()), set())


class TestPoolsAreFreed(unittest.TestCase):
    """A Python map's tasks hold their pool and map weakly: their closures,
    held by C tasks, are out of the garbage collector's sight, and a pool
    used once was never freed (a GObject and its workers' state each)."""

    def test_freed(self):
        import gc
        import weakref

        for method in METHODS:
            with self.subTest(method=method):
                with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                    self.assertEqual(pool.map(square, range(10), worker_init=square_of_nothing,
                                              worker_exit=pid_of_exit)[-1], 81)
                    self.assertEqual(pool.apply_async(square, 3).get(), 9)
                    self.assertEqual(list(pool.imap(square, range(4))), [0, 1, 4, 9])
                freed = weakref.ref(pool)
                del pool
                gc.collect()
                self.assertIsNone(freed())


async def _await(awaitable):
    return await awaitable


class TestArgumentsAsMpire(unittest.TestCase):
    """Items and apply()'s args unpacked as MPIRE unpacks them."""

    def test_unpacking(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                # Any iterable but a string or bytes is positional
                # arguments, a dict keyword ones, anything else one.
                self.assertEqual(pool.map(add, [[1, 2], (3, 4), {'a': 5, 'b': 6}, 7, range(2, 4)]),
                                 [3, 7, 11, 7, 5])
                self.assertEqual(pool.map(len, ['abc', b'de']), [3, 2])
                self.assertEqual(pool.map(add, [[1, 2], [3, 4]]), [3, 7])
                # apply(func, 3) is func(3); a dict alone is keywords.
                self.assertEqual(pool.apply(add, 3), 3)
                self.assertEqual(pool.apply(add, {'a': 1, 'b': 2}), 3)
                self.assertEqual(pool.apply(add, [1], {'b': 5}), 6)
                self.assertEqual(pool.apply(len, 'four'), 4)


def lambda_free_state(shared, state, x):
    state.setdefault('seen', []).append(x)
    return shared, len(state['seen']), x


class TestWorkerPrograms(unittest.TestCase):
    """What SPAWN and FORKSERVER add: Python processes of their own."""

    def test_shared_objects_per_start_method(self):
        shared = Unpickled()
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, shared_objects=shared,
                                                         keep_alive=True) as pool:
                rows = []
                # Both workers (one may start late, and the other take
                # every item).
                for _ in range(10):
                    rows += pool.map(where, range(40), chunk_size=1)
                    self.assertEqual([x for _, _, _, x in rows[-40:]], list(range(40)))
                    pids = {pid for pid, _, _, _ in rows}
                    if len(pids) == 2:
                        break
                self.assertEqual(len(pids), 2)
                self.assertNotIn(os.getpid(), pids)
                if method == 'spawn':
                    # A copy per worker, unpickled in it.
                    for pid in pids:
                        copies = {(address, unpickled_in) for p, address, unpickled_in, _ in rows if p == pid}
                        self.assertEqual(len(copies), 1)
                        self.assertEqual(copies.pop()[1], pid)
                else:
                    # One copy, unpickled in the fork server before it
                    # forked: the same address in every worker.
                    self.assertEqual(len({address for _, address, _, _ in rows}), 1)
                    self.assertEqual(len({unpickled_in for _, _, unpickled_in, _ in rows}), 1)
                    self.assertNotIn(rows[0][2], pids | {os.getpid()})
                # Kept alive: the same workers serve the next map.
                self.assertLessEqual({pid for pid, _, _, _ in pool.map(where, range(40), chunk_size=1)}, pids)
        self.assertIsNone(shared.unpickled_in)

    def test_copies_are_the_workers_own(self):
        dataset = []
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, shared_objects=dataset) as pool:
                rows = pool.map(grow, range(20), chunk_size=1)
                for pid in {pid for pid, _ in rows}:
                    lengths = [length for p, length in rows if p == pid]
                    self.assertEqual(lengths, list(range(1, len(lengths) + 1)))
        self.assertEqual(dataset, [])

    def test_set_shared_objects(self):
        with Wpool.Pool(n_jobs=1, start_method='spawn', keep_alive=True) as pool:
            pool.set_shared_objects([7])
            first_pid, length = pool.map(grow, [1])[0]
            self.assertEqual(length, 2)
            # The idle worker restarts with the new objects, as MPIRE's.
            pool.set_shared_objects([8, 9])
            pid, length = pool.map(grow, [1])[0]
            self.assertEqual(length, 3)
            self.assertNotEqual(pid, first_pid)

    def test_worker_killed(self):
        for method in ('fork',) + PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                # A RuntimeError, as MPIRE's, and a GLib.Error.
                with self.assertRaises(Wpool.WorkerDiedError) as raised:
                    pool.map(killed_at_three, range(8), chunk_size=1)
                self.assertIsInstance(raised.exception, RuntimeError)
                self.assertIsInstance(raised.exception, GLib.Error)
                self.assertIsInstance(raised.exception.__cause__, GLib.Error)
                self.assertTrue(raised.exception.matches(Wpool.error_quark(), Wpool.Error.WORKER_DIED),
                                raised.exception.message)
                self.assertIn('Item 3', raised.exception.message)
                self.assertIn('signal 9', raised.exception.message)
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])

    def test_worker_killed_keep_going(self):
        # The override has no keep-going: the C API's, with a Python task.
        task = Wpool.Task.new_for_python(dies_on_negative)
        task.set_result_type(GLib.VariantType('i'))
        for method in PROGRAMS:
            with self.subTest(method=method):
                pool = Wpool.Pool(n_jobs=2, start_method=method, chunk_size=1)
                stream = pool.imap(task, GLib.Variant('ai', [1, -2, 3, 4, -5, 6]), Wpool.MapFlags.KEEP_GOING, None)
                outcomes = {}
                while True:
                    found, index, result, error = stream.next()
                    if not found:
                        break
                    outcomes[index] = result.unpack() if result is not None else error
                self.assertEqual({i: o for i, o in outcomes.items() if not isinstance(o, GLib.Error)},
                                 {0: 1, 2: 3, 3: 4, 5: 6})
                for index in (1, 4):
                    self.assertTrue(outcomes[index].matches(Wpool.error_quark(), Wpool.Error.WORKER_DIED))

    def test_timeout(self):
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, task_timeout=0.5) as pool:
                started = time.monotonic()
                # A TimeoutError, as MPIRE's.
                with self.assertRaises(TimeoutError) as raised:
                    pool.map(sleeps, [0, 30, 0], chunk_size=1)
                self.assertIs(type(raised.exception), Wpool.TaskTimeoutError)
                self.assertIn('Item 1', str(raised.exception))
                self.assertTrue(raised.exception.matches(Wpool.error_quark(), Wpool.Error.TIMED_OUT))
                self.assertTrue(raised.exception.__cause__.matches(Wpool.error_quark(), Wpool.Error.TIMED_OUT))
                self.assertLess(time.monotonic() - started, 10)
                # Through the C API, keep-going: the slow item fails alone.
                task = Wpool.Task.new_for_python(sleeps_ms)
                task.set_result_type(GLib.VariantType('u'))
                stream = pool.imap(task, GLib.Variant('au', [1, 30000, 1]), Wpool.MapFlags.KEEP_GOING, None)
                outcomes = []
                while True:
                    found, index, result, error = stream.next()
                    if not found:
                        break
                    outcomes.append(result.unpack() if result is not None else error.code)
                self.assertEqual(outcomes, [1, Wpool.Error.TIMED_OUT, 1])

    def test_progress(self):
        for method in PROGRAMS:
            with self.subTest(method=method):
                output = io.StringIO()
                with contextlib.redirect_stderr(output), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                    completed = []
                    pool.connect('notify::n-completed', lambda pool, pspec: completed.append(pool.props.n_completed))
                    results = pool.map(square, range(300), chunk_size=10, progress_bar=True)
                self.assertEqual(results, [x * x for x in range(300)])
                self.assertIn('300/300', output.getvalue())
                self.assertEqual(completed, sorted(completed))
                self.assertEqual(completed[-1], 30)

    def test_state_and_worker_init_exit(self):
        exit_task = Wpool.Task.new_for_python(counter_exit)
        exit_task.set_result_type(GLib.VariantType('(uu)'))
        task = Wpool.Task.new_for_python(counted)
        task.set_result_type(GLib.VariantType('(uu)'))
        self.assertEqual(task.props.module_path, __name__)
        self.assertEqual(task.props.symbol, 'counted')
        for method in PROGRAMS:
            with self.subTest(method=method):
                pool = Wpool.Pool(n_jobs=2, start_method=method, chunk_size=1, keep_alive=True)
                pool.set_worker_init(Wpool.Task.new_for_python(counter_init))
                pool.set_worker_exit(exit_task)
                # The Python maps' workers are the same programs.
                self.assertEqual(pool.map(square, range(4)), [0, 1, 4, 9])
                first = pool.map(task, GLib.Variant('ai', range(12)), None).unpack()
                second = pool.map(task, GLib.Variant('ai', range(6)), None).unpack()
                # Each process counts its own items, across both maps.
                for pid in {pid for pid, _ in first + second}:
                    seen = [count for p, count in first + second if p == pid]
                    self.assertEqual(seen, list(range(1, len(seen) + 1)))
                self.assertNotIn(os.getpid(), {pid for pid, _ in first})
                self.assertTrue(pool.stop_and_join())
                exits = pool.get_exit_results().unpack()
                self.assertEqual(sorted(worker_id for worker_id, _ in exits), [0, 1])
                self.assertEqual(sum(seen for _, seen in exits), 18)

    def test_python_task_takes_python_shared_objects(self):
        task = Wpool.Task.new_for_python(shared_at)
        task.set_result_type(GLib.VariantType('s'))
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method,
                                                         shared_objects=['a', 'b', 'c']) as pool:
                self.assertEqual(pool.map(task, GLib.Variant('ai', [2, 0, 1]), None).unpack(), ['c', 'a', 'b'])
                # And with the Python maps' workers.
                self.assertEqual(pool.map(item_of, [1, 2]), ['b', 'c'])
                self.assertEqual(pool.apply(task, GLib.Variant('i', 1), None).unpack(), 'b')

    def test_ctrl_c_stops_map_async(self):
        async def main(pool):
            await pool.map_async(sleeps, [0.1] * 400, chunk_size=1)

        for method in PROGRAMS:
            with self.subTest(method=method):
                before = children_of(os.getpid())
                pool = Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True)
                timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGINT))
                started = time.monotonic()
                timer.start()
                try:
                    with self.assertRaises(KeyboardInterrupt), pool:
                        asyncio.run(main(pool))
                finally:
                    timer.cancel()
                    timer.join()
                # Generous, for a loaded machine: the map would take 20 s.
                self.assertLess(time.monotonic() - started, 8)
                self.assertFalse(pool.props.workers_running)
                self.assertEqual(children_of(os.getpid()) - before, set())

    def test_ctrl_c_to_the_process_group(self):
        # A terminal's Ctrl-C reaches the workers too: they ignore it.
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--ctrl-c'],
                                 stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            self.assertEqual(child.stdout.readline(), 'started\n')
            time.sleep(1)
            os.killpg(child.pid, signal.SIGINT)
            self.assertEqual(child.stdout.readline(), 'KeyboardInterrupt []\n')
        finally:
            child.stdout.close()
            child.wait(timeout=30)
        self.assertEqual(child.returncode, 0)


class TestWhatTravels(unittest.TestCase):
    def test_lambda_refused_without_dill(self):
        offset = 3
        for method in PROGRAMS:
            for func in (lambda x: x + offset, lambda x: x):
                with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                    with self.assertRaisesRegex(TypeError, 'define it at module level, or pass use_dill=True'):
                        pool.map(func, range(3))
                    with self.assertRaisesRegex(TypeError, 'define it at module level$'):
                        Wpool.Task.new_for_python(func)
                    self.assertFalse(pool.props.workers_running)

    def test_dill(self):
        try:
            import dill  # noqa: F401
        except ImportError:
            self.skipTest('dill is not installed')
        offset = 3

        class Local:
            def __init__(self, n):
                self.n = n

        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, use_dill=True,
                                                         shared_objects=Local(100)) as pool:
                self.assertEqual(pool.map(lambda shared, x: shared.n + x + offset, range(5)),
                                 [103, 104, 105, 106, 107])
                self.assertEqual([local.n for local in pool.map(lambda shared, x: Local(x), range(3))], [0, 1, 2])

    def test_dill_missing(self):
        saved = sys.modules.get('dill')
        sys.modules['dill'] = None
        try:
            with self.assertRaisesRegex(ImportError, 'use_dill=True needs dill.*python3-dill'):
                Wpool.Pool(start_method='spawn', use_dill=True)
        finally:
            if saved is None:
                del sys.modules['dill']
            else:
                sys.modules['dill'] = saved
        with self.assertRaisesRegex(TypeError, 'use_dill'):
            Wpool.Pool(use_dill=1)

    def test_multiprocessing_objects(self):
        for method in PROGRAMS:
            with self.subTest(method=method):
                # The default (“fork”) context's locks: refused, before
                # anything starts.
                for shared in (multiprocessing.Lock(), multiprocessing.Value('i', 0), [multiprocessing.Array('i', 3)]):
                    with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=shared) as pool:
                        with self.assertRaisesRegex(TypeError, r'made in multiprocessing\'s “fork” context.*'
                                                    r'get_context\("spawn"\)\.Lock\(\).*Manager\(\).*'
                                                    r'start_method="fork"'):
                            pool.map(append_to, range(3))
                        self.assertFalse(pool.props.workers_running)

                # Shared memory without a lock, and the “spawn” context's
                # locks, are shared as multiprocessing shares them with
                # the processes it spawns.
                array = multiprocessing.Array('d', 50, lock=False)
                with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=array) as pool:
                    pool.map(lambda_free_store, range(50))
                self.assertEqual(list(array), [x / 2 for x in range(50)])
                value = multiprocessing.get_context('spawn').Value('i', 0)
                with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=value) as pool:
                    pool.map(add_to_value, range(100), chunk_size=1)
                self.assertEqual(value.value, sum(range(100)))

    def test_manager_proxies(self):
        with multiprocessing.Manager() as manager:
            for method in ('fork',) + PROGRAMS:
                with self.subTest(method=method):
                    # Used by the caller first: forked workers must not
                    # share its connection to the manager.
                    shared = manager.list([-1])
                    with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=shared) as pool:
                        self.assertEqual(pool.map(append_to, range(20), chunk_size=1), list(range(20)))
                    self.assertEqual(sorted(shared), list(range(-1, 20)))
                    shared = {'value': manager.Value('i', 0), 'lock': manager.Lock()}
                    with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=shared) as pool:
                        pool.map(add_to_proxy, range(30), chunk_size=1)
                    self.assertEqual(shared['value'].value, sum(range(30)))

    def test_variant_shared_objects_refused(self):
        with Wpool.Pool(n_jobs=2, start_method='spawn', shared_objects=GLib.Variant('i', 1)) as pool:
            with self.assertRaisesRegex(TypeError, 'GLib.Variant, for C tasks'):
                pool.map(square, range(3))

    def test_unpicklable_item_and_result(self):
        with Wpool.Pool(n_jobs=2, start_method='spawn') as pool:
            with self.assertRaises(TypeError):
                pool.map(square, [threading.Lock()])
            self.assertFalse(pool.props.workers_running)
            with self.assertRaisesRegex(RuntimeError, 'cannot be sent back'):
                pool.map(threading.Lock, [()])

    def test_main_script_that_fails_in_the_worker(self):
        code, output = run_script('''
            import gi
            gi.require_version('Wpool', '1')
            from gi.repository import GLib, Wpool
            if __name__ != '__main__':
                import no_such_module_for_wpool

            def task(x):
                return x

            if __name__ == '__main__':
                try:
                    Wpool.Pool(n_jobs=1, start_method='spawn').map(task, [1])
                except GLib.Error as error:
                    print('caught', error.message)
            ''')
        self.assertEqual(code, 0, output)
        self.assertIn('cannot start: ModuleNotFoundError: No module named \'no_such_module_for_wpool\'', output)
        self.assertIn('Traceback', output)

    def test_main_script_without_main_guard(self):
        # multiprocessing's own error, not workers started recursively.
        code, output = run_script('''
            import gi
            gi.require_version('Wpool', '1')
            from gi.repository import GLib, Wpool

            def task(x):
                return x

            try:
                print('result', Wpool.Pool(n_jobs=1, start_method='forkserver').map(task, [1]))
            except GLib.Error as error:
                print('caught', error.message)
            ''')
        self.assertEqual(code, 0, output)
        self.assertIn('caught The fork server cannot start: ', output)
        self.assertIn(' cannot start: RuntimeError: ', output)
        self.assertIn('bootstrapping phase', output)
        self.assertIn("if __name__ == '__main__':", output)

    def test_interactive_main_refused(self):
        done = subprocess.run([sys.executable, '-c', textwrap.dedent('''
            import gi
            gi.require_version('Wpool', '1')
            from gi.repository import Wpool
            def task(x):
                return x
            try:
                Wpool.Pool(n_jobs=1, start_method='spawn').map(task, [1])
            except TypeError as error:
                print(error)
            ''')], capture_output=True, text=True, timeout=60)
        self.assertIn('interactive __main__', done.stdout, done.stderr)


def lambda_free_store(shared, x):
    shared[x] = x / 2
    return x


def ctrl_c_scenario():
    """Run by test_ctrl_c_to_the_process_group in a process group of its
    own, which gets SIGINT."""
    print('started', flush=True)
    try:
        with Wpool.Pool(n_jobs=2, start_method='spawn') as pool:
            pool.map(sleeps, [0.1] * 400, chunk_size=1)
        print('finished', flush=True)
    except KeyboardInterrupt:
        print('KeyboardInterrupt', sorted(children_of(os.getpid())), flush=True)


if __name__ == '__main__':
    if sys.argv[1:2] == ['--ctrl-c']:
        ctrl_c_scenario()
    else:
        taptestrunner.main()
