"""One thread that owns a ``sqlite3`` connection and commits concurrent transitions together.

``sqlite3`` blocks, so the event loop hands it work: each call is a function of the connection, queued to a
dedicated thread. The thread takes everything queued at that moment and runs it in ONE transaction, each call
inside its own savepoint (a failing call rolls back alone), then commits once: with ``synchronous=FULL`` that
is one fsync for a whole group of transitions (group commit), which is what lets a journal keep up with
thousands of renders while every transition is durable before its caller continues. Results go back to the
waiting coroutines on their loop; calls run in the order they were queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_STOP = None
_GROUP = 256  # at most this many calls per commit, so one group never holds the write lock for long


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SQLiteThread:
    """Runs functions of one connection on a private thread, grouped into transactions."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._startup_error is not None:
            await asyncio.to_thread(self._thread.join)
            raise self._startup_error

    async def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    async def call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function(connection)`` in the next transaction; its result or its exception."""
        if not self._thread.is_alive():
            raise RuntimeError("the journal is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((function, loop, future))
        # Shielded: once queued, the call runs; a cancelled caller must not leave the future un-awaited.
        return await asyncio.shield(future)

    def _main(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:  # reported to start()
            self._startup_error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                group = [first]
                stop = False
                while len(group) < _GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    group.append(item)
                self._run_group(connection, group)
                if stop:
                    return
        finally:
            connection.close()

    @staticmethod
    def _run_group(connection: sqlite3.Connection, group: list[_Call]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for function, _, _ in group:
                connection.execute("SAVEPOINT call")
                try:
                    outcomes.append((function(connection), None))
                    connection.execute("RELEASE call")
                except Exception as error:
                    connection.execute("ROLLBACK TO call")
                    connection.execute("RELEASE call")
                    outcomes.append((None, error))
            connection.execute("COMMIT")
        except Exception as error:  # BEGIN or COMMIT failed (disk full, I/O error): nothing was recorded
            if connection.in_transaction:
                connection.rollback()
            outcomes = [(None, error)] * len(group)
        for (_, loop, future), (result, failure) in zip(group, outcomes, strict=True):
            # RuntimeError: the caller's loop is closed, nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, future, result, failure)
