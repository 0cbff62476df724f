#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python functions in worker processes under every start method, against
# what a Python user has instead, in one run on one machine:
# multiprocessing's pools and, when it can be imported (WPOOL_BENCH_MPIRE,
# a checkout of github.com/sybrenjansen/mpire, or an installed one),
# MPIRE's WorkerPool. Three measures:
#
# 1. a warm kept-alive pool mapping a trivial body (x*x + 1): ns per item;
# 2. a cold pool of two workers: from creating it to the results of a
#    two-item map (median of REPEATS);
# 3. a big `bytes` as the shared objects of 4 workers: how many copies of
#    it the pool's processes hold (their PSS with it, less their PSS with
#    an empty one), and each worker's private dirty memory.
#
# Prints figures and ratios; asserts nothing about time.
#
#   bench-python-workers.py [N_ITEMS] [N_JOBS] [DATASET_MIB]

import math
import os
import statistics
import sys
import time

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

from bench_util import (MPIRE_NOT_FOUND, MultiprocessingPool, best_of, mpire_worker_pool, smaps,  # noqa: E402
                        with_shared)

REPEATS = 5
METHODS = ('fork', 'spawn', 'forkserver')
DATASET_JOBS = 4

MpireWorkerPool = mpire_worker_pool()


def trivial(x):
    return x * x + 1


def where(x):
    """The worker's pid, and the pid of the process that made it."""
    return os.getpid(), os.getppid()


def touch(data, x):
    """Reads a byte of every page of its part of the shared @data."""
    part = len(data) // 100
    return os.getpid(), os.getppid(), sum(data[x * part:(x + 1) * part:4096])


# Every library's pool, as a context manager, and its map.

def wpool_pool(method, n_jobs, shared_objects=None):
    return Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True, shared_objects=shared_objects)


def wpool_map(pool, func, items, chunk_size=None):
    return pool.map(func, items, chunk_size=chunk_size)


def multiprocessing_map(pool, func, items, chunk_size=None, shared=False):
    if shared:
        return pool.pool.map(with_shared, [(func, x) for x in items], chunksize=chunk_size)
    return pool.pool.map(func, items, chunksize=chunk_size)


def mpire_pool(method, n_jobs, shared_objects=None):
    return MpireWorkerPool(n_jobs, start_method=method, keep_alive=True, shared_objects=shared_objects)


def mpire_map(pool, func, items, chunk_size=None):
    return pool.map(func, items, chunk_size=chunk_size)


def libraries():
    yield 'libwpool', wpool_pool, wpool_map
    yield 'multiprocessing', MultiprocessingPool, multiprocessing_map
    if MpireWorkerPool is not None:
        yield 'MPIRE', mpire_pool, mpire_map


def warm(n_items, n_jobs):
    values = list(range(n_items))
    expected = [trivial(x) for x in values]
    per_item = {}
    print(f'\n1. Warm pool, body x*x + 1, {n_items} items, {n_jobs} jobs: ns/item (best of 3, best chunk size)')
    print(f'   {"":34} {"ns/item":>9}')
    serial = best_of(lambda: [trivial(x) for x in values])
    print(f'   {"serial loop":34} {serial * 1e9 / n_items:9.0f}')
    for name, make, run_map in libraries():
        for method in METHODS:
            with make(method, n_jobs) as pool:
                run_map(pool, trivial, values[:1000])
                best = math.inf
                for chunk_size in (None, max(n_items // (n_jobs * 4), 1), max(n_items // n_jobs, 1)):
                    def run():
                        assert run_map(pool, trivial, values, chunk_size) == expected
                    best = min(best, best_of(run))
            per_item[name, method] = best * 1e9 / n_items
            print(f'   {name + " " + method:34} {per_item[name, method]:9.0f}')
    print('   libwpool against itself and the others, same start method (> 1: libwpool is faster):')
    for method in METHODS:
        others = '  '.join(f'vs {name} {per_item[name, method] / per_item["libwpool", method]:.2f}×'
                           for name, _, _ in libraries() if name != 'libwpool')
        print(f'   {method:11} {per_item["libwpool", method] / per_item["libwpool", "fork"]:.2f}× '
              f'FORK\'s time   {others}')


def cold(n_jobs):
    print(f'\n2. Cold pool of {n_jobs} workers: create, map 2 items, stop (median of {REPEATS}, ms)')
    for name, make, run_map in libraries():
        for method in ('spawn', 'forkserver'):
            times = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                with make(method, n_jobs) as pool:
                    results = run_map(pool, where, [0, 1], 1)
                times.append(time.perf_counter() - started)
                assert len(results) == 2
            print(f'   {name + " " + method:34} {statistics.median(times) * 1e3:9.0f}')


def pool_memory(make, run_map, method, data):
    """The PSS of the pool's processes (workers and any fork server), and
    their workers' private dirty memory, with @data as shared objects."""
    with make(method, DATASET_JOBS, data) as pool:
        if make is MultiprocessingPool:
            results = run_map(pool, touch, range(100), 1, shared=True)
        else:
            results = run_map(pool, touch, range(100), 1)
        workers = {pid for pid, _, _ in results}
        parents = {ppid for _, ppid, _ in results} - {os.getpid()}
        memory = {pid: smaps(pid) for pid in workers | parents}
    pss = sum(figures['Pss'] for figures in memory.values())
    dirty = [memory[pid]['Private_Dirty'] for pid in workers]
    return pss, statistics.mean(dirty), len(workers)


def dataset(mib):
    size = mib << 20
    data = bytes(range(256)) * (size // 256)
    empty = bytes(256)
    print(f'\n3. A {mib} MiB bytes as the shared objects, {DATASET_JOBS} workers, 100 tasks reading all of it')
    print(f'   {"":34} {"copies":>7} {"private dirty/worker":>21} {"extra PSS/worker*":>18}')
    for name, make, run_map in libraries():
        for method in METHODS:
            with_data, dirty, n_workers = pool_memory(make, run_map, method, data)
            without, _, _ = pool_memory(make, run_map, method, empty)
            copies = (with_data - without) / size
            # Beyond the one copy libwpool holds for all the workers: in
            # the memfd they map (see bench-python-shared-buffers.py).
            kept = size if name == 'libwpool' and method in ('spawn', 'forkserver') else 0
            extra = (with_data - without - kept) / max(n_workers, 1)
            print(f'   {name + " " + method:34} {copies:7.2f} {dirty / 2**20:17.1f} MiB '
                  f'{extra / 2**20:10.1f} MiB ({extra / size:5.1%})')
    print('   * extra PSS of the pool\'s processes per worker, beyond libwpool\'s one copy; a FORK\n'
          '     worker reads the caller\'s copy, which is not counted')


def main():
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    if MpireWorkerPool is None:
        print(MPIRE_NOT_FOUND)
    warm(n_items, n_jobs)
    cold(n_jobs)
    if mib > 0:
        dataset(mib)


if __name__ == '__main__':
    main()
