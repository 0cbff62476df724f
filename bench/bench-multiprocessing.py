#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# libwpool from Python against what a Python user picks instead, on the same
# items, the same Python body and the same machine, in one run: a serial
# loop, and multiprocessing.Pool(n).map at its best chunksize under fork and
# spawn. libwpool runs the same Python function in forked workers (FORK)
# and, as the C fast path, the C body in a chunk of the examples' module
# is not used here: this is Python against Python. Then the override's
# MPIRE-like Pool.map, which sends items in batches. Prints ns/item and
# ratios; asserts nothing about time.
#
#   bench-multiprocessing.py [N_ITEMS] [N_JOBS]

import math
import multiprocessing
import os
import sys

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402

from bench_util import best_of  # noqa: E402

REPEATS = 3


def trivial(x):
    return x * x + 1


def trivial_task(worker, shared_objects, item):
    x = item.unpack()
    return GLib.Variant('d', x * x + 1)


def trivial_task_typed(worker, shared_objects, item):
    # GLib.Variant() and unpack() are generic Python code in PyGObject's
    # override; the typed accessors are single C calls.
    x = item.get_double()
    return GLib.Variant.new_double(x * x + 1)


def main():
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    values = [i * 0.001 for i in range(n_items)]
    expected = [trivial(x) for x in values]
    rows = []

    rows.append(('Python serial loop', best_of(lambda: [trivial(x) for x in values], REPEATS)))

    for method in ('fork', 'spawn'):
        context = multiprocessing.get_context(method)
        with context.Pool(n_jobs) as pool:
            best = (math.inf, None)
            for chunksize in (1000, 10_000, max(n_items // (n_jobs * 4), 1), max(n_items // n_jobs, 1)):
                def run():
                    assert pool.map(trivial, values, chunksize=chunksize) == expected
                best = min(best, (best_of(run, REPEATS), chunksize))
            rows.append((f'multiprocessing {method}, chunksize {best[1]}', best[0]))

    items = GLib.Variant('ad', values)
    for method, name in ((Wpool.StartMethod.FORK, 'fork'), (Wpool.StartMethod.THREADING, 'threading')):
        for func, how in ((trivial_task, 'GLib.Variant()'), (trivial_task_typed, 'new_double()')):
            pool = Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True)
            task = Wpool.Task.new(func)
            task.set_result_type(GLib.VariantType('d'))

            def run():
                assert pool.map(task, items, None).unpack() == expected
            rows.append((f'libwpool {name}, Python task, {how}', best_of(run, REPEATS)))
            pool.props.keep_alive = False

    # The override's MPIRE-like map: a plain function over plain items, in
    # pickled batches (fork) or by reference (threading), on a warm pool.
    for method in ('fork', 'threading'):
        with Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True) as pool:
            best = (math.inf, None)
            for chunk_size in (None, max(n_items // n_jobs, 1)):
                def run():
                    assert pool.map(trivial, values, chunk_size=chunk_size) == expected
                best = min(best, (best_of(run, REPEATS), chunk_size or max(-(-n_items // (n_jobs * 4)), 1)))
            rows.append((f'libwpool {method}, Pool.map, chunk_size {best[1]}', best[0]))

            # imap() reads its iterable as the workers need items: over a
            # list (its length known), and over a generator, which has
            # none (chunk size given, as MPIRE's users do).
            def imap_list():
                assert sum(1 for _ in pool.imap(trivial, values)) == n_items

            def imap_generator():
                assert sum(1 for _ in pool.imap(trivial, (x for x in values), chunk_size=max(n_items // 8, 1))) \
                    == n_items

            rows.append((f'libwpool {method}, Pool.imap of a list', best_of(imap_list, REPEATS)))
            rows.append((f'libwpool {method}, Pool.imap of a generator', best_of(imap_generator, REPEATS)))

    print(f'\nPython body x*x + 1, {n_items} items, {n_jobs} jobs (best of {REPEATS})')
    print(f'  {"":42} {"ns/item":>10} {"vs best multiprocessing":>24}')
    best_mp = min(t for name, t in rows if name.startswith('multiprocessing'))
    for name, seconds in rows:
        print(f'  {name:42} {seconds * 1e9 / n_items:10.1f} {best_mp / seconds:23.2f}×')


if __name__ == '__main__':
    main()
