#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libwpool through PyGObject: Python functions as tasks under THREADING."""

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import gi
gi.require_version('Wpool', '1')
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib, GObject, Wpool  # noqa: E402

import taptestrunner  # noqa: E402
from wpool_testing import children_of  # noqa: E402

# The examples' Python modules, which some tests run as they are.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'examples', 'python'))


def square(worker, shared_objects, item):
    return GLib.Variant('d', item.unpack() ** 2)


def run_async(pool, task, items, cancellable=None, on_started=None):
    """Runs map_async on a main loop; returns (results or None, error or None)."""
    loop = GLib.MainLoop()
    outcome = {}

    def done(source, result):
        outcome['thread'] = threading.current_thread()
        try:
            outcome['results'] = source.map_finish(result)
        except GLib.Error as error:
            outcome['error'] = error
        loop.quit()

    pool.map_async(task, items, cancellable, done)
    if on_started is not None:
        on_started()
    loop.run()
    assert outcome['thread'] is threading.main_thread()
    return outcome.get('results'), outcome.get('error')


class TestPool(unittest.TestCase):
    def setUp(self):
        self.pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.THREADING)

    def test_properties(self):
        pool = Wpool.Pool()
        self.assertEqual(pool.props.n_jobs, os.cpu_count())
        self.assertEqual(pool.props.start_method, Wpool.StartMethod.FORK)
        self.assertFalse(pool.props.keep_alive)
        self.assertEqual(pool.props.chunk_size, 0)
        self.assertIsNone(pool.props.shared_objects)
        self.assertFalse(pool.props.workers_running)
        self.assertEqual(self.pool.get_n_jobs(), 2)

    def test_map_sync(self):
        task = Wpool.Task.new(square)
        task.set_result_type(GLib.VariantType.new('d'))
        results = self.pool.map(task, GLib.Variant('ad', range(100)), None)
        self.assertEqual(results.get_type_string(), 'ad')
        self.assertEqual(results.unpack(), [float(x * x) for x in range(100)])

    def test_map_sync_boxed(self):
        task = Wpool.Task.new(lambda worker, shared, item: GLib.Variant('s', item.unpack().upper()))
        results = self.pool.map(task, GLib.Variant('as', ['a', 'b', 'c']), None)
        self.assertEqual(results.get_type_string(), 'av')
        self.assertEqual(results.unpack(), ['A', 'B', 'C'])

    def test_user_data(self):
        task = Wpool.Task.new(lambda worker, shared, item, offset: GLib.Variant('i', item.unpack() + offset), 100)
        self.assertEqual(self.pool.map(task, GLib.Variant('ai', [1, 2]), None).unpack(), [101, 102])

    def test_runs_on_worker_threads(self):
        seen = []

        def record(worker, shared, item):
            seen.append((threading.get_ident(), worker.get_id()))
            return GLib.Variant('b', True)

        self.pool.map(Wpool.Task.new(record), GLib.Variant('ai', range(20)), None)
        self.assertEqual(len(seen), 20)
        self.assertNotIn(threading.get_ident(), {ident for ident, _ in seen})
        self.assertTrue({worker_id for _, worker_id in seen} <= {0, 1})

    def test_shared_objects_tuple(self):
        def scale(worker, shared_objects, item):
            table, label, factor = shared_objects.unpack()
            self.assertEqual(worker.get_shared_objects(), shared_objects)
            return GLib.Variant('(sd)', (label, table[item.unpack()] * factor))

        self.pool.set_shared_objects(GLib.Variant('(adsd)', ([1.0, 2.0, 3.0], 'x', 10.0)))
        task = Wpool.Task.new(scale)
        task.set_result_type(GLib.VariantType.new('(sd)'))
        results = self.pool.map(task, GLib.Variant('au', [2, 0, 1]), None)
        self.assertEqual(results.unpack(), [('x', 30.0), ('x', 10.0), ('x', 20.0)])

    def test_shared_objects_refused_while_running(self):
        self.pool.props.keep_alive = True
        self.pool.set_shared_objects(GLib.Variant('i', 1))
        self.pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
        self.assertTrue(self.pool.props.workers_running)
        with self.assertRaises(GLib.Error) as caught:
            self.pool.set_shared_objects(GLib.Variant('i', 2))
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.WORKERS_RUNNING))
        self.pool.props.keep_alive = False
        self.assertFalse(self.pool.props.workers_running)
        self.pool.set_shared_objects(GLib.Variant('i', 2))
        self.assertEqual(self.pool.props.shared_objects.unpack(), 2)

    def test_fallible_properties_are_construct_time(self):
        # A property write cannot raise: the properties whose change can
        # fail are set at construction, and changed by methods that raise.
        for name in ('shared-objects', 'worker-init', 'worker-exit', 'cpu-ids'):
            flags = Wpool.Pool.find_property(name).flags
            self.assertTrue(flags & GObject.ParamFlags.CONSTRUCT_ONLY, name)
        pool = Wpool.Pool(n_jobs=2, start_method='threading', shared_objects=GLib.Variant('i', 1),
                          worker_init=Wpool.Task.new(square))
        self.assertEqual(pool.props.shared_objects.unpack(), 1)
        self.assertIsNotNone(pool.props.worker_init)
        # What a task cannot run under the start method fails every map,
        # as an exception, rather than be lost at construction.
        pool = Wpool.Pool(n_jobs=2, start_method='spawn', worker_init=Wpool.Task.new(square))
        for attempt in range(2):
            with self.assertRaises(GLib.Error) as caught:
                pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
            self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED))
            self.assertIn('constructed with a “worker-init” it cannot take', caught.exception.message)

    def test_python_exception_becomes_gerror(self):
        def fail_on_three(worker, shared, item):
            if item.unpack() == 3:
                raise ValueError('three is not allowed')
            return GLib.Variant('i', item.unpack())

        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(Wpool.Task.new(fail_on_three), GLib.Variant('ai', range(10)), None)
        error = caught.exception
        self.assertTrue(error.matches(Wpool.error_quark(), Wpool.Error.FAILED))
        self.assertTrue(error.message.startswith('Item 3 on worker '), error.message)
        self.assertIn('ValueError: three is not allowed', error.message)
        self.assertIn('Traceback (most recent call last)', error.message)
        self.assertIn('fail_on_three', error.message)

        # The pool stays usable.
        self.assertEqual(self.pool.map(Wpool.Task.new(square), GLib.Variant('ad', [2.0]), None).unpack(), [4.0])

    def test_glib_error_keeps_domain_and_code(self):
        def not_found(worker, shared, item):
            raise GLib.Error.new_literal(Gio.io_error_quark(), 'no such thing', Gio.IOErrorEnum.NOT_FOUND)

        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(Wpool.Task.new(not_found), GLib.Variant('ai', [7]), None)
        self.assertTrue(caught.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND))
        self.assertEqual(caught.exception.message, 'Item 0 on worker 0: no such thing')

    def test_returning_none_is_an_error(self):
        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(Wpool.Task.new(lambda worker, shared, item: None), GLib.Variant('ai', [1]), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.FAILED))

    def test_wrong_result_type(self):
        task = Wpool.Task.new(square)
        task.set_result_type(GLib.VariantType.new('i'))
        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(task, GLib.Variant('ad', [1.0]), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.INVALID_RESULT))

    def test_items_not_array(self):
        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(Wpool.Task.new(square), GLib.Variant('d', 1.0), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT))

    def test_task_not_callable(self):
        with self.assertRaises(TypeError):
            Wpool.Task.new(42)

    def test_python_function_needs_a_forked_or_threaded_worker(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORKSERVER)
        with self.assertRaises(GLib.Error) as caught:
            pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED))

    def test_map_async(self):
        task = Wpool.Task.new(square)
        task.set_result_type(GLib.VariantType.new('d'))
        results, error = run_async(self.pool, task, GLib.Variant('ad', range(50)))
        self.assertIsNone(error)
        self.assertEqual(results.unpack(), [float(x * x) for x in range(50)])

    def test_map_async_exception(self):
        def boom(worker, shared, item):
            raise RuntimeError('boom')

        results, error = run_async(self.pool, Wpool.Task.new(boom), GLib.Variant('ai', [1, 2]))
        self.assertIsNone(results)
        self.assertTrue(error.matches(Wpool.error_quark(), Wpool.Error.FAILED))
        self.assertIn('RuntimeError: boom', error.message)

    def test_map_cancelled(self):
        cancellable = Gio.Cancellable()
        calls = []

        def cancel_at_third(worker, shared, item):
            calls.append(item.unpack())
            if len(calls) == 3:
                cancellable.cancel()
            return GLib.Variant('b', True)

        pool = Wpool.Pool(n_jobs=1, start_method=Wpool.StartMethod.THREADING, chunk_size=1)
        with self.assertRaises(GLib.Error) as caught:
            pool.map(Wpool.Task.new(cancel_at_third), GLib.Variant('ai', range(1000)), cancellable)
        self.assertTrue(caught.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        self.assertEqual(len(calls), 3)

    def test_map_async_cancelled(self):
        cancellable = Gio.Cancellable()
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.THREADING, chunk_size=1)
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_sleep_ms')
        results, error = run_async(pool, task, GLib.Variant('au', [10] * 2000), cancellable,
                                   on_started=lambda: GLib.timeout_add(30, cancellable.cancel))
        self.assertIsNone(results)
        self.assertTrue(error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))

    def test_symbol_task(self):
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_square')
        self.assertEqual(task.props.symbol, 'wpool_test_square')
        results = self.pool.map(task, GLib.Variant('ad', [1.0, 2.0, 3.0]), None)
        self.assertEqual(results.unpack(), [1.0, 4.0, 9.0])

    def test_symbol_task_missing(self):
        with self.assertRaises(GLib.Error) as caught:
            Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'no_such_symbol')
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT))


