#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""MPIRE's insights for Python maps, under every start method: they count
the caller's items, not the batches the C pool runs. SPAWN and FORKSERVER
workers import this script as __mp_main__, so its work stays under
`if __name__ == '__main__':`."""

import contextlib
import io
import re
import time
import unittest

import gi
gi.require_version('Wpool', '1')
from gi.repository import GLib, Wpool  # noqa: E402

import taptestrunner  # noqa: E402

METHODS = ('fork', 'threading', 'spawn', 'forkserver')
N_JOBS = 2

# 25 items: 5 slow ones, well apart, among fast ones, in batches of 4.
SLOW = {3: 0.20, 8: 0.16, 13: 0.12, 17: 0.08, 22: 0.04}
ITEMS = [(index, SLOW.get(index, 0.0)) for index in range(25)]

PARTS = ('start_up', 'init', 'waiting', 'working', 'exit')


def sleep_for(index, seconds):
    time.sleep(seconds)
    return index


def with_head(worker_id, shared_objects, index, seconds):
    time.sleep(seconds)
    return worker_id, shared_objects, index


def square(x):
    return x * x


def fails_on_three(x):
    if x == 3:
        raise ValueError('three')
    return x


class BadRepr:
    def __repr__(self):
        raise RuntimeError('no repr')


def seconds(text):
    """MPIRE's H:MM:SS[.mmm] back to seconds."""
    hours, minutes, rest = text.split(':')
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def captured(print_insights):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_insights()
    return out.getvalue()


