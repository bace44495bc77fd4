"""The SQLite journal: the embedded default, for one process running a batch at a time.

The file is opened in WAL mode with ``synchronous=FULL``: every transition is on disk before the caller
goes on (a SIGKILL or a power cut loses nothing acknowledged), and concurrent transitions share one fsync
(see :mod:`._sqlite_commits`). ``Batch.status()`` and ``batch.jobs()`` may read from other processes while a
run is going on.

Only one process may *run* a batch: :meth:`SQLiteJournal.acquire_runner` takes an exclusive OS lock on
``<file>.lock`` (released by the kernel when the process dies, however it dies). That is what makes start-up
recovery immediate: any ``submitting`` row belongs to a process that is gone, so it becomes ``unknown``.
For several worker processes, use the PostgreSQL journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

from .._exceptions import ConfigurationError
from ._jobs import FINAL_STATES, BatchStatus, Job, JobState
from ._journal import Claim, Journal, Totals, job_from_row, needs_upload, status_from_counts
from ._sqlite_commits import GroupCommitter

__all__ = ["SQLiteJournal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    tool TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    project_id TEXT,
    kind TEXT,
    estimate INTEGER,
    reserved INTEGER NOT NULL DEFAULT 0,
    charged INTEGER NOT NULL DEFAULT 0,
    uncertain INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    paths TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    uploads INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
-- What claims look for: free rows by state, in order. Owned rows (hundreds, while renders run) stay out.
CREATE INDEX IF NOT EXISTS jobs_free ON jobs (state, seq) WHERE owner IS NULL;
CREATE INDEX IF NOT EXISTS jobs_by_project ON jobs (project_id) WHERE project_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    settled INTEGER NOT NULL,
    reserved INTEGER NOT NULL
);
INSERT OR IGNORE INTO budget (id, settled, reserved) VALUES (1, 0, 0);
"""

_ACTIVE = "('pending', 'submitting', 'submitted')"
_UNDOWNLOADED = "(state = 'complete' AND downloaded = 0 AND project_id IS NOT NULL)"


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def _one(connection: sqlite3.Connection, key: str) -> Job:
    cursor = connection.execute("SELECT * FROM jobs WHERE key = ?", (key,))
    values = cursor.fetchone()
    if values is None:
        raise KeyError(key)
    return job_from_row(_row(cursor, values))


def _totals(connection: sqlite3.Connection) -> Totals:
    settled, reserved = connection.execute("SELECT settled, reserved FROM budget WHERE id = 1").fetchone()
    return Totals(settled=int(settled), reserved=int(reserved))


def _adjust(connection: sqlite3.Connection, *, settled: int = 0, reserved: int = 0) -> Totals | None:
    """Move the budget counters; the totals after, or None when nothing moved."""
    if not (settled or reserved):
        return None
    [after] = connection.execute(
        "UPDATE budget SET settled = settled + ?, reserved = reserved + ? WHERE id = 1 "
        "RETURNING settled, reserved",
        (settled, reserved),
    ).fetchall()
    return Totals(settled=int(after[0]), reserved=int(after[1]))


