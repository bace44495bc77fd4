"""Group commit for the SQLite journal: statements on the event loop, each commit's fsync on a thread.

A journal transition is a few short SQL statements (tens of microseconds each) and one commit, which with
``synchronous=FULL`` waits for the disk (milliseconds). Running everything on a worker thread costs a thread
hand-off per statement, each fighting the event loop for the GIL; running everything on the loop blocks it
for every fsync. So the two are split:

- callers queue their transition (a function of the connection) and await its result;
- one flusher task takes everything queued, runs it inside one ``BEGIN IMMEDIATE`` transaction on the event
  loop, then hands ``COMMIT`` (the fsync) to a dedicated thread and awaits it; whatever was queued meanwhile
  forms the next group. A thousand transitions in flight cost a handful of fsyncs.

A transition that raises rolls its whole group back; the group's transitions are then replayed one
transaction each, so only the failing one fails. Results are delivered only after their commit: a caller
that continues has its transition on disk. The connection is used by one side at a time (the loop never
touches it while the thread commits), so ``check_same_thread=False`` is safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]
_GROUP = 512  # at most this many transitions per commit
_BUSY_WAIT = 30.0  # seconds to wait for another process's write lock (a concurrent add(), say)


class GroupCommitter:
    """Runs functions of one connection in grouped transactions; see the module docstring."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str) -> None:
        self._connect = connect
        self._name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._queue: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        try:
            self._connection = await self._in_thread(self._connect)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def stop(self) -> None:
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)  # queued transitions land before the connection closes
        connection, self._connection = self._connection, None
        executor, self._executor = self._executor, None
        if executor is not None:
            try:
                if connection is not None:
                    await asyncio.get_running_loop().run_in_executor(executor, connection.close)
            finally:
                executor.shutdown(wait=True)

    async def _in_thread(self, function: Callable[[], T]) -> T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function(connection)`` in the next group; its result once committed, or its exception."""
        if self._connection is None:
            raise RuntimeError("the journal is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((function, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"{self._name}-commits")
        # Once queued, the transition runs: a cancelled caller cancels only this future, which the flusher
        # then skips (cheaper than asyncio.shield, same effect).
        return await future

    async def _flush(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:_GROUP], self._queue[_GROUP:]
            try:
                outcomes = await self._commit_group(group)
            except Exception as error:  # BEGIN or COMMIT failed (disk full, I/O error): nothing recorded
                outcomes = [(None, error)] * len(group)
            for (_, future), (result, failure) in zip(group, outcomes, strict=True):
                if future.cancelled():
                    continue
                if failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result(result)

    async def _begin(self, connection: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting (off the loop) while another process holds the write lock."""
        try:
            connection.execute("BEGIN IMMEDIATE")  # the connection's busy timeout is 0: never blocks
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            deadline = time.monotonic() + _BUSY_WAIT
            while True:
                await asyncio.sleep(0.01)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise

    async def _commit_group(self, group: list[_Call]) -> list[tuple[Any, BaseException | None]]:
        connection = self._connection
        assert connection is not None
        await self._begin(connection)
        outcomes: list[tuple[Any, BaseException | None]] = []
        failed = False
        try:
            for function, _ in group:
                outcomes.append((function(connection), None))
        except Exception:
            failed = True
        if failed:
            connection.rollback()
            return await self._one_by_one(connection, group)
        try:
            await self._in_thread(lambda: connection.execute("COMMIT"))
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.rollback()
            raise
        return outcomes

    async def _one_by_one(
        self, connection: sqlite3.Connection, group: list[_Call]
    ) -> list[tuple[Any, BaseException | None]]:
        """Replay a failed group one transaction per transition, so only the failing ones fail."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        for function, _ in group:
            await self._begin(connection)
            try:
                result = function(connection)
            except Exception as error:
                connection.rollback()
                outcomes.append((None, error))
                continue
            await self._in_thread(lambda: connection.execute("COMMIT"))
            outcomes.append((result, None))
        return outcomes
