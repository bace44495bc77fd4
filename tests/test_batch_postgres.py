"""The PostgreSQL journal against a real server on loopback (``tests/_postgres_server.py``).

Skipped with a one-line reason where the PostgreSQL binaries are absent; a failure under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async.batch import Batch, Job, Totals
from magic_hour_async.testing import Emulator
from tests._postgres_server import PostgresServer

pytestmark = pytest.mark.asyncio

FAST = mh.PollPolicy(initial=0.01, maximum=0.05)
IMAGE = "POST /v1/ai-image-generator"
_names = itertools.count()


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"batch_{os.getpid()}_{next(_names)}")


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=8, speed=0.002, output_size=512, error_rate=0.3) as emulator:
        yield emulator


def image(key: str, count: int = 1) -> dict[str, Any]:
    return {"name": key, "image_count": count, "style": {"prompt": key}}


async def execute(url: str, sql: str, *args: object) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


async def test_three_workers_share_one_batch_each_job_sent_once_within_budget(
    emu: Emulator, database: str, tmp_path: Path
) -> None:
    timeline: list[Totals] = []

    async def worker() -> list[Job]:
        async with (
            mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client,
            Batch(client, database, lease=5) as batch,
        ):
            batch.journal.observer = timeline.append
            return [
                job async for job in batch.run(concurrency=4, max_credits=400, download_directory=tmp_path)
            ]

    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client,
        Batch(client, database) as batch,
    ):
        for n in range(60):
            await batch.add(
                f"k{n}", "ai-image-generator", image(f"k{n}", 1 + n % 2), estimate=10 * (1 + n % 2)
            )
    results = await asyncio.gather(worker(), worker(), worker())
    finished = [job for jobs in results for job in jobs if job.state != "unknown"]
    keys = [job.key for job in finished]
    assert len(keys) == len(set(keys)) == 60  # each job finished by exactly one worker
    assert all(len(jobs) > 0 for jobs in results)  # the work was shared
    sent = [job for job in finished if job.state in ("complete", "error")]
    assert emu.counters.count(IMAGE) == len(sent)
    names = [emu.project(pid)["name"] for pid in emu.project_ids]
    assert sorted(names) == sorted(job.key for job in sent)  # no job was created twice
    assert timeline and max(t.settled + t.reserved for t in timeline) <= 400
    assert {job.state for job in finished} <= {"complete", "error", "over_budget"}
    assert sum(job.credits_charged for job in sent) <= 400


async def test_a_dead_workers_rows_are_adopted_after_its_lease(emu: Emulator, database: str) -> None:
    emu.error_rate = 0.0
    waiting = emu.create_project("image", duration=0.05)
    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client,
        Batch(client, database, lease=0.6) as batch,
    ):
        for key in ("paid", "mid-post", "claimed"):
            await batch.add(key, "ai-image-generator", image(key), estimate=5)
        # A worker that died: one render paid and submitted, one POST in flight, one job claimed.
        await execute(
            database,
            "UPDATE magic_hour_jobs SET owner = 'dead', lease_until = now() + interval '0.3 seconds', "
            "reserved = 5, state = CASE key WHEN 'paid' THEN 'submitted' "
            "WHEN 'mid-post' THEN 'submitting' ELSE 'pending' END, "
            "project_id = CASE key WHEN 'paid' THEN $1 END, kind = CASE key WHEN 'paid' THEN 'image' END",
            waiting,
        )
        await execute(database, "UPDATE magic_hour_budget SET reserved = 15")
        done = {job.key: job async for job in batch.run(concurrency=2)}
        status = await batch.status()
    assert done["paid"].state == "complete" and done["paid"].project_id == waiting
    assert done["mid-post"].state == "unknown" and "stopped while sending" in (done["mid-post"].error or "")
    assert done["claimed"].state == "complete"
    assert emu.counters.count(IMAGE) == 1  # only the claimed job was sent: the paid one was adopted
    assert status.credits_reserved == 5  # the unknown job keeps its worst case


async def test_a_worker_that_stops_hands_its_renders_over_at_once(emu: Emulator, database: str) -> None:
    emu.error_rate = 0.0
    emu.speed = 0.2  # one-second renders: the first worker stops while all of them run
    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client,
        Batch(client, database, lease=60) as first,
    ):
        for n in range(4):
            await first.add(f"k{n}", "ai-image-generator", image(f"k{n}"), estimate=5)

        async def consume() -> None:
            async for _ in first.run(concurrency=4):
                pass

        running = asyncio.ensure_future(consume())
        deadline = asyncio.get_running_loop().time() + 10
        while (await first.status()).counts["submitted"] < 4:
            assert asyncio.get_running_loop().time() < deadline, "the renders were never submitted"
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client,
        Batch(client, database, lease=60) as second,
    ):
        started = asyncio.get_running_loop().time()
        done = [job async for job in second.run(concurrency=4)]
        # Adopted without waiting for the 60-second lease, and without a second create.
        assert asyncio.get_running_loop().time() - started < 30
    assert sorted(job.state for job in done) == ["complete"] * 4
    assert emu.counters.count(IMAGE) == 4
