#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libwpool's PyGObject override from an installed prefix: plain Python
functions mapped with Pool.map under every start method, with shared
objects, and a task's exception raised in the caller with its own type.
SPAWN and FORKSERVER workers are new Python processes that import this
script as __mp_main__ (hence the `if __name__ == '__main__':`).
Installed with -Dinstalled_tests; gnome-desktop-testing-runner runs it."""

import os
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import Wpool  # noqa: E402

METHODS = ('threading', 'fork', 'spawn', 'forkserver')


class SmokeError(Exception):
    pass


def square(x):
    return x * x


def scaled(shared, x):
    return shared['factor'] * x, os.getpid()


def fails_at_three(x):
    if x == 3:
        raise SmokeError('three')
    return x


class Smoke(unittest.TestCase):
    def test_map(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                self.assertEqual(pool.map(square, range(20)), [x * x for x in range(20)])

    def test_shared_objects(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method,
                                                         shared_objects={'factor': 3}) as pool:
                results = pool.map(scaled, range(10))
                self.assertEqual([value for value, _ in results], [3 * x for x in range(10)])
                # Worker threads run in this process; the others do not.
                pids = {pid for _, pid in results}
                if method == 'threading':
                    self.assertEqual(pids, {os.getpid()})
                else:
                    self.assertNotIn(os.getpid(), pids)

    def test_exception(self):
        for method in METHODS:
            with self.subTest(method=method), Wpool.Pool(n_jobs=2, start_method=method) as pool:
                with self.assertRaises(SmokeError) as raised:
                    pool.map(fails_at_three, range(6))
                self.assertEqual(str(raised.exception), 'three')
                # The pool goes on.
                self.assertEqual(pool.map(square, [4]), [16])


if __name__ == '__main__':
    unittest.main(verbosity=2)
