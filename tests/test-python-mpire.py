#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""MPIRE's map parameters through the override's WorkerPool API, after the
examples of MPIRE's documentation: by keyword and by position, refused
when bad before any worker starts; imap() reading its iterable as the
workers need items; progress bars on every form; numpy arrays mapped in
chunks; per-map task_timeout and worker_lifespan; apply()'s callbacks and
AsyncResult. Under every start method where it matters: SPAWN and
FORKSERVER workers import this script as __mp_main__, so its work stays
under `if __name__ == '__main__':`."""

import contextlib
import importlib.util
import io
import itertools
import os
import threading
import time
import unittest
import warnings

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

import taptestrunner  # noqa: E402
from wpool_testing import children_of  # noqa: E402

METHODS = ('fork', 'threading', 'spawn', 'forkserver')
PROCESSES = ('fork', 'spawn', 'forkserver')


class CustomError(Exception):
    """Raised by a worker, unpickled by the caller as its own."""


def square(x):
    return x * x


def multiply(x, y=1):
    return x * y


def sleeps(seconds):
    time.sleep(seconds)
    return seconds


def fails_at_seven(x):
    if x == 7:
        raise CustomError('seven')
    return x


def pid_and_count(state, x):
    """The worker's process and how many items its state has seen."""
    state['n'] = state.get('n', 0) + 1
    return os.getpid(), state['n']


def chunk_of(array):
    """What a numpy map's function gets: (type name, dimensions, rows)."""
    return type(array).__name__, array.ndim, len(array)


def doubled(array):
    return array * 2


# Items that worker threads finished after the pool had given up on them.
finished_late = []


def sleeps_then_notes(seconds):
    time.sleep(seconds)
    finished_late.append(seconds)
    return seconds


class Counted:
    """A generator's items, counting those it has given: read in the
    caller (imap() reads its iterable there)."""

    def __init__(self, n=None, fail_after=None):
        self.n_read = 0
        self.n = n
        self.fail_after = fail_after

    def __iter__(self):
        for x in itertools.count() if self.n is None else range(self.n):
            if self.fail_after is not None and x == self.fail_after:
                raise KeyError('the generator failed after {} items'.format(x))
            self.n_read += 1
            yield x


def runs(values):
    """The lengths of the runs of equal consecutive @values."""
    return [len(list(group)) for _, group in itertools.groupby(values)]


def captured_bar(**options):
    """progress_bar_options that write the bar to a string, and the string."""
    output = io.StringIO()
    return {'file': output, **options}, output


