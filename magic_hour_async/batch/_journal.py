"""The journal interface every engine implements, and :func:`open_journal` that picks the engine.

A journal is the batch's memory: one row per job, changed only by the transitions below, each one atomic and
durable before the call returns. The runner (:mod:`._runner`) never holds state a crash could lose: it reads
a job from the journal, acts, and records the outcome.

Two engines:

- :mod:`._sqlite` for a file path: one process runs the batch at a time (an OS file lock says so), so at
  start-up every ``submitting`` row is from a dead process and becomes ``unknown`` at once.
- :mod:`._postgres` for a ``postgresql://`` URL: any number of worker processes share the batch. Rows carry an
  ``owner`` and a ``lease_until`` the owner keeps extending; a row whose lease ran out belongs to a dead
  worker: ``submitting`` becomes ``unknown``, ``submitted`` and undownloaded ``complete`` rows are adopted.

Budget accounting lives in the journal too, so that it is shared by every worker: a claim reserves the job's
worst case in the same transaction that checks ``settled + reserved + cost <= max_credits``.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from typing import Any, cast

import attrs

from .._exceptions import ConfigurationError
from .._resources.create import _is_local as is_local_file
from ._jobs import STATES, BatchStatus, Job, JobState

__all__ = [
    "Claim", "Journal", "Totals", "canonical_body", "job_from_row", "needs_upload", "open_journal",
]  # fmt: skip


@attrs.frozen(kw_only=True)
class Totals:
    """The budget counters after a transition: what the invariant is checked on."""

    settled: int
    reserved: int


#: Called after every committed transition that changed credits, with the journal's totals (for tests
#: and monitoring: ``settled + reserved`` never exceeds the run's ``max_credits``).
TotalsObserver = Callable[[Totals], None]


@attrs.frozen(kw_only=True)
class Claim:
    """The answer to :meth:`Journal.claim`.

    Attributes:
        job: the job this worker now owns (``None``: nothing to do right now).
        over_budget: jobs the claim found could never fit ``max_credits`` and marked ``over_budget``.
        blocked: a pending job waits for open reservations to settle before it fits the budget.
        remaining: active jobs (pending, submitting, submitted, undownloaded complete when downloading) not
            in ``skip``; 0 means the run is over.
    """

    job: Job | None
    over_budget: tuple[Job, ...] = ()
    blocked: bool = False
    remaining: int = 0


def canonical_body(body: Mapping[str, Any]) -> str:
    """The body as compact JSON with sorted keys: equal bodies give equal text."""
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"a job body must be plain JSON: {error}") from None


def needs_upload(body: Mapping[str, Any]) -> bool:
    """True when ``assets`` names local files, which are uploaded before the job is marked ``submitting``.

    Any other job goes from ``pending`` straight to ``submitting`` in the transaction that claims it: one
    durable write before its create request instead of two.
    """
    assets = body.get("assets")
    if not isinstance(assets, Mapping):
        return False
    for name, value in cast("Mapping[str, object]", assets).items():
        if name.endswith("_file_path") and is_local_file(value):
            return True
        items = cast("list[object]", value) if isinstance(value, list) else []
        if name.endswith("_file_paths") and any(is_local_file(item) for item in items):
            return True
    return False


def _utc(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(cast("float", value)), tz=timezone.utc)


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A :class:`Job` from a journal row (same column names in every engine)."""
    state = str(row["state"])
    if state not in STATES:
        raise ConfigurationError(f"journal row {row['key']!r} has an unknown state {state!r}")
    return Job(
        key=str(row["key"]),
        tool=str(row["tool"]),
        body=json.loads(row["body"]),
        state=state,
        project_id=row["project_id"],
        kind=row["kind"],
        estimate=row["estimate"],
        credits_reserved=int(row["reserved"]),
        credits_charged=int(row["charged"]),
        credits_uncertain=int(row["uncertain"]),
        downloaded=bool(row["downloaded"]),
        paths=tuple(json.loads(row["paths"])),
        error=row["error"],
        attempts=int(row["attempts"]),
        updated_at=_utc(row["updated_at"]),
    )


def status_from_counts(
    counts: Mapping[str, int], *, downloaded: int, reserved: int, charged: int, uncertain: int
) -> BatchStatus:
    """A :class:`BatchStatus` with every state present."""
    return BatchStatus(
        counts={state: int(counts.get(state, 0)) for state in STATES},
        downloaded=downloaded,
        credits_reserved=reserved,
        credits_charged=charged,
        credits_uncertain=uncertain,
    )


