# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python task functions: an exception fails its item with a GError that
# says what was raised (PyGObject 3.42 cannot set a callback's GError), and
# forks made for the pool are Python's own.

import errno
import gc
import os
import sys
import traceback

from gi.repository import GLib

from . import Wpool

def _report(worker, error):
    if isinstance(error, GLib.Error):
        worker.report_error(GLib.quark_from_string(error.domain), error.code, error.message)
        return

    summary = ''.join(traceback.format_exception_only(type(error), error)).strip()
    details = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    worker.report_error(Wpool.error_quark(), Wpool.Error.FAILED,
                        '{}\n\n{}'.format(summary, details.rstrip()))


# libwpool forks FORK and FORKSERVER workers with os.fork() (_fork()),
# whose at-fork hooks reseed `random` in each worker. multiprocessing runs
# its own after-fork hooks in the processes it starts, not at os.fork():
# a manager's proxy the caller used would share its connection with every
# worker. At a worker's first Python task, they run, as in multiprocessing's
# forked processes.
_forked_pid = os.getpid()


def _after_fork():
    global _forked_pid
    if os.getpid() != _forked_pid:
        _forked_pid = os.getpid()
        if 'multiprocessing.util' in sys.modules:
            sys.modules['multiprocessing.util']._run_after_forkers()


def _fork():
    """Forks for libwpool (Wpool.set_fork_func()) as os.fork() does: with
    the GIL held across the fork, which another Python thread could hold
    at the moment a C fork() happens (the child would inherit it held by a
    thread it does not have), and the interpreter repaired in the child
    (its other threads forgotten, `random` reseeded, os.register_at_fork()
    hooks run).

    What exists at the fork is frozen out of the garbage collector's
    reach, and stays so in the child: a collection there (os.fork() runs
    Python code in the child) would free the caller's garbage, GLib
    objects of threads the child does not have, and crash it."""
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException as error:  # noqa: B902 - a negative errno, never 0: that is the child
        pid = -(getattr(error, 'errno', None) or errno.EAGAIN)
    if pid != 0:
        gc.unfreeze()
    return pid


Wpool.set_fork_func(_fork)


def _wrap_task_func(func):
    if not callable(func):
        raise TypeError('a task function must be callable, not {}'.format(type(func).__name__))

    def task_func(worker, shared_objects, item, *user_data):
        _after_fork()
        try:
            return func(worker, shared_objects, item, *user_data)
        except BaseException as error:  # noqa: B902 - nothing may escape to PyGObject
            _report(worker, error)
            return None

    return task_func


def new_task(func):
    """A Wpool.Task of the Python function func(worker, shared_objects,
    item), wrapped as Wpool.Task.new() of the override wraps it."""
    return Wpool.Task.new(_wrap_task_func(func))
