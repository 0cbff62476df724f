#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The first example of MPIRE's "Shared objects" page with libwpool from
# Python: the dataset is given once as the pool's shared objects and every
# task reads it. Under THREADING all workers see the very same GVariant.
# (Python tasks on threads run one at a time because of the GIL; FORK
# brings real parallelism once the process start methods land.)
#
#   def task(dataset, x): ...
#   with WorkerPool(n_jobs=4, shared_objects=dataset) as pool:
#       pool.map(task, range(100))

import array
import sys

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
    return GLib.Variant('(ud)', (worker.get_id(), sampled))


def main():
    n_values = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    before = rss_mib()
    values = array.array('d', (float(i % 1000) for i in range(n_values)))
    dataset = GLib.Variant.new_from_bytes(GLib.VariantType.new('ad'), GLib.Bytes.new(values.tobytes()), True)
    shared_objects = GLib.Variant.new_tuple(dataset, GLib.Variant('s', 'a big dataset'))
    with_dataset = rss_mib()

    pool = Wpool.Pool(n_jobs=4, start_method=Wpool.StartMethod.THREADING,
                      shared_objects=shared_objects)
    wpool_task = Wpool.Task.new(task)
    wpool_task.set_result_type(GLib.VariantType.new('(ud)'))
    results = pool.map(wpool_task, GLib.Variant('au', range(100)), None).unpack()

    per_worker = [0] * pool.props.n_jobs
    for worker_id, _ in results:
        per_worker[worker_id] += 1
    print('Python: {} tasks over {} values; per worker: {}'.format(len(results), n_values, per_worker))
    print('Python: sampled sum {:.0f}'.format(sum(s for _, s in results)))
    print('Python: RSS {:.1f} MiB before the dataset, {:.1f} MiB with it, {:.1f} MiB after the map'.format(
        before, with_dataset, rss_mib()))


if __name__ == '__main__':
    main()
