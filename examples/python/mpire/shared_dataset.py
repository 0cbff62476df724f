#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The first example of MPIRE's "Shared objects" page, as the page writes it,
# apart from the import: a big dataset given to the pool as its shared
# objects, read copy-on-write by the forked workers, never copied per task.
# It prints what the tasks saw, and checks that no task needed a copy.
#
# The page's start method, 'fork', can be changed on the command line
# (shared_dataset.py spawn): each start method shares the dataset its own
# way, which the checks at the end tell apart.

import gi
gi.require_version('Wpool', '1')
from gi.repository.Wpool import Pool as WorkerPool  # noqa: E402  (MPIRE: from mpire import WorkerPool)

import os  # noqa: E402
import sys  # noqa: E402


def task(dataset, x):
    # Do something with this copy-on-write dataset
    return os.getpid(), id(dataset), sum(dataset[x::100])


def main(start_method='fork'):
    dataset = list(range(1_000_000))  # Load big dataset
    with WorkerPool(n_jobs=4, shared_objects=dataset, start_method=start_method) as pool:
        results = pool.map(task, range(100))

    workers = {pid for pid, _, _ in results}
    addresses = {address for _, address, _ in results}
    print('{} tasks ran in {} worker processes, which saw the dataset at {} address(es): {}'.format(
        len(results), len(workers), len(addresses), ', '.join(hex(a) for a in sorted(addresses))))

    assert sum(s for _, _, s in results) == sum(dataset)
    if start_method == 'threading':
        # Threads see the caller's very object.
        assert workers == {os.getpid()} and addresses == {id(dataset)}
        return
    assert os.getpid() not in workers
    if start_method == 'fork':
        # Forked workers see the caller's object at the caller's address.
        assert addresses == {id(dataset)}
    elif start_method == 'forkserver':
        # One copy, unpickled in the fork server, shared by every worker.
        assert len(addresses) == 1
    else:
        # Spawned workers: a copy each, the same for all its tasks.
        for pid in workers:
            assert len({address for p, address, _ in results if p == pid}) == 1

if __name__ == '__main__':
    main(*sys.argv[1:2])
