# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the Python benchmarks share, imported from beside them.

import math
import multiprocessing
import os
import sys
import time


def best_of(run, repeats=3, expected=None):
    """The shortest of @repeats runs of run(), in seconds. With @expected,
    what each run returns must equal it, compared once the clock stopped
    (comparing 10^6 results takes 5–10 ms, as long as some maps)."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
        if expected is not None:
            assert result == expected
    return best


def smaps(pid='self'):
    """A process's PSS and private dirty memory, in bytes."""
    figures = {}
    with open(f'/proc/{pid}/smaps_rollup') as rollup:
        for line in rollup:
            field, _, rest = line.partition(':')
            if field in ('Pss', 'Private_Dirty'):
                figures[field] = int(rest.split()[0]) * 1024
    return figures


class MultiprocessingPool:
    """multiprocessing.Pool with shared objects as MPIRE passes them: as
    the first argument, here through the workers' initializer (once per
    worker, as multiprocessing allows: pickled for each under 'spawn' and
    'forkserver')."""

    def __init__(self, method, n_jobs, shared_objects=None):
        self.pool = multiprocessing.get_context(method).Pool(
            n_jobs, initializer=_set_shared, initargs=(shared_objects,))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.pool.terminate()
        self.pool.join()


_shared = None


def _set_shared(shared_objects):
    global _shared
    _shared = shared_objects


def with_shared(args):
    """In a MultiprocessingPool's worker: func(shared objects, x) for the
    (func, x) of @args."""
    func, x = args
    return func(_shared, x)


MPIRE_NOT_FOUND = '(MPIRE not found: set WPOOL_BENCH_MPIRE to a checkout of github.com/sybrenjansen/mpire)'


def mpire_worker_pool():
    """MPIRE's WorkerPool, from WPOOL_BENCH_MPIRE (a checkout of
    github.com/sybrenjansen/mpire) or an installed MPIRE; None where there
    is neither (say MPIRE_NOT_FOUND then: this also runs as workers import
    the benchmark)."""
    if os.environ.get('WPOOL_BENCH_MPIRE'):
        sys.path.insert(0, os.environ['WPOOL_BENCH_MPIRE'])
    try:
        from mpire import WorkerPool
    except ImportError:
        return None
    return WorkerPool