class TestFork(unittest.TestCase):
    """Python functions in forked workers: real parallelism, copy-on-write."""

    def setUp(self):
        self.pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=1)

    def test_map_in_worker_processes(self):
        def where(worker, shared_objects, item):
            return GLib.Variant('(uu)', (os.getpid(), item.unpack() ** 2))

        task = Wpool.Task.new(where)
        task.set_result_type(GLib.VariantType.new('(uu)'))
        results = self.pool.map(task, GLib.Variant('au', range(40)), None).unpack()
        self.assertEqual([square for _, square in results], [x * x for x in range(40)])
        pids = {pid for pid, _ in results}
        self.assertNotIn(os.getpid(), pids)
        self.assertLessEqual(len(pids), 2)

    def test_shared_objects_and_closure(self):
        # The closure and the shared objects are inherited, not sent.
        offsets = {'offset': 1000}

        def scale(worker, shared_objects, item):
            table, label = shared_objects.unpack()
            return GLib.Variant('(sd)', (label, table[item.unpack()] + offsets['offset']))

        self.pool.set_shared_objects(GLib.Variant('(ads)', ([1.0, 2.0, 3.0], 'x')))
        task = Wpool.Task.new(scale)
        task.set_result_type(GLib.VariantType.new('(sd)'))
        results = self.pool.map(task, GLib.Variant('au', [2, 0]), None)
        self.assertEqual(results.unpack(), [('x', 1003.0), ('x', 1001.0)])

    def test_exception_crosses_the_process(self):
        def fail_on_three(worker, shared, item):
            if item.unpack() == 3:
                raise ValueError('three, in pid {}'.format(os.getpid()))
            return GLib.Variant('i', item.unpack())

        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(Wpool.Task.new(fail_on_three), GLib.Variant('ai', range(10)), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.FAILED))
        self.assertTrue(caught.exception.message.startswith('Item 3 on worker '))
        self.assertIn('ValueError: three, in pid', caught.exception.message)
        self.assertIn('Traceback (most recent call last)', caught.exception.message)

    def test_worker_death(self):
        def die_on_two(worker, shared, item):
            if item.unpack() == 2:
                os._exit(7)
            return GLib.Variant('i', item.unpack())

        self.pool.props.keep_alive = True
        task = Wpool.Task.new(die_on_two)
        with self.assertRaises(GLib.Error) as caught:
            self.pool.map(task, GLib.Variant('ai', range(5)), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.WORKER_DIED))
        self.assertIn('Item 2: worker ', caught.exception.message)
        self.assertIn('exited with status 7', caught.exception.message)
        self.assertEqual(self.pool.map(task, GLib.Variant('ai', [0, 1]), None).unpack(), [0, 1])
        self.pool.props.keep_alive = False

    def test_map_async(self):
        task = Wpool.Task.new(lambda worker, shared, item: GLib.Variant('i', os.getpid()))
        results, error = run_async(self.pool, task, GLib.Variant('ai', range(10)))
        self.assertIsNone(error)
        self.assertNotIn(os.getpid(), results.unpack())


