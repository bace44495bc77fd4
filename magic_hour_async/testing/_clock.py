"""Time sources for the emulator.

Everything time-dependent in the emulator (render progress, URL expiry, ``created_at``, the rate-limit token
bucket) reads one injectable monotonic clock: a zero-argument callable returning seconds. Tests pass a
:class:`ManualClock` and call :meth:`ManualClock.advance` instead of sleeping, so lifecycle assertions are
exact and instantaneous. Wall-clock timestamps are derived from the same clock (``epoch + elapsed``) so moving
a manual clock forward also moves ``created_at`` and ``expires_at``.

Only injected *delays* (the ``delay`` fault) use real time: they exist to exercise client timeouts, which run
on the client's own real clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""A monotonic time source in seconds, e.g. :func:`time.monotonic` or a :class:`ManualClock`."""


class ManualClock:
    """A clock that only moves when told to; safe to advance from another thread.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(2.5)
        >>> clock()
        2.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


class WallTime:
    """Maps the injectable monotonic clock onto Unix time, anchored when the emulator is built."""

    def __init__(self, clock: Clock, epoch: float | None = None) -> None:
        self.clock = clock
        self._origin = clock()
        self._epoch = time.time() if epoch is None else epoch

    def __call__(self) -> float:
        """Current Unix time in seconds, as the emulator sees it."""
        return self._epoch + (self.clock() - self._origin)
