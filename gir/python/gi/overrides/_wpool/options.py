# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The keyword arguments of a Python map, MPIRE's for map() and its other
# forms, checked at once; and the pool properties a map sets for its own
# run, as MPIRE's per-map arguments are.

import math
import os

from gi.repository import Gio

from .arguments import _check_bool, _check_number
from .progress import _check_style

# A default batch holds this many items at most: its results then stay in
# the caches and are decoded as the workers go on, where a batch of 125 000
# made a map over range(10**6) 25–40 % slower, and one of a list too
# (bench/README.md, "Over a range").
_MAX_BATCH = 16_384

# Pool properties a map's keyword of the same name sets while the map
# runs; None leaves the pool's own (whose default is MPIRE's: none).
_PER_MAP_PROPERTIES = ('task_timeout', 'worker_init_timeout', 'worker_exit_timeout')


class _Options:
    """What a map was asked for beyond its function and items. None is the
    pool's own setting, which is MPIRE's default unless the pool was made
    with another."""

    def __init__(self, method, iterable_len=None, max_tasks_active=None, chunk_size=None, n_splits=None,
                 worker_lifespan=None, progress_bar=False, concatenate_numpy_output=True, worker_init=None,
                 worker_exit=None, task_timeout=None, worker_init_timeout=None, worker_exit_timeout=None,
                 progress_bar_options=None, progress_bar_style=None):
        self.method = method
        if iterable_len is not None:
            _check_number('iterable_len', iterable_len, 0)
        if chunk_size is not None:
            # As MPIRE, a float chunk size gives chunks of that size on average.
            _check_number('chunk_size', chunk_size, 1, floats=True)
        for name, value in (('n_splits', n_splits), ('max_tasks_active', max_tasks_active),
                            ('worker_lifespan', worker_lifespan)):
            if value is not None:
                _check_number(name, value, 1, 2 ** 32 - 1)
        for name, value in (('task_timeout', task_timeout), ('worker_init_timeout', worker_init_timeout),
                            ('worker_exit_timeout', worker_exit_timeout)):
            if value is not None:
                # Finite and positive: None is no limit, as in MPIRE.
                _check_number(name, value, 0, floats=True)
                if value == 0:
                    raise ValueError('{} must be > 0 seconds, or None for no limit, not 0'.format(name))
        for name, value in (('worker_init', worker_init), ('worker_exit', worker_exit)):
            if value is not None and not callable(value):
                raise TypeError('{} must be callable, not {}'.format(name, type(value).__name__))
        _check_bool('progress_bar', progress_bar)
        _check_bool('concatenate_numpy_output', concatenate_numpy_output)
        if progress_bar_options is not None and not isinstance(progress_bar_options, dict):
            raise TypeError('progress_bar_options must be a dict, not {}'.format(type(progress_bar_options).__name__))
        if progress_bar_style is not None and not isinstance(progress_bar_style, str):
            raise TypeError('progress_bar_style must be a str, not {}'.format(type(progress_bar_style).__name__))
        _check_style(progress_bar_style)

        self.iterable_len = iterable_len
        self.chunk_size = chunk_size
        self.n_splits = n_splits
        self.max_tasks_active = max_tasks_active
        self.worker_lifespan = worker_lifespan
        self.progress_bar = progress_bar
        self.progress_bar_options = progress_bar_options
        self.progress_bar_style = progress_bar_style
        self.concatenate_numpy_output = concatenate_numpy_output
        self.worker_init = worker_init
        self.worker_exit = worker_exit
        self.task_timeout = task_timeout
        self.worker_init_timeout = worker_init_timeout
        self.worker_exit_timeout = worker_exit_timeout

    def batch_size(self, pool, n_items, capped=True):
        """The number of items of a batch (a float is an average), as
        MPIRE's chunk size: chunk_size, else n_items split in n_splits
        (by default four per worker, where MPIRE makes 64: fewer round
        trips, but with @capped at most _MAX_BATCH), else 4 for a length
        not known."""
        if self.chunk_size:
            return self.chunk_size
        if n_items is None:
            # As MPIRE's, for an iterable with no length.
            return 4
        n_jobs = pool.props.n_jobs or os.cpu_count() or 1
        if self.n_splits:
            return max(math.ceil(n_items / self.n_splits), 1)
        size = max(math.ceil(n_items / (n_jobs * 4)), 1)
        return min(size, _MAX_BATCH) if capped else size

    def apply(self, pool, batch_size):
        """Sets the pool properties this map asks for; returns what
        restores them once the map ended."""
        values = {name: getattr(self, name) for name in _PER_MAP_PROPERTIES if getattr(self, name) is not None}
        # One batch per C chunk: batches are the chunks, as MPIRE's, which
        # worker_lifespan and max_tasks_active count (the C pool's own
        # chunk size, for C tasks, would group them).
        values['chunk_size'] = 1
        if self.max_tasks_active is not None:
            # MPIRE's counts items (by default n_jobs * chunk_size * 2, the
            # C pool's default too); the C pool's, its items: batches.
            values['max_tasks_active'] = math.ceil(self.max_tasks_active / batch_size)
        if self.worker_lifespan is not None:
            # MPIRE counts a worker's items, checked as a batch ends: the
            # C pool counts its items, which are batches.
            values['worker_lifespan'] = math.ceil(self.worker_lifespan / batch_size)
        return _Applied(pool, values, self)


