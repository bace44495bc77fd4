"""Run an async service on a private event loop in a background thread.

This is what ``with Emulator() as emu`` uses: synchronous tests and the blocking client need a server that
keeps answering while the calling thread blocks. ``start`` runs the service's start coroutine in the new
thread and waits for it, re-raising its exception (e.g. port in use) in the caller; ``stop`` runs the stop
coroutine there and joins the thread, so nothing outlives the ``with`` block. ``asyncio.run`` also shuts down
the loop's default executor, so no helper threads leak either.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable


class BackgroundLoop:
    """One thread, one event loop, one service started and stopped by coroutine functions."""

    def __init__(
        self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], name: str
    ) -> None:
        self._start, self._stop, self._name = start, stop, name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is serving."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread and the service; raise what the service's start raised."""
        if self._thread is not None:
            raise RuntimeError("already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._main, args=(ready, failure), daemon=True, name=self._name
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        """Stop the service and join the thread; harmless when not running."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._thread = self._loop = self._stopping = None

    def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        async def serve() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            try:
                await self._start()
            except BaseException as exc:  # re-raised by start() in the calling thread
                failure.append(exc)
                return
            finally:
                ready.set()
            try:
                await self._stopping.wait()
            finally:
                await self._stop()

        try:
            asyncio.run(serve())
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
