#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Big buffers among the items of Python maps (issue 20): numpy arrays,
bytes, bytearrays, memoryviews and array.arrays of 16 KiB or more cross to
'fork', 'spawn' and 'forkserver' workers in memfds the workers map
copy-on-write, not in the pickle; each arrives as a writable copy of the
caller's, of its own type, and results equal a serial loop's. Smaller
buffers (but memoryviews, which pickle refuses) and other objects are
pickled as before. The memfds are closed
once their batches are done, the map ends or fails, a worker dying in
between, and go back to the pool for the next batches. Without numpy the
numpy cases are skipped and the rest runs.
SPAWN and FORKSERVER workers import this script as __mp_main__, so its
work stays under `if __name__ == '__main__':`."""

import array
import os
import signal
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

import taptestrunner  # noqa: E402
from wpool_testing import open_memfds  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None

METHODS = ('threading', 'fork', 'spawn', 'forkserver')
PROCESSES = METHODS[1:]
N_JOBS = 2
MEMFD = 'memfd:wpool-items'
# Above and below the 16 KiB threshold.
BIG = 64 * 1024
SMALL = 1024
needs_numpy = unittest.skipIf(numpy is None, 'numpy is not installed')


def buffers(size, seed=0):
    """One buffer of every kind but numpy's, of about @size bytes."""
    data = bytes((seed + i) % 251 for i in range(size))
    return [data, bytearray(reversed(data)), memoryview(array.array('i', range(seed, seed + size // 4))),
            array.array('d', (x / 3 for x in range(seed, seed + size // 8)))]


def arrays(size, seed=0):
    """numpy arrays of about @size bytes: C and Fortran order, strided,
    2-D, structured, of ints."""
    grid = numpy.arange(seed, seed + size // 8, dtype=numpy.float64).reshape(-1, 16)
    records = numpy.zeros(size // 12, dtype=[('a', '<i4'), ('b', '<f8')])
    records['a'] = numpy.arange(seed, seed + len(records))
    return [grid, numpy.asfortranarray(grid), grid[:, ::2], records,
            numpy.arange(size // 2, dtype=numpy.int16) + seed]


def digest(value):
    """What a task computes from a buffer, equal whatever form it came in:
    its type, shape and a sum of its values."""
    if numpy is not None and isinstance(value, numpy.ndarray):
        values = value['a'] if value.dtype.names else value
        return 'ndarray', value.shape, str(value.dtype), value.flags.f_contiguous, float(values.sum())
    view = memoryview(value)
    return type(value).__name__, view.format, view.shape, sum(view.cast('B')[::7])


def digest_all(*values, **named):
    return [digest(value) for value in values] + [(key, digest(value)) for key, value in sorted(named.items())]


def where(value):
    """The buffer as the worker has it: its type, whether it is writable,
    and whether it lies in a private writable mapping of an items memfd."""
    address = None
    if numpy is not None and isinstance(value, numpy.ndarray):
        address, writable = value.__array_interface__['data'][0], value.flags.writeable
    else:
        writable = not memoryview(value).readonly
        if isinstance(value, memoryview) and value.nbytes:
            address = numpy.frombuffer(value, dtype=numpy.uint8).__array_interface__['data'][0] \
                if numpy is not None and value.c_contiguous else None
    mapped = False
    with open('/proc/self/maps') as maps:
        for line in maps:
            if MEMFD in line and address is not None:
                start, end = (int(bound, 16) for bound in line.split()[0].split('-'))
                mapped = mapped or (start <= address < end and line.split()[1] == 'rw-p')
    return type(value).__name__, writable, mapped


def add_one(value):
    """Changes its item in place, as a function may change its copy."""
    value += 1
    return float(value.sum())


def keep_first(state, value):
    """The sum of the first item this worker was given, kept in its state."""
    kept = state.setdefault('first', value)
    return float(kept.sum())


def held_memfds(_):
    """How many items' memfds this worker process holds open."""
    return len(memfds())


def killed_on_negative(value):
    if value[0] < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return float(value.sum())


def memfds():
    """The caller's descriptors of items' memfds."""
    return open_memfds('wpool-items')


def moved(pool):
    insights = pool.get_insights()
    return insights['total_items_pickled_bytes'], insights['total_items_shared_memory_bytes']


class TestItemBuffers(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(memfds(), [])

    def test_buffers_same_as_serial(self):
        """Each kind, big and small, as an item, as positional and keyword
        arguments, and in apply(): what the task computes equals a serial
        loop's, under every start method."""
        items = buffers(BIG) + buffers(SMALL, 3) + buffers(BIG, 7)
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.map(digest, [(item,) for item in items]), [digest(item) for item in items])
                self.assertEqual(pool.map(digest_all, [tuple(items[i:i + 3]) for i in range(0, 12, 3)], chunk_size=1),
                                 [digest_all(*items[i:i + 3]) for i in range(0, 12, 3)])
                self.assertEqual(pool.map(digest_all, [{'a': items[0], 'b': items[5]}]),
                                 [digest_all(a=items[0], b=items[5])])
                self.assertEqual(pool.apply(digest_all, (items[0],), {'more': items[3]}),
                                 digest_all(items[0], more=items[3]))
                self.assertEqual(list(pool.imap(digest, ((item,) for item in items), chunk_size=2)),
                                 [digest(item) for item in items])

    @needs_numpy
    def test_arrays_same_as_serial(self):
        items = arrays(BIG) + arrays(SMALL, 5) + arrays(4 * BIG, 9)
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.map(digest, items), [digest(item) for item in items])
                self.assertEqual(pool.map(digest_all, [(a, b) for a, b in zip(items, reversed(items))], chunk_size=3),
                                 [digest_all(a, b) for a, b in zip(items, reversed(items))])
                # The same array twice in a batch is one object there.
                self.assertEqual(pool.map(digest_all, [(items[0], items[0])]), [digest_all(items[0], items[0])])
                self.assertEqual(sorted(pool.imap_unordered(digest, items, chunk_size=1)),
                                 sorted(digest(item) for item in items))

    @needs_numpy
    def test_numpy_iterable(self):
        """A numpy array as the iterable goes in chunks of rows, each from
        the memfd."""
        grid = numpy.arange(64 * 1024, dtype=numpy.float64).reshape(-1, 256)
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method,
                                                         enable_insights=True) as pool:
                self.assertEqual(pool.map(digest, grid, n_splits=4, concatenate_numpy_output=False),
                                 [digest(grid[i:i + 64]) for i in range(0, 256, 64)])
                self.assertEqual(moved(pool)[1], grid.nbytes)

    @needs_numpy
    def test_arrays_are_writable_copies(self):
        """An array arrives as a view of a private, writable mapping of the
        memfd: the worker may change it, and the caller's stays as it was.
        Other kinds arrive as their own type; small arrays pickled."""
        items = [numpy.zeros(BIG // 8), numpy.arange(10.0)]
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.map(where, items, chunk_size=1),
                                 [('ndarray', True, True), ('ndarray', True, False)])
                self.assertEqual(pool.map(where, [(value,) for value in buffers(BIG)]),
                                 [('bytes', False, False), ('bytearray', True, False),
                                  ('memoryview', True, True), ('array', True, False)])
                self.assertEqual(pool.map(add_one, items), [BIG // 8, 55.0])
                self.assertEqual(float(items[0].sum()), 0.0)
                self.assertEqual(float(items[1].sum()), 45.0)

    def test_insights_count_each_path(self):
        """The big buffers' bytes count as shared memory, not as pickled;
        small ones are pickled, but memoryviews. Threads move nothing."""
        big, small = buffers(BIG), buffers(SMALL)
        big_bytes = sum(memoryview(value).nbytes for value in big)
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method, keep_alive=True,
                                                         enable_insights=True) as pool:
                pool.map(digest, [(value,) for value in big])
                pickled, mapped = moved(pool)
                pool.map(digest, [(value,) for value in small])
                small_pickled, small_mapped = moved(pool)
                if method == 'threading':
                    self.assertEqual((pickled, mapped, small_pickled, small_mapped), (0, 0, 0, 0))
                    continue
                self.assertEqual(mapped, big_bytes)
                self.assertLess(pickled, 4096)
                # But a memoryview, which pickle refuses.
                self.assertEqual(small_mapped, small[2].nbytes)
                self.assertGreater(small_pickled, sum(memoryview(value).nbytes for value in small[:2] + small[3:]))

    @needs_numpy
    def test_memfds_reused_then_closed(self):
        """A lazy map over 192 MiB of arrays holds a few memfds at a time:
        each goes back to the pool once its batches are done, for the next
        ones, and the pool keeps a few (Spares.MAX) for its next maps, which
        it closes as its workers stop. None is left after a map that fails,
        even one whose exception the caller keeps (its frames hold the map),
        or that is left early."""
        from gi.overrides._wpool import buffers as module

        def generate(n):
            for i in range(n):
                yield numpy.full(1024 * 1024 // 8, float(i))

        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                most = 0
                for i, result in enumerate(pool.imap(add_one, generate(192), chunk_size=4)):
                    self.assertEqual(result, (i + 1) * 1024 * 1024 // 8)
                    most = max(most, len(memfds()))
                self.assertLessEqual(most, module.Spares.MAX + 2)
                self.assertLessEqual(len(memfds()), module.Spares.MAX)
                for result in pool.imap(add_one, generate(64), chunk_size=1):
                    break
                self.assertLessEqual(len(memfds()), module.Spares.MAX)
                with self.assertRaisesRegex(TypeError, "can't concat int to bytes"):
                    pool.map(add_one, [numpy.zeros(BIG), b'x' * BIG])
                try:
                    pool.map(add_one, [numpy.zeros(BIG), b'x' * BIG])
                except TypeError as error:
                    kept = error
                self.assertIsNotNone(kept.__traceback__)
                self.assertLessEqual(len(memfds()), module.Spares.MAX)
            self.assertEqual(memfds(), [])

    def test_forked_workers_hold_no_memfd(self):
        """A FORK template forked while the caller holds items' memfds (kept
        for the pool's next batches), and its workers, close them: they
        would keep their pages once the caller closed them."""
        with Wpool.Pool(n_jobs=N_JOBS, start_method='fork') as pool:
            pool.map(digest, [(value,) for value in buffers(BIG)])
            self.assertGreater(len(memfds()), 0)
            self.assertEqual(pool.map(held_memfds, range(4), chunk_size=1), [0] * 4)

    @needs_numpy
    def test_kept_item_keeps_its_values(self):
        """A function that keeps an item beyond its call (in the worker's
        state) keeps what it had, when the memfd it came in is reused for
        later batches: the worker made its pages its own."""
        items = [numpy.full(4 * 1024 * 1024 // 8, float(i)) for i in range(48)]
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=1, start_method=method,
                                                         use_worker_state=True) as pool:
                self.assertEqual(pool.map(keep_first, items, chunk_size=1), [0.0] * len(items))

    @needs_numpy
    def test_batch_over_two_memfds(self):
        """A batch whose buffers fill one memfd and go on in the next
        finds both."""
        items = [numpy.full(24 * 1024 * 1024 // 8, float(i)) for i in range(4)]
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.map(digest, items, n_splits=1), [digest(item) for item in items])
                self.assertEqual(list(pool.imap(digest, items, chunk_size=3)), [digest(item) for item in items])

    @needs_numpy
    def test_worker_killed_mid_buffer(self):
        """A worker killed with a batch's buffers mapped fails the map as
        any death does; the next map's buffers are right, and no memfd is
        left."""
        items = [numpy.full(BIG, float(i)) for i in range(8)]
        items[5][0] = -1
        for method in PROCESSES:
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                with self.assertRaises(Wpool.WorkerDiedError) as raised:
                    pool.map(killed_on_negative, items, chunk_size=1)
                self.assertIn('signal 9', raised.exception.message)
                self.assertEqual(memfds(), [])
                self.assertEqual(pool.map(killed_on_negative, items[:5] + items[6:]),
                                 [float(item.sum()) for item in items[:5] + items[6:]])

    @needs_numpy
    def test_dill(self):
        items = arrays(BIG)
        for method in ('fork', 'spawn'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method, use_dill=True) as pool:
                self.assertEqual(pool.map(lambda value: digest(value), items), [digest(item) for item in items])

    def test_stale_descriptor_refused(self):
        """What a worker does if the caller's descriptor were closed, or
        another file opened there, before it mapped a batch's buffers."""
        from gi.overrides._wpool import buffers as module

        with open('/dev/null') as other:
            with self.assertRaisesRegex(RuntimeError, 'another file now'):
                module._map((os.getpid(), other.fileno(), 'wpool-items-0-0'), True)
        with self.assertRaisesRegex(RuntimeError,
                                    'The items\' buffers cannot be opened: process .* holds them no more'):
            module._map((os.getpid(), 9999, 'wpool-items-0-0'), True)


if __name__ == '__main__':
    taptestrunner.main()