class TestInsights(unittest.TestCase):
    def check_consistent(self, insights, n_items):
        """The totals are non-negative and consistent: per worker lists of
        n_jobs entries, totals their sums (within the milliseconds that
        formatting drops), total_time their sum, ratios summing to 1."""
        self.assertEqual(sum(insights['n_completed_tasks']), n_items)
        self.assertEqual(len(insights['n_completed_tasks']), N_JOBS)
        total = 0.0
        for part in PARTS:
            per_worker = [seconds(text) for text in insights['{}_time'.format(part)]]
            self.assertEqual(len(per_worker), N_JOBS)
            self.assertTrue(all(value >= 0 for value in per_worker), per_worker)
            part_total = seconds(insights['total_{}_time'.format(part)])
            self.assertAlmostEqual(part_total, sum(per_worker), delta=0.001 * N_JOBS)
            self.assertAlmostEqual(seconds(insights['{}_time_mean'.format(part)]), part_total / N_JOBS, delta=0.002)
            self.assertGreaterEqual(seconds(insights['{}_time_std'.format(part)]), 0)
            self.assertGreaterEqual(insights['{}_ratio'.format(part)], 0)
            total += part_total
        self.assertAlmostEqual(seconds(insights['total_time']), total, delta=0.01)
        self.assertAlmostEqual(sum(insights['{}_ratio'.format(part)] for part in PARTS), 1.0, delta=0.001)
        # The pool measures neither: worker_init runs in the start-up.
        self.assertEqual(insights['total_init_time'], '0:00:00')
        self.assertEqual(insights['total_exit_time'], '0:00:00')

    def test_items_counted_and_slowest(self):
        """On every start method, with batches of 4: the items completed,
        not the batches; the 5 slowest items, slowest first, each with its
        arguments as MPIRE formats them and at least its sleep."""
        for method in METHODS:
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, enable_insights=True) as pool:
                self.assertEqual(pool.map(sleep_for, ITEMS, chunk_size=4), list(range(25)))
                insights = pool.get_insights()
                self.check_consistent(insights, len(ITEMS))
                self.assertGreaterEqual(seconds(insights['total_working_time']), sum(SLOW.values()) - 0.01)

                args = insights['top_5_max_task_args']
                self.assertEqual(sorted(args), sorted('Arg 0: {} | Arg 1: {}'.format(index, seconds)
                                                      for index, seconds in SLOW.items()))
                durations = [seconds(text) for text in insights['top_5_max_task_durations']]
                self.assertEqual(durations, sorted(durations, reverse=True))
                for text, duration in zip(args, durations):
                    slept = SLOW[int(re.match(r'Arg 0: (\d+)', text).group(1))]
                    self.assertGreaterEqual(duration, slept - 0.002, text)

    def test_disabled(self):
        """Insights off: as MPIRE, an empty dict and no stats to print."""
        for method in ('fork', 'threading'):
            with self.subTest(method=method), Wpool.Pool(n_jobs=N_JOBS, start_method=method) as pool:
                self.assertEqual(pool.get_insights(), {})
                pool.map(square, range(10), chunk_size=3)
                self.assertEqual(pool.get_insights(), {})
                self.assertEqual(captured(pool.print_insights),
                                 'No profiling stats available. Try to run a function first with insights '
                                 'enabled ...\n')

    def test_print_insights(self):
        """print_insights() prints MPIRE's summary: totals, one line per
        worker, the 5 slowest items."""
        with Wpool.Pool(n_jobs=N_JOBS, start_method='fork', enable_insights=True) as pool:
            pool.map(sleep_for, ITEMS, chunk_size=4)
            insights = pool.get_insights()
            lines = captured(pool.print_insights).splitlines()
        self.assertEqual(lines[:3], ['WorkerPool insights', '-------------------',
                                     'Total number of tasks completed: 25'])
        for part in ('start up', 'init', 'waiting', 'working', 'exit'):
            self.assertEqual(len([line for line in lines if line.startswith('Total {} time: '.format(part))]), 1)
        self.assertIn('Total working time: {}s (mean: {}, std: {}, ratio: {:.2f}%)'.format(
            insights['total_working_time'], insights['working_time_mean'], insights['working_time_std'],
            100 * insights['working_ratio']), lines)
        for worker_id in range(N_JOBS):
            self.assertIn('Worker {} - Tasks completed: {} - start up: {}s'.format(
                worker_id, insights['n_completed_tasks'][worker_id], insights['start_up_time'][worker_id]),
                '\n'.join(lines))
        top = lines[lines.index('Top 5 longest tasks') + 2:]
        self.assertEqual(top, ['{}. Time: {} - {}'.format(rank, duration, args) for rank, (duration, args) in
                               enumerate(zip(insights['top_5_max_task_durations'],
                                             insights['top_5_max_task_args']), start=1)])
        self.assertEqual(len(top), 5)

    def test_arguments_formatted(self):
        """The arguments as MPIRE shows them: dict items and apply()'s
        keywords by name, a broken __repr__ said, not raised."""
        with Wpool.Pool(n_jobs=1, start_method='fork', enable_insights=True) as pool:
            self.assertEqual(pool.map(sleep_for, [{'index': 1, 'seconds': 0.01}]), [1])
            self.assertEqual(pool.get_insights()['top_5_max_task_args'], ['Arg index: 1 | Arg seconds: 0.01'])
            self.assertEqual(pool.apply(sleep_for, (2,), {'seconds': 0.01}), 2)
            insights = pool.get_insights()
            self.assertEqual(insights['n_completed_tasks'], [1])
            self.assertEqual(insights['top_5_max_task_args'], ['Arg 0: 2 | Arg seconds: 0.01'])
        with Wpool.Pool(n_jobs=1, start_method='fork', enable_insights=True, pass_worker_id=True,
                        shared_objects='shared') as pool:
            # The worker's id and the shared objects are not the item's.
            self.assertEqual(pool.map(with_head, [(4, 0.01)]), [(0, 'shared', 4)])
            self.assertEqual(pool.get_insights()['top_5_max_task_args'], ['Arg 0: 4 | Arg 1: 0.01'])
        with Wpool.Pool(n_jobs=1, start_method='threading', enable_insights=True) as pool:
            pool.map(type, [BadRepr()])
            self.assertEqual(pool.get_insights()['top_5_max_task_args'],
                             ['<arguments without a repr: RuntimeError: no repr>'])

    def test_new_map_on_idle_pool_starts_anew(self):
        """As the C pool's, insights start anew with a map on an idle pool,
        and an imap's grow as its batches come."""
        with Wpool.Pool(n_jobs=N_JOBS, start_method='fork', enable_insights=True, keep_alive=True) as pool:
            pool.map(square, range(100), chunk_size=7)
            self.assertEqual(sum(pool.get_insights()['n_completed_tasks']), 100)
            pool.map(square, range(30), chunk_size=7)
            self.assertEqual(sum(pool.get_insights()['n_completed_tasks']), 30)
            seen = []
            for _ in pool.imap(square, range(40), chunk_size=10):
                seen.append(sum(pool.get_insights()['n_completed_tasks']))
            self.assertEqual(seen[0], 10)
            self.assertEqual(seen[-1], 40)
            self.assertEqual(seen, sorted(seen))
            # Off on an idle pool: none, as the C pool's.
            pool.props.enable_insights = False
            pool.map(square, range(10))
            self.assertEqual(pool.get_insights(), {})
            self.assertIsNone(Wpool.Pool.__mro__[1].get_insights(pool))

    def test_failed_map(self):
        """A map that fails leaves insights that can be read: the items
        completed before, never more than the map's."""
        for method in ('fork', 'threading'):
            with self.subTest(method=method), \
                    Wpool.Pool(n_jobs=N_JOBS, start_method=method, enable_insights=True) as pool:
                with self.assertRaises(ValueError):
                    pool.map(fails_on_three, range(20), chunk_size=2)
                self.assertLessEqual(sum(pool.get_insights()['n_completed_tasks']), 19)
                captured(pool.print_insights)

    def test_c_api_map_keeps_c_insights(self):
        """After a map of the C API (a Wpool.Task), get_insights() is the C
        pool's GVariant, as C callers have it; a Python map after it gives
        MPIRE's dict again."""
        with Wpool.Pool(n_jobs=N_JOBS, start_method='threading', enable_insights=True) as pool:
            pool.map(square, range(12), chunk_size=4)
            self.assertEqual(sum(pool.get_insights()['n_completed_tasks']), 12)
            task = Wpool.Task.new(lambda worker, shared, item: GLib.Variant('d', item.get_double() ** 2))
            task.set_result_type(GLib.VariantType('d'))
            pool.map(task, GLib.Variant('ad', [1.0, 2.0, 3.0]), None)
            insights = pool.get_insights()
            self.assertIsInstance(insights, GLib.Variant)
            self.assertEqual(insights.unpack()['n-completed'], 3)
            self.assertTrue(captured(pool.print_insights).startswith('Insights: 1 map, 3 items'))
            pool.map(square, range(5))
            self.assertEqual(sum(pool.get_insights()['n_completed_tasks']), 5)


if __name__ == '__main__':
    taptestrunner.main()
