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
# With --range, a range of items instead (issue 20): multiprocessing's
# Pool.map at its best chunksize under fork against the override's
# Pool.map, whose batches are sub-ranges and whose float results come
# back as machine values (int ones pickled); N_ITEMS is 10^6 by default.
#
#   bench-multiprocessing.py [N_ITEMS] [N_JOBS]
#   bench-multiprocessing.py --range [N_ITEMS] [N_JOBS]

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


def halved(x):
    return x * 0.5 + 1.0


def default_chunk_size(n_items, n_jobs):
    """The override's Pool.map batch size with neither chunk_size nor
    n_splits: four per worker, at most 16 384 items (options.py)."""
    return min(max(-(-n_items // (n_jobs * 4)), 1), 16_384)


def best_multiprocessing(pool, func, items, expected, n_items, n_jobs):
    """multiprocessing's Pool.map at its best chunksize: (seconds, chunksize)."""
    best = (math.inf, None)
    for chunksize in (1000, 10_000, max(n_items // (n_jobs * 4), 1), max(n_items // n_jobs, 1)):
        def run():
            return pool.map(func, items, chunksize=chunksize)
        best = min(best, (best_of(run, REPEATS, expected), chunksize))
    return best


def print_rows(title, rows, n_items, reference):
    print(f'\n{title}')
    print(f'  {"":48} {"ns/item":>10} {"vs " + reference:>26}')
    best_mp = min(t for name, t in rows if name.startswith(reference))
    for name, seconds in rows:
        print(f'  {name:48} {seconds * 1e9 / n_items:10.1f} {best_mp / seconds:25.2f}×')


def main_range(n_items, n_jobs):
    """Pool.map over range(n_items), fork, against multiprocessing's."""
    items = range(n_items)
    for func, body in ((trivial, 'x*x + 1 (int results)'), (halved, 'x*0.5 + 1.0 (float results)')):
        expected = [func(x) for x in items]
        rows = [('Python serial loop', best_of(lambda: [func(x) for x in items], REPEATS))]
        with multiprocessing.get_context('fork').Pool(n_jobs) as pool:
            seconds, chunksize = best_multiprocessing(pool, func, items, expected, n_items, n_jobs)
            rows.append((f'multiprocessing fork, chunksize {chunksize}', seconds))
        with Wpool.Pool(n_jobs=n_jobs, start_method='fork', keep_alive=True) as pool:
            for chunk_size in (None, max(n_items // n_jobs, 1)):
                def run():
                    return pool.map(func, items, chunk_size=chunk_size)
                size = chunk_size or default_chunk_size(n_items, n_jobs)
                rows.append((f'libwpool fork, Pool.map of a range, chunk {size}', best_of(run, REPEATS, expected)))

            as_list = list(items)

            def run_list():
                return pool.map(func, as_list)
            rows.append(('libwpool fork, Pool.map of a list', best_of(run_list, REPEATS, expected)))

            def run_imap():
                assert sum(1 for _ in pool.imap(func, items)) == n_items
            rows.append(('libwpool fork, Pool.imap of a range', best_of(run_imap, REPEATS)))
        print_rows(f'range({n_items}), body {body}, {n_jobs} jobs (best of {REPEATS})', rows, n_items,
                   'multiprocessing')


def main():
    if sys.argv[1:2] == ['--range']:
        del sys.argv[1]
        n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
        n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
        main_range(n_items, n_jobs)
        return
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_jobs = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    values = [i * 0.001 for i in range(n_items)]
    expected = [trivial(x) for x in values]
    rows = []

    rows.append(('Python serial loop', best_of(lambda: [trivial(x) for x in values], REPEATS)))

    for method in ('fork', 'spawn'):
        context = multiprocessing.get_context(method)
        with context.Pool(n_jobs) as pool:
            seconds, chunksize = best_multiprocessing(pool, trivial, values, expected, n_items, n_jobs)
            rows.append((f'multiprocessing {method}, chunksize {chunksize}', seconds))

    items = GLib.Variant('ad', values)
    for method, name in ((Wpool.StartMethod.FORK, 'fork'), (Wpool.StartMethod.THREADING, 'threading')):
        for func, how in ((trivial_task, 'GLib.Variant()'), (trivial_task_typed, 'new_double()')):
            pool = Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True)
            task = Wpool.Task.new(func)
            task.set_result_type(GLib.VariantType('d'))

            def run():
                return pool.map(task, items, None).unpack()
            rows.append((f'libwpool {name}, Python task, {how}', best_of(run, REPEATS, expected)))
            pool.props.keep_alive = False

    # The override's MPIRE-like map: a plain function over plain items, in
    # pickled batches (fork) or by reference (threading), on a warm pool.
    for method in ('fork', 'threading'):
        with Wpool.Pool(n_jobs=n_jobs, start_method=method, keep_alive=True) as pool:
            best = (math.inf, None)
            for chunk_size in (None, max(n_items // n_jobs, 1)):
                def run():
                    return pool.map(trivial, values, chunk_size=chunk_size)
                best = min(best, (best_of(run, REPEATS, expected), chunk_size or default_chunk_size(n_items, n_jobs)))
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

    print_rows(f'Python body x*x + 1, {n_items} items, {n_jobs} jobs (best of {REPEATS})', rows, n_items,
               'multiprocessing')


if __name__ == '__main__':
    main()
