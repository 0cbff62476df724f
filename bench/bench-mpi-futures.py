#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# libwpool's MPI start method from Python against mpi4py's
# MPIPoolExecutor, in one run, under `mpirun -np 1` (both spawn their
# workers with MPI_Comm_spawn), and libwpool's 'fork' for reference:
#
# 1. a warm pool of N_JOBS workers mapping a module-level x*x + 1 over
#    range(N_ITEMS): libwpool's Pool.map at its default chunk size and
#    25 000, MPIPoolExecutor.map at chunksize 1 000, 25 000 and
#    N_ITEMS/N_JOBS; best of 3 after a map that starts the workers;
# 2. a DATASET_MIB `bytes` read by 4 workers: passed to MPIPoolExecutor
#    as every task's argument, and as the shared objects of a libwpool
#    'mpi' pool. The extra PSS of the workers (and of the pool's own
#    process, which holds libwpool's node copy with them) over the
#    same pool with an empty `bytes`, as copies of the dataset.
#
# Prints ns/item and ratios; asserts nothing about time.
#
#   mpirun --allow-run-as-root --oversubscribe --bind-to none -np 1 \
#     /usr/bin/python3 bench/bench-mpi-futures.py [N_ITEMS] [N_JOBS] [DATASET_MIB]
#
# (--bind-to none: mpirun binds a job of one process to one core, and
# libwpool's forked workers would share it.)

import os
import sys
import time

from mpi4py.futures import MPIPoolExecutor

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

from bench_util import best_of, smaps  # noqa: E402

REPEATS = 3
DATASET_JOBS = 4


def f(x):
    return x * x + 1


def hold(data):
    """An MPIPoolExecutor task: reads a byte of every page of its argument,
    then reports this worker's memory while it still holds it, and waits
    so that every worker takes one task."""
    total = sum(data[::4096])
    memory = smaps()
    time.sleep(0.5)
    return os.getpid(), memory['Pss'], memory['Private_Dirty'], total


def touch(data, x):
    """A libwpool task: reads a byte of every page of the shared objects."""
    return os.getpid(), sum(data[::4096])


def warm(n_items, n_jobs):
    items = range(n_items)
    expected = [f(x) for x in items]
    rows = [('serial loop', best_of(lambda: [f(x) for x in items], REPEATS))]

    for method in ('mpi', 'fork'):
        with Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True) as pool:
            assert pool.map(f, items) == expected
            for chunk_size in (None, 25_000):
                def run():
                    assert pool.map(f, items, chunk_size=chunk_size) == expected
                rows.append((f'libwpool {method}, Pool.map, chunk_size {chunk_size or "default"}',
                             best_of(run, REPEATS)))

    with MPIPoolExecutor(max_workers=n_jobs) as executor:
        assert list(executor.map(f, items, chunksize=25_000)) == expected
        for chunksize in (1000, 25_000, max(n_items // n_jobs, 1)):
            def run():
                assert list(executor.map(f, items, chunksize=chunksize)) == expected
            rows.append((f'MPIPoolExecutor.map, chunksize {chunksize}', best_of(run, REPEATS)))

    best_executor = min(seconds for name, seconds in rows if name.startswith('MPIPoolExecutor'))
    fork = min(seconds for name, seconds in rows if name.startswith('libwpool fork'))
    print(f'\n1. Warm pool, x*x + 1 over range({n_items}), {n_jobs} jobs (best of {REPEATS} after a first map)')
    print(f'   {"":46} {"ns/item":>9} {"vs best MPIPoolExecutor":>24} {"vs libwpool fork":>17}')
    for name, seconds in rows:
        print(f'   {name:46} {seconds * 1e9 / n_items:9.1f} {best_executor / seconds:23.2f}× {fork / seconds:16.2f}×')


def executor_memory(data):
    """The extra PSS of MPIPoolExecutor's workers as each holds @data, its
    task's argument (over their PSS with an empty argument), and their
    private dirty memory."""
    with MPIPoolExecutor(max_workers=DATASET_JOBS) as executor:
        baseline = {pid: pss for pid, pss, _, _ in executor.map(hold, [b''] * DATASET_JOBS, chunksize=1)}
        held = list(executor.map(hold, [data] * DATASET_JOBS, chunksize=1))
    extra = [pss - baseline.get(pid, min(baseline.values())) for pid, pss, _, _ in held]
    return sum(extra), [dirty for _, _, dirty, _ in held], len({pid for pid, _, _, _ in held})


def wpool_memory(data):
    """The PSS of a libwpool 'mpi' pool's workers and of this process with
    @data as the shared objects, after the workers read it all, and the
    workers' private dirty memory."""
    before = smaps()['Pss']
    with Wpool.Pool(n_jobs=DATASET_JOBS, start_method='mpi', keep_alive=True, shared_objects=data) as pool:
        pids = {pid for pid, _ in pool.map(touch, range(DATASET_JOBS * 4), chunk_size=1)}
        memory = {pid: smaps(pid) for pid in pids}
        own = smaps()['Pss'] - before
    return sum(m['Pss'] for m in memory.values()) + own, [m['Private_Dirty'] for m in memory.values()], len(pids), own


def dataset(mib):
    size = mib << 20
    data = bytes(range(256)) * (size // 256)
    empty = bytes(256)
    print(f'\n2. A {mib} MiB bytes read by {DATASET_JOBS} workers (one simulated node): the extra PSS of the '
          'workers (libwpool: and of this process)')
    print(f'   {"":52} {"copies":>7} {"private dirty/worker":>21}')

    extra, dirty, n_workers = executor_memory(data)
    print(f'   {"MPIPoolExecutor, the dataset as each task argument":52} {extra / size:7.2f} '
          f'{sum(dirty) / len(dirty) / 2**20:17.1f} MiB   ({n_workers} workers)')

    with_data, dirty, n_workers, own = wpool_memory(data)
    without, _, _, own_empty = wpool_memory(empty)
    print(f'   {"libwpool mpi, the dataset as the shared objects":52} {(with_data - without) / size:7.2f} '
          f'{sum(dirty) / len(dirty) / 2**20:17.1f} MiB   ({n_workers} workers; '
          f'this process: {(own - own_empty) / size:.2f})')


def main():
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    warm(n_items, n_jobs)
    if mib > 0:
        dataset(mib)


if __name__ == '__main__':
    main()
