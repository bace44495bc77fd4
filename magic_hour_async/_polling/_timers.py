"""Deadlines for one driver task: a heap with lazy deletion, and an idle wait that earlier work interrupts.

The scheduler pushes ``(when, target)`` entries and never removes one: a target that stopped mattering (a
withdrawn project, a finished wait, a poll planned for another time) is skipped when its entry comes up, and
the heap is rebuilt once stale entries outnumber live ones. So withdrawing is O(1), pushing and popping
O(log n), and memory stays proportional to what is live.

The heap holds ``(when, seq)`` pairs and a dict maps ``seq`` to the target. A pair of numbers is a tuple the
cyclic GC stops tracking at its first collection, whereas a ``(when, seq, target)`` tuple stays tracked: with
ten thousand watched projects, each rescheduled poll would add an object that lives for seconds, reaches the
oldest generation and brings the next full collection (tens of milliseconds) closer.

The driver idles until the earliest deadline by sleeping with the injected ``sleep``; pushing an earlier
deadline, or :meth:`Timers.wake_at` for other news (a free slot), cuts that sleep short.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Timers"]

T = TypeVar("T")

_SLACK = 1024  # stale entries tolerated before a rebuild is worth its O(n)


class Timers(Generic[T]):
    """A min-heap of deadlines for one consumer task, which may idle until the next one is due."""

    def __init__(self, sleep: Callable[[float], Awaitable[object]]) -> None:
        self._sleep = sleep
        self._heap: list[tuple[float, int]] = []  # (when, seq): ties break on insertion order
        self._targets: dict[int, T] = {}  # seq -> target
        self._seq = itertools.count()
        self._wakeup: asyncio.Future[None] | None = None
        self._idle_until = -math.inf
        self.sleeper: asyncio.Future[object] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def next_at(self) -> float:
        """The earliest deadline, or ``inf`` when there is none."""
        return self._heap[0][0] if self._heap else math.inf

    def push(self, when: float, target: T) -> None:
        """Add a deadline; wakes the idle consumer if it is earlier than the one it sleeps towards."""
        seq = next(self._seq)
        heapq.heappush(self._heap, (when, seq))
        self._targets[seq] = target
        self.wake_at(when)

    def pop_due(self, now: float) -> Iterator[tuple[float, T]]:
        """Remove and yield ``(deadline, target)`` for deadlines at or before ``now``, earliest first."""
        heap, targets = self._heap, self._targets
        while heap and heap[0][0] <= now:
            when, seq = heapq.heappop(heap)
            yield when, targets.pop(seq)

    def compact(self, live: Callable[[float, T], bool], expected: int) -> None:
        """Drop stale entries (``live(deadline, target)`` is false) when they outnumber the ``expected``."""
        if len(self._heap) > 2 * expected + _SLACK:
            targets = self._targets
            self._heap = [(when, seq) for when, seq in self._heap if live(when, targets[seq])]
            self._targets = {seq: targets[seq] for _, seq in self._heap}
            heapq.heapify(self._heap)

    def clear(self) -> None:
        self._heap.clear()
        self._targets.clear()

    async def idle(self, until: float, now: float) -> None:
        """Sleep until ``until`` (``inf``: until woken), or until :meth:`wake_at` names an earlier time."""
        self._idle_until = until
        self._wakeup = wakeup = asyncio.get_running_loop().create_future()
        try:
            if until == math.inf:
                await wakeup
            else:
                self.sleeper = sleeper = asyncio.ensure_future(self._sleep(until - now))
                await asyncio.wait((sleeper, wakeup), return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
        finally:
            self._wakeup = None
            self._idle_until = -math.inf

    def wake_at(self, when: float) -> None:
        """Wake the idle consumer if ``when`` is before the time it sleeps towards (``-inf``: always)."""
        wakeup = self._wakeup
        if (
            when < self._idle_until
            and wakeup is not None
            and not wakeup.done()
            and not wakeup.get_loop().is_closed()  # a wait collected after its loop closed
        ):
            wakeup.set_result(None)
