#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The first example of MPIRE's "Shared objects" page with libwpool from
# Python: the dataset is given once as the pool's shared objects and every
# task reads it. Under THREADING all workers see the very same GVariant,
# and the GIL runs Python tasks one at a time; under FORK each worker is a
# forked process that sees the dataset copy-on-write, in parallel.
#
#   def task(dataset, x): ...
#   with WorkerPool(n_jobs=4, shared_objects=dataset, start_method='fork') as pool:
#       pool.map(task, range(100))

import array
import os
import sys
import time

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402


def rss_mib():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def task(worker, shared_objects, x):
    # Shared objects come right after the worker, as in MPIRE. Reading
    # children views the pool's own buffer; unpack() would copy it all.
    dataset = shared_objects.get_child_value(0)
    n = dataset.n_children()
    start, end = x.unpack() * n // 100, (x.unpack() + 1) * n // 100
    sampled = sum(dataset.get_child_value(i).get_double() for i in range(start, end, 100))
    return GLib.Variant('(uud)', (worker.get_id(), os.getpid(), sampled))


def main():
    n_values = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    before = rss_mib()
    values = array.array('d', (float(i % 1000) for i in range(n_values)))
    dataset = GLib.Variant.new_from_bytes(GLib.VariantType.new('ad'), GLib.Bytes.new(values.tobytes()), True)
    shared_objects = GLib.Variant.new_tuple(dataset, GLib.Variant('s', 'a big dataset'))
    print('Python: {} values; RSS {:.1f} MiB before the dataset, {:.1f} MiB with it'.format(
        n_values, before, rss_mib()))

    wpool_task = Wpool.Task.new(task)
    wpool_task.set_result_type(GLib.VariantType.new('(uud)'))

    for start_method in (Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK):
        pool = Wpool.Pool(n_jobs=4, start_method=start_method, shared_objects=shared_objects)
        started = time.monotonic()
        results = pool.map(wpool_task, GLib.Variant('au', range(100)), None).unpack()
        elapsed = time.monotonic() - started

        per_worker = {}
        for worker_id, pid, _ in results:
            per_worker.setdefault((worker_id, pid), 0)
            per_worker[(worker_id, pid)] += 1
        print('Python, {}: sampled sum {:.0f} in {:.2f} s; tasks per (worker, pid): {}{}'.format(
            start_method.value_nick, sum(s for _, _, s in results), elapsed,
            ', '.join('{}/{}: {}'.format(w, p, n) for (w, p), n in sorted(per_worker.items())),
            ' (this process)' if all(p == os.getpid() for _, p in per_worker) else ''))


if __name__ == '__main__':
    main()
