#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python functions under the 'mpi' start method, under mpirun: in workers
# spawned for each pool (mpirun -np 1), and in the job's other ranks
# (mpirun -np 3), which serve from Wpool.serve_mpi_ranks(). Rank 0 runs
# the tests.

import os
import sys
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402


def square_plus_one(x):
    return x * x + 1


def halved(x):
    return x * 0.5


def scaled(shared, x):
    return shared['factor'] * x


def where(shared, x):
    return os.getpid(), id(shared)


def fail_on_seven(x):
    if x == 7:
        raise ValueError('seven is refused')
    return x


def init(worker_state):
    worker_state['items'] = 0


def count(worker_state, x):
    worker_state['items'] += 1
    return x


def report(worker_state):
    return worker_state['items']


class TestMpi(unittest.TestCase):
    n_jobs = max(int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) - 1, 2)

    def pool(self, **kwargs):
        return Wpool.Pool(n_jobs=self.n_jobs, start_method='mpi', **kwargs)

    def test_map(self):
        with self.pool(keep_alive=True) as pool:
            self.assertEqual(pool.map(square_plus_one, range(1000)), [x * x + 1 for x in range(1000)])
            self.assertEqual(sorted(pool.imap_unordered(square_plus_one, range(50))),
                             sorted(x * x + 1 for x in range(50)))
            self.assertEqual(pool.apply(square_plus_one, (3,)), 10)

    def test_range_and_raw_results(self):
        # A range travels as sub-ranges, float results as machine values
        # (little-endian: ranks may be other machines).
        items = range(10 ** 12, 10 ** 12 - 3000, -3)
        with self.pool(enable_insights=True) as pool:
            self.assertEqual(pool.map(halved, items, n_splits=4), [x * 0.5 for x in items])
            insights = pool.get_insights()
            self.assertLess(insights['total_items_pickled_bytes'], 4 * 300)
            self.assertGreaterEqual(insights['total_results_raw_bytes'], 8 * len(items))
            self.assertEqual(insights['total_results_pickled_bytes'], 0)
            self.assertEqual(list(pool.imap(square_plus_one, range(10, 0, -1), chunk_size=3)),
                             [x * x + 1 for x in range(10, 0, -1)])

    def test_shared_objects_of_each_pool(self):
        # The same workers (the job's ranks) serve pool after pool: each
        # pool's objects, not the last one's.
        for factor in (2, 3, 5):
            with self.pool(shared_objects={'factor': factor}) as pool:
                self.assertEqual(pool.map(scaled, range(10)), [factor * x for x in range(10)])

    def test_one_copy_per_worker(self):
        with self.pool(shared_objects=list(range(10000))) as pool:
            results = pool.map(where, range(40), chunk_size=1)
        pids = {pid for pid, _ in results}
        self.assertNotIn(os.getpid(), pids)
        self.assertLessEqual(len(pids), self.n_jobs)
        for pid in pids:
            self.assertEqual(len({address for p, address in results if p == pid}), 1)

    def test_exception(self):
        with self.pool() as pool:
            with self.assertRaisesRegex(ValueError, 'seven is refused'):
                pool.map(fail_on_seven, range(20))

    def test_worker_state_and_exit(self):
        # Not kept alive: the workers exit, and report, as the map ends.
        with self.pool(use_worker_state=True) as pool:
            pool.map(count, range(30), worker_init=init, worker_exit=report)
            self.assertEqual(sum(pool.get_exit_results()), 30)

    def test_refused(self):
        # One machine's locks and shared memory, before anything starts.
        import multiprocessing

        for objects in (multiprocessing.get_context('spawn').Lock(), multiprocessing.get_context('spawn').Value('i')):
            with self.pool(shared_objects=objects) as pool:
                with self.assertRaisesRegex(TypeError, 'other machines'):
                    pool.map(square_plus_one, range(4))


if __name__ == '__main__':
    Wpool.serve_mpi_ranks()
    unittest.main(argv=sys.argv[:1], verbosity=2)
