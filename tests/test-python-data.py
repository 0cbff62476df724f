#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python data paths (issue 20), under every start method where Python
functions run: a range is mapped in batches that are sub-ranges, never
read into a list; results that are all float come back as machine
values, others pickled as before, all equal in type
and value to a serial loop's; the insights count the bytes of each path.
SPAWN and FORKSERVER workers import this script as __mp_main__, so its
work stays under `if __name__ == '__main__':`."""

import contextlib
import io
import math
import os
import signal
import time
import tracemalloc
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

import taptestrunner  # noqa: E402

METHODS = ('threading', 'fork', 'spawn', 'forkserver')
PROCESSES = METHODS[1:]
N_JOBS = 2

RANGES = (range(0, 10 ** 5, 3), range(10, 0, -1), range(0), range(5, 5), range(-7, 20, 4))


def square_plus_one(x):
    return x * x + 1


def halved(x):
    return x * 0.5


def is_odd(x):
    return x % 2 == 1


def beyond_int64(x):
    return 2 ** 63 + x


def int64_bounds(x):
    return (2 ** 63 - 1, -2 ** 63, 0, -1)[x % 4]


def float_specials(x):
    return (-0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1)[x % 6]


def mixed_numbers(x):
    return x if x % 2 else x * 1.5


def returns_none(x):
    return None


class Float(float):
    pass


def float_subclass(x):
    return Float(x)


def killed_at_three(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 0.5


def fails_at_seven(x):
    if x == 7:
        raise ValueError('seven')
    return x


# What threads ran, for test_interrupted_range_batch.
ran = []


def slow_and_seen(x):
    ran.append(x)
    time.sleep(0.002)
    return x


def same(test, results, expected):
    """Results equal a serial loop's in order, type and value: repr()
    tells -0.0 from 0.0, and True from 1."""
    test.assertEqual(len(results), len(expected))
    test.assertEqual([type(result) for result in results], [type(value) for value in expected])
    test.assertEqual([repr(result) for result in results], [repr(value) for value in expected])


def moved(pool):
    """The bytes the insights counted: items pickled, results pickled,
    results raw."""
    insights = pool.get_insights()
    return (insights['total_items_pickled_bytes'], insights['total_results_pickled_bytes'],
            insights['total_results_raw_bytes'])


class TestRanges(unittest.TestCase):
    def test_every_form(self):
        """map, imap, imap_unordered and map_unordered over ranges, empty
        and reversed ones too, give a serial loop's results."""
        for method in METHODS:
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True) as pool:
                for items in RANGES:
                    expected = [square_plus_one(x) for x in items]
                    self.assertEqual(pool.map(square_plus_one, items), expected, items)
                    self.assertEqual(list(pool.imap(square_plus_one, items)), expected, items)
                    self.assertEqual(sorted(pool.imap_unordered(square_plus_one, items)), sorted(expected), items)
                    self.assertEqual(sorted(pool.map_unordered(square_plus_one, items)), sorted(expected), items)

    def test_length_and_chunks(self):
        """iterable_len shorter or longer than the range, chunk_size (a
        float one too) and n_splits, as for a list."""
        items = range(100, 1100, 7)
        for method in METHODS:
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True) as pool:
                for options in ({'iterable_len': 17}, {'iterable_len': 1000}, {'iterable_len': 0},
                                {'chunk_size': 7}, {'chunk_size': 2.5}, {'n_splits': 3},
                                {'iterable_len': 50, 'chunk_size': 9}):
                    length = options.get('iterable_len', len(items))
                    expected = [square_plus_one(x) for x in items[:length]]
                    self.assertEqual(pool.map(square_plus_one, items, **options), expected, options)
                    self.assertEqual(list(pool.imap(square_plus_one, items, **options)), expected, options)
                    self.assertEqual(sorted(pool.imap_unordered(square_plus_one, items, **options)),
                                     sorted(expected), options)

    def test_beyond_len(self):
        """A range longer than len() can tell (sys.maxsize), or of 10^12
        items, with iterable_len: sliced, never read."""
        for method in ('threading', 'fork'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.map(square_plus_one, range(2 ** 70), iterable_len=1000),
                                 [square_plus_one(x) for x in range(1000)])
                self.assertEqual(list(pool.imap(halved, range(10 ** 12, 0, -1), iterable_len=300, chunk_size=64)),
                                 [halved(x) for x in range(10 ** 12, 10 ** 12 - 300, -1)])

    def test_progress(self):
        """The progress bar counts a range's items as a list's."""
        for method in METHODS:
            with self.subTest(method=method):
                output = io.StringIO()
                with contextlib.redirect_stderr(output), \
                        Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True) as pool:
                    self.assertEqual(pool.map(square_plus_one, range(300), chunk_size=10, progress_bar=True),
                                     [square_plus_one(x) for x in range(300)])
                    self.assertEqual(len(list(pool.imap(square_plus_one, range(120), chunk_size=10,
                                                        progress_bar=True))), 120)
                self.assertIn('300/300', output.getvalue())
                self.assertIn('120/120', output.getvalue())

    def test_not_materialised(self):
        """The caller never holds a range's items: mapping a function that
        returns None over 2·10^5 of them peaks at the results' list and a
        batch's (8 bytes an item each), where a list of the items would
        add 36 bytes an item; the same items from a generator, which must
        be read, do peak that high (the measure tells them apart)."""
        n_items = 200_000
        for method in METHODS:
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True) as pool:
                # Warm: the workers and the modules they load are not the map's.
                pool.map(returns_none, range(1000))
                peaks = []
                for items in (range(n_items), (x for x in range(n_items))):
                    tracemalloc.start()
                    try:
                        self.assertEqual(pool.map(returns_none, items), [None] * n_items)
                        peaks.append(tracemalloc.get_traced_memory()[1])
                    finally:
                        tracemalloc.stop()
                self.assertLess(peaks[0], 30 * n_items, peaks)
                self.assertGreater(peaks[1], 40 * n_items, peaks)

    def test_range_batch_runs_in_a_c_loop(self):
        """A range batch's items are all int, which the batch runner takes
        without iterating the range: a batch of 10^15 items whose iterator
        is cut short runs at once."""
        from gi.overrides._wpool.batches import _run_batch

        items = iter(range(10 ** 15))
        items.__setstate__(10 ** 15 - 3)
        self.assertEqual(_run_batch(square_plus_one, [], range(10 ** 15), items),
                         [square_plus_one(x) for x in range(10 ** 15 - 3, 10 ** 15)])

    def test_interrupted_range_batch(self):
        """A thread's range batch ends at its next item when the map stops
        (an imap left early)."""
        ran.clear()
        with Wpool.Pool(n_jobs=N_JOBS, start_method='threading') as pool:
            for result in pool.imap(slow_and_seen, range(2000), chunk_size=200):
                break
            self.assertEqual(result, 0)
            stopped = len(ran)
            self.assertLess(stopped, 2000)
            time.sleep(0.1)
            self.assertEqual(len(ran), stopped)
            self.assertEqual(pool.map(square_plus_one, range(5)), [1, 2, 5, 10, 17])

    def test_failures(self):
        """An item's exception, and a worker killed mid-map, fail a range's
        map as a list's (test-python-workers)."""
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                with self.assertRaisesRegex(ValueError, 'seven'):
                    pool.map(fails_at_seven, range(100), chunk_size=4)
                with self.assertRaisesRegex(ValueError, 'seven'):
                    list(pool.imap(fails_at_seven, range(100), chunk_size=4))
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                with self.assertRaises(Wpool.WorkerDiedError) as raised:
                    pool.map(killed_at_three, range(8), chunk_size=1)
                self.assertIsInstance(raised.exception, RuntimeError)
                self.assertTrue(raised.exception.matches(Wpool.error_quark(), Wpool.Error.WORKER_DIED),
                                raised.exception.message)
                self.assertIn('Item 3', raised.exception.message)
                self.assertIn('signal 9', raised.exception.message)
                # The batch of ten with item 3 is item 0 of the C map.
                with self.assertRaises(Wpool.WorkerDiedError) as raised:
                    list(pool.imap(killed_at_three, range(100), chunk_size=10))
                self.assertIn('Item 0', raised.exception.message)
                self.assertEqual(pool.map(halved, range(3)), [0.0, 0.5, 1.0])


