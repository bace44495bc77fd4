"""``Batch.run()``: workers that move jobs from the journal through create, wait and download.

Each of ``concurrency`` worker tasks loops: claim one job from the journal, carry it as far as it goes, record
every step, claim the next. What a job needs depends on its state when claimed:

- ``pending``: upload local ``assets`` files, record ``submitting`` (durable), POST the create request, record
  the project id (``submitted``). A POST that fails after it may have reached the server (connection lost,
  timeout, 5xx, an unreadable answer, cancellation) makes the job ``unknown``; a 4xx means the API refused and
  the job is an ``error`` that cost nothing; a 429 the transport gave up on puts it back to ``pending``.
- ``submitted``: wait through the client's scheduler (one poll stream per project however many workers), then
  record ``complete``/``error``/``canceled`` with the credits charged, which settles the reservation.
- ``complete`` and not downloaded (with a download directory): download (atomic: ``.part`` then rename),
  record the paths.

A job resumed after a crash re-enters at its recorded state, so no step that already happened is repeated and
no create is ever sent twice. A wait or download that fails (the API unreachable for ``give_up_after``) leaves
the job where it is for a later run; the run goes on with the others.

Waits end sooner than their polls when the journal announces a settlement (a webhook receiver anywhere) or
a receiver in this process hands the event over; ``webhooks=True`` slows the polling down meanwhile. See
:mod:`._settlements`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    MagicHourError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from .._models import Project
from .._resources.create import AsyncCreateResource, to_wire
from .._resources.projects import AsyncProjects
from ._jobs import Job, JobState
from ._journal import Journal
from ._settlements import Settlements

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["Runner", "new_worker_id"]

logger = logging.getLogger("magic_hour_async.batch")

_TERMINAL: dict[str, JobState] = {"complete": "complete", "error": "error", "canceled": "canceled"}


def new_worker_id() -> str:
    """A name for this worker, unique across machines and restarts: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def resolve_tool(client: AsyncClient, tool: str) -> AsyncCreateResource[Any]:
    """``client.v1.<tool with underscores>``, checked to be a create endpoint."""
    found: object = getattr(client.v1, tool.replace("-", "_"), None)
    if not _is_create_resource(found):
        raise ConfigurationError(
            f"unknown tool {tool!r}: use a create endpoint's path name, e.g. 'face-swap'"
        )
    return found


def _is_create_resource(value: object) -> TypeGuard[AsyncCreateResource[Any]]:
    return isinstance(value, AsyncCreateResource)