class Journal(abc.ABC):
    """Durable job rows and their transitions. Every method is one atomic transaction."""

    #: True when several processes may run the batch at once (rows are leased to their owner).
    leased: bool = False
    #: True when :meth:`listen` hears settlements made by other processes (PostgreSQL).
    notifies: bool = False
    #: See :data:`TotalsObserver`.
    observer: TotalsObserver | None = None

    @property
    @abc.abstractmethod
    def display_name(self) -> str:
        """Where the journal lives, safe to print (no password)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if needed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; harmless twice."""

    @abc.abstractmethod
    async def acquire_runner(self) -> None:
        """Become the batch's runner (SQLite: an exclusive OS lock; ConfigurationError when held)."""

    @abc.abstractmethod
    async def release_runner(self) -> None:
        """Stop being the runner."""

    @abc.abstractmethod
    async def add(self, *, key: str, tool: str, body: str, estimate: int | None) -> tuple[Job, str]:
        """Insert a pending job unless the key exists; the job and its stored canonical body."""

    @abc.abstractmethod
    async def get(self, key: str) -> Job | None:
        """One job by key."""

    @abc.abstractmethod
    async def find_project(self, project_id: str) -> Job | None:
        """The job bound to a project id (webhook events name projects, not jobs)."""

    @abc.abstractmethod
    async def page(self, *, state: str | None, after: int, limit: int) -> list[tuple[int, Job]]:
        """Jobs in insertion order after sequence number ``after``, with their sequence numbers."""

    @abc.abstractmethod
    async def status(self) -> BatchStatus:
        """Counts and credit sums over every row."""

    @abc.abstractmethod
    async def recover(
        self, *, worker: str, lease: float, resubmit_unknown: bool, retry_over_budget: bool = False
    ) -> list[Job]:
        """Mark rows of dead runners: ``submitting`` -> ``unknown``; free their other rows.

        With ``resubmit_unknown``, ``unknown`` rows go back to ``pending`` (their reservation becomes
        uncertain credits). With ``retry_over_budget``, ``over_budget`` rows (never sent) go back to
        ``pending``, to be weighed against this run's ``max_credits``. Returns the rows that became
        ``unknown`` in this call.
        """

    @abc.abstractmethod
    async def claim(
        self,
        *,
        worker: str,
        lease: float,
        max_credits: int | None,
        downloads: bool,
        skip: Collection[str],
    ) -> Claim:
        """Take the next job to work on: an undownloaded ``complete`` (when ``downloads``), then a
        ``submitted`` one, then a ``pending`` one whose worst case is reserved against ``max_credits``
        (and which is ``submitting`` at once unless it has files to upload, see :func:`needs_upload`)."""

    @abc.abstractmethod
    async def heartbeat(self, *, worker: str, lease: float) -> None:
        """Extend the lease of every row ``worker`` owns."""

    @abc.abstractmethod
    async def to_submitting(self, key: str, *, worker: str) -> None:
        """Record that the create POST is about to be sent (made durable before it is)."""

    @abc.abstractmethod
    async def to_submitted(
        self, key: str, *, worker: str, lease: float, project_id: str, kind: str, credits: int
    ) -> Job:
        """Bind the job to its project (owned by ``worker``); ``credits`` (the create answer) raises the
        reservation if higher. Also from ``unknown``: a late answer still binds the render."""

    @abc.abstractmethod
    async def finish(
        self, key: str, *, state: JobState, charged: int, error: str | None, keep: bool = False
    ) -> Job:
        """A final outcome: settle the reservation to ``charged``; ``keep`` the row owned (to download it).

        A row already final is returned unchanged (two workers that waited on one render settle it once).
        """

    @abc.abstractmethod
    async def to_unknown(self, key: str, *, error: str) -> Job:
        """The POST may or may not have created a render: keep the reservation, never resend on its own."""

    @abc.abstractmethod
    async def release(self, key: str) -> None:
        """Back to ``pending`` (nothing was sent): release the reservation and the ownership."""

    @abc.abstractmethod
    async def set_downloaded(self, key: str, paths: list[str]) -> Job:
        """The outputs are on disk at ``paths``."""

    @abc.abstractmethod
    async def abandon(self, *, worker: str) -> None:
        """The worker stops (its run ended or was interrupted): let others take its rows now."""

    @abc.abstractmethod
    async def disown(self, key: str) -> None:
        """Give the row up without changing its state (a later run, or another worker, picks it up)."""

    async def listen(  # noqa: B027 - a default for the engines that have nothing to hear
        self,
        *,
        waiting: Callable[[], Collection[str]],
        on_settled: Callable[[str], None],
        on_connected: Callable[[bool], None],
    ) -> None:
        """Until cancelled, call ``on_settled(project_id)`` when any process settles a job with a project.

        ``waiting`` names the projects of interest, for a catch-up whenever listening (re)starts;
        ``on_connected`` tells when listening starts and stops. Only journals that set :attr:`notifies`
        do this (see :mod:`._listen`); the others return at once: in one process, nothing settles a job
        without the process knowing.
        """


def open_journal(target: str | os.PathLike[str] | Journal) -> Journal:
    """The journal for a path (SQLite), a ``postgresql://`` URL (PostgreSQL), or a :class:`Journal`."""
    if isinstance(target, Journal):
        return target
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresJournal

        return PostgresJournal(text)
    if "://" in text:
        raise ConfigurationError(
            f"unsupported journal URL scheme in {text.partition('://')[0]!r}: use a file path or postgresql://"
        )
    from ._sqlite import SQLiteJournal

    return SQLiteJournal(text)