# Functions whose results are all float (raw), or not (pickled: ints
# too, see batches._PACKED).
RAW = (halved, float_specials)
PICKLED = (square_plus_one, int64_bounds, is_odd, beyond_int64, mixed_numbers, returns_none, float_subclass)


class TestNumericResults(unittest.TestCase):
    def test_same_as_serial(self):
        """Every kind of result, in batches of 7 and in one batch, equals
        a serial loop's in type and value, on every start method."""
        items = range(-50, 250)
        for method in METHODS:
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True) as pool:
                for func in RAW + PICKLED:
                    expected = [func(x) for x in items]
                    same(self, pool.map(func, items, chunk_size=7), expected)
                    same(self, pool.map(func, list(items), n_splits=1), expected)
                    same(self, list(pool.imap(func, items, chunk_size=7)), expected)
                    self.assertEqual(pool.apply(func, (3,)), func(3))

    def test_nan(self):
        for method in ('threading', 'fork'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                results = pool.map(float, ['nan'] * 10 + ['-nan'])
                self.assertTrue(all(type(result) is float and math.isnan(result) for result in results))
                self.assertEqual([math.copysign(1, result) for result in results], [1.0] * 10 + [-1.0])

    def test_insights_tell_the_path(self):
        """Worker processes: results all float come back raw (8 bytes
        each, and a header per batch), others pickled; a range's
        batches pickle in a few bytes each, a list's in bytes per item.
        Threads move nothing."""
        items = range(10_000)
        n_batches = 8
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True,
                                                         enable_insights=True) as pool:
                pool.map(halved, items, n_splits=n_batches)
                range_items, pickled, raw = moved(pool)
                pool.map(is_odd, list(items), n_splits=n_batches)
                list_items, list_pickled, list_raw = moved(pool)
                if method == 'threading':
                    self.assertEqual((range_items, pickled, raw, list_items, list_pickled, list_raw), (0,) * 6)
                    continue
                self.assertEqual(pickled, 0)
                self.assertGreaterEqual(raw, 8 * len(items))
                self.assertLess(raw, 8 * len(items) + 200 * n_batches)
                self.assertGreater(range_items, 0)
                self.assertLess(range_items, 300 * n_batches)
                self.assertGreater(list_items, 2 * len(items))
                self.assertGreater(list_pickled, len(items))
                self.assertEqual(list_raw, 0)

                lines = io.StringIO()
                with contextlib.redirect_stdout(lines):
                    pool.print_insights()
                self.assertIn('Bytes to and from worker processes: items pickled: {}, items shared memory: 0, '
                              'results pickled: {}, results raw: 0'.format(list_items, list_pickled),
                              lines.getvalue())

    def test_no_insights_by_default(self):
        with Wpool.Pool(n_jobs=N_JOBS, start_method='fork') as pool:
            self.assertEqual(pool.map(halved, range(4)), [0.0, 0.5, 1.0, 1.5])
            self.assertEqual(pool.get_insights(), {})


if __name__ == '__main__':
    taptestrunner.main()
