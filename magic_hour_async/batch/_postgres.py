"""The PostgreSQL journal: one batch shared by any number of worker processes on any number of machines.

Needs ``asyncpg`` (``pip install 'magic-hour-async[postgres]'``). One database (or schema, through the URL's
``options=-csearch_path=...``) holds one batch, in the tables ``magic_hour_jobs`` and ``magic_hour_budget``.

How workers share it without ever sending a job twice:

- a worker claims a row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and stamps it with its id (``owner``) and a
  lease (``lease_until``, database time, so clocks of different machines do not matter); two workers can
  never claim the same row, and a claimed row is invisible to the others while the lease runs;
- a live worker extends the leases of all its rows every ``lease / 3`` seconds (``heartbeat``);
- when a worker dies its leases run out: its ``submitting`` rows become ``unknown`` (it may have sent the
  POST), its claimed ``pending`` rows are freed, and its ``submitted`` and undownloaded ``complete`` rows
  are adopted by whichever worker claims them next, which waits on (or downloads) the render already paid;
- budget reservations take the row lock of ``magic_hour_budget`` in the claim's transaction, so
  ``settled + reserved <= max_credits`` holds across every worker;
- a transaction that settles a job with a project announces it (``pg_notify``), so a worker in another
  process waiting on that render hears it at once (:mod:`._listen`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError
from ._jobs import FINAL_STATES, BatchStatus, Job, JobState
from ._journal import Claim, Journal, Totals, job_from_row, needs_upload, status_from_counts
from ._listen import channel_name, listen_forever

__all__ = ["PostgresJournal"]

_SCHEMA_LOCK = 0x6D686A62  # pg_advisory_xact_lock key: workers starting together create the schema once
_SCHEMA = """
CREATE TABLE IF NOT EXISTS magic_hour_jobs (
    seq BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    tool TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    project_id TEXT,
    kind TEXT,
    estimate BIGINT,
    reserved BIGINT NOT NULL DEFAULT 0,
    charged BIGINT NOT NULL DEFAULT 0,
    uncertain BIGINT NOT NULL DEFAULT 0,
    downloaded BOOLEAN NOT NULL DEFAULT false,
    paths TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS magic_hour_jobs_by_state ON magic_hour_jobs (state, seq);
CREATE INDEX IF NOT EXISTS magic_hour_jobs_by_project ON magic_hour_jobs (project_id);
CREATE TABLE IF NOT EXISTS magic_hour_budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    settled BIGINT NOT NULL,
    reserved BIGINT NOT NULL
);
INSERT INTO magic_hour_budget (id, settled, reserved) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;
"""

_FREE = "(owner IS NULL OR lease_until < now())"
_LEASE = "now() + make_interval(secs => $2)"
_ACTIVE = "('pending', 'submitting', 'submitted')"
_UNDOWNLOADED = "(state = 'complete' AND NOT downloaded AND project_id IS NOT NULL)"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresJournal(Journal):
    """A journal in a PostgreSQL database, shared by any number of workers.

    Args:
        url: ``postgresql://user:password@host:port/database``.
        pool_size: connections this process keeps (each transition borrows one briefly); a running
            ``Batch.run()`` also holds one more, its own, to ``LISTEN`` for settlements.
    """

    leased = True
    notifies = True

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: Any = None
        self._channel = ""  # named at open(), after the journal's database and schema

    def __repr__(self) -> str:
        return f"PostgresJournal({self.display_name!r})"

    @property
    def display_name(self) -> str:
        return _redact(self._url)

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            asyncpg: Any = importlib.import_module("asyncpg")
        except ImportError:
            raise ConfigurationError(
                "a postgresql:// journal needs asyncpg: pip install 'magic-hour-async[postgres]'"
            ) from None
        try:
            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        except (OSError, asyncpg.PostgresError) as error:
            raise ConfigurationError(
                f"cannot connect to the journal {self.display_name}: {type(error).__name__}: {error}"
            ) from None
        try:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await connection.execute(_SCHEMA)
                where = await connection.fetchrow("SELECT current_database() AS db, current_schema() AS sc")
        except BaseException:
            await pool.close()
            raise
        self._channel = channel_name(str(where["db"]), str(where["sc"]))
        self._pool = pool

    @property
    def channel(self) -> str:
        """The ``LISTEN`` channel on which settled jobs' project ids are announced (set by :meth:`open`)."""
        return self._channel

    async def listen(
        self,
        *,
        waiting: Callable[[], Collection[str]],
        on_settled: Callable[[str], None],
        on_connected: Callable[[bool], None],
    ) -> None:
        self._db()  # open, so the channel is known
        await listen_forever(
            url=self._url,
            channel=self._channel,
            waiting=waiting,
            on_settled=on_settled,
            on_connected=on_connected,
            display_name=self.display_name,
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _db(self) -> Any:
        if self._pool is None:
            raise ConfigurationError("the journal is not open; use 'async with Batch(...)'")
        return self._pool

    def _notify(self, totals: Totals | None) -> None:
        if totals is not None and self.observer is not None:
            self.observer(totals)

    async def acquire_runner(self) -> None:
        return None  # any number of runners: leases keep them apart

    async def release_runner(self) -> None:
        return None

    # -- reads -------------------------------------------------------------------------------------------
    async def add(self, *, key: str, tool: str, body: str, estimate: int | None) -> tuple[Job, str]:
        async with self._db().acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO magic_hour_jobs (key, tool, body, state, estimate) "
                "VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (key) DO NOTHING",
                key, tool, body, estimate,
            )  # fmt: skip
            row = await connection.fetchrow("SELECT * FROM magic_hour_jobs WHERE key = $1", key)
        return job_from_row(row), str(row["body"])

    async def get(self, key: str) -> Job | None:
        row = await self._db().fetchrow("SELECT * FROM magic_hour_jobs WHERE key = $1", key)
        return None if row is None else job_from_row(row)

    async def find_project(self, project_id: str) -> Job | None:
        row = await self._db().fetchrow(
            "SELECT * FROM magic_hour_jobs WHERE project_id = $1 LIMIT 1", project_id
        )
        return None if row is None else job_from_row(row)

    async def page(self, *, state: str | None, after: int, limit: int) -> list[tuple[int, Job]]:
        rows = await self._db().fetch(
            "SELECT * FROM magic_hour_jobs WHERE seq > $1 AND ($2::text IS NULL OR state = $2) "
            "ORDER BY seq LIMIT $3",
            after, state, limit,
        )  # fmt: skip
        return [(int(row["seq"]), job_from_row(row)) for row in rows]

    async def status(self) -> BatchStatus:
        async with self._db().acquire() as connection, connection.transaction(isolation="repeatable_read"):
            counts = {
                row["state"]: int(row["n"])
                for row in await connection.fetch(
                    "SELECT state, count(*) AS n FROM magic_hour_jobs GROUP BY state"
                )
            }
            sums = await connection.fetchrow(
                "SELECT count(*) FILTER (WHERE downloaded) AS downloaded, "
                "coalesce(sum(reserved), 0) AS reserved, coalesce(sum(charged), 0) AS charged, "
                "coalesce(sum(uncertain), 0) AS uncertain "
                "FROM magic_hour_jobs"
            )
        return status_from_counts(
            counts,
            downloaded=int(sums["downloaded"]),
            reserved=int(sums["reserved"]),
            charged=int(sums["charged"]),
            uncertain=int(sums["uncertain"]),
        )

    # -- transitions -------------------------------------------------------------------------------------
    @staticmethod
    async def _adjust(connection: Any, *, settled: int = 0, reserved: int = 0) -> Totals | None:
        if not (settled or reserved):
            return None
        row = await connection.fetchrow(
            "UPDATE magic_hour_budget SET settled = settled + $1, reserved = reserved + $2 WHERE id = 1 "
            "RETURNING settled, reserved",
            settled, reserved,
        )  # fmt: skip
        return Totals(settled=int(row["settled"]), reserved=int(row["reserved"]))

    async def recover(
        self, *, worker: str, lease: float, resubmit_unknown: bool, retry_over_budget: bool = False
    ) -> list[Job]:
        changed: Totals | None = None
        async with self._db().acquire() as connection, connection.transaction():
            lost = await connection.fetch(
                "UPDATE magic_hour_jobs SET state = 'unknown', owner = NULL, lease_until = NULL, "
                "updated_at = now(), error = 'its worker stopped while sending the create request' "
                f"WHERE state = 'submitting' AND {_FREE} RETURNING *"
            )
            freed = await connection.fetchval(
                "WITH freed AS (SELECT key, reserved FROM magic_hour_jobs WHERE state = 'pending' "
                "AND owner IS NOT NULL AND lease_until < now() FOR UPDATE SKIP LOCKED), "
                "cleared AS (UPDATE magic_hour_jobs j SET reserved = 0, owner = NULL, lease_until = NULL "
                "FROM freed WHERE j.key = freed.key) SELECT coalesce(sum(reserved), 0) FROM freed"
            )
            changed = await self._adjust(connection, reserved=-int(freed))
            if retry_over_budget:
                await connection.execute(
                    "UPDATE magic_hour_jobs SET state = 'pending', error = NULL, updated_at = now() "
                    "WHERE state = 'over_budget'"
                )
            if resubmit_unknown:
                moved = await connection.fetchval(
                    "WITH moved AS (SELECT key, reserved FROM magic_hour_jobs WHERE state = 'unknown' "
                    "FOR UPDATE SKIP LOCKED), done AS (UPDATE magic_hour_jobs j SET state = 'pending', "
                    "uncertain = j.uncertain + j.reserved, reserved = 0, project_id = NULL, error = NULL, "
                    "updated_at = now() FROM moved WHERE j.key = moved.key) "
                    "SELECT coalesce(sum(reserved), 0) FROM moved"
                )
                changed = await self._adjust(connection, settled=int(moved), reserved=-int(moved)) or changed
        self._notify(changed)
        return [job_from_row(row) for row in lost]

    async def claim(
        self,
        *,
        worker: str,
        lease: float,
        max_credits: int | None,
        downloads: bool,
        skip: Collection[str],
    ) -> Claim:
        skipped = list(skip)
        changed: Totals | None = None
        async with self._db().acquire() as connection, connection.transaction():

            async def take(key: str) -> Job:
                row = await connection.fetchrow(
                    f"UPDATE magic_hour_jobs SET owner = $1, lease_until = {_LEASE}, updated_at = now() "
                    "WHERE key = $3 RETURNING *",
                    worker, lease, key,
                )  # fmt: skip
                return job_from_row(row)

            filters = ["state = 'submitted'"]
            if downloads:
                filters.insert(0, _UNDOWNLOADED)
            for condition in filters:
                key = await connection.fetchval(
                    f"SELECT key FROM magic_hour_jobs WHERE {condition} AND {_FREE} AND NOT (key = ANY($1)) "
                    "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                    skipped,
                )
                if key is not None:
                    return Claim(job=await take(key))
            over: list[Job] = []
            blocked = False
            job: Job | None = None
            totals: Totals | None = None
            if max_credits is not None:  # the budget row lock serializes reservations across workers
                row = await connection.fetchrow(
                    "SELECT settled, reserved FROM magic_hour_budget WHERE id = 1 FOR UPDATE"
                )
                totals = Totals(settled=int(row["settled"]), reserved=int(row["reserved"]))
            while True:
                row = await connection.fetchrow(
                    f"SELECT * FROM magic_hour_jobs WHERE state = 'pending' AND {_FREE} "
                    "AND NOT (key = ANY($1)) ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                    skipped,
                )
                if row is None:
                    break
                candidate = job_from_row(row)
                cost = candidate.estimate or 0
                if totals is not None and max_credits is not None:
                    reason = None
                    held = totals.reserved - candidate.credits_reserved  # a dead worker's claim is replaced
                    if candidate.estimate is None:
                        reason = (
                            f"no worst-case price is known for {candidate.tool!r}; pass estimate= to add() "
                            "or default_estimate= to Batch"
                        )
                    elif totals.settled + held + cost > max_credits:
                        releasable = await connection.fetchval(
                            "SELECT coalesce(sum(reserved), 0) FROM magic_hour_jobs "
                            f"WHERE state IN {_ACTIVE} AND key <> $1",
                            candidate.key,
                        )
                        if releasable:
                            blocked = True
                            break
                        reason = (
                            f"its worst case of {cost} credits does not fit max_credits={max_credits} "
                            f"({totals.settled} settled, {held} reserved)"
                        )
                    if reason is not None:
                        done = await connection.fetchrow(
                            "UPDATE magic_hour_jobs SET state = 'over_budget', error = $1, reserved = 0, "
                            "owner = NULL, lease_until = NULL, updated_at = now() WHERE key = $2 RETURNING *",
                            reason, candidate.key,
                        )  # fmt: skip
                        changed = (
                            await self._adjust(connection, reserved=-candidate.credits_reserved) or changed
                        )
                        over.append(job_from_row(done))
                        continue
                direct = not needs_upload(candidate.body)
                await connection.execute(
                    "UPDATE magic_hour_jobs SET reserved = $1, state = $2, attempts = attempts + $3 "
                    "WHERE key = $4",
                    cost, "submitting" if direct else "pending", int(direct), candidate.key,
                )  # fmt: skip
                changed = (
                    await self._adjust(connection, reserved=cost - candidate.credits_reserved) or changed
                )
                job = await take(candidate.key)
                break
            remaining = 0
            if job is None:
                condition = f"state IN {_ACTIVE}" + (f" OR {_UNDOWNLOADED}" if downloads else "")
                remaining = await connection.fetchval(
                    f"SELECT count(*) FROM magic_hour_jobs WHERE ({condition}) AND NOT (key = ANY($1))",
                    skipped,
                )
        self._notify(changed)
        return Claim(job=job, over_budget=tuple(over), blocked=blocked, remaining=int(remaining))

    async def heartbeat(self, *, worker: str, lease: float) -> None:
        await self._db().execute(
            f"UPDATE magic_hour_jobs SET lease_until = {_LEASE} WHERE owner = $1", worker, lease
        )

    async def to_submitting(self, key: str, *, worker: str) -> None:
        await self._db().execute(
            "UPDATE magic_hour_jobs SET state = 'submitting', attempts = attempts + 1, updated_at = now() "
            "WHERE key = $1",
            key,
        )

    async def to_submitted(
        self, key: str, *, worker: str, lease: float, project_id: str, kind: str, credits: int
    ) -> Job:
        async with self._db().acquire() as connection, connection.transaction():
            reserved = await connection.fetchval(
                "SELECT reserved FROM magic_hour_jobs WHERE key = $1 FOR UPDATE", key
            )
            raise_by = max(0, credits - int(reserved))
            # From 'unknown' too: a late answer after another worker gave this row up still binds the render.
            row = await connection.fetchrow(
                "UPDATE magic_hour_jobs SET state = 'submitted', project_id = $1, kind = $2, "
                "reserved = reserved + $3, error = NULL, owner = $5, lease_until = now() "
                "+ make_interval(secs => $6), updated_at = now() WHERE key = $4 RETURNING *",
                project_id, kind, raise_by, key, worker, lease,
            )  # fmt: skip
            changed = await self._adjust(connection, reserved=raise_by)
        self._notify(changed)
        return job_from_row(row)

    async def finish(
        self, key: str, *, state: JobState, charged: int, error: str | None, keep: bool = False
    ) -> Job:
        async with self._db().acquire() as connection, connection.transaction():
            current = await connection.fetchrow(
                "SELECT reserved, state FROM magic_hour_jobs WHERE key = $1 FOR UPDATE", key
            )
            if current["state"] in FINAL_STATES:  # settled already (by another worker): count it once
                return job_from_row(
                    await connection.fetchrow("SELECT * FROM magic_hour_jobs WHERE key = $1", key)
                )
            reserved = current["reserved"]
            # The settlement is announced to every listening worker when (and only if) this commits.
            row = await connection.fetchrow(
                "WITH done AS (UPDATE magic_hour_jobs SET state = $1, charged = $2, reserved = 0, "
                "error = $3, owner = CASE WHEN $5 THEN owner END, "
                "lease_until = CASE WHEN $5 THEN lease_until END, updated_at = now() "
                "WHERE key = $4 RETURNING *) "
                "SELECT done.*, CASE WHEN done.project_id IS NOT NULL "
                "THEN pg_notify($6, done.project_id) END AS announced FROM done",
                state, charged, error, key, keep, self._channel,
            )  # fmt: skip
            changed = await self._adjust(connection, settled=charged, reserved=-int(reserved))
        self._notify(changed)
        return job_from_row(row)

    async def to_unknown(self, key: str, *, error: str) -> Job:
        row = await self._db().fetchrow(
            "UPDATE magic_hour_jobs SET state = 'unknown', error = $1, owner = NULL, lease_until = NULL, "
            "updated_at = now() WHERE key = $2 RETURNING *",
            error, key,
        )  # fmt: skip
        return job_from_row(row)

    async def release(self, key: str) -> None:
        async with self._db().acquire() as connection, connection.transaction():
            reserved = await connection.fetchval(
                "SELECT reserved FROM magic_hour_jobs WHERE key = $1 FOR UPDATE", key
            )
            await connection.execute(
                "UPDATE magic_hour_jobs SET state = 'pending', reserved = 0, owner = NULL, "
                "lease_until = NULL, updated_at = now() WHERE key = $1",
                key,
            )
            changed = await self._adjust(connection, reserved=-int(reserved))
        self._notify(changed)

    async def set_downloaded(self, key: str, paths: list[str]) -> Job:
        row = await self._db().fetchrow(
            "UPDATE magic_hour_jobs SET downloaded = true, paths = $1, owner = NULL, lease_until = NULL, "
            "updated_at = now() WHERE key = $2 RETURNING *",
            json.dumps(paths), key,
        )  # fmt: skip
        return job_from_row(row)

    async def abandon(self, *, worker: str) -> None:
        # Expire this worker's leases now: the others adopt its renders at once instead of after the lease.
        await self._db().execute(
            "UPDATE magic_hour_jobs SET lease_until = now() - interval '1 second' WHERE owner = $1", worker
        )

    async def disown(self, key: str) -> None:
        await self._db().execute(
            "UPDATE magic_hour_jobs SET owner = NULL, lease_until = NULL WHERE key = $1", key
        )
