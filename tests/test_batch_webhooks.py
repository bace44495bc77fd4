"""Fleets with a webhook receiver: the journal tells the workers, so they need not poll.

Real PostgreSQL on loopback (``tests/_postgres_server.py``), the emulator delivering signed webhooks, and a
receiver *process* (``tests/_webhook_receiver.py``) holding its own :class:`Batch` on the same journal: the
workers hear the settlements only through the journal's ``LISTEN`` channel. Poll counts are read from the
emulator's request counters; no test measures time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async import webhooks
from magic_hour_async.batch import Batch, Job
from magic_hour_async.batch._listen import APPLICATION_NAME
from magic_hour_async.batch._postgres import PostgresJournal
from magic_hour_async.batch._settlements import WEBHOOK_SAFETY_FACTOR
from magic_hour_async.testing import Emulator, set_testing
from tests._postgres_server import PostgresServer

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_fleet_test"
GETS = "GET /v1/image-projects/{id}"
#: Renders take 1 s (``speed=0.2``). This cadence notices them within 0.2 s by polling alone, about six
#: GETs each. No poll budget: the cadence alone decides the counts.
POLL = mh.PollPolicy(initial=0.2, maximum=1.0, max_rate=math.inf)
#: With webhooks=True the first safety poll after the immediate one comes 30 s later: a run that ends
#: within ``BOUND`` seconds was ended by the webhooks, not by its polls (which the counts then confirm).
SLOW = mh.PollPolicy(initial=3.0, maximum=30.0, max_rate=math.inf)
BOUND = 20.0
_names = itertools.count()


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"hooks_{os.getpid()}_{next(_names)}")


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=15, speed=0.2, output_size=256, error_rate=0.0) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def receiver(emu: Emulator, database: str) -> AsyncIterator[str]:
    """A receiver process on the journal; the emulator delivers to it. Yields its webhook URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests._webhook_receiver", database, emu.url, emu.token, SECRET,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
        assert url.startswith("http://127.0.0.1:"), url
        emu.webhooks.configure(url, SECRET)
        yield url
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 60)
    assert process.returncode == 0


def image(key: str) -> dict[str, Any]:
    return {"name": key, "image_count": 1, "style": {"prompt": key}}


async def add_jobs(emu: Emulator, journal: str, n: int) -> None:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client, Batch(client, journal) as batch:
        for index in range(n):
            await batch.add(f"k{index}", "ai-image-generator", image(f"k{index}"), estimate=5)


async def work(
    emu: Emulator,
    journal: str,
    *,
    webhooks: bool,
    concurrency: int = 4,
    poll: mh.PollPolicy = POLL,
    clients: list[mh.AsyncClient] | None = None,
) -> list[Job]:
    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=poll) as client,
        Batch(client, journal, lease=5) as batch,
    ):
        if clients is not None:
            clients.append(client)
        jobs = [job async for job in batch.run(concurrency=concurrency, webhooks=webhooks)]
        assert client._scheduler.safety_factor == 1.0  # the run gave the client its cadence back
    return jobs


async def sql(url: str, query: str, *args: object) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def listener_pids(url: str) -> set[int]:
    rows = await sql(
        url,
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
        APPLICATION_NAME,
    )
    return {int(row["pid"]) for row in rows}


