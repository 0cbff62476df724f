#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Items that are big numpy arrays (issue 20): N_ITEMS arrays of SIZE
# doubles each, every one reduced to its sum, on warm pools of N_JOBS, in
# one run: a serial loop, multiprocessing.Pool.map at its best chunksize,
# the override's Pool.map (whose workers map the arrays' bytes from a
# memfd instead of unpickling them) and, with WPOOL_BENCH_MPIRE, MPIRE's
# WorkerPool.map, under each start method. Prints µs/item and the ratio to
# multiprocessing under the same start method; asserts nothing about time.
#
#   bench-python-item-buffers.py [N_ITEMS [SIZE [N_JOBS]]]
#
# The defaults are the issue's: 10^4 arrays of 10^4 doubles (800 MB).

import math
import multiprocessing
import os
import sys

import numpy

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

from bench_util import MPIRE_NOT_FOUND, best_of, mpire_worker_pool  # noqa: E402

REPEATS = 3
METHODS = ('fork', 'spawn', 'forkserver')


def total(x):
    return float(x.sum())


def best_multiprocessing(pool, arrays, expected, n_jobs):
    """multiprocessing's Pool.map at its best chunksize: (seconds, chunksize)."""
    best = (math.inf, None)
    for chunksize in (1, 16, max(len(arrays) // (n_jobs * 4), 1)):
        def run():
            return pool.map(total, arrays, chunksize=chunksize)
        best = min(best, (best_of(run, REPEATS, expected), chunksize))
    return best


def main():
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    n_jobs = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    arrays = [numpy.random.default_rng(i).random(size) for i in range(n_items)]
    expected = [total(x) for x in arrays]
    WorkerPool = mpire_worker_pool()

    print(f'{n_items} numpy arrays of {size} doubles ({n_items * size * 8 / 1e6:.0f} MB), each summed, '
          f'{n_jobs} jobs, best of {REPEATS}')
    print(f'  {"":52} {"µs/item":>10} {"vs multiprocessing":>20}')
    serial = best_of(lambda: [total(x) for x in arrays], REPEATS)
    print(f'  {"Python serial loop":52} {serial * 1e6 / n_items:10.2f}')

    def row(name, seconds, reference):
        print(f'  {name:52} {seconds * 1e6 / n_items:10.2f} {reference / seconds:19.2f}×')

    for method in METHODS:
        with multiprocessing.get_context(method).Pool(n_jobs) as pool:
            reference, chunksize = best_multiprocessing(pool, arrays, expected, n_jobs)
        row(f'multiprocessing {method}, chunksize {chunksize}', reference, reference)

        with Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True) as pool:
            def run():
                return pool.map(total, arrays)
            row(f'libwpool {method}, Pool.map', best_of(run, REPEATS, expected), reference)

        if WorkerPool is not None:
            with WorkerPool(n_jobs=n_jobs, start_method=method, keep_alive=True) as pool:
                def run_mpire():
                    return pool.map(total, arrays, progress_bar=False)
                row(f'MPIRE {method}, WorkerPool.map', best_of(run_mpire, REPEATS, expected), reference)

    with Wpool.Pool(n_jobs=n_jobs, start_method='threading', keep_alive=True) as pool:
        def run_threads():
            return pool.map(total, arrays)
        row('libwpool threading, Pool.map (no copy at all)', best_of(run_threads, REPEATS, expected), serial)
    if WorkerPool is None:
        print(MPIRE_NOT_FOUND)


if __name__ == '__main__':
    main()