class TestStartMethods(unittest.TestCase):
    """MPIRE's shared-objects semantics, measured from Python for every start
    method: which process runs each task, and where it sees the dataset."""

    dataset = GLib.Variant('ad', [float(x) for x in range(1 << 14)])

    def whoami(self, start_method, keep_alive=False, n_maps=1):
        dataset = self.dataset
        pool = Wpool.Pool(n_jobs=2, start_method=start_method, chunk_size=1, keep_alive=keep_alive,
                          shared_objects=GLib.Variant.new_tuple(dataset, GLib.Variant('s', 'label')))
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_whoami')
        task.set_result_type(GLib.VariantType.new('(uut)'))
        maps = [pool.map(task, GLib.Variant('au', range(100)), None).unpack() for _ in range(n_maps)]
        return maps[0] if n_maps == 1 else maps

    def test_where(self):
        threading_rows = self.whoami(Wpool.StartMethod.THREADING)
        caller_addresses = {address for _, _, address in threading_rows}
        self.assertEqual({pid for _, pid, _ in threading_rows}, {os.getpid()})
        self.assertEqual(len(caller_addresses), 1)

        # FORK: other processes, at the caller's address (copy-on-write).
        rows = self.whoami(Wpool.StartMethod.FORK)
        self.assertNotIn(os.getpid(), {pid for _, pid, _ in rows})
        self.assertEqual({address for _, _, address in rows}, caller_addresses)

        # FORKSERVER: other processes, all at the server's one copy.
        rows = self.whoami(Wpool.StartMethod.FORKSERVER)
        self.assertNotIn(os.getpid(), {pid for _, pid, _ in rows})
        self.assertEqual(len({address for _, _, address in rows}), 1)
        self.assertNotEqual({address for _, _, address in rows}, caller_addresses)

        # SPAWN: each process at one address of its own for all its tasks.
        rows = self.whoami(Wpool.StartMethod.SPAWN)
        by_pid = {}
        for _, pid, address in rows:
            by_pid.setdefault(pid, set()).add(address)
        self.assertNotIn(os.getpid(), by_pid)
        self.assertTrue(all(len(addresses) == 1 for addresses in by_pid.values()))

    def test_keep_alive_reuses_the_processes(self):
        for start_method in (Wpool.StartMethod.FORK, Wpool.StartMethod.SPAWN, Wpool.StartMethod.FORKSERVER):
            first, second = self.whoami(start_method, keep_alive=True, n_maps=2)
            # Each worker id is served by one process, the same in both maps.
            first_pids = dict((worker_id, pid) for worker_id, pid, _ in first)
            second_pids = dict((worker_id, pid) for worker_id, pid, _ in second)
            for worker_id, pid in second_pids.items():
                if worker_id in first_pids:
                    self.assertEqual(first_pids[worker_id], pid, start_method)
            self.assertNotIn(os.getpid(), first_pids.values())

class TestSharedArrays(unittest.TestCase):
    """The reference page's copy-on-write alternative, with a Python task."""

    def square_add_and_modulo_with_index(self, start_method):
        # The reference task, as the Python example writes it.
        from result_containers import square_add_and_modulo_with_index

        square_results = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, False)
        add_results = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, False)
        pool = Wpool.Pool(n_jobs=2, start_method=start_method,
                          shared_objects=GLib.Variant.new_tuple(square_results.get_handle(),
                                                                add_results.get_handle()))
        wpool_task = Wpool.Task.new(square_add_and_modulo_with_index)
        wpool_task.set_result_type(GLib.VariantType.new('i'))
        modulo = pool.map(wpool_task, GLib.Variant('a(ui)', list(enumerate(range(100)))), None)

        self.assertEqual(modulo.unpack(), [x % 2 for x in range(100)])
        self.assertEqual(square_results.dup_values().unpack(), [float(x * x) for x in range(100)])
        self.assertEqual(add_results.dup_values().unpack(), [float(x + x) for x in range(100)])

    def test_threading(self):
        self.square_add_and_modulo_with_index(Wpool.StartMethod.THREADING)

    def test_fork(self):
        self.square_add_and_modulo_with_index(Wpool.StartMethod.FORK)

    def test_bad_index(self):
        array = Wpool.SharedArray.new(Wpool.SharedArrayType.INT32, 3, False)
        with self.assertRaises(GLib.Error) as caught:
            array.set_int64(3, 1)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT))

    def test_lock(self):
        lock = Wpool.Lock.new()
        self.assertTrue(lock.try_acquire())
        self.assertFalse(lock.try_acquire())
        lock.release()


class TestApply(unittest.TestCase):
    def test_apply(self):
        for start_method in (Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK):
            pool = Wpool.Pool(n_jobs=2, start_method=start_method)
            task = Wpool.Task.new(lambda worker, shared, item: GLib.Variant('s', item.unpack().upper()))
            self.assertEqual(pool.apply(task, GLib.Variant('s', 'abc'), None).unpack(), 'ABC')

    def test_apply_async_many_in_flight(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, keep_alive=True)
        task = Wpool.Task.new(lambda worker, shared, item: GLib.Variant('i', item.unpack() * 10))
        loop = GLib.MainLoop()
        results = {}

        def done(source, result, i):
            results[i] = source.apply_finish(result).unpack()
            if len(results) == 8:
                loop.quit()

        for i in range(8):
            pool.apply_async(task, GLib.Variant('i', i), None, done, i)
        loop.run()
        self.assertEqual(results, {i: i * 10 for i in range(8)})

    def test_apply_exception(self):
        def boom(worker, shared, item):
            raise KeyError('missing')

        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.THREADING)
        with self.assertRaises(GLib.Error) as caught:
            pool.apply(Wpool.Task.new(boom), GLib.Variant('i', 1), None)
        self.assertIn("KeyError: 'missing'", caught.exception.message)


class TestProgress(unittest.TestCase):
    def test_progress_signal(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=1)
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_sleep_ms')
        reports = []
        pool.connect('progress', lambda pool, completed, total: reports.append((completed, total)))
        results, error = run_async(pool, task, GLib.Variant('au', [3] * 60))
        self.assertIsNone(error)
        self.assertEqual(reports[-1], (60, 60))
        self.assertEqual([c for c, _ in reports], sorted(set(c for c, _ in reports)))
        self.assertEqual((pool.props.n_completed, pool.props.n_total), (60, 60))


def drain(stream):
    """The (index, result or GLib.Error) outcomes of a map stream, in order."""
    outcomes = []
    while True:
        ok, index, result, item_error = stream.next()
        if not ok:
            return outcomes
        outcomes.append((index, result.unpack() if result is not None else item_error))


