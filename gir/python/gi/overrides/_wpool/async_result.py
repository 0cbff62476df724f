# SPDX-License-Identifier: LGPL-2.1-or-later
#

import threading
import traceback

from .arguments import _check_number

def _settle(future):
    if not future.done():
        future.set_result(None)


class AsyncResult:
    """What apply_async() and map_async() return, as MPIRE's (and
    multiprocessing's) AsyncResult: ready(), successful(), wait(timeout),
    get(timeout), and the callback or error_callback called with the
    result or the exception once the map ends (on a thread of the pool's,
    before get() returns).
    It is awaitable too: `await pool.map_async(...)` runs on an asyncio
    loop without blocking it, and cancelled (as asyncio.run() does on
    Ctrl-C) stops the map and terminates the workers."""

    def __init__(self, running, single, callback, error_callback):
        self._running = running
        self._single = single
        self._callback = callback
        self._error_callback = error_callback
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._waiters = []
        self._value = None
        self._error = None
        running.start(self._settle)

    def _settle(self):
        """On the map's thread, once it answered: the outcome, the
        callbacks, then the waiters (as multiprocessing's: a callback has
        run once get() returns)."""
        # No cycle left between the map and its result.
        self._running.on_answer = None
        try:
            value = self._running.finish()
            self._value = value[0] if self._single else value
        except BaseException as error:  # noqa: B902 - the map's, whatever it is
            self._error = error
        try:
            if self._error is None and self._callback is not None:
                self._callback(self._value)
            elif self._error is not None and self._error_callback is not None:
                self._error_callback(self._error)
        except Exception:  # noqa: B902 - the caller's, reported as a thread's
            traceback.print_exc()
        with self._lock:
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_settle, future)
            except RuntimeError:
                pass  # A loop closed meanwhile.

    def ready(self):
        """Whether the map ended."""
        return self._done.is_set()

    def successful(self):
        """Whether the map ended without an exception; ValueError before it
        ended."""
        if not self.ready():
            raise ValueError('The map has not ended yet')
        return self._error is None

    def wait(self, timeout=None):
        """Waits until the map ends, or @timeout seconds. Ctrl-C meanwhile
        stops the map and terminates the workers, as in map()."""
        if timeout is not None:
            _check_number('timeout', timeout, 0, floats=True)
        try:
            self._done.wait(timeout)
        except KeyboardInterrupt:
            self._running.abort()
            self._running.pool._terminate_quietly()
            raise

    def get(self, timeout=None):
        """The results of map_async() (a list) or apply_async() (the one
        result), or the exception that ended the map; TimeoutError if it did
        not end within @timeout seconds."""
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError('The map did not end within {} s'.format(timeout))
        if self._error is not None:
            raise self._error
        return self._value

    def __await__(self):
        return self._wait_async().__await__()

    async def _wait_async(self):
        import asyncio

        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        with self._lock:
            if self._done.is_set():
                ended.set_result(None)
            else:
                self._waiters.append((loop, ended))
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError:
            # Cancelled (asyncio.run() cancels on Ctrl-C): stopped as map()
            # on Ctrl-C, without blocking the loop meanwhile.
            self._running.cancellable.cancel()
            self._running.job.interrupt()
            await asyncio.shield(ended)
            self._running.pool._terminate_quietly()
            raise
        return self.get()
