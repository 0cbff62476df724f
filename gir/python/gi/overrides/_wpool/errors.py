# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The exceptions a Python map raises for the GLib.Errors that ended it.

from gi.repository import GLib

from . import Wpool

class WorkerDiedError(GLib.Error):
    """A worker process died in an item (a signal, an exit): what a Python
    map raises, with the item, the worker and how it ended. MPIRE raises a
    RuntimeError there, which this is too, as a GLib.Error of
    Wpool.Error.WORKER_DIED."""


class TaskTimeoutError(TimeoutError):
    """An item ran past task_timeout, or a worker's start, init or exit
    past theirs: what a Python map raises, a TimeoutError as MPIRE's. Its
    domain, code and message are the GLib.Error's (Wpool.Error.TIMED_OUT),
    which is its __cause__."""

    def __init__(self, error):
        super().__init__(error.message)
        self.domain, self.code, self.message = error.domain, error.code, error.message

    def matches(self, domain, code):
        return GLib.quark_from_string(self.domain) == domain and self.code == code


def _as_mpire_error(error):
    """The exception a Python map raises for the GLib.Error that ended it:
    a dead worker's and a timeout's have types of their own, as in MPIRE."""
    if not isinstance(error, GLib.Error) or error.domain != 'wpool-error-quark':
        return error
    if error.code == Wpool.Error.WORKER_DIED:
        raised = WorkerDiedError(error.message, error.domain, error.code)
    elif error.code == Wpool.Error.TIMED_OUT:
        raised = TaskTimeoutError(error)
    else:
        return error
    raised.__cause__ = error
    return raised
