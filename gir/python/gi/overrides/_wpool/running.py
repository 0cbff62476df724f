# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Waiting for a map: on a main context of the map's own, so that Ctrl-C
# stops it, and on a thread of its own for AsyncResult and asyncio.

import math
import signal
import threading

from gi.repository import Gio, GLib

from . import Wpool
from .progress import _Progress

# How often, in ms, a caller waiting for a map checks for a Ctrl-C that
# another thread received (Linux gives a process's SIGINT to its main
# thread, whose wait it interrupts at once, unless that thread blocks it).
_SIGNAL_CHECK_MS = 100


class _SigintDeferred:
    """Starts a map with SIGINT blocked in the starting thread, whose mask
    the threads and processes it starts inherit: a terminal's Ctrl-C, sent
    to the whole process group, then raises no KeyboardInterrupt in each
    forked worker (MPIRE's workers ignore SIGINT). KeyboardInterrupt is
    deferred to the end of the block, as MPIRE's DelayedKeyboardInterrupt
    does, so that it comes before the map starts or after, never between.
    Python handles signals in its main thread only: elsewhere this does
    nothing."""

    def __enter__(self):
        self.received = []
        # A pending Ctrl-C raises here, before anything started.
        self.handler = _hold_sigint(self.received)
        self.main = self.handler is not None
        if self.main:
            self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        if self.main:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
            signal.signal(signal.SIGINT, self.handler)
            if self.received:
                _deliver_sigint(self.handler, self.received[-1])
        return False


def _hold_sigint(received):
    """Replaces the SIGINT handler with one that appends to @received, and
    returns the one it replaced; None, and nothing replaced, outside the
    main thread or if that one is not Python's (it could not be put back)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))


def _deliver_sigint(handler, frame):
    """Hands a SIGINT that was held back to the handler it was meant for:
    Python's default one raises KeyboardInterrupt."""
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


class _Running:
    """A Python map on the C pool, started through the C API's async calls
    on a main context of its own, and waited for by iterating that context
    on the caller's thread (where the C pool ends its maps). While it
    waits, a Ctrl-C is noted rather than raised, so that it interrupts no
    callback, and handed to the SIGINT handler between iterations: Python's
    raises KeyboardInterrupt, and the map is aborted and the pool
    terminated, as MPIRE's is."""

    def __init__(self, pool, job):
        self.pool = pool
        self.job = job
        self.cancellable = Gio.Cancellable.new()
        self.context = GLib.MainContext.new()
        self.answered = threading.Event()
        self.answered.set()
        self.result = None
        self.on_answer = None
        self.ended = False
        self.progress = None
        self.applied = None
        self.handler = None
        # Stopped by the pool's terminate(), or as its `with` block ended.
        self.terminated = False

    def setup(self):
        """Before the map starts: its progress bar, and the pool properties
        it sets for its run (MPIRE's per-map arguments), in this order, so
        that a bad bar option changes nothing."""
        job = self.job
        self.progress = _Progress(job.options, job.n_items)
        # Before it counts as running: it may restart idle workers.
        self.applied = job.options.apply(self.pool, job.chunk_size)
        self.pool._running.add(self)
        if self.progress.bar is not None:
            # Emitted on the map's context: the caller's thread for map()
            # and imap().
            self.handler = self.pool.connect('notify::n-completed', self._on_progress)

    def raise_exit_error(self):
        """After a map with a worker_exit whose workers stopped at its end
        (no keep-alive): the first exception a worker_exit raised, as MPIRE
        raises it from the map."""
        if self.job.options.worker_exit is not None and not self.pool.props.workers_running:
            self.pool.get_exit_results()

    def _on_progress(self, pool, pspec):
        # Batches done, in items: never more than were read.
        done = math.ceil(pool.props.n_completed * self.job.chunk_size)
        self.progress.update(min(done, self.job.n_read if self.job.n_items is None else self.job.n_items))

    def _answer(self, source, result):
        self.result = result
        self.answered.set()
        if self.on_answer is not None:
            self.on_answer()

    def begin(self, start, answered=True):
        """Calls start(callback), a call of the C API whose callback, if
        @answered, comes to this map's context. Ctrl-C meanwhile comes
        after, and aborts the map."""
        self.pool._join_threads()
        try:
            with _SigintDeferred():
                self.context.push_thread_default()
                try:
                    if answered:
                        self.answered.clear()
                    start(self._answer)
                except BaseException:
                    self.answered.set()
                    raise
                finally:
                    self.context.pop_thread_default()
        except KeyboardInterrupt:
            self.interrupted()
            raise

    def _iterate(self, interruptible):
        """Iterates the map's context until the last call is answered."""
        received = []
        handler = _hold_sigint(received)
        tick = GLib.timeout_source_new(_SIGNAL_CHECK_MS)
        tick.set_callback(lambda *args: GLib.SOURCE_CONTINUE)
        tick.attach(self.context)
        try:
            while not self.answered.is_set():
                self.context.iteration(True)
                if received and interruptible:
                    signal.signal(signal.SIGINT, handler)
                    _deliver_sigint(handler, received.pop())
                    # A handler of the caller's own, which did not raise.
                    _hold_sigint(received)
        finally:
            tick.destroy()
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
        if received and interruptible:
            _deliver_sigint(handler, received.pop())

    def wait(self):
        """Waits for the answer to the last call: Ctrl-C aborts the map and
        terminates the pool, and raises KeyboardInterrupt."""
        try:
            self._iterate(interruptible=True)
        except KeyboardInterrupt:
            self.interrupted()
            raise
        return self.result

    def interrupted(self):
        self.abort()
        self.pool._terminate_quietly()

    def abort(self):
        """Cancels the map and waits for it to end (a further Ctrl-C
        meanwhile is ignored: a thread ends its item first)."""
        if self.ended:
            return
        self.cancellable.cancel()
        self.job.interrupt()
        if not self.answered.is_set():
            self._iterate(interruptible=False)
        self.drain()
        self.end()

    def drain(self):
        """Waits for the end of a cancelled map, whose last call answered."""

    def end(self, completed=False):
        """The map ended, and @completed if it gave all its results."""
        if self.ended:
            return
        self.ended = True
        if self.handler is not None:
            self.pool.disconnect(self.handler)
            self.handler = None
        if self.applied is not None:
            self.applied.restore()
        if self.progress is not None:
            self.progress.close(completed, self.job.n_read)
        self.job.close()
        self.pool._running.discard(self)