def remove_stale_parts(directory: Path, project_id: str) -> None:
    """Delete temporary ``.{project_id}-*.part`` files a killed process left behind.

    The downloader removes its own temporary file on every failure it sees, but a process killed mid-write
    cannot. Output names start with the project id, and only the job's owner downloads a project, so any
    such file here belongs to a dead attempt.
    """
    if directory.is_dir():
        for stale in directory.glob(f".{glob.escape(project_id)}-*.part"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".replace("\n", " ")


class BalanceCeiling:
    """The account's credit balance as a second ceiling, when the client has ``v1.account``.

    The API charges a render when it is created, so a balance read is exact for every create that has
    been answered; what this process sent since the read (``spent``) and what it allowed but has not sent
    yet (``allowed``) are subtracted locally. A stale balance therefore only errs on the safe side, and a
    job that does not fit triggers one fresh read (refunds may have arrived) before it is refused.
    """

    def __init__(
        self, client: AsyncClient, *, refresh: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        account: object = getattr(client.v1, "account", None)
        self._get: Callable[[], Awaitable[object]] | None = getattr(account, "get", None)
        self._refresh = refresh
        self._clock = clock
        self._balance: int | None = None
        self._read_at = -float("inf")
        self._spent = 0
        self._allowed = 0
        self._lock = asyncio.Lock()

    async def _read(self) -> None:
        assert self._get is not None
        spent_before = self._spent
        credits = getattr(await self._get(), "credits", None)
        self._balance = credits if isinstance(credits, int) and not isinstance(credits, bool) else None
        self._read_at = self._clock()
        self._spent -= spent_before  # those are in the balance now; later ones are not

    def _fits(self, cost: int) -> bool:
        return self._balance is None or cost <= self._balance - self._spent - self._allowed

    async def allows(self, cost: int) -> bool:
        """Hold ``cost`` against the balance; False when the account cannot pay for it."""
        if self._get is None or cost <= 0:
            return True
        async with self._lock:
            if self._clock() - self._read_at > self._refresh:
                await self._read()
            if not self._fits(cost):
                await self._read()
            if not self._fits(cost):
                return False
            self._allowed += cost
            return True

    def sent(self, cost: int) -> None:
        """The create POST for a job allowed with ``cost`` is over (whatever its outcome)."""
        if self._get is not None and cost > 0:
            self._allowed -= cost
            self._spent += cost


class Runner:
    """One ``run()``: its workers, its results, its lease keeper."""

    def __init__(
        self,
        *,
        client: AsyncClient,
        journal: Journal,
        concurrency: int,
        max_credits: int | None,
        download_directory: Path | None,
        resubmit_unknown: bool,
        lease: float,
        webhooks: bool = False,
        worker: str | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.concurrency = concurrency
        self.max_credits = max_credits
        self.directory = download_directory
        self.resubmit_unknown = resubmit_unknown
        self.lease = lease
        self.worker = worker or new_worker_id()
        self.balance = BalanceCeiling(client)
        self.settlements = Settlements(client, journal, webhooks=webhooks)
        self._skip: set[str] = set()
        self._results: asyncio.Queue[Job | BaseException | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._writes: set[asyncio.Task[Job]] = set()

    def _touch(self) -> None:
        """Wake idle workers: a reservation was settled or a job was given up."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _emit(self, job: Job) -> None:
        self._results.put_nowait(job)

    # -- the run -------------------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[Job]:
        await self.journal.acquire_runner()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.journal.recover(
                worker=self.worker,
                lease=self.lease,
                resubmit_unknown=self.resubmit_unknown,
                retry_over_budget=True,  # never sent: this run's max_credits decides again
            )
            # Unknown jobs are reported by every run until someone decides (resubmit_unknown=True).
            after = 0
            while page := await self.journal.page(state="unknown", after=after, limit=500):
                for _, job in page:
                    yield job
                after = page[-1][0]
            self.settlements.start()
            if self.journal.notifies:
                tasks.append(asyncio.create_task(self._listen()))
            workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
            tasks.extend(workers)
            if self.journal.leased:
                tasks.append(asyncio.create_task(self._keep_leases()))
            done = asyncio.create_task(self._finish_when_done(workers))
            tasks.append(done)
            while True:
                item = await self._results.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._writes:  # journal writes in flight land before the journal can be closed
                await asyncio.wait(set(self._writes))
            self.settlements.stop()
            try:
                await self.journal.abandon(worker=self.worker)
            finally:
                await self.journal.release_runner()

    async def _finish_when_done(self, workers: list[asyncio.Task[None]]) -> None:
        results = await asyncio.gather(*workers, return_exceptions=True)
        if self._writes:  # the last finishes still on their way to the journal
            await asyncio.wait(set(self._writes))
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                self._results.put_nowait(result)
                return
        self._results.put_nowait(None)

    def _write_later(self, write: Awaitable[Job], then: Callable[[Job], None] | None) -> asyncio.Task[Job]:
        """Start a journal write the worker need not wait for; ``then`` gets its job. A failure ends the run.

        Such writes are never cancelled: the run waits for them before it ends, however it ends.
        """
        task = asyncio.ensure_future(write)
        self._writes.add(task)

        def done(finished: asyncio.Task[Job]) -> None:
            self._writes.discard(finished)
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                self._results.put_nowait(error)
            elif then is not None:
                then(finished.result())

        task.add_done_callback(done)
        return task

    async def _keep_leases(self) -> None:
        """Extend this worker's leases, and take over the rows of workers whose leases ran out."""
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.journal.heartbeat(worker=self.worker, lease=self.lease)
            for job in await self.journal.recover(
                worker=self.worker, lease=self.lease, resubmit_unknown=False
            ):
                self._emit(job)
            self._touch()

    async def _listen(self) -> None:
        """Hear the journal's settlements for the whole run (the journal reconnects on its own)."""
        settlements = self.settlements
        await self.journal.listen(
            waiting=lambda: list(settlements.waiting),
            on_settled=settlements.settled,
            on_connected=settlements.hearing,
        )

    async def _worker(self) -> None:
        idle = self.lease / 2 if self.journal.leased else 1.0
        while True:
            changed = self._changed
            claim = await self.journal.claim(
                worker=self.worker,
                lease=self.lease,
                max_credits=self.max_credits,
                downloads=self.directory is not None,
                skip=self._skip,
            )
            for job in claim.over_budget:
                self._emit(job)
            if claim.job is None:
                if claim.remaining == 0:
                    return
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), idle)
                continue
            await self._process(claim.job)

    # -- one job -------------------------------------------------------------------------------------------
    async def _process(self, job: Job) -> None:
        project: Project | None = None
        if job.state in ("pending", "submitting"):
            submitted = await self._submit(job)
            if submitted is None:
                return
            bound, kind, project_id = submitted
            # The project id is being journaled while the render runs: the wait does not wait for the disk.
            project = await self._wait(job.key, kind, project_id, just_created=True)
            job = await asyncio.shield(bound)
            if project is None:
                return
        elif job.state == "submitted":
            assert job.kind is not None and job.project_id is not None  # submitted rows always have them
            project = await self._wait(job.key, job.kind, job.project_id)
            if project is None:
                return
        if project is not None:
            settle = self.journal.finish(
                job.key,
                state=_TERMINAL[str(project.status)],
                charged=project.credits_charged,
                error=f"{project.error.code}: {project.error.message}" if project.error else None,
                keep=project.status == "complete" and self.directory is not None,  # its download is next
            )
            if project.status != "complete" or self.directory is None:
                # Nothing more to do for this job: the worker claims its next one while this is written
                # (in the same commit, for SQLite). A lost write only means waiting again after a crash.
                self._write_later(settle, self._settled)
                return
            job = await settle
            self._touch()
        if job.state == "complete" and self.directory is not None and not job.downloaded:
            job = await self._download(job, project)
        self._emit(job)

    def _settled(self, job: Job) -> None:
        self._touch()
        self._emit(job)

    async def _give_up(self, key: str, error: BaseException, what: str) -> None:
        logger.warning("batch job %r: %s failed, left for a later run: %s", key, what, _one_line(error))
        self._skip.add(key)
        await self.journal.disown(key)
        self._touch()

    async def _submit(self, job: Job) -> tuple[asyncio.Task[Job], str, str] | None:
        """Send the job's create request; the journal write binding its project id, its kind and id.

        The job is ``submitting`` already when it has no local files to upload (the claim moved it there),
        else ``pending`` until its files are uploaded.
        """
        sent = False
        try:
            resource = resolve_tool(self.client, job.tool)
            if not await self.balance.allows(job.credits_reserved):
                await self._refused(
                    job, "the account's credit balance cannot cover its worst case", "over_budget"
                )
                return None
            try:
                wire = await self._prepare(job, resource)
                if wire is None:
                    return None
                sent = True
                created = await resource._create(wire)
            finally:
                self.balance.sent(job.credits_reserved)
        except ConfigurationError as error:
            await self._refused(job, str(error))
            return None
        except RateLimitError as error:
            await self.journal.release(job.key)
            self._touch()
            await asyncio.sleep(error.retry_after or 1.0)
            return None
        except (APIConnectionError, ServerError, ResponseDecodeError) as error:
            reason = f"the create request failed after it was sent: {_one_line(error)}"
            self._emit(await self.journal.to_unknown(job.key, error=reason))
            return None
        except APIStatusError as error:
            await self._refused(job, f"the API refused the job: {_one_line(error)}")
            return None
        except BaseException as error:
            if not sent:  # cancelled before the request left: nothing can have been created
                await self.journal.release(job.key)  # journal calls run in order: after any queued write
                raise
            # Cancelled mid-POST, or anything unforeseen: the render may exist.
            reason = f"interrupted while sending: {_one_line(error)}"
            self._emit(await self.journal.to_unknown(job.key, error=reason))
            raise
        bound = self._write_later(
            self.journal.to_submitted(
                job.key,
                worker=self.worker,
                lease=self.lease,
                project_id=created.id,
                kind=resource._kind,
                credits=created.credits_charged,
            ),
            None,
        )
        return bound, resource._kind, created.id

    async def _prepare(self, job: Job, resource: AsyncCreateResource[Any]) -> dict[str, Any] | None:
        """The wire body, after uploading local files (then recording ``submitting``); None if refused."""
        wire: dict[str, Any] = to_wire(dict(job.body))
        if job.state == "submitting":
            return wire
        try:
            wire = await resource._upload_assets(wire)
        except (MagicHourError, OSError) as error:
            await self._refused(job, f"uploading its files failed: {_one_line(error)}")
            return None
        await self.journal.to_submitting(job.key, worker=self.worker)
        return wire

    async def _refused(self, job: Job, reason: str, state: JobState = "error") -> None:
        self._emit(await self.journal.finish(job.key, state=state, charged=0, error=reason))
        self._touch()

    def _projects(self, kind: str | None) -> AsyncProjects[Any]:
        v1 = self.client.v1
        by_kind: dict[str | None, AsyncProjects[Any]] = {
            "video": v1.video_projects, "image": v1.image_projects, "audio": v1.audio_projects,
        }  # fmt: skip
        return by_kind[kind]

    async def _wait(
        self, key: str, kind: str, project_id: str, *, just_created: bool = False
    ) -> Project | None:
        scheduler = self.client._scheduler
        # With webhooks, a render this worker has just created is not polled at once (it could only be
        # queued): its webhook usually ends the wait before the first safety poll, at one GET per job.
        fresh = just_created and self.settlements.webhooks
        try:
            with self.settlements.wait_on(kind, project_id):
                project: Project = await scheduler.wait(kind, project_id, just_created=fresh)
        except MagicHourError as error:
            await self._give_up(key, error, "waiting")
            return None
        return project

    async def _download(self, job: Job, project: Project | None) -> Job:
        assert self.directory is not None and job.project_id is not None
        try:
            fresh: Project = project or await self._projects(job.kind).get(id=job.project_id)
            await asyncio.to_thread(remove_stale_parts, self.directory, job.project_id)
            paths = await self.client.download_outputs(fresh, self.directory)
        except (MagicHourError, OSError) as error:
            await self._give_up(job.key, error, "downloading")
            return job
        return await self.journal.set_downloaded(job.key, [str(path) for path in paths])
