"""``Timeout.total`` for API calls: one timer per event loop watches every request in flight.

aiohttp's own ``ClientTimeout(total=...)`` arms a timer for each request and wraps every read of it in a
timer context; on a loopback ``get()`` that was about 5% of the client's CPU per call. Here a request costs a
dictionary entry: :meth:`Deadlines.enter` notes the task and its deadline, :meth:`Deadlines.leave` drops it,
and one ``call_later`` sweep, every ``min(1 s, total / 8)`` while requests are in flight, cancels the tasks
whose deadline has passed. The caller turns that cancellation into ``APITimeoutError``
(:meth:`Deadlines.expired`), exactly as ``asyncio.timeout`` does: a task is only swept while it is registered,
and it is registered only while suspended inside the request, so the cancellation always lands there and
never in the caller's code. A deadline fires at most one sweep step late.

A cancellation from elsewhere (the caller's own timeout, Ctrl-C) is told apart with ``Task.uncancel()``
(Python 3.11+) and propagates as ``CancelledError``.
"""

from __future__ import annotations

import asyncio

__all__ = ["Deadlines"]


class Deadlines:
    """Total deadlines of the API requests of one event loop."""

    __slots__ = ("_expired", "_running", "_step", "_timer", "loop", "total")

    def __init__(self, loop: asyncio.AbstractEventLoop, total: float) -> None:
        self.loop = loop
        self.total = total
        self._step = min(1.0, total / 8)
        self._running: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self) -> asyncio.Task[object] | None:
        """Start the clock for the current task's request; pass the result to :meth:`leave`."""
        task = asyncio.current_task(self.loop)
        if task is None:  # not in a task (a bare callback): nothing to cancel, no deadline
            return None
        self._running[task] = self.loop.time() + self.total
        if self._timer is None:
            self._timer = self.loop.call_later(self._step, self._sweep)
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """The request ended (in any way)."""
        if task is not None:
            self._running.pop(task, None)
            self._expired.discard(task)

    def expired(self, task: asyncio.Task[object] | None) -> bool:
        """Whether the ``CancelledError`` caught for ``task`` is this deadline's and nobody else's.

        Call it only while handling ``CancelledError``; when True, raise a timeout error instead.
        """
        if task is None or task not in self._expired:
            return False
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        return uncancel is None or uncancel() == 0

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        for task, deadline in list(self._running.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if self._running:
            self._timer = self.loop.call_later(self._step, self._sweep)
