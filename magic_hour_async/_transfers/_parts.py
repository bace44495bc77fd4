"""Pieces shared by downloads and uploads: progress reports, the per-client bound, running files concurrently,
transfer timeouts, and the temporary file a download streams into.

:class:`PartFile` writes on the event loop while the disk keeps up and moves to a worker thread the moment
it does not (its docstring has the measurements). A worker thread cannot be interrupted, so pending writes
are awaited through ``asyncio.shield``: a cancelled caller leaves the thread running, and
:meth:`PartFile.discard` deletes the file only once the thread has let go of it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import attrs

from .._http._transport import Transport

__all__ = [
    "MAX_CONCURRENT_TRANSFERS",
    "PartFile",
    "ProgressCallback",
    "Stall",
    "TransferProgress",
    "gather_all",
    "stall_limit",
    "transfer_slots",
]

T = TypeVar("T")
logger = logging.getLogger("magic_hour_async")

#: Files transferred at once per client, downloads and uploads together.
MAX_CONCURRENT_TRANSFERS = 4


@attrs.frozen(kw_only=True)
class TransferProgress:
    """Byte-level progress of one file, passed to the ``on_progress`` callback of downloads and uploads.

    Attributes:
        name: the saved file's name (downloads) or the source's file name (uploads).
        index: the file's position: ``project.downloads[index]``, or its position in the upload call.
        bytes_done: bytes transferred so far (back to 0 when a server forces a download to restart).
        bytes_total: the file's size, or None when it is not known.
        already_present: a download found an identical file under its name and kept it (nothing was
            transferred; ``bytes_done`` is that file's size).
    """

    name: str
    index: int
    bytes_done: int
    bytes_total: int | None
    already_present: bool = False


ProgressCallback = Callable[[TransferProgress], None]


def stall_limit(transport: Transport) -> float:
    """Seconds a file transfer may go without moving a byte, for :class:`Stall`.

    The client's read timeout, enforced by :class:`Stall` rather than aiohttp's ``sock_read`` (which
    re-arms a timer for every packet received). ``Transport.stream`` applies the connect timeout; the
    total does not apply to transfers (a large file may take longer than any API call should).
    """
    limits = transport.timeout
    return limits.read or limits.total or 60.0


class Stall:
    """Cancels the work inside ``with stall.scope:`` once :meth:`progress` was not called for ``seconds``.

    Moving the deadline on every chunk would re-arm a timer each time, so it moves at most every ``step``
    (a quarter of the limit, at most a second) and by ``seconds + step``: the limit is never cut short.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._step = min(1.0, seconds / 4)
        self._loop = asyncio.get_running_loop()  # anyio's deadlines on asyncio are this loop's time
        self.scope = anyio.CancelScope(deadline=self._loop.time() + seconds)
        self._next = 0.0

    def progress(self) -> None:
        now = self._loop.time()
        if now >= self._next:
            self.scope.deadline = now + self.seconds + self._step
            self._next = now + self._step

    @property
    def fired(self) -> bool:
        """True when the limit passed and the work was cancelled."""
        return self.scope.cancelled_caught


_slots: weakref.WeakKeyDictionary[Transport, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def transfer_slots(transport: Transport) -> asyncio.Semaphore:
    """The client-wide bound on concurrent file transfers (keyed by the client's transport).

    One per event loop: an asyncio semaphore belongs to the loop it first waited on, and a client may be
    used in one ``asyncio.run()`` after another.
    """
    loop = asyncio.get_running_loop()
    found = _slots.get(transport)
    if found is None or found[0] is not loop:
        found = _slots[transport] = (loop, asyncio.Semaphore(MAX_CONCURRENT_TRANSFERS))
    return found[1]


async def gather_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Results in input order; the first failure cancels the others, waits for their cleanup, is raised."""
    tasks = [asyncio.ensure_future(item) for item in awaitables]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        # On a failure, or when we are cancelled ourselves, stop the others and wait for their cleanup.
        unfinished = [task for task in tasks if not task.done()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
    # Reading every exception also marks it retrieved, so asyncio logs no "never retrieved" noise.
    errors = [task.exception() for task in tasks if not task.cancelled()]
    for error in errors:
        if error is not None:
            raise error
    return [task.result() for task in tasks]


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


class PartFile:
    """A new temporary ``.{final}.{random}.part`` file next to ``final``.

    Chunks are written as they arrive, on the event loop, as long as each write returns within ``slow``
    seconds: a 256 KiB write into the page cache takes well under a millisecond while the bytes are still in
    this core's cache. (Handing every chunk to a thread was measured at 1.3-2x the client CPU of the whole
    download on a 2-core VM, mostly the kernel's copy reading data written on the other core, and 0.6-0.9x
    raw aiohttp's throughput.) The first slower write (a throttled, remote or failing disk) moves the rest of
    the file to a worker thread of its own, so the loop waits on a slow disk once, for one chunk, not per
    chunk (``slow=0``: use the thread from the start).

    In that mode chunks are copied into one of ``buffers`` reusable buffers of ``batch`` bytes; a full buffer
    goes to the thread as one ``write`` and the others queue behind it while the loop keeps reading. Memory is
    fixed (``buffers * batch``), and each chunk is freed at once so the allocator reuses its memory.
    """

    def __init__(self, final: Path, *, batch: int = 2 << 20, buffers: int = 4, slow: float = 0.01) -> None:
        for _ in range(8):
            path = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
            try:  # O_EXCL: never share a temporary file; 0o666 lets the umask decide, as for any new file
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            except FileExistsError:
                continue
            self.path = path
            self._fd: int | None = fd
            self._batch, self._buffers, self._slow = batch, max(buffers, 2), slow
            self._unreported = 0
            self._buffer = bytearray()  # allocated when the writer thread takes over
            self._filled = 0
            self._spare: list[bytearray] = []
            self._pending: collections.deque[tuple[asyncio.Future[None], bytearray | None]] = (
                collections.deque()
            )
            self._writer: concurrent.futures.ThreadPoolExecutor | None = None
            if slow <= 0:
                self._thread()
            return
        raise FileExistsError(f"no free temporary name next to {final}")

    def _thread(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magic-hour-write")
        return self._writer

    def _start(self, work: Callable[[], None], buffer: bytearray | None = None) -> None:
        self._pending.append((asyncio.get_running_loop().run_in_executor(self._thread(), work), buffer))

    async def _settle(self, keep: int) -> None:
        # shield: a cancelled caller must not cancel a job the thread may be running (see discard).
        while len(self._pending) > keep or (self._pending and self._pending[0][0].done()):
            await asyncio.shield(self._pending[0][0])
            _, buffer = self._pending.popleft()
            if buffer is not None:
                self._spare.append(buffer)

    async def write(self, chunk: bytes) -> bool:
        """Take a chunk; True about every ``batch`` bytes (a point to report progress).

        Cancellation-safe: when cancelled, the chunk was not taken and nothing else changed.
        """
        if self._writer is None:
            started = time.perf_counter()
            _write_all(self._require_fd(), memoryview(chunk))
            if time.perf_counter() - started > self._slow:
                logger.debug(
                    "writing %s took over %g s: continuing in a worker thread", self.path, self._slow
                )
                self._thread()
        elif self._filled + len(chunk) <= len(self._buffer):
            self._buffer[self._filled : self._filled + len(chunk)] = chunk
            self._filled += len(chunk)
        else:
            await self._hand_over()
            if len(chunk) > self._batch:  # larger than a buffer: write it as it is
                await self._settle(self._buffers - 2)
                fd, data = self._require_fd(), memoryview(chunk)
                self._start(lambda: _write_all(fd, data))
            else:
                self._buffer[: len(chunk)] = chunk
                self._filled = len(chunk)
        self._unreported += len(chunk)
        if self._unreported < self._batch:
            return False
        self._unreported = 0
        return True

    async def _hand_over(self) -> None:
        """Queue the current buffer for the thread and continue in a spare one."""
        if self._filled:
            await self._settle(self._buffers - 2)  # room for one more job; the only await, before any change
            fd, data = self._require_fd(), memoryview(self._buffer)[: self._filled]
            self._start(lambda: _write_all(fd, data), self._buffer)
        elif len(self._buffer) == self._batch:
            return  # an empty buffer: keep filling it
        self._buffer = self._spare.pop() if self._spare else bytearray(self._batch)
        self._filled = 0

    async def flush(self) -> None:
        """Write everything taken so far and wait until it is in the file (raising the first error)."""
        if self._writer is not None:
            await self._hand_over()
            await self._settle(0)

    async def truncate(self) -> None:
        """Empty the file (the server ignored our range: the body starts again at byte 0).

        Runs in the writer thread (freeing a large file's blocks takes a while), which then keeps the file.
        """
        self._filled = 0
        fd = self._require_fd()

        def rewind() -> None:  # freeing a large file's blocks can take a while: not on the loop
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)

        self._start(rewind)
        await self._settle(0)

    async def close(self) -> None:
        """Flush and close the file, and let the writer thread end."""
        await self.flush()
        if self._writer is None:
            self._close()
            return
        self._start(self._close)
        await self._settle(0)
        self._writer.shutdown(wait=False)

    async def discard(self) -> None:
        """Close and delete the file once no thread writes to it any more; queued writes are dropped.

        The deletion runs in a thread (freeing a large file's pages takes a while) that is not cancelled
        with us: the file goes away even if the caller is cancelled again meanwhile.
        """
        for job, _ in self._pending:
            if job.done() and not job.cancelled():
                job.exception()  # seen: the error that matters is the one already propagating
            job.cancel()  # stops jobs not yet started; a running one finishes first
        self._pending.clear()
        writer, self._writer = self._writer, None
        if writer is None:
            removal = asyncio.get_running_loop().run_in_executor(None, self._remove)
        else:
            try:
                removal = asyncio.wrap_future(writer.submit(self._remove))
            except RuntimeError:  # the writer was already shut down (closed): nothing else touches the file
                removal = asyncio.get_running_loop().run_in_executor(None, self._remove)
            writer.shutdown(wait=False)
        await asyncio.wait([removal])

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError("the temporary file is closed")
        return self._fd

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
