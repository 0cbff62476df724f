# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the Python benchmarks share, imported from beside them.

import math
import time


def best_of(run, repeats=3):
    """The shortest of @repeats runs of run(), in seconds."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
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
