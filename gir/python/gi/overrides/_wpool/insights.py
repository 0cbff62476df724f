# SPDX-License-Identifier: LGPL-2.1-or-later
#
# MPIRE's insights for Python maps: where the workers' time went, counting
# the caller's items. The C pool's insights (Wpool.Pool.get_insights(), a
# GVariant) count its own items, which for a Python map are batches; the
# batch runners time each item (batches._batch_record()) and the caller
# adds up their records here. The C pool still gives what only it sees:
# the start-up time and, per worker, the time the workers had.

import datetime
import heapq
import itertools
import math
import threading

from . import Wpool
from .batches import _N_SLOWEST

# Tells the insights of one pool apart from its others, for the workers'
# slowest items (batches._batch_record()).
_tokens = itertools.count(1)

# MPIRE's parts of a worker's life, as the insights name them.
_PARTS = ('start_up', 'init', 'waiting', 'working', 'exit')

# What moves between the caller and worker processes, and how, as the
# keys total_<what>_<how>_bytes count it: items pickled (a range's
# batches are ranges, a few bytes each) and their big buffers written to
# shared memory (buffers.ItemBuffers), results pickled as objects or
# sent as raw machine values (batches._packed_results()). Threads are
# given both by reference: nothing.
_TRANSFERS = (('items', 'pickled'), ('items', 'shared_memory'), ('results', 'pickled'), ('results', 'raw'))

_NO_INSIGHTS = 'No profiling stats available. Try to run a function first with insights enabled ...'


class _Insights:
    """The items of the Python maps since the pool was last idle, as the
    batches' records (batches._batch_record()) tell them: per worker the
    items completed and their seconds, and the 5 slowest items with their
    arguments. Records come from worker threads and from the caller's
    threads at once."""

    def __init__(self, n_workers):
        self.token = next(_tokens)
        self.lock = threading.Lock()
        self.n_completed = [0] * n_workers
        self.working = [0.0] * n_workers
        # A heap of (seconds, order, arguments), the fastest first.
        self.slowest = []
        self.order = itertools.count()
        # Bytes by (what, how), as _TRANSFERS names them.
        self.bytes = dict.fromkeys(_TRANSFERS, 0)

    def add(self, record):
        worker_id, n_completed, working, slowest = record
        with self.lock:
            if worker_id >= len(self.n_completed):
                grown = worker_id + 1 - len(self.n_completed)
                self.n_completed.extend([0] * grown)
                self.working.extend([0.0] * grown)
            self.n_completed[worker_id] += n_completed
            self.working[worker_id] += working
            for duration, args in slowest:
                entry = (duration, next(self.order), args)
                if len(self.slowest) < _N_SLOWEST:
                    heapq.heappush(self.slowest, entry)
                elif duration > self.slowest[0][0]:
                    heapq.heapreplace(self.slowest, entry)

    def add_bytes(self, what, how, n_bytes):
        """Counts @n_bytes of @what ('items' or 'results') moved @how (a
        path of _TRANSFERS)."""
        with self.lock:
            self.bytes[what, how] += n_bytes

    def snapshot(self):
        with self.lock:
            return list(self.n_completed), list(self.working), sorted(self.slowest, reverse=True), dict(self.bytes)


class _State:
    """What the pool's insights are since it was last idle: those of
    Python maps (@python, then @insights, None if they were off), or of C
    API maps (the C pool's own)."""

    def __init__(self, python, insights=None):
        self.python = python
        self.insights = insights


def _state(pool):
    return pool.__dict__.get('_wpool_insights')


def _begin_map(pool):
    """A Python map begins: its _Insights, None if insights are off. As
    the C pool's, the insights start anew on an idle pool."""
    state = _state(pool)
    if state is None or not state.python or not pool._running:
        state = pool.__dict__['_wpool_insights'] = _State(True)
    if state.insights is None and pool.props.enable_insights:
        state.insights = _Insights(pool.props.n_jobs)
    return state.insights


def c_api_map(pool):
    """A map of the C API (a Wpool.Task) begins: on an idle pool, the
    insights are the C pool's again."""
    if not pool._running:
        pool.__dict__['_wpool_insights'] = _State(False)


def _format_seconds(seconds):
    """Seconds as MPIRE shows them: H:MM:SS, and milliseconds if any."""
    whole, dot, fraction = str(datetime.timedelta(seconds=max(seconds, 0))).partition('.')
    return whole + dot + fraction[:3]


def _mean_std(values):
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((value - mean) ** 2 for value in values) / len(values))


def _c_times(pool, n_workers):
    """From the C pool's insights: the start-up seconds, and per worker
    the seconds it had (from the first map's start to the last one's end,
    less the start-up), or zeros if it has none."""
    variant = Wpool.Pool.get_insights(pool)
    had = [0.0] * n_workers
    if variant is None:
        return 0.0, had
    insights = variant.unpack()
    for worker in insights.get('workers', []):
        if worker['id'] < n_workers:
            had[worker['id']] = worker['working-time'] + worker['waiting-time'] + worker['transfer-time']
    return insights.get('start-up-time', 0.0), had


