# SPDX-License-Identifier: LGPL-2.1-or-later
#
# PyGObject override for Wpool.
#
# PyGObject 3.42 cannot set the GError out argument of a callback: it prints
# a Python exception raised in a task and returns NULL, and the map would
# fail with a bare "returned NULL". Python task functions are wrapped so
# that an exception fails its item with a GError that says what was raised.

import traceback

from gi.repository import GLib

from ..module import get_introspection_module
from ..overrides import override

Wpool = get_introspection_module('Wpool')

__all__ = []


def _report(worker, error):
    if isinstance(error, GLib.Error):
        worker.report_error(GLib.quark_from_string(error.domain), error.code, error.message)
        return

    summary = ''.join(traceback.format_exception_only(type(error), error)).strip()
    details = ''.join(traceback.format_exception(type(error), error, error.__traceback__))
    worker.report_error(Wpool.error_quark(), Wpool.Error.FAILED,
                        '{}\n\n{}'.format(summary, details.rstrip()))


def _wrap_task_func(func):
    if not callable(func):
        raise TypeError('a task function must be callable, not {}'.format(type(func).__name__))

    def task_func(worker, shared_objects, item, *user_data):
        try:
            return func(worker, shared_objects, item, *user_data)
        except BaseException as error:  # noqa: B902 - nothing may escape to PyGObject
            _report(worker, error)
            return None

    return task_func


class Task(Wpool.Task):
    @classmethod
    def new(cls, func, *user_data):
        """Creates a task that runs func(worker, shared_objects, item, *user_data).

        An exception raised by func fails its item: a GLib.Error keeps its
        domain and code, any other exception becomes Wpool.Error.FAILED with
        its type, message and traceback in the message.
        """
        return Wpool.Task.new(_wrap_task_func(func), *user_data)


Task = override(Task)
__all__.append('Task')