class _Applied:
    """Pool properties a map set: restored as it ends, where no other map
    changed them meanwhile."""

    def __init__(self, pool, values, options):
        self.pool = pool
        self.values = values
        self.before = {}
        # Per map, as MPIRE's: a map without them has none.
        pool._set_lifecycle(options.worker_init, options.worker_exit, options.method)
        if values.get('worker_lifespan', pool.props.worker_lifespan) != pool.props.worker_lifespan:
            # The C pool gives the lifespan to workers as they start.
            pool._restart_idle_workers()
        for name, value in values.items():
            self.before[name] = pool.get_property(name)
            pool.set_property(name, value)

    def restore(self):
        values, self.values = self.values, {}
        for name, value in values.items():
            if self.pool.get_property(name) == value:
                self.pool.set_property(name, self.before[name])


# MPIRE's parameters after the iterable (or apply()'s kwargs), in its
# order, which its callers may pass positionally.
_IMAP_PARAMETERS = ('iterable_len', 'max_tasks_active', 'chunk_size', 'n_splits', 'worker_lifespan', 'progress_bar',
                    'worker_init', 'worker_exit', 'task_timeout', 'worker_init_timeout', 'worker_exit_timeout',
                    'progress_bar_options', 'progress_bar_style')
_MAP_PARAMETERS = _IMAP_PARAMETERS[:6] + ('concatenate_numpy_output',) + _IMAP_PARAMETERS[6:]
# Keywords apply() takes beyond MPIRE's.
_PROGRESS_KEYWORDS = ('progress_bar', 'progress_bar_options', 'progress_bar_style')
_APPLY_PARAMETERS = ('callback', 'error_callback', 'worker_init', 'worker_exit', 'task_timeout',
                     'worker_init_timeout', 'worker_exit_timeout')


def _options(method, parameters, args, kwargs, keywords=()):
    """The keyword arguments of a map form called with MPIRE's
    @parameters, the positional @args then @kwargs, as Python would bind
    them; @keywords are further ones it takes by name only."""
    if any(isinstance(arg, Gio.Cancellable) for arg in args):
        raise TypeError('{}() takes a cancellable (and the C API\'s other arguments) only with a '
                        'Wpool.Task, not with a Python function'.format(method))
    if len(args) > len(parameters):
        raise TypeError('{}() takes at most {} arguments after the function\'s own ({} given)'.format(
            method, len(parameters), len(args)))
    kwargs = dict(kwargs)
    for name, value in zip(parameters, args):
        if name in kwargs:
            raise TypeError('{}() got multiple values for argument {!r}'.format(method, name))
        kwargs[name] = value
    unknown = sorted(set(kwargs) - set(parameters) - set(keywords))
    if unknown:
        raise TypeError('{}() got an unexpected keyword argument {!r}'.format(method, unknown[0]))
    return kwargs


def _pop_callbacks(kwargs):
    """The callback and error_callback of an apply() or map_async() call,
    taken out of its @kwargs and checked."""
    callbacks = kwargs.pop('callback', None), kwargs.pop('error_callback', None)
    for name, value in zip(('callback', 'error_callback'), callbacks):
        if value is not None and not callable(value):
            raise TypeError('{} must be callable, not {}'.format(name, type(value).__name__))
    return callbacks
