#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A big numpy array as the shared objects of N_JOBS workers, each of which
# reads all of it (sums it), under every start method, for libwpool,
# multiprocessing's Pool (the array as its initializer's argument, as MPIRE
# passes shared objects) and, when it can be imported (WPOOL_BENCH_MPIRE,
# a checkout of github.com/sybrenjansen/mpire, or an installed one),
# MPIRE's WorkerPool, in one run.
#
# What the sharing costs: the PSS of the caller and of all its descendants
# (workers, any FORK template or fork server, and any process forked before
# that still maps the caller's pages) while the pool is alive, with the big
# array shared, less the same with a one-element array shared (the caller
# holding the big one all the same). That is the memory the sharing adds,
# counted once however many processes map it: the copies.
# "Extra per worker" is that less the one copy a pool keeps for all its
# workers (libwpool's memfd under 'spawn' and 'forkserver'), per worker.
# Also the time from creating the pool to the results of the first map.
#
# Prints figures; asserts the sums only.
#
#   bench-python-shared-buffers.py [DATASET_MIB] [N_JOBS]

import os
import sys
import time

import numpy

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

from bench_util import MPIRE_NOT_FOUND, MultiprocessingPool, mpire_worker_pool, smaps, with_shared  # noqa: E402

METHODS = ('threading', 'fork', 'spawn', 'forkserver')
TASKS_PER_WORKER = 2

MpireWorkerPool = mpire_worker_pool()


def total(data, _):
    """Reads all of @data: the worker's pid, its parent's, the sum."""
    return os.getpid(), os.getppid(), float(data.sum())


def wpool_pool(method, n_jobs, data):
    return Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True, shared_objects=data)


def wpool_map(pool, items):
    return pool.map(total, items, chunk_size=1)


def multiprocessing_map(pool, items):
    return pool.pool.map(with_shared, [(total, x) for x in items], chunksize=1)


def mpire_pool(method, n_jobs, data):
    return MpireWorkerPool(n_jobs, start_method=method, keep_alive=True, shared_objects=data)


def mpire_map(pool, items):
    return pool.map(total, items, chunk_size=1)


def libraries():
    yield 'libwpool', wpool_pool, wpool_map, METHODS
    # multiprocessing has no threads but its ThreadPool, another API.
    yield 'multiprocessing', MultiprocessingPool, multiprocessing_map, METHODS[1:]
    if MpireWorkerPool is not None:
        yield 'MPIRE', mpire_pool, mpire_map, METHODS


def pool_memory(make, run_map, method, n_jobs, data):
    """The PSS of the caller and the pool's processes with @data shared,
    the number of workers that read it, and the time to the results."""
    started = time.perf_counter()
    with make(method, n_jobs, data) as pool:
        results = run_map(pool, range(n_jobs * TASKS_PER_WORKER))
        elapsed = time.perf_counter() - started
        assert all(result == float(data.sum()) for _, _, result in results)
        workers = {pid for pid, _, _ in results}
        pss = sum(map(pss_of, descendants() | {os.getpid()}))
    return pss, len(workers - {os.getpid()}) or n_jobs, elapsed


def pss_of(pid):
    try:
        return smaps(pid)['Pss']
    except OSError:
        # Gone since it was listed.
        return 0


def descendants():
    """The processes the caller started, and theirs."""
    children = {}
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{entry}/stat') as stat:
                ppid = int(stat.read().rpartition(')')[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, pending = set(), [os.getpid()]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    if MpireWorkerPool is None:
        print(MPIRE_NOT_FOUND)
    data = numpy.arange((mib << 20) // 8, dtype=numpy.float64)
    tiny = numpy.zeros(1)
    size = data.nbytes
    print(f'A {mib} MiB numpy array as the shared objects, {n_jobs} workers, '
          f'{n_jobs * TASKS_PER_WORKER} tasks each summing all of it')
    print(f'   {"":30} {"copies":>7} {"extra PSS/worker":>22} {"first map":>10}')
    for name, make, run_map, methods in libraries():
        for method in methods:
            with_data, n_workers, elapsed = pool_memory(make, run_map, method, n_jobs, data)
            without, _, _ = pool_memory(make, run_map, method, n_jobs, tiny)
            copies = (with_data - without) / size
            # The one copy libwpool keeps for all the workers of a pool.
            kept = size if name == 'libwpool' and method in ('spawn', 'forkserver') else 0
            extra = (with_data - without - kept) / n_workers
            print(f'   {name + " " + method:30} {copies:7.2f} {extra / 2**20:10.1f} MiB ({extra / size:6.2%}) '
                  f'{elapsed:8.2f} s', flush=True)


if __name__ == '__main__':
    main()
