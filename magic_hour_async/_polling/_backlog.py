"""Due polls waiting for a concurrency slot or the rate: the most overdue, relative to its interval, first.

While the poll budget binds, the order of the backlog decides who waits. First come, first served makes a
short render started beside a large batch wait for the whole batch to be polled once more. Served by absolute
lateness it fares no better: every project of a saturated batch is already late. Lateness is measured in the
project's own interval instead, ``(now - due) / interval``: a young render polled every second that is 5 s
late (five intervals) goes before a 10-minute-old one polled every 30 s that is 60 s late (two intervals).
Waiting costs each project in proportion to how often it wants polling, as its detection bound (a share of its
age) does.

That score changes with ``now`` at a different slope for every interval, so no fixed key orders a heap by it.
Projects are kept in lanes of intervals within a factor of two of each other (a handful: 1 s to 30 s is five),
each first come, first served, which is also by due time within a lane; the next poll is the lane head with
the highest score. O(lanes) per poll, and a withdrawn project is skipped when it reaches the head of its lane.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Backlog"]


class Due(Protocol):
    """A due poll: when it was due, and the interval it was planned with (seconds, positive)."""

    @property
    def due(self) -> float: ...

    @property
    def interval(self) -> float: ...


T = TypeVar("T", bound=Due)


def _lane(interval: float) -> int:
    return math.floor(math.log2(interval)) if interval > 0 else -1075  # below any positive float


class Backlog(Generic[T]):
    """Due polls; :meth:`first` names the most overdue relative to its own interval."""

    __slots__ = ("_lanes",)

    def __init__(self) -> None:
        self._lanes: dict[int, deque[T]] = {}

    def __bool__(self) -> bool:
        return bool(self._lanes)  # may hold only withdrawn entries; ``first`` then drops them

    def append(self, item: T) -> None:
        """Add a poll that has just come due (items should come in order of ``due``)."""
        lane = _lane(item.interval)
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
        queue.append(item)

    def first(self, now: float, live: Callable[[T], bool]) -> T | None:
        """The poll to send next, or None; entries for which ``live`` is false are dropped on the way."""
        best: T | None = None
        best_score = -math.inf
        for lane in list(self._lanes):
            queue = self._lanes[lane]
            while queue and not live(queue[0]):
                queue.popleft()
            if not queue:
                del self._lanes[lane]
                continue
            head = queue[0]
            score = (now - head.due) / head.interval
            if score > best_score:
                best, best_score = head, score
        return best

    def remove(self, item: T) -> None:
        """Take ``item``, which :meth:`first` just returned, out of the backlog."""
        lane = _lane(item.interval)
        queue = self._lanes[lane]
        queue.popleft()
        if not queue:
            del self._lanes[lane]

    def clear(self) -> None:
        self._lanes.clear()