def _returning(connection: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Job:
    """Run an ``UPDATE ... RETURNING *`` of one row and decode the row."""
    cursor = connection.execute(sql, params)
    values = cursor.fetchone()
    if values is None:
        raise KeyError(params[-1])
    job = job_from_row(_row(cursor, values))
    cursor.fetchall()  # finish the statement
    return job


class SQLiteJournal(Journal):
    """A journal in one SQLite file (created if missing).

    Args:
        path: the database file.
        synchronous: SQLite's ``synchronous`` setting; ``"FULL"`` (default) survives power loss,
            ``"NORMAL"`` survives a process crash only and skips the fsync per commit.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigurationError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._thread: GroupCommitter | None = None
        self._lock_file: IO[bytes] | None = None
        # False once a claim found no free submitted/complete row: only recover() and disown() make more.
        self._free_rows = True

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    @property
    def display_name(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            # From now on the event loop runs statements: a lock held by another process must never block
            # it (GroupCommitter waits for the lock off the loop).
            connection.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            connection.close()
            raise
        return connection

    async def open(self) -> None:
        if self._thread is not None:
            return
        if self.path.parent and not self.path.parent.is_dir():
            raise ConfigurationError(f"the journal's directory does not exist: {self.path.parent}")
        thread = GroupCommitter(self._connect, name=f"magic-hour-journal-{self.path.name}")
        try:
            await thread.start()
        except sqlite3.Error as error:
            raise ConfigurationError(f"cannot open the journal {self.path}: {error}") from None
        self._thread = thread

    async def close(self) -> None:
        await self.release_runner()
        thread, self._thread = self._thread, None
        if thread is not None:
            await thread.stop()

    def _db(self) -> GroupCommitter:
        if self._thread is None:
            raise ConfigurationError("the journal is not open; use 'async with Batch(...)'")
        return self._thread

    def _notify(self, totals: Totals) -> None:
        if self.observer is not None:
            self.observer(totals)

    # -- the runner lock ---------------------------------------------------------------------------------
    async def acquire_runner(self) -> None:
        if self._lock_file is not None:
            return
        try:
            handle = await asyncio.to_thread(_open_locked, Path(f"{self.path}.lock"))
        except OSError:
            raise ConfigurationError(
                f"another process is running the batch in {self.path}; one process runs an SQLite journal "
                "at a time (use a postgresql:// journal for several workers)"
            ) from None
        self._lock_file = handle

    async def release_runner(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            handle.close()  # closing drops the lock

    # -- reads -------------------------------------------------------------------------------------------
    async def add(self, *, key: str, tool: str, body: str, estimate: int | None) -> tuple[Job, str]:
        uploads = int(needs_upload(json.loads(body)))

        def run(connection: sqlite3.Connection) -> tuple[Job, str]:
            cursor = connection.execute(
                "INSERT INTO jobs (key, tool, body, state, estimate, uploads, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING *",
                (key, tool, body, estimate, uploads, time.time()),
            )
            inserted = cursor.fetchall()
            if inserted:  # a new job: the row is the one just written
                return job_from_row(_row(cursor, inserted[0])), body
            stored = connection.execute("SELECT body FROM jobs WHERE key = ?", (key,)).fetchone()[0]
            return _one(connection, key), str(stored)

        return await self._db().call(run)

    async def get(self, key: str) -> Job | None:
        def run(connection: sqlite3.Connection) -> Job | None:
            try:
                return _one(connection, key)
            except KeyError:
                return None

        return await self._db().call(run)

    async def find_project(self, project_id: str) -> Job | None:
        def run(connection: sqlite3.Connection) -> Job | None:
            cursor = connection.execute("SELECT * FROM jobs WHERE project_id = ? LIMIT 1", (project_id,))
            values = cursor.fetchone()
            return None if values is None else job_from_row(_row(cursor, values))

        return await self._db().call(run)

    async def page(self, *, state: str | None, after: int, limit: int) -> list[tuple[int, Job]]:
        def run(connection: sqlite3.Connection) -> list[tuple[int, Job]]:
            where = "seq > ?" + (" AND state = ?" if state is not None else "")
            params: tuple[Any, ...] = (after, state, limit) if state is not None else (after, limit)
            cursor = connection.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY seq LIMIT ?", params)
            return [(int(values[0]), job_from_row(_row(cursor, values))) for values in cursor.fetchall()]

        return await self._db().call(run)

    async def status(self) -> BatchStatus:
        def run(connection: sqlite3.Connection) -> BatchStatus:
            counts = dict(connection.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
            downloaded, reserved, charged, uncertain = connection.execute(
                "SELECT coalesce(sum(downloaded), 0), coalesce(sum(reserved), 0), coalesce(sum(charged), 0), "
                "coalesce(sum(uncertain), 0) FROM jobs"
            ).fetchone()
            return status_from_counts(
                counts, downloaded=downloaded, reserved=reserved, charged=charged, uncertain=uncertain
            )

        return await self._db().call(run)

    # -- transitions -------------------------------------------------------------------------------------
    async def recover(
        self, *, worker: str, lease: float, resubmit_unknown: bool, retry_over_budget: bool = False
    ) -> list[Job]:
        self._free_rows = True

        def run(connection: sqlite3.Connection) -> list[Job]:
            now = time.time()
            keys = [k for (k,) in connection.execute("SELECT key FROM jobs WHERE state = 'submitting'")]
            connection.execute(
                "UPDATE jobs SET state = 'unknown', owner = NULL, updated_at = ?, error = "
                "'the process stopped while sending the create request' WHERE state = 'submitting'",
                (now,),
            )
            # Claimed but never sent: free the reservation. Everything else: free the owner.
            released = connection.execute(
                "SELECT coalesce(sum(reserved), 0) FROM jobs WHERE state = 'pending' AND owner IS NOT NULL"
            ).fetchone()[0]
            connection.execute(
                "UPDATE jobs SET reserved = 0, owner = NULL WHERE state = 'pending' AND owner IS NOT NULL"
            )
            _adjust(connection, reserved=-int(released))
            connection.execute("UPDATE jobs SET owner = NULL WHERE owner IS NOT NULL")
            if retry_over_budget:
                connection.execute(
                    "UPDATE jobs SET state = 'pending', error = NULL, updated_at = ? "
                    "WHERE state = 'over_budget'",
                    (now,),
                )
            if resubmit_unknown:
                moved = connection.execute(
                    "SELECT coalesce(sum(reserved), 0) FROM jobs WHERE state = 'unknown'"
                ).fetchone()[0]
                connection.execute(
                    "UPDATE jobs SET state = 'pending', uncertain = uncertain + reserved, reserved = 0, "
                    "project_id = NULL, error = NULL, updated_at = ? WHERE state = 'unknown'",
                    (now,),
                )
                _adjust(connection, settled=int(moved), reserved=-int(moved))
            return [_one(connection, key) for key in keys]

        return await self._db().call(run)

    async def claim(
        self,
        *,
        worker: str,
        lease: float,
        max_credits: int | None,
        downloads: bool,
        skip: Collection[str],
    ) -> Claim:
        skipped = tuple(skip)
        not_skipped = f"key NOT IN ({', '.join('?' * len(skipped))})" if skipped else "1"
        # pending -> submitting at once unless files must be uploaded first (see needs_upload)
        taking = (
            "UPDATE jobs SET owner = ?, reserved = coalesce(estimate, 0), updated_at = ?, "
            "state = CASE WHEN uploads THEN 'pending' ELSE 'submitting' END, "
            "attempts = attempts + CASE WHEN uploads THEN 0 ELSE 1 END "
        )
        take_pending = taking + "WHERE key = ? RETURNING *"
        take_next = (
            f"{taking}WHERE seq = (SELECT seq FROM jobs WHERE state = 'pending' AND owner IS NULL "
            f"AND {not_skipped} ORDER BY seq LIMIT 1) RETURNING *"
        )

        def adopt(connection: sqlite3.Connection) -> Job | None:
            filters = ["state = 'submitted'"] + ([_UNDOWNLOADED] if downloads else [])
            for condition in filters:
                found = connection.execute(
                    f"SELECT key FROM jobs WHERE {condition} AND owner IS NULL AND {not_skipped} "
                    "ORDER BY seq LIMIT 1",
                    skipped,
                ).fetchone()
                if found is not None:
                    return _returning(
                        connection,
                        "UPDATE jobs SET owner = ?, updated_at = ? WHERE key = ? RETURNING *",
                        (worker, time.time(), found[0]),
                    )
            self._free_rows = False  # none left until recover() or disown() frees some
            return None

        def over(connection: sqlite3.Connection, job: Job, reason: str) -> Job:
            return _returning(
                connection,
                "UPDATE jobs SET state = 'over_budget', error = ?, updated_at = ? WHERE key = ? RETURNING *",
                (reason, time.time(), job.key),
            )

        def run(connection: sqlite3.Connection) -> tuple[Claim, Totals | None]:
            if self._free_rows:
                adopted = adopt(connection)
                if adopted is not None:
                    return Claim(job=adopted), None
            next_pending = (
                f"SELECT * FROM jobs WHERE state = 'pending' AND owner IS NULL AND {not_skipped} "
                "ORDER BY seq LIMIT 1"
            )
            if max_credits is None:  # no budget to weigh: take the next pending job in one statement
                cursor = connection.execute(take_next, (worker, time.time(), *skipped))
                rows = cursor.fetchall()
                if rows:
                    taken = job_from_row(_row(cursor, rows[0]))
                    return Claim(job=taken), _adjust(connection, reserved=taken.credits_reserved)
            overs: list[Job] = []
            blocked = False
            job: Job | None = None
            changed: Totals | None = None
            while True:
                cursor = connection.execute(next_pending, skipped)
                values = cursor.fetchone()
                if values is None:
                    break
                candidate = job_from_row(_row(cursor, values))
                cursor.fetchall()
                cost = candidate.estimate or 0
                if max_credits is not None:
                    totals = _totals(connection)
                    if candidate.estimate is None:
                        reason = (
                            f"no worst-case price is known for {candidate.tool!r}; pass estimate= to add() "
                            "or default_estimate= to Batch"
                        )
                        overs.append(over(connection, candidate, reason))
                        continue
                    if totals.settled + totals.reserved + cost > max_credits:
                        releasable = connection.execute(
                            f"SELECT coalesce(sum(reserved), 0) FROM jobs WHERE state IN {_ACTIVE}"
                        ).fetchone()[0]
                        if releasable:
                            blocked = True  # may fit once open reservations settle below their worst case
                            break
                        reason = (
                            f"its worst case of {cost} credits does not fit max_credits={max_credits} "
                            f"({totals.settled} settled, {totals.reserved} reserved)"
                        )
                        overs.append(over(connection, candidate, reason))
                        continue
                job = _returning(connection, take_pending, (worker, time.time(), candidate.key))
                changed = _adjust(connection, reserved=job.credits_reserved)
                break
            remaining = 0
            if job is None:
                condition = f"state IN {_ACTIVE}" + (f" OR {_UNDOWNLOADED}" if downloads else "")
                remaining = connection.execute(
                    f"SELECT count(*) FROM jobs WHERE ({condition}) AND {not_skipped}", skipped
                ).fetchone()[0]
            return Claim(job=job, over_budget=tuple(overs), blocked=blocked, remaining=remaining), changed

        claim, changed = await self._db().call(run)
        if changed is not None:
            self._notify(changed)
        return claim

    async def heartbeat(self, *, worker: str, lease: float) -> None:
        return None  # one runner at a time: rows never need to be taken from a live one

    async def to_submitting(self, key: str, *, worker: str) -> None:
        await self._db().call(
            lambda c: c.execute(
                "UPDATE jobs SET state = 'submitting', attempts = attempts + 1, updated_at = ? WHERE key = ?",
                (time.time(), key),
            )
        )

    async def to_submitted(
        self, key: str, *, worker: str, lease: float, project_id: str, kind: str, credits: int
    ) -> Job:
        def run(connection: sqlite3.Connection) -> tuple[Job, Totals | None]:
            reserved = connection.execute("SELECT reserved FROM jobs WHERE key = ?", (key,)).fetchone()[0]
            raise_by = max(0, credits - int(reserved))
            job = _returning(
                connection,
                "UPDATE jobs SET state = 'submitted', project_id = ?, kind = ?, reserved = reserved + ?, "
                "error = NULL, owner = ?, updated_at = ? WHERE key = ? RETURNING *",
                (project_id, kind, raise_by, worker, time.time(), key),
            )
            return job, _adjust(connection, reserved=raise_by)

        job, changed = await self._db().call(run)
        if changed is not None:
            self._notify(changed)
        return job

    async def finish(
        self, key: str, *, state: JobState, charged: int, error: str | None, keep: bool = False
    ) -> Job:
        def run(connection: sqlite3.Connection) -> tuple[Job, Totals | None]:
            reserved, current = connection.execute(
                "SELECT reserved, state FROM jobs WHERE key = ?", (key,)
            ).fetchone()
            if current in FINAL_STATES:  # settled already (by another worker): never count it twice
                return _one(connection, key), None
            job = _returning(
                connection,
                "UPDATE jobs SET state = ?, charged = ?, reserved = 0, error = ?, "
                "owner = CASE WHEN ? THEN owner END, updated_at = ? WHERE key = ? RETURNING *",
                (state, charged, error, keep, time.time(), key),
            )
            return job, _adjust(connection, settled=charged, reserved=-int(reserved))

        job, totals = await self._db().call(run)
        if totals is not None:
            self._notify(totals)
        return job

    async def to_unknown(self, key: str, *, error: str) -> Job:
        def run(connection: sqlite3.Connection) -> Job:
            connection.execute(
                "UPDATE jobs SET state = 'unknown', error = ?, owner = NULL, updated_at = ? WHERE key = ?",
                (error, time.time(), key),
            )
            return _one(connection, key)

        return await self._db().call(run)

    async def release(self, key: str) -> None:
        def run(connection: sqlite3.Connection) -> Totals:
            reserved = connection.execute("SELECT reserved FROM jobs WHERE key = ?", (key,)).fetchone()[0]
            connection.execute(
                "UPDATE jobs SET state = 'pending', reserved = 0, owner = NULL, updated_at = ? WHERE key = ?",
                (time.time(), key),
            )
            _adjust(connection, reserved=-int(reserved))
            return _totals(connection)

        self._notify(await self._db().call(run))

    async def set_downloaded(self, key: str, paths: list[str]) -> Job:
        def run(connection: sqlite3.Connection) -> Job:
            connection.execute(
                "UPDATE jobs SET downloaded = 1, paths = ?, owner = NULL, updated_at = ? WHERE key = ?",
                (json.dumps(paths), time.time(), key),
            )
            return _one(connection, key)

        return await self._db().call(run)

    async def abandon(self, *, worker: str) -> None:
        return None  # the next run's start-up recovery frees every row: one runner at a time

    async def disown(self, key: str) -> None:
        self._free_rows = True
        await self._db().call(lambda c: c.execute("UPDATE jobs SET owner = NULL WHERE key = ?", (key,)))


def _open_locked(path: Path) -> IO[bytes]:
    """The file, open and exclusively locked (non-blocking); OSError when another process holds the lock.

    The kernel drops the lock when the process dies, however it dies.
    """
    handle = path.open("a+b")
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        handle.close()
        raise
    return handle