class TestStream(unittest.TestCase):
    def test_imap_ordered_python_function(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=3)
        stream = pool.imap(Wpool.Task.new(square), GLib.Variant('ad', range(10)), Wpool.MapFlags.NONE, None)
        self.assertEqual(stream.get_n_items(), 10)
        self.assertEqual(drain(stream), [(i, float(i * i)) for i in range(10)])

    def test_imap_keep_going(self):
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_fail_on_negative')
        task.set_result_type(GLib.VariantType('d'))
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.SPAWN, chunk_size=2)
        outcomes = drain(pool.imap(task, GLib.Variant('ad', [1, -2, 3, -4, 5]), Wpool.MapFlags.KEEP_GOING, None))
        self.assertEqual([i for i, _ in outcomes], [0, 1, 2, 3, 4])
        self.assertEqual([o for _, o in outcomes if not isinstance(o, GLib.Error)], [1.0, 3.0, 5.0])
        failed = [o for _, o in outcomes if isinstance(o, GLib.Error)]
        self.assertEqual(len(failed), 2)
        self.assertTrue(all(e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT) for e in failed))

    def test_imap_stops_at_the_first_error(self):
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_fail_on_negative')
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=1)
        with self.assertRaises(GLib.Error) as caught:
            drain(pool.imap(task, GLib.Variant('ad', [1, -2, 3]), Wpool.MapFlags.NONE, None))
        self.assertIn('negative item -2', caught.exception.message)

    def test_imap_unordered_async(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORKSERVER, chunk_size=1)
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_sleep_ms')
        task.set_result_type(GLib.VariantType('u'))
        stream = pool.imap(task, GLib.Variant('au', [300, 1, 1, 1]), Wpool.MapFlags.UNORDERED, None)
        loop = GLib.MainLoop()
        outcomes = []

        def next_done(stream, result):
            assert threading.current_thread() is threading.main_thread()
            ok, index, value, item_error = stream.next_finish(result)
            if not ok:
                loop.quit()
                return
            outcomes.append((index, value.unpack()))
            stream.next_async(None, next_done)

        stream.next_async(None, next_done)
        loop.run()
        self.assertEqual(sorted(outcomes), [(0, 300), (1, 1), (2, 1), (3, 1)])
        self.assertNotEqual(outcomes[0][0], 0)

    def test_imap_source_from_a_generator(self):
        def numbers():
            for x in range(500):
                yield GLib.Variant('d', x)

        items = numbers()
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=8, max_tasks_active=4)
        stream = pool.imap_source(Wpool.Task.new(square), lambda *data: next(items, None), None, 500,
                                  Wpool.MapFlags.NONE, None)
        self.assertEqual(drain(stream), [(i, float(i * i)) for i in range(500)])

    def test_chunk_task_by_symbol(self):
        task = Wpool.Task.new_for_chunk_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_square_plus_one_chunk',
                                               GLib.VariantType('d'), GLib.VariantType('d'))
        for start_method in (Wpool.StartMethod.THREADING, Wpool.StartMethod.SPAWN):
            pool = Wpool.Pool(n_jobs=2, start_method=start_method, chunk_size=100)
            results = pool.map(task, GLib.Variant('ad', range(1000)), None).unpack()
            self.assertEqual(results, [x * x + 1.0 for x in range(1000)])

    def test_map_unordered(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.THREADING)
        results = pool.map_unordered(Wpool.Task.new(square), GLib.Variant('ad', [1, 2, 3]), None)
        self.assertEqual(sorted(results.unpack()), [1.0, 4.0, 9.0])


class TestTaskTimeout(unittest.TestCase):
    def test_hung_item_fails_alone(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=1, task_timeout=0.3)
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_sleep_ms')
        task.set_result_type(GLib.VariantType('u'))
        outcomes = dict(drain(pool.imap(task, GLib.Variant('au', [1, 5000, 1]), Wpool.MapFlags.KEEP_GOING, None)))
        self.assertEqual((outcomes[0], outcomes[2]), (1, 1))
        self.assertTrue(outcomes[1].matches(Wpool.error_quark(), Wpool.Error.TIMED_OUT))
        self.assertIn('Item 1', outcomes[1].message)
        with self.assertRaises(GLib.Error) as caught:
            pool.map(task, GLib.Variant('au', [5000]), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.TIMED_OUT))


class TestLifecycle(unittest.TestCase):
    def check_state_and_exit(self, start_method):
        def init(worker, shared, item):
            worker.get_state().insert_value('seen', GLib.Variant('u', 0))
            return GLib.Variant('()', ())

        def task(worker, shared, item):
            state = worker.get_state()
            seen = state.lookup_value('seen', GLib.VariantType('u')).unpack() + 1
            state.insert_value('seen', GLib.Variant('u', seen))
            return GLib.Variant('u', seen)

        def exit(worker, shared, item):
            seen = worker.get_state().lookup_value('seen', GLib.VariantType('u')).unpack()
            return GLib.Variant('(uu)', (worker.get_id(), seen))

        exit_task = Wpool.Task.new(exit)
        exit_task.set_result_type(GLib.VariantType('(uu)'))
        pool = Wpool.Pool(n_jobs=2, start_method=start_method, chunk_size=1, keep_alive=True,
                          worker_init=Wpool.Task.new(init), worker_exit=exit_task)
        counting = Wpool.Task.new(task)
        pool.map(counting, GLib.Variant('ai', range(12)), None)
        pool.map(counting, GLib.Variant('ai', range(6)), None)
        self.assertIsNone(pool.get_exit_results())
        self.assertTrue(pool.stop_and_join())
        exits = pool.get_exit_results().unpack()
        self.assertEqual([worker_id for worker_id, _ in exits], [0, 1])
        self.assertEqual(sum(seen for _, seen in exits), 18)

    def test_threading(self):
        self.check_state_and_exit(Wpool.StartMethod.THREADING)

    def test_fork(self):
        self.check_state_and_exit(Wpool.StartMethod.FORK)

    def test_new_task_restarts_processes_after_their_exit(self):
        def exit(worker, shared, item):
            return GLib.Variant('u', worker.get_id())

        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, keep_alive=True,
                          worker_exit=Wpool.Task.new(exit))
        pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
        self.assertIsNone(pool.get_exit_results())
        pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
        self.assertEqual(pool.get_exit_results().unpack(), [0, 1])
        pool.props.keep_alive = False

    def test_init_exception_fails_the_items(self):
        def init(worker, shared, item):
            raise RuntimeError('no database')

        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, worker_init=Wpool.Task.new(init))
        with self.assertRaises(GLib.Error) as caught:
            pool.map(Wpool.Task.new(square), GLib.Variant('ad', [1.0]), None)
        self.assertIn('worker-init failed', caught.exception.message)
        self.assertIn('RuntimeError: no database', caught.exception.message)


