#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The second example of MPIRE's "Shared objects" page, as the page writes
# it, apart from the import: as the copy-on-write alternative, the workers
# write their results into two shared arrays without locks (Python's
# multiprocessing.Array), and return x % 2.
#
# The start method, MPIRE's default 'fork' on Linux, can be changed on the
# command line (result_containers.py spawn): the arrays are shared memory,
# which every start method's workers write to.

import gi
gi.require_version('Wpool', '1')
from gi.repository.Wpool import Pool as WorkerPool  # noqa: E402  (MPIRE: from mpire import WorkerPool)

from multiprocessing import Array  # noqa: E402
import sys  # noqa: E402


def square_add_and_modulo_with_index(shared_objects, idx, x):
    # Unpack results containers
    square_results_container, add_results_container = shared_objects

    # Square, add and modulo
    square_results_container[idx] = x * x
    add_results_container[idx] = x + x
    return x % 2


def main(start_method='fork'):
    # Use a shared array of size 100 and type float to store the results
    square_results_container = Array('f', 100, lock=False)
    add_results_container = Array('f', 100, lock=False)
    shared_objects = square_results_container, add_results_container
    with WorkerPool(n_jobs=4, shared_objects=shared_objects, start_method=start_method) as pool:

        # Square, add and modulo the results and store them in the results containers
        modulo_results = pool.map(square_add_and_modulo_with_index,
                                  enumerate(range(100)), iterable_len=100)

    print('squares[:5] =', list(square_results_container[:5]))
    print('sums[:5]    =', list(add_results_container[:5]))
    print('modulo[:5]  =', modulo_results[:5])
    assert list(square_results_container) == [float(x * x) for x in range(100)]
    assert list(add_results_container) == [float(x + x) for x in range(100)]
    assert modulo_results == [x % 2 for x in range(100)]


if __name__ == '__main__':
    main(*sys.argv[1:2])
