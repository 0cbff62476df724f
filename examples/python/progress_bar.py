#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A live tqdm progress bar (Debian's python3-tqdm) for a long map, driven by
# the pool's progress signal on the main loop, as MPIRE's progress_bar=True
# shows one; then the insights, as MPIRE's print_insights().
#
#   progress_bar.py [N_ITEMS [MS_PER_ITEM]]

import os
import sys

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402
from tqdm import tqdm  # noqa: E402


def work(worker, shared_objects, item):
    GLib.usleep(item.unpack() * 1000)
    return item


def main():
    n_items = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ms = int(sys.argv[2]) if len(sys.argv) > 2 else 20

    # A Python function under FORK: the workers are copies of this process.
    pool = Wpool.Pool(n_jobs=4, start_method=Wpool.StartMethod.FORK, chunk_size=1, enable_insights=True)
    task = Wpool.Task.new(work)
    task.set_result_type(GLib.VariantType('u'))
    loop = GLib.MainLoop()
    outcome = {}

    def done(pool, result):
        try:
            outcome['results'] = pool.map_finish(result).unpack()
        except GLib.Error as error:
            outcome['error'] = error
        loop.quit()

    with tqdm(total=n_items, unit='item', file=sys.stderr) as bar:
        pool.connect('progress', lambda pool, completed, total: bar.update(completed - bar.n))
        pool.map_async(task, GLib.Variant('au', [ms] * n_items), None, done)
        loop.run()
        final = bar.n

    if 'error' in outcome:
        print('The map failed:', outcome['error'].message, file=sys.stderr)
        return 1

    print(f'{n_items} items of {ms} ms on 4 worker processes')
    print(pool.get_insights_summary(), end='')
    return 0 if final == n_items and outcome['results'] == [ms] * n_items else 1


if __name__ == '__main__':
    sys.exit(main())