class TestInsights(unittest.TestCase):
    def test_insights_and_eta(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.FORK, chunk_size=1, enable_insights=True)
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_sleep_ms')
        etas = []
        pool.connect('notify::eta', lambda pool, pspec: etas.append(pool.props.eta))
        results, error = run_async(pool, task, GLib.Variant('au', [40, 2, 2, 2, 2, 2]))
        self.assertIsNone(error)
        insights = pool.get_insights().unpack()
        self.assertEqual(insights['n-completed'], 6)
        self.assertEqual(sorted(w['id'] for w in insights['workers']), [0, 1])
        self.assertEqual(sum(w['n-completed'] for w in insights['workers']), 6)
        self.assertEqual(insights['slowest-items'][0][:2], (0, 0))
        self.assertGreaterEqual(insights['slowest-items'][0][2], 0.035)
        self.assertTrue(pool.get_insights_summary().startswith('Insights: 1 map, 6 items'))
        self.assertEqual(etas[-1], 0.0)


class TestSpawn(unittest.TestCase):
    def test_python_function_refused(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.SPAWN)
        with self.assertRaises(GLib.Error) as caught:
            pool.map(Wpool.Task.new(lambda worker, shared, item: item), GLib.Variant('ai', [1]), None)
        self.assertTrue(caught.exception.matches(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED))
        self.assertIn('new_for_symbol', caught.exception.message)
        self.assertFalse(pool.props.workers_running)

    def test_symbol_task_with_shared_objects(self):
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.SPAWN,
                          shared_objects=GLib.Variant('(dd)', (10.0, 0.5)))
        task = Wpool.Task.new_for_symbol(os.environ['WPOOL_TEST_MODULE'], 'wpool_test_scaled')
        task.set_result_type(GLib.VariantType.new('d'))
        self.assertEqual(pool.map(task, GLib.Variant('ad', [1.0, 2.0]), None).unpack(), [10.5, 20.5])


# Plain Python functions for the MPIRE-like API: module-level, so that
# forked workers get them by reference.
def plain_square(x):
    return x * x


def plain_add(a, b):
    return a + b


def plain_minus(a=0, b=0):
    return a - b


def shared_identity(shared_objects, x):
    return id(shared_objects), x


def shared_grow(shared_objects, x):
    shared_objects.append(x)
    return len(shared_objects)


def fails_at_seven(x):
    if x == 7:
        raise KeyError('seven')
    return x


def counted_fails_at_zero(counter, x):
    """Counts its calls in a shared counter; item 0 fails, the others take
    a moment."""
    with counter.get_lock():
        counter.value += 1
    if x == 0:
        raise KeyError('zero')
    time.sleep(0.01)
    return x


def unpicklable_result(x):
    return threading.Lock()


def raises_system_exit(x=0):
    sys.exit(3)


def raises_keyboard_interrupt(x=0):
    raise KeyboardInterrupt('from the task')


def nap(x=0):
    time.sleep(0.1)
    return x


def long_nap():
    time.sleep(20)


def interrupted_map(start_method, form, keep_alive=True):
    """Runs a 20 s map of @form under @start_method until a Ctrl-C stops
    it: the exception's type name and the seconds it took."""
    pool = Wpool.Pool(n_jobs=2, start_method=start_method, keep_alive=keep_alive)
    started = time.monotonic()
    try:
        with pool:
            if form == 'map':
                pool.map(nap, range(400), chunk_size=1)
            elif form == 'imap':
                for _ in pool.imap(nap, range(400), chunk_size=1):
                    pass
            elif form == 'apply':
                pool.apply(long_nap)
            elif form == 'map_async':
                async def main():
                    await pool.map_async(nap, range(400), chunk_size=1)
                asyncio.run(main())
        return 'nothing', time.monotonic() - started
    except BaseException as error:  # noqa: B902 - what the caller got
        return type(error).__name__, time.monotonic() - started
    finally:
        assert not pool.props.workers_running


def sleeps_a_little(shared, x):
    time.sleep(0.05)
    return 0.05