async def until(condition: Callable[[], Any], what: str, *, seconds: float = 30) -> Any:
    """Wait for an outcome (checked every few milliseconds), failing with ``what`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (result := await condition()):
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)
    return result


async def no_listener_left(url: str) -> None:
    async def gone() -> bool:
        return not await listener_pids(url)

    await until(gone, "a listener connection outlived its run")


def live_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if not task.done()}


async def assert_no_task_left(before: set[asyncio.Task[Any]]) -> None:
    """Nothing the runs started is still running (the emulator's own tasks were there before).

    aiohttp's servers end the handler task of a closed keep-alive connection a few loop steps later.
    """

    async def ended() -> bool:
        return live_tasks() <= before

    await until(ended, f"tasks left running: {live_tasks() - before}", seconds=5)


async def test_a_receiver_in_another_process_ends_the_waits_of_three_workers(
    emu: Emulator, database: str, receiver: str
) -> None:
    n = 24
    await add_jobs(emu, database, n)
    before = live_tasks()
    fleet = asyncio.gather(*(work(emu, database, webhooks=True, poll=SLOW) for _ in range(3)))
    results = await asyncio.wait_for(fleet, BOUND)

    jobs = [job for batch in results for job in batch]
    assert sorted(job.key for job in jobs) == sorted(f"k{i}" for i in range(n))
    assert {job.state for job in jobs} == {"complete"}
    assert emu.counters.count("POST /v1/ai-image-generator") == n
    assert emu.webhooks.stats.deliveries >= n
    # One GET per job, when the journal announces the webhook's settlement: a render just created is not
    # polled at once, and no safety poll came due. Polling alone costs about six per job (the next test).
    per_job = [emu.counters.count(GETS, id=job.project_id) for job in jobs]
    assert per_job == [1] * n, per_job
    await no_listener_left(database)
    await assert_no_task_left(before)


async def test_without_webhooks_the_same_fleet_polls_several_times_per_job(
    emu: Emulator, database: str
) -> None:
    n = 12
    await add_jobs(emu, database, n)
    results = await asyncio.gather(*(work(emu, database, webhooks=False) for _ in range(3)))

    jobs = [job for batch in results for job in batch]
    assert {job.state for job in jobs} == {"complete"} and len(jobs) == n
    assert emu.counters.count(GETS) >= 4 * n  # the contrast to the test above


async def test_a_killed_listener_connection_reconnects_and_the_run_finishes(
    emu: Emulator, database: str, receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="magic_hour_async.batch")
    emu.speed = 0.6  # 3-second renders: the connection is killed while all of them run
    n = 6
    await add_jobs(emu, database, n)
    before = live_tasks()
    clients: list[mh.AsyncClient] = []
    running = asyncio.create_task(
        work(emu, database, webhooks=True, concurrency=n, poll=SLOW, clients=clients)
    )
    first = await until(lambda: listener_pids(database), "the run never listened")
    scheduler = clients[0]._scheduler
    assert scheduler.safety_factor == WEBHOOK_SAFETY_FACTOR

    async def all_submitted() -> bool:
        rows = await sql(database, "SELECT count(*) AS n FROM magic_hour_jobs WHERE state = 'submitted'")
        return int(rows[0]["n"]) == n

    await until(all_submitted, "the renders were never submitted")
    await sql(database, "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(first))

    async def replaced() -> set[int]:
        pids = await listener_pids(database)
        return pids if pids and not pids & first else set()

    await until(replaced, "the listener never reconnected")

    async def slow_again() -> bool:  # it polled at the normal cadence while it could not hear the journal
        return scheduler.safety_factor == WEBHOOK_SAFETY_FACTOR

    await until(slow_again, "the run did not return to the slow cadence after reconnecting")
    jobs = await asyncio.wait_for(running, BOUND)

    assert sorted(job.state for job in jobs) == ["complete"] * n
    assert emu.counters.count("POST /v1/ai-image-generator") == n
    messages = [record.getMessage() for record in caplog.records]
    assert any("journal listener" in m and "stopped" in m for m in messages), messages
    assert sum("listening" in m for m in messages) >= 2  # the first connection and the new one
    await no_listener_left(database)
    await assert_no_task_left(before)


async def test_a_canceled_render_sends_no_webhook_and_still_ends_through_the_safety_poll(
    emu: Emulator, database: str
) -> None:
    emu.speed = 20.0  # a 100-second render: only the cancel can end it within the test
    await add_jobs(emu, database, 1)
    with set_testing(True):  # every poll interval a thousand times shorter, the 10x slow-down included
        running = asyncio.create_task(work(emu, database, webhooks=True, poll=mh.PollPolicy()))

        async def submitted() -> list[Any]:
            return await sql(database, "SELECT project_id FROM magic_hour_jobs WHERE state = 'submitted'")

        rows = await until(submitted, "the render was never submitted")
        project_id = str(rows[0]["project_id"])
        emu.cancel(project_id)
        jobs = await running

    assert [(job.state, job.project_id) for job in jobs] == [("canceled", project_id)]
    assert emu.counters.count(GETS, id=project_id) >= 1  # the safety poll that saw it
    await no_listener_left(database)


async def test_sqlite_batch_with_a_receiver_in_the_same_process(emu: Emulator, tmp_path: Path) -> None:
    n = 8
    before = live_tasks()
    async with (
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=SLOW) as client,
        Batch(client, tmp_path / "batch.db") as batch,
    ):
        seen: list[str] = []

        async def after_settling(event: webhooks.WebhookEvent) -> None:
            job = await batch.journal.find_project(event.project_id or "")
            seen.append(job.state if job is not None else "missing")

        # batch= settles each event's job in the journal, then calls the callback.
        app = webhooks.create_app(after_settling, batch=batch, secret=SECRET)
        from aiohttp import web

        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            emu.webhooks.configure(f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/magic-hour", SECRET)
            for index in range(n):
                await batch.add(f"k{index}", "ai-image-generator", image(f"k{index}"), estimate=5)
            speeds: list[float] = []
            jobs: list[Job] = []

            async def run() -> None:
                async for job in batch.run(concurrency=n, webhooks=True):
                    speeds.append(client._scheduler.safety_factor)
                    jobs.append(job)

            await asyncio.wait_for(run(), BOUND)
            after = client._scheduler.safety_factor
        finally:
            await runner.cleanup()

    assert {job.state for job in jobs} == {"complete"} and len(jobs) == n
    assert seen == ["complete"] * n  # the callback ran after its job was settled
    assert set(speeds) == {WEBHOOK_SAFETY_FACTOR} and after == 1.0
    # The receiver hands each event's project to the waiting client: no poll at all.
    assert emu.counters.count(GETS) == 0
    await assert_no_task_left(before)


async def test_journals_in_two_schemas_announce_on_their_own_channels(database: str) -> None:
    await sql(database, "CREATE SCHEMA one")
    await sql(database, "CREATE SCHEMA two")
    first, second = (
        PostgresJournal(f"{database}?search_path=one"),
        PostgresJournal(f"{database}?search_path=two"),
    )
    await first.open()
    await second.open()
    heard: dict[str, list[str]] = {"one": [], "two": []}
    listening: dict[str, bool] = {}
    tasks = [
        asyncio.create_task(
            journal.listen(
                waiting=list,
                on_settled=heard[name].append,
                on_connected=lambda on, name=name: listening.__setitem__(name, on),  # type: ignore[misc]
            )
        )
        for name, journal in (("one", first), ("two", second))
    ]
    try:
        assert first.channel != second.channel

        async def both() -> bool:
            return listening.get("one", False) and listening.get("two", False)

        await until(both, "the listeners never connected")
        await first.add(key="a", tool="ai-image-generator", body="{}", estimate=1)
        await first.to_submitted("a", worker="w", lease=5, project_id="proj-a", kind="image", credits=1)
        await first.finish("a", state="complete", charged=1, error=None)

        async def heard_one() -> bool:
            return heard["one"] == ["proj-a"]

        await until(heard_one, "the settlement was never announced")
        # The catch-up: a listener that starts after the settlement still learns it.
        late: list[str] = []
        catching_up = asyncio.create_task(
            first.listen(
                waiting=lambda: ["proj-a", "other"], on_settled=late.append, on_connected=lambda _: None
            )
        )
        tasks.append(catching_up)

        async def caught_up() -> bool:
            return late == ["proj-a"]

        await until(caught_up, "a late listener missed the settled project")
        assert heard["two"] == []
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await first.close()
        await second.close()
    assert listening == {"one": False, "two": False}
    await no_listener_left(database)


async def test_a_listener_that_cannot_connect_backs_off_and_never_ends_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from magic_hour_async.batch._listen import listen_forever
    from tests._postgres_server import _free_port

    url = f"postgresql://render:hunter2@127.0.0.1:{_free_port()}/renders"  # nobody listens there
    pauses: list[float] = []
    events: list[object] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    task = asyncio.create_task(
        listen_forever(
            url=url,
            channel="magic_hour_jobs_x",
            waiting=list,
            on_settled=events.append,
            on_connected=events.append,
            display_name=PostgresJournal(url).display_name,
            backoff=(0.5, 4.0),
            sleep=sleep,
        )
    )

    async def five() -> bool:
        return len(pauses) >= 5

    await until(five, "the listener stopped trying")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Doubling from the first pause up to the cap, each with up to half of it taken off as jitter.
    for pause, ceiling in zip(pauses[:5], (0.5, 1.0, 2.0, 4.0, 4.0), strict=True):
        assert ceiling / 2 <= pause <= ceiling
    assert events == []  # never connected, so never reported listening
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) >= 5 and all("polling at the normal cadence" in m for m in warnings)
    assert not any("hunter2" in m for m in warnings)


async def test_cli_workers_with_webhooks_poll_once_per_job(
    emu: Emulator, database: str, receiver: str, tmp_path: Path
) -> None:
    n = 6
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"key": f"k{i}", "tool": "ai-image-generator", "body": image(f"k{i}"), "estimate": 5}
        for i in range(n)
    ]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
    env.update(MAGIC_HOUR_API_KEY=emu.token, MAGIC_HOUR_BASE_URL=emu.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "magic_hour_async", "batch", "run", str(jobs), "--journal", database,
        "--concurrency", str(n), "--webhooks",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, stderr.decode()[-2000:]
    assert emu.counters.count("POST /v1/ai-image-generator") == n
    # The CLI's client has the default PollPolicy: without webhooks a 1-s render is polled at 0 and 1 s.
    assert emu.counters.count(GETS) == n