class TestParameters(unittest.TestCase):
    """MPIRE's parameters on every form: by keyword or by position, in
    MPIRE's order; unknown or bad ones refused, naming them, before any
    worker starts."""

    def test_by_position(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                # map(func, iterable, iterable_len, max_tasks_active, chunk_size, n_splits, worker_lifespan,
                # progress_bar, concatenate_numpy_output, worker_init, worker_exit, task_timeout,
                # worker_init_timeout, worker_exit_timeout, progress_bar_options, progress_bar_style)
                self.assertEqual(pool.map(square, itertools.count(), 7), [x * x for x in range(7)])
                options, output = captured_bar(desc='by position')
                self.assertEqual(pool.map(square, range(10), None, None, 3, None, None, True, True, None, None,
                                          None, None, None, options, 'std'), [x * x for x in range(10)])
                self.assertIn('by position', output.getvalue())
                self.assertIn('10/10', output.getvalue())
                with self.assertRaises(Wpool.TaskTimeoutError):
                    pool.map(sleeps, [0, 3], None, None, 1, None, None, False, True, None, None, 0.3)

                # imap() has no concatenate_numpy_output: task_timeout is one place earlier.
                self.assertEqual(list(pool.imap(square, itertools.count(), 5)), [x * x for x in range(5)])
                self.assertEqual(sorted(pool.imap_unordered(square, itertools.count(), 5, None, 2)),
                                 [x * x for x in range(5)])
                self.assertEqual(sorted(pool.map_unordered(square, itertools.count(), 6)),
                                 [x * x for x in range(6)])
                with self.assertRaises(Wpool.TaskTimeoutError):
                    list(pool.imap(sleeps, [0, 3], None, None, 1, None, None, False, None, None, 0.3))

                # apply(func, args, kwargs, callback, error_callback, worker_init, worker_exit, task_timeout, …)
                called, failed = [], []
                self.assertEqual(pool.apply(multiply, (6,), {'y': 7}, called.append), 42)
                with self.assertRaises(CustomError):
                    pool.apply(fails_at_seven, (7,), None, called.append, failed.append)
                with self.assertRaises(Wpool.TaskTimeoutError):
                    pool.apply(sleeps, (3,), None, None, None, None, None, 0.3)
                self.assertEqual(called, [42])
                self.assertEqual([type(error) for error in failed], [CustomError])
                self.assertEqual(pool.apply_async(multiply, (2, 3), None, called.append).get(timeout=60), 6)
                self.assertEqual(called, [42, 6])

                # A per-map timeout lasts its map only.
                self.assertEqual(pool.props.task_timeout, 0)

    def test_too_many_or_twice(self):
        with Wpool.Pool(n_jobs=2) as pool:
            with self.assertRaisesRegex(TypeError, r'at most 14 arguments'):
                pool.map(square, range(3), *([None] * 15))
            with self.assertRaisesRegex(TypeError, r'at most 13 arguments'):
                pool.imap(square, range(3), *([None] * 14))
            with self.assertRaisesRegex(TypeError, "multiple values for argument 'chunk_size'"):
                pool.map(square, range(3), None, None, 2, chunk_size=2)
            with self.assertRaisesRegex(TypeError, "multiple values for argument 'callback'"):
                pool.apply(square, (3,), None, print, callback=print)
            self.assertFalse(pool.props.workers_running)

    def test_unknown_keyword(self):
        forms = {
            'map': lambda pool, **kw: pool.map(square, range(3), **kw),
            'imap': lambda pool, **kw: list(pool.imap(square, range(3), **kw)),
            'imap_unordered': lambda pool, **kw: list(pool.imap_unordered(square, range(3), **kw)),
            'map_unordered': lambda pool, **kw: pool.map_unordered(square, range(3), **kw),
            'map_async': lambda pool, **kw: pool.map_async(square, range(3), **kw).get(),
            'apply': lambda pool, **kw: pool.apply(square, (3,), **kw),
            'apply_async': lambda pool, **kw: pool.apply_async(square, (3,), **kw).get(),
        }
        for method in METHODS:
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                for name, form in forms.items():
                    with self.subTest(method=method, form=name):
                        with self.assertRaisesRegex(TypeError, r"{}\(\) got an unexpected keyword argument "
                                                    r"'n_workers'".format(name)):
                            form(pool, n_workers=2)
                        self.assertFalse(pool.props.workers_running)
                # As MPIRE's: imap() has no concatenate_numpy_output, apply() no chunk_size.
                with self.assertRaisesRegex(TypeError, 'concatenate_numpy_output'):
                    forms['imap'](pool, concatenate_numpy_output=False)
                with self.assertRaisesRegex(TypeError, 'chunk_size'):
                    forms['apply'](pool, chunk_size=2)
                self.assertFalse(pool.props.workers_running)
                self.assertEqual(forms['map'](pool), [0, 1, 4])

    BAD_VALUES = (
        ({'chunk_size': 0}, ValueError, 'chunk_size'),
        ({'chunk_size': -2}, ValueError, 'chunk_size'),
        ({'chunk_size': True}, TypeError, 'chunk_size'),
        ({'chunk_size': '3'}, TypeError, 'chunk_size'),
        ({'n_splits': 0}, ValueError, 'n_splits'),
        ({'n_splits': 2.5}, TypeError, 'n_splits'),
        ({'max_tasks_active': 0}, ValueError, 'max_tasks_active'),
        ({'max_tasks_active': True}, TypeError, 'max_tasks_active'),
        ({'worker_lifespan': -1}, ValueError, 'worker_lifespan'),
        ({'worker_lifespan': False}, TypeError, 'worker_lifespan'),
        ({'iterable_len': -1}, ValueError, 'iterable_len'),
        ({'iterable_len': True}, TypeError, 'iterable_len'),
        ({'task_timeout': 0}, ValueError, 'task_timeout'),
        ({'task_timeout': -1}, ValueError, 'task_timeout'),
        ({'task_timeout': float('inf')}, ValueError, 'task_timeout'),
        ({'task_timeout': float('nan')}, ValueError, 'task_timeout'),
        ({'task_timeout': True}, TypeError, 'task_timeout'),
        ({'worker_init_timeout': 0}, ValueError, 'worker_init_timeout'),
        ({'worker_exit_timeout': -0.5}, ValueError, 'worker_exit_timeout'),
        ({'progress_bar': 1}, TypeError, 'progress_bar'),
        ({'progress_bar_options': ['desc']}, TypeError, 'progress_bar_options'),
        ({'progress_bar_style': 3}, TypeError, 'progress_bar_style'),
    )

    def test_bad_values(self):
        for method in METHODS:
            with Wpool.Pool(n_jobs=2, start_method=method) as pool:
                for kwargs, error, name in self.BAD_VALUES:
                    # With a good setting beside, unless it is the bad one.
                    kwargs = {'task_timeout': 5, **kwargs}
                    for form, call in (('map', lambda: pool.map(square, range(3), **kwargs)),
                                       ('imap', lambda: list(pool.imap(square, range(3), **kwargs))),
                                       ('map_async', lambda: pool.map_async(square, range(3), **kwargs).get())):
                        with self.subTest(method=method, form=form, **kwargs):
                            with self.assertRaisesRegex(error, name):
                                call()
                            self.assertFalse(pool.props.workers_running)
                            # The map's good settings were not applied either.
                            self.assertEqual(pool.props.task_timeout, 0)
                with self.assertRaisesRegex(TypeError, 'concatenate_numpy_output'):
                    pool.map(square, range(3), concatenate_numpy_output='no')
                with self.assertRaisesRegex(ValueError, 'task_timeout'):
                    pool.apply(square, (3,), task_timeout=0)
                with self.assertRaisesRegex(ValueError, 'worker_exit_timeout'):
                    pool.apply_async(square, (3,), worker_exit_timeout=-1)
                with self.assertRaisesRegex(TypeError, 'callback'):
                    pool.apply(square, (3,), callback=3)
                with self.assertRaisesRegex(TypeError, 'error_callback'):
                    pool.apply_async(square, (3,), error_callback='print')
                with self.assertRaisesRegex(TypeError, 'callback'):
                    pool.map_async(square, range(3), callback=[])
                self.assertFalse(pool.props.workers_running)
                # Nothing was left half set up.
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])

    def test_float_chunk_size_and_n_splits(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(pool.map(square, range(25), chunk_size=2.5), [x * x for x in range(25)])
                self.assertEqual(pool.map(square, range(25), n_splits=3), [x * x for x in range(25)])
                self.assertEqual(list(pool.imap(square, iter(range(25)), chunk_size=1.5)),
                                 [x * x for x in range(25)])


class TestLazyImap(unittest.TestCase):
    """imap() and imap_unordered() read their iterable as the workers need
    items, as MPIRE's do."""

    def test_endless_iterable(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(next(pool.imap(square, itertools.count())), 0)
                self.assertEqual(next(pool.imap(square, itertools.count(3), chunk_size=5)), 9)
                self.assertIn(next(pool.imap_unordered(square, itertools.count())), {x * x for x in range(100)})
                self.assertEqual(pool.map(square, range(3)), [0, 1, 4])

    def test_read_as_needed(self):
        # libwpool's wpool_pool_imap_source() asks for a window of
        # max-tasks-active / 2 chunks (by default n_jobs of them) one window
        # ahead of those handed out: at most two windows are read before
        # the first result, and as many beyond the results given later.
        # A chunk more for slack.
        for method in METHODS:
            for chunk_size, max_tasks_active in ((3, None), (2, 4), (1, 2)):
                with self.subTest(method=method, chunk_size=chunk_size, max_tasks_active=max_tasks_active), \
                        Wpool.Pool(n_jobs=2, start_method=method) as pool:
                    window = chunk_size * max((max_tasks_active or 2 * 2) // 2, 1)
                    bound = 2 * window + chunk_size
                    items = Counted()
                    results = pool.imap(square, items, chunk_size=chunk_size, max_tasks_active=max_tasks_active)
                    self.assertEqual(next(results), 0)
                    self.assertGreaterEqual(items.n_read, 1)
                    self.assertLessEqual(items.n_read, bound)
                    for expected in range(1, 60):
                        self.assertEqual(next(results), expected * expected)
                    self.assertLessEqual(items.n_read, 60 + bound)
                    results.close()

    def test_max_tasks_active_counts_items(self):
        with Wpool.Pool(n_jobs=2, start_method='fork') as pool:
            items = Counted()
            results = pool.imap(square, items, chunk_size=10, max_tasks_active=10)
            self.assertEqual(next(results), 0)
            results.close()
            self.assertLessEqual(items.n_read, 10 + 10)

    def test_generator_that_raises(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                results = []
                with self.assertRaises(KeyError) as raised:
                    for result in pool.imap(square, Counted(fail_after=37), chunk_size=1):
                        results.append(result)
                self.assertIn('after 37 items', str(raised.exception))
                self.assertEqual(results, [x * x for x in range(37)])

                # In batches of 4: every whole batch's results come out
                # (MPIRE loses the batch being read too).
                results = []
                with self.assertRaises(KeyError):
                    for result in pool.imap(square, Counted(fail_after=10), chunk_size=4):
                        results.append(result)
                self.assertGreaterEqual(len(results), 8)
                self.assertEqual(results, [x * x for x in range(len(results))])

                results = []
                with self.assertRaises(KeyError):
                    for result in pool.imap_unordered(square, Counted(fail_after=9), chunk_size=1):
                        results.append(result)
                self.assertEqual(sorted(results), [x * x for x in range(9)])
                # The eager forms raise it before anything runs.
                with self.assertRaises(KeyError):
                    pool.map(square, Counted(fail_after=5))
                self.assertEqual(pool.map(square, range(4)), [0, 1, 4, 9])

    def assert_no_children_soon(self, before):
        deadline = time.monotonic() + 10
        while children_of(os.getpid()) - before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(children_of(os.getpid()) - before, set())

    def test_leaving_early(self):
        for method in METHODS:
            for keep_alive in (False, True):
                with self.subTest(method=method, keep_alive=keep_alive):
                    before = children_of(os.getpid())
                    with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=keep_alive) as pool:
                        for result in pool.imap(sleeps, itertools.repeat(0.01), chunk_size=1):
                            break
                        self.assertEqual(result, 0.01)
                        if not keep_alive:
                            self.assertFalse(pool.props.workers_running)
                            self.assert_no_children_soon(before)
                        # The pool is free for the next map, and the next.
                        self.assertEqual(pool.map(square, range(20)), [x * x for x in range(20)])
                        results = pool.imap_unordered(square, Counted(), chunk_size=2)
                        self.assertEqual(len([next(results) for _ in range(10)]), 10)
                        results.close()
                        self.assertEqual(list(pool.imap(square, range(5))), [0, 1, 4, 9, 16])
                    self.assert_no_children_soon(before)

    def test_imap_dropped_unread(self):
        with Wpool.Pool(n_jobs=2, start_method='fork') as pool:
            results = pool.imap(square, range(5), task_timeout=0.3)
            del results
            self.assertEqual(pool.map(sleeps, [0.6], chunk_size=1), [0.6])
            self.assertEqual(pool.props.task_timeout, 0)

    def test_iterable_len(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(list(pool.imap(square, range(100), iterable_len=7)), [x * x for x in range(7)])
                items = Counted()
                self.assertEqual(list(pool.imap(square, items, iterable_len=7, chunk_size=2)),
                                 [x * x for x in range(7)])
                self.assertEqual(items.n_read, 7)
                self.assertEqual(sorted(pool.imap_unordered(square, Counted(), iterable_len=9)),
                                 [x * x for x in range(9)])
                self.assertEqual(pool.map(square, Counted(), iterable_len=6), [x * x for x in range(6)])
                self.assertEqual(sorted(pool.map_unordered(square, Counted(), iterable_len=4)), [0, 1, 4, 9])
                self.assertEqual(pool.map_async(square, Counted(), iterable_len=3).get(timeout=60), [0, 1, 4])
                # Longer than the iterable: the iterable's end.
                self.assertEqual(pool.map(square, range(4), iterable_len=10), [0, 1, 4, 9])
                self.assertEqual(list(pool.imap(square, iter(range(4)), iterable_len=10)), [0, 1, 4, 9])
                self.assertEqual(pool.map(square, range(4), iterable_len=0), [])

    def test_imap_unordered_gives_each_once(self):
        items = [(0.03 if x % 5 == 0 else 0, x) for x in range(60)]
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(sorted(pool.imap_unordered(multiply, (item for item in items), chunk_size=3)),
                                 sorted(x * y for x, y in items))
                self.assertEqual(sorted(pool.imap_unordered(square, range(50))), [x * x for x in range(50)])
                self.assertEqual(sorted(pool.imap_unordered(multiply, [{'x': 3, 'y': x} for x in range(20)])),
                                 [3 * x for x in range(20)])


class TestProgressBar(unittest.TestCase):
    """progress_bar=True with tqdm's options, on every form."""

    def setUp(self):
        if importlib.util.find_spec('tqdm') is None:
            self.skipTest('tqdm is not installed')

    def test_every_form(self):
        forms = {
            'map': lambda pool, **kw: pool.map(square, range(100), **kw),
            'imap': lambda pool, **kw: list(pool.imap(square, range(100), **kw)),
            'imap_unordered': lambda pool, **kw: sorted(pool.imap_unordered(square, range(100), **kw)),
            'map_unordered': lambda pool, **kw: sorted(pool.map_unordered(square, range(100), **kw)),
            'map_async': lambda pool, **kw: pool.map_async(square, range(100), **kw).get(timeout=60),
        }
        for method in METHODS:
            with Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                for name, form in forms.items():
                    with self.subTest(method=method, form=name):
                        options, output = captured_bar(desc='xyz')
                        self.assertEqual(form(pool, progress_bar=True, progress_bar_options=options),
                                         [x * x for x in range(100)])
                        self.assertIn('xyz', output.getvalue())
                        self.assertIn('100/100', output.getvalue())
                with self.subTest(method=method, form='apply'):
                    options, output = captured_bar(desc='one call')
                    self.assertEqual(pool.apply(square, (9,), progress_bar=True, progress_bar_options=options), 81)
                    self.assertIn('one call', output.getvalue())
                    self.assertIn('1/1', output.getvalue())
                    options, output = captured_bar(desc='later')
                    result = pool.apply_async(square, (5,), progress_bar=True, progress_bar_options=options)
                    self.assertEqual(result.get(timeout=60), 25)
                    self.assertIn('1/1', output.getvalue())

    def test_length_unknown(self):
        for method in ('fork', 'spawn'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                for form in (pool.map, pool.imap, pool.imap_unordered):
                    options, output = captured_bar(desc='generator')
                    self.assertEqual(sorted(form(square, Counted(37), progress_bar=True,
                                                 progress_bar_options=options)), [x * x for x in range(37)])
                    self.assertIn('generator', output.getvalue())
                    self.assertIn('37/37', output.getvalue())

    def test_no_bar_by_default(self):
        with Wpool.Pool(n_jobs=2) as pool:
            options, output = captured_bar(desc='hidden')
            self.assertEqual(pool.map(square, range(5), progress_bar_options=options), [0, 1, 4, 9, 16])
            self.assertEqual(output.getvalue(), '')

    def test_rich(self):
        if importlib.util.find_spec('rich') is None:
            self.skipTest('rich is not installed (Debian: python3-rich)')
        for method in ('fork', 'threading'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                # rich draws on its own console.
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                        warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    self.assertEqual(pool.map(square, range(30), progress_bar=True, progress_bar_style='rich'),
                                     [x * x for x in range(30)])
                    self.assertEqual(list(pool.imap(square, Counted(12), iterable_len=12, progress_bar=True,
                                                    progress_bar_style='rich',
                                                    progress_bar_options={'desc': 'rich'})),
                                     [x * x for x in range(12)])
                # As MPIRE's, rich bars have no position.
                with self.assertRaisesRegex(NotImplementedError, 'position'):
                    pool.map(square, range(3), progress_bar=True, progress_bar_style='rich',
                             progress_bar_options={'position': 1})
                self.assertFalse(pool.props.workers_running)

    def test_rich_length_unknown(self):
        # tqdm.rich draws bars of a known length only: said before the map
        # starts, naming what to do.
        if importlib.util.find_spec('rich') is None:
            self.skipTest('rich is not installed (Debian: python3-rich)')
        with Wpool.Pool(n_jobs=2) as pool:
            with self.assertRaisesRegex(ValueError, 'iterable_len'):
                list(pool.imap(square, Counted(12), progress_bar=True, progress_bar_style='rich'))
            self.assertFalse(pool.props.workers_running)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(list(pool.imap(square, Counted(12), iterable_len=12, progress_bar=True,
                                                progress_bar_style='rich')), [x * x for x in range(12)])

    def test_styles_refused(self):
        with Wpool.Pool(n_jobs=2) as pool:
            if importlib.util.find_spec('ipywidgets') is None:
                with self.assertRaisesRegex(ImportError, 'ipywidgets'):
                    pool.map(square, range(3), progress_bar=True, progress_bar_style='notebook')
            with self.assertRaisesRegex(ValueError, 'dashboard'):
                pool.map(square, range(3), progress_bar=True, progress_bar_style='dashboard')
            with self.assertRaisesRegex(ValueError, "progress_bar_style.*'fancy'"):
                list(pool.imap(square, range(3), progress_bar=True, progress_bar_style='fancy'))
            with self.assertRaisesRegex(ValueError, 'dashboard'):
                pool.apply(square, (3,), progress_bar=True, progress_bar_style='dashboard')
            self.assertFalse(pool.props.workers_running)
            self.assertEqual(pool.map(square, range(3), progress_bar_style='std'), [0, 1, 4])

    def test_unknown_style_without_bar(self):
        with Wpool.Pool(n_jobs=2) as pool:
            with self.assertRaisesRegex(ValueError, 'progress_bar_style'):
                pool.map(square, range(3), progress_bar_style='fancy')

    def test_total_is_the_maps(self):
        with Wpool.Pool(n_jobs=2) as pool:
            options, output = captured_bar(total=5)
            with self.assertWarnsRegex(RuntimeWarning, "'total'"):
                self.assertEqual(pool.map(square, range(20), progress_bar=True, progress_bar_options=options),
                                 [x * x for x in range(20)])
            self.assertIn('20/20', output.getvalue())
            self.assertNotIn('/5 ', output.getvalue())
            # The caller's dict is left as it was.
            self.assertEqual(set(options), {'file', 'total'})
            options, output = captured_bar(leave=False)
            with self.assertWarnsRegex(RuntimeWarning, "'leave'"):
                pool.map(square, range(4), progress_bar=True, progress_bar_options=options)
            self.assertIn('4/4', output.getvalue())

    def test_bad_tqdm_option(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                for call in (lambda **kw: pool.map(square, range(3), **kw),
                             lambda **kw: list(pool.imap(square, Counted(3), **kw)),
                             lambda **kw: pool.apply(square, (3,), **kw)):
                    with self.assertRaisesRegex(ValueError, 'progress_bar_options.*nonexistent'):
                        call(progress_bar=True, progress_bar_options={'nonexistent': 1}, task_timeout=9)
                    self.assertFalse(pool.props.workers_running)
                    self.assertEqual(pool.props.task_timeout, 0)
                self.assertEqual(pool.map(square, range(3), progress_bar=True,
                                          progress_bar_options=captured_bar()[0]), [0, 1, 4])


class TestNumpy(unittest.TestCase):
    """A numpy array is mapped in chunks of rows, one per call, and the
    chunks' arrays concatenated, as MPIRE does."""

    def setUp(self):
        try:
            import numpy
        except ImportError:
            self.skipTest('numpy is not installed (Debian: python3-numpy)')
        self.numpy = numpy

    def test_chunks_and_concatenation(self):
        numpy = self.numpy
        array = numpy.arange(30).reshape(10, 3)
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                self.assertEqual(pool.map(chunk_of, array, chunk_size=3),
                                 [('ndarray', 2, 3)] * 3 + [('ndarray', 2, 1)])
                # By position too: chunk_size is MPIRE's third.
                self.assertEqual(pool.map(chunk_of, array, None, None, 4),
                                 [('ndarray', 2, 4)] * 2 + [('ndarray', 2, 2)])
                result = pool.map(doubled, array, chunk_size=3)
                self.assertIsInstance(result, numpy.ndarray)
                self.assertTrue(numpy.array_equal(result, array * 2))

                chunks = pool.map(doubled, array, chunk_size=3, concatenate_numpy_output=False)
                self.assertIsInstance(chunks, list)
                self.assertEqual([chunk.shape for chunk in chunks], [(3, 3)] * 3 + [(1, 3)])
                self.assertTrue(numpy.array_equal(numpy.concatenate(chunks), array * 2))

                # imap() gives a result per chunk, as it comes.
                chunks = list(pool.imap(doubled, array, chunk_size=3))
                self.assertEqual([chunk.shape for chunk in chunks], [(3, 3)] * 3 + [(1, 3)])
                self.assertTrue(numpy.array_equal(numpy.concatenate(chunks), array * 2))
                chunks = list(pool.imap_unordered(doubled, array, chunk_size=4))
                self.assertEqual(sorted(len(chunk) for chunk in chunks), [2, 4, 4])
                self.assertEqual(sorted(map(tuple, numpy.concatenate(chunks))), sorted(map(tuple, array * 2)))

                result = pool.map_async(doubled, array, chunk_size=3).get(timeout=60)
                self.assertTrue(numpy.array_equal(result, array * 2))

    def test_one_dimension_splits_and_lengths(self):
        numpy = self.numpy
        vector = numpy.arange(10)
        for method in ('fork', 'spawn'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method, keep_alive=True) as pool:
                self.assertEqual(pool.map(chunk_of, vector, chunk_size=4),
                                 [('ndarray', 1, 4), ('ndarray', 1, 4), ('ndarray', 1, 2)])
                self.assertTrue(numpy.array_equal(pool.map(doubled, vector, chunk_size=4), vector * 2))
                # MPIRE's n_splits, and a float chunk size as an average.
                self.assertEqual([rows for _, _, rows in pool.map(chunk_of, vector, n_splits=2)], [5, 5])
                self.assertEqual([rows for _, _, rows in pool.map(chunk_of, vector, chunk_size=2.5)], [3, 2, 3, 2])
                # iterable_len takes the first rows.
                self.assertTrue(numpy.array_equal(pool.map(doubled, vector, iterable_len=5, chunk_size=2),
                                                  vector[:5] * 2))
                # Results that are no arrays are not concatenated.
                self.assertEqual(pool.map(len, vector, chunk_size=5), [5, 5])


class TestTaskTimeout(unittest.TestCase):
    """A map's own task_timeout, for that map only."""

    def test_processes(self):
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                started = time.monotonic()
                with self.assertRaises(Wpool.TaskTimeoutError) as raised:
                    pool.map(sleeps, [0, 5, 0], chunk_size=1, task_timeout=0.5)
                self.assertLess(time.monotonic() - started, 4.5)
                self.assertIsInstance(raised.exception, TimeoutError)
                self.assertIn('task timeout (0.5 s)', str(raised.exception))
                self.assertIn('killed', str(raised.exception))
                # The next map has the pool's own: no limit.
                self.assertEqual(pool.props.task_timeout, 0)
                self.assertEqual(pool.map(sleeps, [1], chunk_size=1), [1])

                started = time.monotonic()
                with self.assertRaises(TimeoutError):
                    for _ in pool.imap(sleeps, itertools.chain([0], itertools.repeat(5)), chunk_size=1,
                                       task_timeout=0.3):
                        pass
                with self.assertRaises(TimeoutError):
                    pool.apply_async(sleeps, (5,), task_timeout=0.3).get(timeout=60)
                self.assertLess(time.monotonic() - started, 9)

    def test_pool_timeout_kept(self):
        # A pool made with its own timeout gets it back after a map's.
        with Wpool.Pool(n_jobs=2, start_method='fork', task_timeout=30) as pool:
            with self.assertRaises(TimeoutError):
                pool.map(sleeps, [3], task_timeout=0.3)
            self.assertEqual(pool.props.task_timeout, 30)
            self.assertEqual(pool.map(sleeps, [0.5]), [0.5])

    def test_threading(self):
        # doc/reliability.md: a thread cannot be stopped; the map fails at
        # the deadline all the same, the thread is left to finish its item
        # (its result dropped), and a new thread takes its place.
        finished_late.clear()
        with Wpool.Pool(n_jobs=2, start_method='threading') as pool:
            started = time.monotonic()
            with self.assertRaises(Wpool.TaskTimeoutError) as raised:
                pool.map(sleeps_then_notes, [0, 3, 0], chunk_size=1, task_timeout=0.3)
            self.assertLess(time.monotonic() - started, 2.5)
            self.assertIn('a thread cannot be stopped', str(raised.exception))
            self.assertNotIn(3, finished_late)
            self.assertEqual(pool.props.task_timeout, 0)
            # Both workers serve the next map, with no limit.
            self.assertEqual(pool.map(sleeps, [1, 1], chunk_size=1), [1, 1])
            deadline = time.monotonic() + 10
            while 3 not in finished_late and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn(3, finished_late)


class TestWorkerLifespan(unittest.TestCase):
    """MPIRE's worker_lifespan counts a worker's items: it restarts after
    the batch that brings its count to the lifespan."""

    def assert_lifespans(self, pool, method):
        pid = os.getpid()
        for n_items, chunk_size, form, expected in ((9, 1, 'map', [3, 3, 3]), (12, 2, 'map', [4, 4, 4]),
                                                    (12, 1, 'imap', [3, 3, 3, 3]), (12, 2, 'imap', [4, 4, 4])):
            with self.subTest(method=method, chunk_size=chunk_size, form=form):
                mapped = getattr(pool, form)(pid_and_count, range(n_items), chunk_size=chunk_size,
                                             worker_lifespan=3)
                results = list(mapped)
                self.assertEqual(pool.props.worker_lifespan, 0)
                # Each new worker starts with a new state.
                self.assertEqual([count for _, count in results], [i + 1 for run in expected for i in range(run)])
                if method != 'threading':
                    pids = [p for p, _ in results]
                    self.assertEqual(runs(pids), expected)
                    self.assertEqual(len(set(pids)), len(expected))
                    self.assertNotIn(pid, pids)

    def test_counts_items(self):
        for method in METHODS:
            with Wpool.Pool(n_jobs=1, start_method=method, use_worker_state=True) as pool:
                self.assert_lifespans(pool, method)

    def test_counts_items_in_chunks_of_one(self):
        # With the pool's chunk-size 1, a C chunk is one batch.
        for method in METHODS:
            with Wpool.Pool(n_jobs=1, start_method=method, use_worker_state=True, chunk_size=1) as pool:
                self.assert_lifespans(pool, method)


class TestApplyAndAsync(unittest.TestCase):
    """MPIRE's apply() and apply_async() with callback(result) and
    error_callback(exception); map_async() as multiprocessing's."""

    def test_apply(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                called, failed = [], []
                self.assertEqual(pool.apply(multiply, (6,), {'y': 7}, callback=called.append,
                                            error_callback=failed.append), 42)
                self.assertEqual((called, failed), ([42], []))
                with self.assertRaises(CustomError) as raised:
                    pool.apply(fails_at_seven, (7,), callback=called.append, error_callback=failed.append)
                self.assertEqual(called, [42])
                self.assertEqual(len(failed), 1)
                self.assertIs(failed[0], raised.exception)
                # apply(func, 3) is func(3); a dict alone is keywords.
                self.assertEqual(pool.apply(square, 3, callback=called.append), 9)
                self.assertEqual(pool.apply(multiply, {'x': 2, 'y': 5}), 10)
                self.assertEqual(called, [42, 9])

    def test_apply_async(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                called, failed = [], []
                result = pool.apply_async(sleeps, (1,), callback=called.append, error_callback=failed.append)
                # While the task runs: MPIRE's TimeoutError, not the task's.
                with self.assertRaises(TimeoutError) as raised:
                    result.get(timeout=0.05)
                self.assertNotIsInstance(raised.exception, Wpool.TaskTimeoutError)
                self.assertFalse(result.ready())
                self.assertEqual(called, [])
                self.assertEqual(result.get(timeout=60), 1)
                self.assertTrue(result.successful())
                self.assertEqual((called, failed), ([1], []))

                failing = pool.apply_async(fails_at_seven, (7,), callback=called.append,
                                           error_callback=failed.append)
                with self.assertRaises(CustomError) as raised:
                    failing.get(timeout=60)
                self.assertFalse(failing.successful())
                self.assertEqual(called, [1])
                self.assertEqual(len(failed), 1)
                self.assertIs(failed[0], raised.exception)

    def test_map_async(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                called, failed = [], []
                result = pool.map_async(square, range(30), chunk_size=4, callback=called.append,
                                        error_callback=failed.append)
                self.assertEqual(result.get(timeout=60), [x * x for x in range(30)])
                self.assertEqual((called, failed), ([[x * x for x in range(30)]], []))

                failing = pool.map_async(fails_at_seven, range(20), callback=called.append,
                                         error_callback=failed.append)
                with self.assertRaises(CustomError):
                    failing.get(timeout=60)
                self.assertEqual(len(called), 1)
                self.assertEqual([type(error) for error in failed], [CustomError])

                slow = pool.map_async(sleeps, [0.5, 0.5], chunk_size=1)
                with self.assertRaises(TimeoutError):
                    slow.get(timeout=0.05)
                self.assertEqual(slow.get(timeout=60), [0.5, 0.5])

    def test_callback_on_another_thread(self):
        # The callback of apply_async() runs on a thread of the pool's, as
        # multiprocessing's result handler calls it, before get() returns.
        threads = []
        with Wpool.Pool(n_jobs=2, start_method='fork') as pool:
            result = pool.apply_async(square, (4,), callback=lambda value: threads.append(threading.get_ident()))
            self.assertEqual(result.get(timeout=60), 16)
        self.assertEqual(len(threads), 1)
        self.assertNotEqual(threads[0], threading.get_ident())


if __name__ == '__main__':
    taptestrunner.main()