class TestMpireLike(unittest.TestCase):
    """The override's WorkerPool-like API: plain callables and iterables."""

    methods = ('threading', 'fork')

    def test_map(self):
        for method in self.methods:
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(pool.map(plain_square, range(1000)), [x * x for x in range(1000)])
                # A tuple is positional arguments, a dict keyword ones.
                self.assertEqual(pool.map(plain_add, [(1, 2), (3, 4)]), [3, 7])
                self.assertEqual(pool.map(plain_minus, [dict(a=5, b=1), dict(b=2)]), [4, -2])
                self.assertEqual(pool.map(plain_square, (x for x in range(10)), iterable_len=4), [0, 1, 4, 9])
                self.assertEqual(pool.map(plain_square, [], chunk_size=3), [])
                self.assertEqual(pool.map(plain_square, range(10), chunk_size=3), [x * x for x in range(10)])

    def test_start_method_names_and_enums(self):
        for name, method in (('fork', Wpool.StartMethod.FORK), ('threading', Wpool.StartMethod.THREADING),
                             ('spawn', Wpool.StartMethod.SPAWN), ('forkserver', Wpool.StartMethod.FORKSERVER),
                             ('mpi', Wpool.StartMethod.MPI)):
            self.assertEqual(Wpool.Pool(start_method=name).props.start_method, method)
        # An MPI pool needs mpirun (test-mpi-pool and the 'mpi' examples run
        # under it), and says so before it runs anything; as it says so
        # when libwpool was built without MPI.
        with Wpool.Pool(n_jobs=2, start_method='mpi') as pool:
            with self.assertRaisesRegex(GLib.Error, 'started by mpirun|built without'):
                pool.map(plain_square, range(4))
        self.assertEqual(Wpool.Pool(n_jobs=3, start_method=Wpool.StartMethod.FORK).props.n_jobs, 3)
        with self.assertRaisesRegex(ValueError, 'unknown start method'):
            Wpool.Pool(start_method='vfork')

    def test_lambdas_and_closures(self):
        offset = 10
        for method in self.methods:
            with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                # Kept alive: forked workers restart to see a function they
                # cannot be sent.
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])
                self.assertEqual(pool.map(lambda x: x + offset, range(3)), [10, 11, 12])
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])

    def test_shared_objects_threading_are_the_very_object(self):
        dataset = {'big': list(range(1000))}
        with Wpool.Pool(n_jobs=2, start_method='threading', shared_objects=dataset) as pool:
            results = pool.map(shared_identity, range(20))
        self.assertEqual({identity for identity, x in results}, {id(dataset)})

    def test_shared_objects_fork_are_copy_on_write(self):
        dataset = []
        with Wpool.Pool(n_jobs=1, start_method='fork', shared_objects=dataset) as pool:
            # One worker appends to its copy; the caller's is untouched.
            self.assertEqual(pool.map(shared_grow, range(5), chunk_size=5), [1, 2, 3, 4, 5])
        self.assertEqual(dataset, [])

    def test_set_shared_objects(self):
        with Wpool.Pool(n_jobs=2, start_method='fork', keep_alive=True) as pool:
            pool.set_shared_objects([7])
            self.assertEqual(pool.map(shared_grow, [1]), [2])
            # Kept alive with the old objects: they restart with the new,
            # as MPIRE's do.
            pool.set_shared_objects([8, 9])
            self.assertFalse(pool.props.workers_running)
            self.assertEqual(pool.map(shared_grow, [1]), [3])
            # Not while a map runs on them.
            pending = pool.map_async(sleeps_a_little, range(4))
            with self.assertRaises(GLib.Error) as raised:
                pool.set_shared_objects([8])
            self.assertTrue(raised.exception.matches(Wpool.error_quark(), Wpool.Error.WORKERS_RUNNING))
            self.assertEqual(pending.get(), [0.05] * 4)

    def test_exception_keeps_its_type_and_traceback(self):
        for method in self.methods:
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                with self.assertRaises(KeyError) as raised:
                    pool.map(fails_at_seven, range(20), chunk_size=4)
                note = '\n'.join(raised.exception.__notes__)
                self.assertIn('Raised in a worker', note)
                self.assertIn('fails_at_seven', note)
                self.assertIn("KeyError: 'seven'", note)
                # The pool goes on.
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])

    def test_first_exception_stops_the_map(self):
        import multiprocessing

        for method in self.methods:
            counter = multiprocessing.Value('i', 0)
            with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=counter) as pool:
                with self.assertRaises(KeyError):
                    pool.map(counted_fails_at_zero, range(200), chunk_size=1)
            # As MPIRE: the map stopped at the failure, not after every item.
            self.assertLess(counter.value, 100, method)

    def test_unpicklable_result(self):
        with Wpool.Pool(n_jobs=2, start_method='fork') as pool:
            with self.assertRaisesRegex(RuntimeError, 'cannot be sent back'):
                pool.map(unpicklable_result, range(3))

    def test_spawn_and_forkserver_run_python_functions(self):
        # Their workers import this script as __mp_main__ (the rest of their
        # tests are in test-python-workers.py).
        for method in ('spawn', 'forkserver'):
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])

    def test_not_callable(self):
        with self.assertRaisesRegex(TypeError, 'callable'):
            Wpool.Pool(n_jobs=2, start_method='threading').map(42, range(3))

    def test_context_manager(self):
        with Wpool.Pool(n_jobs=2, start_method='fork', keep_alive=True) as pool:
            pool.map(plain_square, range(4))
            self.assertTrue(pool.props.workers_running)
        # Left normally: stopped and joined.
        self.assertFalse(pool.props.workers_running)

        with self.assertRaises(ZeroDivisionError):
            with Wpool.Pool(n_jobs=2, start_method='fork', keep_alive=True) as pool:
                pool.map(plain_square, range(4))
                1 / 0
        # Left by an exception: terminated, and the exception goes on.
        self.assertFalse(pool.props.workers_running)

    def test_await_map_async(self):
        async def main(method):
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                ticks = 0

                async def tick():
                    nonlocal ticks
                    while True:
                        ticks += 1
                        await asyncio.sleep(0)

                ticker = asyncio.ensure_future(tick())
                results = await pool.map_async(plain_square, range(2000))
                ticker.cancel()
                with self.assertRaises(KeyError):
                    await pool.map_async(fails_at_seven, range(20))
                return results, ticks

        for method in self.methods:
            results, ticks = asyncio.run(main(method))
            self.assertEqual(results, [x * x for x in range(2000)])
            # The event loop ran while the map did.
            self.assertGreater(ticks, 0)

    def test_c_api_callback_form(self):
        # The C API's callback form, a Wpool.Task first, works as before.
        pool = Wpool.Pool(n_jobs=2, start_method='threading')
        results, error = run_async(pool, Wpool.Task.new(square), GLib.Variant('ad', [1, 2]))
        self.assertIsNone(error)
        self.assertEqual(results.unpack(), [1.0, 4.0])

    def test_imap_and_unordered_forms(self):
        for method in self.methods:
            with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                results = pool.imap(plain_square, range(50), chunk_size=7)
                self.assertNotIsInstance(results, list)
                self.assertEqual(list(results), [x * x for x in range(50)])
                self.assertEqual(sorted(pool.imap_unordered(plain_square, range(50), chunk_size=7)),
                                 [x * x for x in range(50)])
                self.assertEqual(sorted(pool.map_unordered(plain_square, range(50))),
                                 [x * x for x in range(50)])
                # Left at an exception, or by a break: the map is cancelled,
                # and the pool free for the next.
                with self.assertRaises(KeyError):
                    for _ in pool.imap(fails_at_seven, range(40), chunk_size=2):
                        pass
                for result in pool.imap(plain_square, range(1000), chunk_size=1):
                    break
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])

    def test_apply(self):
        async def apply_async(pool):
            return await pool.apply_async(plain_minus, (), {'a': 9, 'b': 2})

        for method in self.methods:
            with Wpool.Pool(n_jobs=2, start_method=method, shared_objects=[1, 2]) as pool:
                self.assertEqual(pool.apply(shared_grow, (3,)), 3)
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(pool.apply(plain_add, (1,), {'b': 2}), 3)
                self.assertEqual(asyncio.run(apply_async(pool)), 7)
                with self.assertRaises(KeyError):
                    pool.apply(fails_at_seven, (7,))

    def test_progress_bar(self):
        import contextlib
        import io

        output = io.StringIO()
        with contextlib.redirect_stderr(output):
            with Wpool.Pool(n_jobs=2, start_method='fork') as pool:
                results = pool.map(plain_square, range(500), chunk_size=10, progress_bar=True)
        self.assertEqual(results, [x * x for x in range(500)])
        self.assertIn('500/500', output.getvalue())


