#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Big buffers in the shared objects of Python functions: numpy arrays,
bytes, bytearrays, memoryviews and array.arrays go once to a sealed memfd
that 'spawn' and 'forkserver' workers map read-only, without a copy per
worker; 'threading' and 'fork' workers see the caller's own. Without numpy
the numpy cases are skipped and the rest runs."""

import array
import contextlib
import gc
import io
import mmap
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
PROGRAMS = ('spawn', 'forkserver')
MEMFD = 'memfd:wpool-shared-objects'
# Above the 64 KiB threshold.
BIG = 256 * 1024
needs_numpy = unittest.skipIf(numpy is None, 'numpy is not installed')


class Holder:
    """A custom object, whose attributes are shared too."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


def big_buffers():
    """One of every buffer kind, above the threshold."""
    data = bytes(range(256)) * (BIG // 256)
    return {
        'bytes': data,
        'bytearray': bytearray(reversed(data)),
        'memoryview': memoryview(array.array('i', range(BIG // 4))).cast('B').cast('i', (BIG // 256, 64)),
        'array': array.array('d', (x / 3 for x in range(BIG // 8))),
    }


def big_arrays():
    """numpy arrays above the threshold: C and Fortran order, strided,
    structured, nested in a tuple, a dict and an object's attribute."""
    grid = numpy.arange(BIG // 8, dtype=numpy.float64).reshape(-1, 64)
    records = numpy.zeros(BIG // 12, dtype=[('a', '<i4'), ('b', '<f8')])
    records['a'] = numpy.arange(len(records))
    return {
        'grid': grid,
        'fortran': numpy.asfortranarray(grid[:, :32]),
        'strided': grid[:, ::2],
        'records': records,
        'nested': (grid[:200].copy(), {'inner': numpy.arange(BIG // 2, dtype=numpy.int16)}),
        'holder': Holder(data=numpy.ones((256, 256), dtype=numpy.float32), label='holder'),
    }


def members(shared):
    """Every buffer of the shared objects, by name."""
    found = {name: value for name, value in shared.items() if name not in ('nested', 'holder', 'results')}
    if 'nested' in shared:
        found['nested.0'] = shared['nested'][0]
        found['nested.inner'] = shared['nested'][1]['inner']
    if 'holder' in shared:
        found['holder.data'] = shared['holder'].data
    return found


def checksum(shared, i):
    """What a task computes from each buffer: equal whatever it received."""
    sums = {}
    for name, value in sorted(members(shared).items()):
        if numpy is not None and isinstance(value, numpy.ndarray):
            if value.dtype.names:
                value = value['a']
            sums[name] = (value.shape, str(value.dtype), float(value.sum()), float(value.flat[i % value.size]))
        else:
            view = memoryview(value)
            sums[name] = (view.nbytes, sum(view.cast('B')[i::4099]))
    return sums


def kinds(shared, _):
    """What the worker received: each buffer's type, whether it is
    writable, and whether it lies in a read-only shared mapping of the
    memfd."""
    mappings = []
    with open('/proc/self/maps') as maps:
        for line in maps:
            if MEMFD in line:
                start, end = (int(bound, 16) for bound in line.split()[0].split('-'))
                mappings.append((start, end, line.split()[1]))
    found = {}
    for name, value in members(shared).items():
        if numpy is not None and isinstance(value, numpy.ndarray):
            address = value.__array_interface__['data'][0]
            base = value
            while isinstance(base, numpy.ndarray) and base.base is not None:
                base = base.base
            order = 'F' if value.flags.f_contiguous and not value.flags.c_contiguous else 'C'
            in_memfd = any(start <= address < end and perms == 'r--s' for start, end, perms in mappings)
            found[name] = ('ndarray', value.flags.writeable, in_memfd, address, order,
                           type(getattr(base, 'obj', None)) is mmap.mmap)
        else:
            in_memfd = isinstance(value, memoryview) and type(value.obj) is mmap.mmap and \
                any(perms == 'r--s' for _, _, perms in mappings)
            fmt = value.format if isinstance(value, memoryview) else None
            found[name] = (type(value).__name__, not memoryview(value).readonly, in_memfd, id(value), fmt, None)
    return os.getpid(), found


def write_numpy(shared, _):
    shared['grid'][0, 0] = 1.0


def write_memoryview(shared, _):
    memoryview(shared['bytearray'])[0] = 1


def killed_at_three(shared, x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return checksum(shared, x)


def same_object(shared, _):
    return shared['first'] is shared['again'] is shared['in'][0]


def received(shared, _):
    """The small and other objects as the worker has them."""
    small = shared['small']
    return (type(small).__name__, small, type(shared['strings']).__name__, shared['strings'],
            type(shared['custom']).__name__, shared['custom'].label,
            os.path.exists('/proc/self/maps') and any(MEMFD in line for line in open('/proc/self/maps')))


def big_length(shared, _):
    return len(shared['big'])


def memfds():
    """The caller's descriptors of shared objects' memfds, once the pools
    no longer referenced are gone."""
    return open_memfds('wpool-shared-objects')


def n_fds():
    return len(os.listdir('/proc/self/fd'))


class TestSharedBuffers(unittest.TestCase):
    def shared_objects(self):
        shared = big_buffers()
        if numpy is not None:
            shared.update(big_arrays())
        return shared

    def test_results_equal_serial(self):
        shared = self.shared_objects()
        expected = [checksum(shared, i) for i in range(8)]
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared,
                                                         start_method=method) as pool:
                self.assertEqual(pool.map(checksum, range(8), chunk_size=1), expected)

    def test_results_with_dill(self):
        try:
            import dill  # noqa: F401
        except ImportError:
            self.skipTest('dill is not installed')
        shared = self.shared_objects()
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared, start_method=method,
                                                         use_dill=True) as pool:
                self.assertEqual(pool.map(checksum, range(4)), [checksum(shared, i) for i in range(4)])
                _, found = pool.map(kinds, [0])[0]
                self.assertTrue(all(in_memfd for _, _, in_memfd, _, _, _ in found.values()), found)

    def test_programs_map_the_memfd(self):
        shared = self.shared_objects()
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared,
                                                         start_method=method) as pool:
                results = pool.map(kinds, range(16), chunk_size=1)
                for pid, found in results:
                    for name, (kind, writable, in_memfd, _, fmt, base_is_mmap) in found.items():
                        # Every buffer lies in the read-only mapping.
                        self.assertTrue(in_memfd, (name, found[name]))
                        self.assertFalse(writable, name)
                        if kind == 'ndarray':
                            self.assertTrue(base_is_mmap, name)
                        else:
                            # bytes and bytearray as bytes, the others in
                            # their own format.
                            self.assertEqual(kind, 'memoryview', name)
                            self.assertEqual(fmt, {'array': 'd', 'memoryview': 'i'}.get(name, 'B'), name)
                if numpy is not None:
                    self.assertEqual(found['fortran'][4], 'F')
                    self.assertEqual(found['strided'][4], 'C')
                if method == 'forkserver':
                    # Mapped once, in the server: every worker reads it at
                    # the server's address.
                    addresses = {found['bytes'][3] for _, found in results}
                    self.assertEqual(len(addresses), 1, results)

    def test_insights_tell_the_path(self):
        # The big buffers are mapped, not pickled: the pickle stays small.
        shared = {'big': bytes(BIG), 'label': 'x' * 10}
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared, start_method=method,
                                                         enable_insights=True) as pool:
                self.assertEqual(pool.map(big_length, range(2)), [BIG, BIG])
                insights = pool.get_insights()
                pickled = insights['shared_objects_pickled_bytes']
                mapped = insights['shared_objects_shared_memory_bytes']
                if method in PROGRAMS:
                    self.assertGreaterEqual(mapped, BIG)
                    self.assertGreater(pickled, 0)
                    self.assertLess(pickled, 4096)
                else:
                    self.assertEqual((pickled, mapped), (0, 0))
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    pool.print_insights()
                self.assertIn('Shared objects per new worker process: pickled: {}, shared memory: {}'.format(
                    pickled, mapped), printed.getvalue())

    def test_identity_kept(self):
        data = bytes(BIG)
        shared = {'first': data, 'again': data, 'in': [data]}
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=1, shared_objects=shared,
                                                         start_method=method) as pool:
                self.assertEqual(pool.map(same_object, [0]), [True])

    def test_threading_and_fork_do_not_copy(self):
        shared = self.shared_objects()
        for method in ('threading', 'fork'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared,
                                                         start_method=method) as pool:
                for pid, found in pool.map(kinds, range(4)):
                    for name, value in members(shared).items():
                        kind, writable, in_memfd, where, _, _ = found[name]
                        self.assertFalse(in_memfd, name)
                        self.assertEqual(kind, type(value).__name__, name)
                        if kind == 'ndarray':
                            # The caller's memory, at the caller's address.
                            self.assertEqual(where, value.__array_interface__['data'][0], name)
                        else:
                            self.assertEqual(where, id(value), name)
                self.assertEqual(memfds(), [])

    def test_writes_refused(self):
        shared = self.shared_objects()
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=1, shared_objects=shared,
                                                         start_method=method) as pool:
                with self.assertRaisesRegex(TypeError, 'cannot modify read-only memory'):
                    pool.map(write_memoryview, [0])
                if numpy is not None:
                    with self.assertRaisesRegex(ValueError, 'assignment destination is read-only'):
                        pool.map(write_numpy, [0])
                self.assertEqual(pool.map(checksum, [1]), [checksum(shared, 1)])

    def test_small_and_other_objects_pickled(self):
        shared = {'small': b'x' * 1000, 'strings': {'a': 'b', 'c': 'd'}, 'custom': Holder(label='custom')}
        if numpy is not None:
            shared['small_array'] = numpy.arange(100)
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=1, shared_objects=shared,
                                                         start_method=method) as pool:
                self.assertEqual(pool.map(received, [0]),
                                 [('bytes', shared['small'], 'dict', shared['strings'], 'Holder', 'custom', False)])
                self.assertEqual(memfds(), [])

    def test_memfd_released(self):
        # A first pool makes what the process keeps for every pool.
        with Wpool.Pool(n_jobs=1, shared_objects={'small': b'x'}, start_method='spawn') as pool:
            pool.map(checksum, [0])
        gc.collect()
        before = n_fds()
        self.assertEqual(memfds(), [])
        pool = Wpool.Pool(n_jobs=1, shared_objects=big_buffers(), start_method='spawn', keep_alive=True)
        pool.map(checksum, [0])
        self.assertEqual(len(memfds()), 1)
        # Replaced: the old memfd goes at once, a new one at the map.
        first = os.readlink('/proc/self/fd/' + memfds()[0])
        pool.set_shared_objects(big_buffers())
        self.assertEqual(memfds(), [])
        pool.map(checksum, [0])
        self.assertEqual(len(memfds()), 1)
        self.assertNotEqual(os.readlink('/proc/self/fd/' + memfds()[0]), first)
        pool.set_shared_objects({'small': b'x'})
        pool.map(checksum, [0])
        self.assertEqual(memfds(), [])
        # With a shared array, whose memfd the pool holds too.
        shared = big_buffers()
        shared['results'] = Wpool.SharedArray.new(Wpool.SharedArrayType.DOUBLE, 16, False)
        pool.set_shared_objects(shared)
        pool.map(checksum, [0])
        self.assertEqual(len(memfds()), 1)
        pool.stop_and_join()
        del shared
        # Closed: nothing left.
        del pool
        gc.collect()
        self.assertEqual(memfds(), [])
        self.assertEqual(n_fds(), before)

    def test_worker_killed(self):
        shared = self.shared_objects()
        for method in PROGRAMS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=shared,
                                                         start_method=method) as pool:
                with self.assertRaises(Wpool.WorkerDiedError) as raised:
                    pool.map(killed_at_three, range(8), chunk_size=1)
                self.assertIn('signal 9', raised.exception.message)
                # New workers map the same memfd again.
                self.assertEqual(pool.map(checksum, range(4), chunk_size=1), [checksum(shared, i) for i in range(4)])
                self.assertEqual(len(memfds()), 1)

    def test_mpi_keeps_the_pickle(self):
        # 'mpi' workers may be on other machines: the buffers stay in the
        # pickle, and a SharedArray, one machine's memory, is refused.
        import pickle
        from gi.overrides._wpool import programs

        data, shared_buffers = programs._dumps_shared(pickle, {'data': bytes(BIG)}, 'mpi')
        self.assertIsNone(shared_buffers)
        self.assertGreater(len(data), BIG)
        self.assertEqual(pickle.loads(data), {'data': bytes(BIG)})
        shared_array = Wpool.SharedArray.new(Wpool.SharedArrayType.DOUBLE, 4, False)
        with self.assertRaisesRegex(TypeError, 'cannot be sent to “mpi” workers'):
            programs._dumps_shared(pickle, {'results': shared_array}, 'mpi')
        self.assertEqual(memfds(), [])

    def test_stale_descriptor_refused(self):
        # What a worker does if the caller's descriptor were closed, or
        # another file opened there, since the shared objects were pickled.
        from gi.overrides._wpool import buffers

        with open('/dev/null') as other:
            with self.assertRaisesRegex(RuntimeError, 'another file now'):
                buffers._map((os.getpid(), other.fileno(), 'wpool-shared-objects-0-0'), False)
        with self.assertRaisesRegex(RuntimeError, 'holds them no more'):
            buffers._map((os.getpid(), 9999, 'wpool-shared-objects-0-0'), False)

    @needs_numpy
    def test_numpy_alone(self):
        # The array as the shared objects themselves.
        grid = numpy.arange(BIG // 8, dtype=numpy.float64).reshape(-1, 64)
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, shared_objects=grid,
                                                         start_method=method) as pool:
                self.assertEqual(pool.map(row_sum, range(4)), [float(grid[i].sum()) for i in range(4)])
                self.assertEqual(pool.map(writable, [0]), [method in ('threading', 'fork')])


class TestSharedArrayData(unittest.TestCase):
    """Wpool.SharedArray, the writable way: get_data() is its memory."""

    def test_in_the_caller(self):
        shared_array = Wpool.SharedArray.new(Wpool.SharedArrayType.INT32, 4, False)
        data = shared_array.get_data()
        self.assertEqual((data.format, data.shape, data.readonly), ('i', (4,), False))
        data[1] = 7
        shared_array.set_int64(2, -5)
        self.assertEqual(shared_array.dup_values().unpack(), [0, 7, -5, 0])
        self.assertEqual(data.tolist(), [0, 7, -5, 0])
        # The view outlives the array.
        del shared_array
        gc.collect()
        data[3] = 1
        self.assertEqual(data.tolist(), [0, 7, -5, 1])
        for element_type, fmt in (('INT64', 'q'), ('UINT8', 'B'), ('FLOAT', 'f'), ('DOUBLE', 'd')):
            shared_array = Wpool.SharedArray.new(getattr(Wpool.SharedArrayType, element_type), 3, True)
            self.assertEqual(shared_array.get_data().format, fmt)
            self.assertEqual(shared_array.get_data().nbytes, 3 * shared_array.get_data().itemsize)
        self.assertEqual(Wpool.SharedArray.new(Wpool.SharedArrayType.DOUBLE, 0, False).get_data().tolist(), [])

    @needs_numpy
    def test_numpy_view(self):
        shared_array = Wpool.SharedArray.new(Wpool.SharedArrayType.DOUBLE, 5, False)
        view = numpy.asarray(shared_array.get_data())
        self.assertEqual((view.dtype, view.shape, view.flags.writeable), (numpy.float64, (5,), True))
        view[:] = numpy.arange(5) / 2
        self.assertEqual(shared_array.dup_values().unpack(), [0.0, 0.5, 1.0, 1.5, 2.0])
        floats = numpy.frombuffer(Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 3, False).get_data(),
                                  dtype=numpy.float32)
        self.assertTrue(floats.flags.writeable)

    def test_written_by_workers(self):
        grid = big_buffers()['array']
        for method in METHODS:
            with self.subTest(method=method):
                results = Wpool.SharedArray.new(Wpool.SharedArrayType.DOUBLE, 16, False)
                # Alone, and inside the shared objects beside a buffer.
                for shared in (results, {'results': results, 'grid': grid}):
                    with Wpool.Pool(n_jobs=2, shared_objects=shared, start_method=method) as pool:
                        pool.map(store_square, range(16), chunk_size=1)
                    self.assertEqual(results.get_data().tolist(), [float(x * x) for x in range(16)])
                    results.get_data()[:] = memoryview(bytes(16 * 8)).cast('d')


def store_square(shared, x):
    results = shared if isinstance(shared, Wpool.SharedArray) else shared['results']
    if numpy is not None:
        numpy.asarray(results.get_data())[x] = x * x
    else:
        results.get_data()[x] = x * x


def row_sum(grid, i):
    return float(grid[i].sum())


def writable(grid, _):
    return grid.flags.writeable


if __name__ == '__main__':
    taptestrunner.main()
