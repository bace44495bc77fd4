"""A thread-safe latch for the ``hold`` fault.

In thread mode the server's event loop runs in a background thread while the test calls ``fault.release()``
from the main thread, so each waiter awaits a future of its own loop, resolved with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Latch:
    """A one-way gate: coroutines on any event loop wait until any thread opens it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> int:
        """How many coroutines are waiting now."""
        with self._lock:
            return sum(1 for _, future in self._waiters if not future.done())

    async def wait(self) -> None:
        """Return once the latch is open (at once if it already is)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._opened:
                return
            self._waiters.append((loop, future))
        try:
            await future
        finally:
            with self._lock:
                self._waiters.remove((loop, future))

    def open(self) -> None:
        """Open the latch for good, waking every waiter on its own loop."""
        with self._lock:
            self._opened = True
            waiters = list(self._waiters)
        for loop, future in waiters:
            # The future belongs to the server's loop, which may run in another thread.
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