class TestArguments(unittest.TestCase):
    """Every argument of the MPIRE-like API is checked, as MPIRE's
    check_number() does: a bad one raises ValueError or TypeError naming
    it, never a silent default, an empty or a short result."""

    def assert_refused(self, error, name, call, *args, **kwargs):
        with self.assertRaisesRegex(error, name):
            call(*args, **kwargs)

    def test_pool_arguments(self):
        bad = [
            (ValueError, 'n_jobs', dict(n_jobs=-1)),
            (ValueError, 'n_jobs', dict(n_jobs=100000)),
            (TypeError, 'n_jobs', dict(n_jobs=True)),
            (TypeError, 'n_jobs', dict(n_jobs=2.5)),
            (TypeError, 'n_jobs', dict(n_jobs='2')),
            (TypeError, 'start_method', dict(start_method=42)),
            (TypeError, 'start_method', dict(start_method=True)),
            (ValueError, 'unknown start method', dict(start_method='vfork')),
            (ValueError, 'chunk_size', dict(chunk_size=-1)),
            (TypeError, 'chunk_size', dict(chunk_size=2.5)),
            (ValueError, 'n_splits', dict(n_splits=-1)),
            (ValueError, 'max_tasks_active', dict(max_tasks_active=-3)),
            (TypeError, 'worker_lifespan', dict(worker_lifespan=True)),
            (ValueError, 'worker_lifespan', dict(worker_lifespan=1 << 40)),
            (ValueError, 'task_timeout', dict(task_timeout=-1)),
            (ValueError, 'task_timeout', dict(task_timeout=math.inf)),
            (TypeError, 'task_timeout', dict(task_timeout='1')),
            (ValueError, 'worker_init_timeout', dict(worker_init_timeout=-0.5)),
            (ValueError, 'worker_exit_timeout', dict(worker_exit_timeout=math.nan)),
            (TypeError, 'keep_alive', dict(keep_alive=3)),
            (TypeError, 'enable_insights', dict(enable_insights='yes')),
            (TypeError, 'worker_init', dict(worker_init=plain_square)),
            (TypeError, 'bogus', dict(bogus=1)),
            (TypeError, 'n_completed', dict(n_completed=3)),
            (ValueError, 'cpu_ids', dict(n_jobs=2, cpu_ids=[0, 0, 0])),
            (ValueError, 'cpu_ids', dict(cpu_ids=[os.cpu_count()])),
            (ValueError, 'cpu_ids', dict(cpu_ids=[[0, -1]])),
            (ValueError, 'cpu_ids', dict(cpu_ids=[[]])),
            (TypeError, 'cpu_ids', dict(cpu_ids=['0'])),
            (TypeError, 'cpu_ids', dict(cpu_ids=[True])),
            (TypeError, 'cpu_ids', dict(cpu_ids=0)),
            (TypeError, 'cpu_ids', dict(cpu_ids=GLib.Variant('au', [0]))),
        ]
        for error, name, kwargs in bad:
            with self.subTest(**{key: repr(value) for key, value in kwargs.items()}):
                self.assert_refused(error, name, Wpool.Pool, **kwargs)

        # What is right goes through: 0 or None is the default n_jobs, 0 no
        # limit, and cpu_ids as MPIRE gives them or as the C pool's aau.
        self.assertEqual(Wpool.Pool(n_jobs=0).props.n_jobs, Wpool.Pool(n_jobs=None).props.n_jobs)
        pool = Wpool.Pool(n_jobs=2, start_method=Wpool.StartMethod.THREADING, task_timeout=0, chunk_size=3,
                          worker_exit_timeout=1, keep_alive=False, cpu_ids=[[0], 0])
        self.assertEqual((pool.props.chunk_size, pool.props.worker_exit_timeout), (3, 1.0))
        self.assertEqual(pool.props.cpu_ids.unpack(), [[0], [0]])
        self.assertEqual(Wpool.Pool(cpu_ids=GLib.Variant('aau', [[0]])).props.cpu_ids.unpack(), [[0]])

    def test_map_arguments(self):
        async def map_async(pool, *args, **kwargs):
            return await pool.map_async(*args, **kwargs)

        async def apply_async(pool, *args, **kwargs):
            return await pool.apply_async(*args, **kwargs)

        bad = [
            (ValueError, 'chunk_size', dict(chunk_size=-1)),
            (ValueError, 'chunk_size', dict(chunk_size=0)),
            (ValueError, 'chunk_size', dict(chunk_size=0.5)),
            (ValueError, 'chunk_size', dict(chunk_size=math.inf)),
            (TypeError, 'chunk_size', dict(chunk_size=True)),
            (TypeError, 'chunk_size', dict(chunk_size='3')),
            (ValueError, 'iterable_len', dict(iterable_len=-1)),
            (TypeError, 'iterable_len', dict(iterable_len=2.5)),
            (TypeError, 'iterable_len', dict(iterable_len=False)),
        ]
        for method in ('threading', 'fork'):
            pool = Wpool.Pool(n_jobs=2, start_method=method)
            forms = {
                'map': pool.map,
                'imap': pool.imap,
                'imap_unordered': pool.imap_unordered,
                'map_unordered': pool.map_unordered,
                'map_async': lambda *args, **kwargs: asyncio.run(map_async(pool, *args, **kwargs)),
            }
            for form, call in forms.items():
                for error, name, kwargs in bad:
                    with self.subTest(method=method, form=form, **kwargs):
                        self.assert_refused(error, name, call, plain_square, range(10), **kwargs)
                with self.subTest(method=method, form=form):
                    self.assert_refused(TypeError, 'iterable', call, plain_square, 42)
                    self.assert_refused(TypeError, 'callable', call, 42, range(3))
            # A cancellable (the C API's) with a Python function.
            self.assert_refused(TypeError, 'Wpool.Task', pool.map, plain_square, range(3), Gio.Cancellable())
            self.assert_refused(TypeError, 'Wpool.Task', pool.imap, plain_square, range(3), Wpool.MapFlags.NONE,
                                Gio.Cancellable())
            # MPIRE's parameters, by position too, and no others.
            self.assertEqual(pool.map(plain_square, range(5), 3), [0, 1, 4])
            self.assertEqual(list(pool.imap(plain_square, range(5), None, 1, 2)), [0, 1, 4, 9, 16])
            self.assert_refused(TypeError, 'multiple values', pool.map, plain_square, range(3), 3, iterable_len=2)
            self.assert_refused(TypeError, 'unexpected keyword argument .chunksize', pool.map, plain_square,
                                range(3), chunksize=2)
            self.assert_refused(TypeError, 'at most 14', pool.map, plain_square, range(3), *([None] * 15))
            self.assert_refused(TypeError, 'concatenate_numpy_output', pool.imap, plain_square, range(3),
                                concatenate_numpy_output=False)
            self.assert_refused(TypeError, 'progress_bar', pool.map, plain_square, range(3), progress_bar='yes')
            self.assert_refused(TypeError, 'kwargs', pool.apply, plain_add, (1,), [2])
            self.assert_refused(TypeError, 'kwargs', lambda: asyncio.run(apply_async(pool, plain_add, (5,), 3)))
            self.assertFalse(pool.props.workers_running)
            # As MPIRE's: args that are no iterable (or a string) are one argument.
            self.assertEqual(pool.apply(plain_square, 5), 25)
            self.assertEqual(asyncio.run(apply_async(pool, plain_square, 6)), 36)

            # A float chunk size is an average, as in MPIRE.
            self.assertEqual(pool.map(plain_square, range(10), chunk_size=2.5), [x * x for x in range(10)])
            self.assertEqual(list(pool.imap(plain_square, range(7), chunk_size=1.5)), [x * x for x in range(7)])
            self.assertEqual(pool.map(plain_square, range(10), iterable_len=0), [])


