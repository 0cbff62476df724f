# SPDX-License-Identifier: LGPL-2.1-or-later
#
# MPIRE's worker_init and worker_exit: Python functions called as a worker
# starts and as it stops, with the worker's id, the shared objects and the
# worker's state before them as the map's own function gets them; as the
# C pool's worker-init and worker-exit tasks. What worker_exit returns
# comes back pickled (by reference for threads), for get_exit_results().

import base64
import itertools
import pickle

from gi.repository import GLib

from .batches import _BYTES, _bytes_variant, _codec, _failure, _stop_map, _variant_bytes
from .tasks import new_task

# The name of a worker program's lifecycle task: the prefix, the codec,
# 'init' or 'exit', then the pickled (function, _Head) in base64.
_LIFECYCLE = '_lifecycle'

# Exit results of worker threads, by key: never pickled.
_thread_results = {}
_thread_keys = itertools.count()


def _lifecycle_task(what, func, head, codec, shared_objects, threads=False):
    """The C task of worker_init (@what 'init') or worker_exit ('exit'),
    which calls func with @head's arguments (@shared_objects() gives the
    shared objects). An exception stops the map, carrying itself back, as
    an item's does."""

    def run(worker, _shared_objects, item):
        try:
            value = func(*head.arguments(worker, shared_objects()))
        except BaseException as error:  # noqa: B902 - SystemExit too, as an item's
            _stop_map(worker, _failure(error), carry=True, codec=codec)
            return None
        if what == 'init':
            return GLib.Variant.new_boolean(True)
        if threads:
            key = next(_thread_keys)
            _thread_results[key] = value
            return _bytes_variant(pickle.dumps(key))
        try:
            return _bytes_variant(codec.dumps(value))
        except Exception as error:  # noqa: B902 - an unpicklable result
            _stop_map(worker, _failure(RuntimeError(
                'What worker_exit returned cannot be sent back from the worker: {}'.format(error))),
                carry=True, codec=codec)
            return None

    task = new_task(run)
    if what == 'exit':
        task.set_result_type(_BYTES)
    return task


def _program_task_name(what, func, head, codec_name):
    """The name of a worker program's task that calls @func (@what, 'init'
    or 'exit'), which carries it pickled by @codec_name."""
    return '{}.{}.{}.{}'.format(_LIFECYCLE, codec_name, what,
                                base64.b64encode(_codec(codec_name).dumps((func, head))).decode('ascii'))


def _resolve_program_task(name, shared_objects):
    """In a worker program: the lifecycle task named @name, or None if it
    names none."""
    if not name.startswith(_LIFECYCLE + '.'):
        return None
    _prefix, codec_name, what, payload = name.split('.', 3)
    codec = _codec(codec_name)
    func, head = codec.loads(base64.b64decode(payload))
    return _lifecycle_task(what, func, head, codec, shared_objects)


def _exit_results(variant, codec, threads):
    """The Python values of the C pool's exit results, an `aay`."""
    values = []
    for index in range(variant.n_children()):
        data = _variant_bytes(variant.get_child_value(index))
        values.append(_thread_results.pop(pickle.loads(data), None) if threads else codec.loads(data))
    return values
