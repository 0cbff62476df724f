#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The second example of MPIRE's "Shared objects" page with libwpool from
# Python, the copy-on-write alternative: results stored in two shared
# float arrays without locks, and x % 2 returned. Under THREADING and FORK
# the task is the reference's Python function; SPAWN and FORKSERVER workers
# are new processes, which cannot run a Python function, so they run the
# same task in C, loaded by symbol from the examples' module.

import os

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402


def square_add_and_modulo_with_index(worker, shared_objects, item):
    # Unpack results containers
    square_results_container = worker.get_shared_array(0)
    add_results_container = worker.get_shared_array(1)
    idx, x = item.unpack()

    # Square, add and modulo
    square_results_container.set_double(idx, x * x)
    add_results_container.set_double(idx, x + x)
    return GLib.Variant('i', x % 2)


def main():
    module = os.environ.get('WPOOL_EXAMPLE_MODULE', 'libwpool-example-tasks.so')
    ok = True

    for start_method in (Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK,
                         Wpool.StartMethod.FORKSERVER, Wpool.StartMethod.SPAWN):
        # Use a shared array of size 100 and type float to store the results
        square_results_container = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, False)
        add_results_container = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, False)
        shared_objects = GLib.Variant.new_tuple(square_results_container.get_handle(),
                                                add_results_container.get_handle())

        if start_method in (Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK):
            task = Wpool.Task.new(square_add_and_modulo_with_index)
        else:
            task = Wpool.Task.new_for_symbol(module, 'wpool_example_square_add_and_modulo_with_index')
        task.set_result_type(GLib.VariantType.new('i'))

        pool = Wpool.Pool(n_jobs=4, shared_objects=shared_objects, start_method=start_method)

        # Square, add and modulo the results and store them in the results containers
        modulo_results = pool.map(task, GLib.Variant('a(ui)', list(enumerate(range(100)))), None).unpack()

        squares = square_results_container.dup_values().unpack()
        adds = add_results_container.dup_values().unpack()
        print('Python, {}:'.format(start_method.value_nick))
        print('  square results:', squares)
        print('  add results:', adds)
        print('  modulo results:', modulo_results)
        right = (squares == [float(x * x) for x in range(100)] and adds == [float(x + x) for x in range(100)]
                 and modulo_results == [x % 2 for x in range(100)])
        print('  all 100 results are right' if right else '  WRONG RESULTS')
        ok = ok and right

    raise SystemExit(0 if ok else 1)


if __name__ == '__main__':
    main()