class TestBaseExceptions(unittest.TestCase):
    """SystemExit and KeyboardInterrupt raised by a task reach the caller
    as they are, as other exceptions do."""

    def test_system_exit_and_keyboard_interrupt(self):
        async def map_async(pool, func):
            return await pool.map_async(func, range(5))

        for method in ('threading', 'fork'):
            with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                for func, error in ((raises_system_exit, SystemExit), (raises_keyboard_interrupt, KeyboardInterrupt)):
                    forms = {
                        'map': lambda: pool.map(func, range(5)),
                        'imap': lambda: list(pool.imap(func, range(5))),
                        'apply': lambda: pool.apply(func),
                        'map_async': lambda: asyncio.run(map_async(pool, func)),
                    }
                    for form, call in forms.items():
                        with self.subTest(method=method, form=form, error=error.__name__):
                            with self.assertRaises(error) as raised:
                                call()
                            self.assertIn('Raised in a worker', '\n'.join(raised.exception.__notes__))
                            if error is SystemExit:
                                self.assertEqual(raised.exception.code, 3)
                # Not an interruption: the pool goes on.
                self.assertEqual(pool.map(plain_square, range(3)), [0, 1, 4])


class TestCtrlC(unittest.TestCase):
    """Ctrl-C during a 20 s map stops it at once, raises KeyboardInterrupt,
    and leaves no worker process, as MPIRE's does."""

    def interrupt(self, start_method, form, keep_alive=True):
        before = children_of(os.getpid())
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            caught, elapsed = interrupted_map(start_method, form, keep_alive)
        finally:
            timer.cancel()
            timer.join()
        self.assertEqual(caught, 'KeyboardInterrupt')
        # Generous, for a loaded machine: a map that went on would take 20 s.
        self.assertLess(elapsed, 5)
        self.assertEqual(children_of(os.getpid()) - before, set())

    def test_sigint_stops_map(self):
        for method in ('threading', 'fork'):
            for keep_alive in (False, True):
                with self.subTest(method=method, keep_alive=keep_alive):
                    self.interrupt(method, 'map', keep_alive)

    def test_sigint_stops_imap(self):
        for method in ('threading', 'fork'):
            with self.subTest(method=method):
                self.interrupt(method, 'imap')

    def test_sigint_stops_map_async(self):
        for method in ('threading', 'fork'):
            with self.subTest(method=method):
                self.interrupt(method, 'map_async')

    def test_sigint_stops_apply(self):
        # A worker process is killed in its item; a thread cannot be, and
        # would end its 20 s item first.
        self.interrupt('fork', 'apply')

    def test_pool_usable_after_interruption(self):
        pool = Wpool.Pool(n_jobs=2, start_method='fork', keep_alive=True)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with self.assertRaises(KeyboardInterrupt):
                pool.map(nap, range(400), chunk_size=1)
        finally:
            timer.cancel()
            timer.join()
        self.assertFalse(pool.props.workers_running)
        self.assertEqual(pool.map(plain_square, range(5)), [0, 1, 4, 9, 16])
        pool.terminate()

    def test_sigint_to_the_process_group(self):
        # A terminal's Ctrl-C goes to every process of the group, workers
        # included: they ignore it, and the caller alone raises.
        for method in ('threading', 'fork'):
            for form in ('map', 'imap', 'map_async', 'apply') if method == 'fork' else ('map', 'imap', 'map_async'):
                with self.subTest(method=method, form=form):
                    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--ctrl-c', method, form],
                                             stdout=subprocess.PIPE, text=True, start_new_session=True)
                    try:
                        self.assertEqual(child.stdout.readline(), 'started\n')
                        time.sleep(0.5)
                        os.killpg(child.pid, signal.SIGINT)
                        outcome = json.loads(child.stdout.readline())
                    finally:
                        child.stdout.close()
                        child.wait(timeout=30)
                    self.assertEqual(outcome['caught'], 'KeyboardInterrupt')
                    self.assertLess(outcome['elapsed'], 5)
                    self.assertEqual(outcome['children'], [])
                    self.assertEqual(child.returncode, 0)


class TestContextManagerExit(unittest.TestCase):
    """Leaving a `with` block with a map unfinished terminates the pool,
    as MPIRE's does: the user's exception goes on, no worker is left, and
    the map's results are lost."""

    def test_unfinished_imap(self):
        for method in ('threading', 'fork'):
            for failing in (True, False):
                for keep_alive in (False, True):
                    with self.subTest(method=method, failing=failing, keep_alive=keep_alive):
                        before = children_of(os.getpid())
                        started = time.monotonic()
                        try:
                            # The C pool's chunk size 1: the first batch
                            # comes alone, not in a guided chunk of 100.
                            with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=keep_alive,
                                            chunk_size=1) as pool:
                                results = pool.imap(nap, range(400), chunk_size=1)
                                self.assertEqual(next(results), 0)
                                if failing:
                                    1 / 0
                        except ZeroDivisionError:
                            self.assertTrue(failing)
                        else:
                            self.assertFalse(failing)
                        self.assertLess(time.monotonic() - started, 5)
                        self.assertFalse(pool.props.workers_running)
                        self.assertEqual(children_of(os.getpid()) - before, set())
                        # As in MPIRE, the rest is lost.
                        with self.assertRaisesRegex(RuntimeError, 'terminated'):
                            next(results)


def ctrl_c_scenario(start_method, form):
    """Run by TestCtrlC in a process group of its own, which gets SIGINT."""
    print('started', flush=True)
    caught, elapsed = interrupted_map(start_method, form)
    print(json.dumps({'caught': caught, 'elapsed': elapsed, 'children': sorted(children_of(os.getpid()))}),
          flush=True)


if __name__ == '__main__':
    if sys.argv[1:2] == ['--ctrl-c']:
        ctrl_c_scenario(*sys.argv[2:4])
    else:
        taptestrunner.main()
