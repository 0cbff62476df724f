# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Arguments are checked before anything starts, as MPIRE checks them.

import collections.abc
import math
import os

from gi.repository import GLib, GObject

from . import Wpool

_START_METHODS = {
    'fork': Wpool.StartMethod.FORK,
    'forkserver': Wpool.StartMethod.FORKSERVER,
    'mpi': Wpool.StartMethod.MPI,
    'spawn': Wpool.StartMethod.SPAWN,
    'threading': Wpool.StartMethod.THREADING,
}

# The start methods whose workers are new programs, which find a function
# by its module and name.
_NEW_PROGRAM_METHODS = (Wpool.StartMethod.SPAWN, Wpool.StartMethod.FORKSERVER, Wpool.StartMethod.MPI)


# Arguments are checked as MPIRE's check_number() does, a little stricter:
# a bool is no count, and a bad value is refused, never clamped or ignored
# (GObject only warns about an out-of-range property and keeps its default).

def _check_number(name, value, minimum, maximum=None, floats=False):
    kinds = (int, float) if floats else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError('{} must be {}, not {}'.format(
            name, 'a number' if floats else 'an int', type(value).__name__))
    if not minimum <= value <= (math.inf if maximum is None else maximum) or math.isinf(value):
        raise ValueError('{} must be {}, not {!r}'.format(
            name, 'from {} to {}'.format(minimum, maximum) if maximum is not None else '>= {}'.format(minimum),
            value))
    return value


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError('{} must be a bool, not {}'.format(name, type(value).__name__))
    return value


def _check_start_method(start_method):
    if isinstance(start_method, str):
        try:
            return _START_METHODS[start_method]
        except KeyError:
            raise ValueError('unknown start method {!r}: one of {}'.format(
                start_method, ', '.join(sorted(_START_METHODS)))) from None
    if not isinstance(start_method, Wpool.StartMethod):
        raise TypeError('start_method must be one of {} or a Wpool.StartMethod, not {}'.format(
            ', '.join(sorted(_START_METHODS)), type(start_method).__name__))
    return start_method


def _check_property(name, value):
    """Checks a Pool() keyword naming a pool property against its GParamSpec."""
    pspec = Wpool.Pool.find_property(name.replace('_', '-'))
    if pspec is None or not pspec.flags & GObject.ParamFlags.WRITABLE:
        raise TypeError('Pool() got an unexpected keyword argument {!r}'.format(name))
    if pspec.value_type == GObject.TYPE_UINT:
        _check_number(name, value, pspec.minimum, pspec.maximum)
    elif pspec.value_type == GObject.TYPE_DOUBLE:
        # Seconds; 0 is no limit (as None in MPIRE).
        _check_number(name, value, pspec.minimum, pspec.maximum, floats=True)
    elif pspec.value_type == GObject.TYPE_BOOLEAN:
        _check_bool(name, value)
    elif pspec.value_type.is_a(GObject.TYPE_OBJECT) and value is not None and \
            not isinstance(value, pspec.value_type.pytype):
        raise TypeError('{} must be a {}, not {}'.format(name, pspec.value_type.name, type(value).__name__))


def _cpu_ids_variant(cpu_ids, n_jobs):
    """MPIRE's cpu_ids, one CPU or list of CPUs for all workers or for
    each, as the pool's `aau`."""
    if isinstance(cpu_ids, GLib.Variant):
        if cpu_ids.get_type_string() != 'aau':
            raise TypeError("cpu_ids must be a list or a GLib.Variant of type 'aau', not '{}'".format(
                cpu_ids.get_type_string()))
        cpu_ids = cpu_ids.unpack()
    if not isinstance(cpu_ids, (list, tuple)):
        raise TypeError('cpu_ids must be a list of CPU IDs or of lists of them, not {}'.format(
            type(cpu_ids).__name__))
    if len(cpu_ids) not in (1, n_jobs):
        raise ValueError('cpu_ids has {} entries: it must have 1 (for all workers) or n_jobs ({})'.format(
            len(cpu_ids), n_jobs))
    lists = []
    for entry in cpu_ids:
        cpus = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if not cpus:
            raise ValueError('cpu_ids: a worker has an empty list of CPUs')
        for cpu in cpus:
            if isinstance(cpu, bool) or not isinstance(cpu, int):
                raise TypeError('cpu_ids: a CPU ID must be an int, not {}'.format(type(cpu).__name__))
            if not 0 <= cpu < (os.cpu_count() or 1):
                raise ValueError('cpu_ids: there is no CPU {}: CPU IDs go from 0 to {}'.format(
                    cpu, (os.cpu_count() or 1) - 1))
        lists.append(cpus)
    return GLib.Variant('aau', lists)


def _check_map_arguments(method, func, iterable):
    if not callable(func):
        raise TypeError('{}() takes a callable, not {}'.format(method, type(func).__name__))
    if not isinstance(iterable, collections.abc.Iterable):
        raise TypeError('{}(): iterable must be iterable, not {}'.format(method, type(iterable).__name__))