def _python_insights(pool, insights):
    """MPIRE's get_insights() dictionary of Python maps' _Insights.

    Per worker: its items and their seconds as the batches measured them
    (working); the C pool's start-up time, during which each worker was
    starting (start_up; MPIRE's worker_init runs then, so init is 0, and
    exit, which MPIRE times as the pool stops, is 0 too); and the rest of
    the time it had (waiting: for batches, moving them and their results,
    idling at the map's end). Beyond MPIRE's: the bytes of items and
    results moved to and from worker processes, by path (_TRANSFERS)."""
    n_completed, working, slowest, moved = insights.snapshot()
    n_workers = len(n_completed)
    start_up, had = _c_times(pool, n_workers)
    times = {
        'start_up': [start_up] * n_workers,
        'init': [0.0] * n_workers,
        'waiting': [max(had[i] - working[i], 0.0) for i in range(n_workers)],
        'working': working,
        'exit': [0.0] * n_workers,
    }
    totals = {part: sum(times[part]) for part in _PARTS}
    total_time = sum(totals.values())

    result = {'n_completed_tasks': n_completed}
    for part in _PARTS:
        result['{}_time'.format(part)] = [_format_seconds(seconds) for seconds in times[part]]
    for part in _PARTS:
        result['total_{}_time'.format(part)] = _format_seconds(totals[part])
    slowest = [entry for entry in slowest if entry[0] > 0]
    result['top_5_max_task_durations'] = [_format_seconds(duration) for duration, _, _ in slowest]
    result['top_5_max_task_args'] = [args for _, _, args in slowest]
    result['total_time'] = _format_seconds(total_time)
    for part in _PARTS:
        mean, std = _mean_std(times[part])
        result['{}_ratio'.format(part)] = totals[part] / (total_time + 1e-8)
        result['{}_time_mean'.format(part)] = _format_seconds(mean)
        result['{}_time_std'.format(part)] = _format_seconds(std)
    for (what, how), n_bytes in moved.items():
        result['total_{}_{}_bytes'.format(what, how)] = n_bytes
    result.update(_shared_objects_bytes(pool))
    return result


def _shared_objects_bytes(pool):
    """What each new worker process receives of the shared objects: the
    bytes of their pickle, and those of their big buffers, which it maps
    from the pool's memfd instead (both 0 where nothing crosses: threads
    share the objects, forked workers inherit them)."""
    shared = pool.__dict__.get('_shared_variant')
    pickled = shared[1].get_child_value(2).get_size() if shared is not None else 0
    mapped = shared[2].size if shared is not None and shared[2] is not None else 0
    return {'shared_objects_pickled_bytes': pickled, 'shared_objects_shared_memory_bytes': mapped}


def get_insights(pool):
    """MPIRE's get_insights(): after Python maps, a dictionary of where
    the workers' time went, counting the caller's items, empty if insights
    were off; after C API maps (a Wpool.Task), the C pool's GVariant."""
    state = _state(pool)
    if state is not None and not state.python:
        return Wpool.Pool.get_insights(pool)
    if state is None or state.insights is None:
        return {}
    return _python_insights(pool, state.insights)


def _insights_text(pool):
    """What print_insights() prints."""
    state = _state(pool)
    if state is not None and not state.python:
        return Wpool.Pool.get_insights_summary(pool) or _NO_INSIGHTS
    if state is None or state.insights is None:
        return _NO_INSIGHTS

    insights = _python_insights(pool, state.insights)
    lines = ['WorkerPool insights', '-------------------',
             'Total number of tasks completed: {}'.format(sum(insights['n_completed_tasks']))]
    for part in _PARTS:
        lines.append('Total {} time: {}s (mean: {}, std: {}, ratio: {:.2f}%)'.format(
            part.replace('_', ' '), insights['total_{}_time'.format(part)], insights['{}_time_mean'.format(part)],
            insights['{}_time_std'.format(part)], 100 * insights['{}_ratio'.format(part)]))
    lines.append('Bytes to and from worker processes: {}'.format(', '.join(
        '{} {}: {}'.format(what, how.replace('_', ' '), insights['total_{}_{}_bytes'.format(what, how)])
        for what, how in _TRANSFERS)))
    lines.append('Shared objects per new worker process: pickled: {}, shared memory: {}'.format(
        insights['shared_objects_pickled_bytes'], insights['shared_objects_shared_memory_bytes']))
    if insights['working_ratio'] < 0.8:
        lines += ['', 'Efficiency warning: working ratio is < 80%!']

    lines += ['', 'Stats per worker', '----------------']
    for worker_id, n_completed in enumerate(insights['n_completed_tasks']):
        parts = ['{}: {}s'.format(part.replace('_', ' '), insights['{}_time'.format(part)][worker_id])
                 for part in _PARTS]
        lines.append(' - '.join(['Worker {}'.format(worker_id), 'Tasks completed: {}'.format(n_completed)] + parts))

    lines += ['', 'Top 5 longest tasks', '-------------------']
    for rank, (duration, args) in enumerate(zip(insights['top_5_max_task_durations'],
                                                insights['top_5_max_task_args']), start=1):
        lines.append('{}. Time: {} - {}'.format(rank, duration, args))
    return '\n'.join(lines)


def print_insights(pool):
    """MPIRE's print_insights(): get_insights() as a summary for people."""
    print(_insights_text(pool))
