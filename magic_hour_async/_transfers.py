"""Pieces shared by downloads and uploads: progress reports, the per-client bound, running files concurrently,
and the temporary file a download streams into.

Disk I/O runs in worker threads so the event loop never waits on the disk. A worker thread cannot be
interrupted, so :class:`PartFile` awaits its pending write through ``asyncio.shield``: a cancelled caller
leaves the thread running, and :meth:`PartFile.discard` deletes the file once the thread has let go of it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import attrs

from ._transport import Transport

__all__ = [
    "MAX_CONCURRENT_TRANSFERS",
    "PartFile",
    "ProgressCallback",
    "TransferProgress",
    "gather_all",
    "transfer_slots",
]

T = TypeVar("T")

#: Files transferred at once per client, downloads and uploads together.
MAX_CONCURRENT_TRANSFERS = 4
_HAS_WRITEV = hasattr(os, "writev")  # not on Windows
_IOV_MAX = 1024  # Linux's and macOS's limit on buffers per writev call


@attrs.frozen(kw_only=True)
class TransferProgress:
    """Byte-level progress of one file, passed to the ``on_progress`` callback of downloads and uploads.

    Attributes:
        name: the saved file's name (downloads) or the source's file name (uploads).
        index: the file's position: ``project.downloads[index]``, or its position in the upload call.
        bytes_done: bytes transferred so far (back to 0 when a server forces a download to restart).
        bytes_total: the file's size, or None when it is not known.
    """

    name: str
    index: int
    bytes_done: int
    bytes_total: int | None


ProgressCallback = Callable[[TransferProgress], None]

_slots: weakref.WeakKeyDictionary[Transport, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def transfer_slots(transport: Transport) -> asyncio.Semaphore:
    """The client-wide bound on concurrent file transfers (keyed by the client's transport)."""
    slots = _slots.get(transport)
    if slots is None:
        slots = _slots[transport] = asyncio.Semaphore(MAX_CONCURRENT_TRANSFERS)
    return slots


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


def write_all(fd: int, chunks: list[bytes]) -> None:
    """Write every chunk, in as few system calls as possible: each one releases and retakes the GIL."""
    if not _HAS_WRITEV:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        return
    pending: list[bytes | memoryview] = list(chunks)
    first = 0
    while first < len(pending):
        written = os.writev(fd, pending[first : first + _IOV_MAX])
        while written:  # drop what was written; a partial write leaves the rest of a chunk in place
            size = len(pending[first])
            if written < size:
                pending[first] = memoryview(pending[first])[written:]
                break
            written -= size
            first += 1
        while first < len(pending) and not pending[first]:
            first += 1


class PartFile:
    """A new temporary ``.{final}.{random}.part`` file next to ``final``, written by its own worker thread.

    The thread runs jobs in submission order, so up to ``depth`` batches can be queued while the event loop
    keeps reading from the socket: a writer that is briefly descheduled does not stall the download.
    """

    def __init__(self, final: Path, *, depth: int = 3) -> None:
        for _ in range(8):
            path = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
            try:  # O_EXCL: never share a temporary file; 0o666 lets the umask decide, as for any new file
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            except FileExistsError:
                continue
            self.path = path
            self._fd: int | None = fd
            self._depth = depth
            self._pending: collections.deque[asyncio.Future[None]] = collections.deque()
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magic-hour-write")
            return
        raise FileExistsError(f"no free temporary name next to {final}")

    def _start(self, work: Callable[[], None]) -> None:
        self._pending.append(asyncio.get_running_loop().run_in_executor(self._writer, work))

    async def _settle(self, keep: int) -> None:
        # shield: a cancelled caller must not cancel a job the thread may be running (see discard).
        while len(self._pending) > keep or (self._pending and self._pending[0].done()):
            await asyncio.shield(self._pending[0])
            self._pending.popleft()

    async def drain(self) -> None:
        """Wait until every queued write has reached the file (raising the first error, if any)."""
        await self._settle(0)

    async def write(self, chunks: list[bytes]) -> None:
        """Queue a batch for the writer thread; waits only while ``depth`` batches are already queued."""
        await self._settle(self._depth - 1)
        fd = self._fd
        assert fd is not None
        self._start(lambda: write_all(fd, chunks))

    async def truncate(self) -> None:
        """Empty the file (the server ignored our range: the body starts again at byte 0)."""
        fd = self._fd
        assert fd is not None

        def rewind() -> None:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)

        self._start(rewind)
        await self.drain()

    async def close(self) -> None:
        self._start(self._close)
        await self.drain()
        self._writer.shutdown(wait=False)

    async def discard(self) -> None:
        """Close and delete the file once the writer thread is done with it; queued writes are dropped."""
        for job in self._pending:
            if job.done() and not job.cancelled():
                job.exception()  # seen: the error that matters is the one already propagating
            job.cancel()  # stops jobs not yet started; a running one finishes first
        self._pending.clear()
        try:
            removal = asyncio.wrap_future(self._writer.submit(self._remove))
        except RuntimeError:  # the writer was already shut down (closed): nothing else touches the file
            self._remove()
            return
        self._writer.shutdown(wait=False)
        await asyncio.wait([removal])  # not cancelled with us: the file goes away even if we are

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