class _RunningMap(_Running):
    """A map(), map_async() or apply(): one call, whose answer is the map's."""

    def run(self):
        """The map's results, or its exception."""
        self.start()
        self.wait()
        return self.finish()

    def start(self):
        self.setup()
        self.begin(lambda callback: Wpool.Pool.map_async(self.pool, self.job.task, self.job.variant,
                                                         self.cancellable, callback))

    def finish(self):
        try:
            variant = Wpool.Pool.map_finish(self.pool, self.result)
        except GLib.Error as error:
            self.end()
            if self.terminated:
                raise RuntimeError('The pool was terminated while this map ran: its results are lost') from error
            self.job.raise_error(error)
        # Decoded before the end, which lets the memfds of the items'
        # buffers go back to the pool once their batches are.
        try:
            results = self.job.finish(variant)
        finally:
            self.end(completed=True)
        self.raise_exit_error()
        return results


class _RunningStream(_Running):
    """An imap(): a Wpool.MapStream of the map's batches, read with
    next_async(). A lazy map's batches come from its iterable as the
    workers need them (Wpool.Pool.imap_source())."""

    stream = None

    def start(self, flags):
        job = self.job

        def start(callback):
            if job.variant is not None:
                self.stream = Wpool.Pool.imap(self.pool, job.task, job.variant, flags, self.cancellable)
                return
            n_batches = 0 if job.n_items is None else math.ceil(job.n_items / job.chunk_size)
            self.stream = Wpool.Pool.imap_source(self.pool, job.task, job.next_item, None, n_batches, flags,
                                                 self.cancellable)

        self.setup()
        self.begin(start, answered=False)

    def drain(self):
        if self.stream is None:
            return
        try:
            while self.stream.next()[0]:
                pass
        except GLib.Error:
            pass

    def results(self):
        """The map's results, one by one as the stream gives them."""
        for results in self.batches():
            yield from results

    def run(self):
        """map()'s results, of an ordered stream: each batch's decoded as
        it comes, while worker processes run the next ones, rather than
        all once the last one ended (issue 20)."""
        self.start(Wpool.MapFlags.NONE)
        results = []
        for batch in self.batches():
            results.extend(batch)
        return self.job.concatenated(results)

    def batches(self):
        """The map's results, a list per batch as the stream gives them.
        Left early (an exception, a break, the generator dropped), the map
        is cancelled and waited for, so the pool is free again."""
        try:
            while True:
                if self.ended:
                    raise RuntimeError('The pool was terminated while this map ran: its results are lost')
                self.begin(lambda callback: self.stream.next_async(None, callback))
                self.wait()
                try:
                    found, index, result, item_error = self.stream.next_finish(self.result)
                except GLib.Error as error:
                    self.end()
                    if self.terminated:
                        raise RuntimeError('The pool was terminated while this map ran: its results are lost') \
                            from error
                    self.job.raise_error(error)
                if not found:
                    if self.job.iterable_error is not None:
                        # The iterable's own exception, where it raised it.
                        self.end()
                        raise self.job.iterable_error
                    self.end(completed=True)
                    self.raise_exit_error()
                    return
                yield self.job.batch_results(index, result)
        finally:
            self.abort()


class _RunningAsync(_RunningMap):
    """A map_async() or apply_async(): neither asyncio nor a caller that
    calls get() later iterates GLib's contexts, so a thread of its own
    iterates the map's, on which @on_answer settles the AsyncResult."""

    thread = None

    def start(self, on_answer):
        self.on_answer = on_answer
        # Started on the caller's thread, which a FORK pool forks.
        super().start()
        self.thread = threading.Thread(target=self._iterate_thread, name='wpool-map-async', daemon=True)
        self.thread.start()

    def _iterate_thread(self):
        self.context.push_thread_default()
        while not self.answered.is_set():
            self.context.iteration(True)
        self.context.pop_thread_default()

    def abort(self):
        if self.thread is None or self.ended:
            # Not started, or interrupted as it started: no thread iterates.
            super().abort()
            return
        self.cancellable.cancel()
        self.job.interrupt()
        self.answered.wait()
        self.end()

    def end(self, completed=False):
        # No thread is left behind: ended on the thread itself (the
        # AsyncResult settles there), the pool joins it before its next
        # map, or as the `with` block ends.
        if self.thread is threading.current_thread():
            self.pool._threads_to_join.append(self.thread)
        elif self.thread is not None:
            self.thread.join()
        super().end(completed)
