"""Durable batches: what the journal costs, and how PostgreSQL workers scale.

The emulator (``python -m magic_hour_async.testing``) runs in its own process; ``ai-image-generator`` renders
take ``5 s * speed``.

- ``batch``: ``n`` jobs at the same ``concurrency`` against one emulator: the plain path (a semaphore,
  ``create`` then ``wait`` per job, nothing remembered) and the same jobs through an SQLite-journaled
  :class:`Batch` (``add`` of every job, then ``run``), with ``synchronous=FULL`` (the default: every commit
  is fsynced, safe from power loss) and ``NORMAL`` (safe from process crashes only). Ratio of median wall
  times, journal / plain.
- ``fleet``: worker *processes* (``python -m benchmarks.bench_batch worker ...``) on one PostgreSQL journal
  (a throw-away server from ``tests/_postgres_server.py``): 1 worker on ``n / 3`` jobs, then 3 workers on
  ``n`` jobs, each worker with the same concurrency. Throughput is jobs per second from the first worker's
  start to the last one's end; creates are counted by the emulator (duplicates: creates minus jobs).

- ``fleet-webhooks``: the same 3-worker PostgreSQL fleet, once polling only, once with
  ``run(webhooks=True)`` and a webhook receiver process (``tests/_webhook_receiver.py``, its own ``Batch``
  on the journal) that the emulator delivers to; contenders alternate. Reported per job: API GETs (the
  emulator's counters), and the time from the render's completion (the emulator's ``created + duration``
  on ``time.monotonic``, one clock for every process of the machine) to the job coming out of its
  worker's ``run()`` (settled in the journal), which each worker writes to a JSON file. Workers use the
  default :class:`PollPolicy`.

Why the server is not the bottleneck in ``fleet``: each job is one create and a few polls spread over a
render of ``5 s * speed``, so a worker's request rate is about ``concurrency / render time`` creates plus a
few times as many polls; the parameters keep the emulator and PostgreSQL well below saturation, and a
worker's throughput is bounded by its own concurrency over the render time, which is what adding workers
multiplies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import TOKEN, dump, median, server_process, table
from magic_hour_async import AsyncClient, PollPolicy  # imported here: never inside a timed region
from magic_hour_async.batch import Batch
from magic_hour_async.batch._sqlite import SQLiteJournal
from magic_hour_async.testing import Emulator

# No poll budget (the default max_rate is 10 polls a second per client, which would make 10,000 one-second
# renders take 1,000 s on any path): the loopback emulator is not rate limited, and this measures the journal.
POLL = PollPolicy(initial=0.25, maximum=1.0, max_rate=math.inf)
#: Fleet workers poll less: their CPU, not the render time, is what a loaded machine would measure.
FLEET_POLL = PollPolicy(initial=1.0, maximum=2.0)
TOOL = "ai-image-generator"


def body(index: int) -> dict[str, object]:
    return {"name": f"job-{index}", "image_count": 1, "style": {"prompt": f"tile {index}"}}


async def plain(url: str, n: int, concurrency: int) -> float:
    """create + wait per job under a semaphore: the path without a journal."""
    async with AsyncClient(token=TOKEN, base_url=url, poll=POLL) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                created = await client.v1.ai_image_generator.create(
                    image_count=1, style={"prompt": f"tile {index}"}
                )
                project = await client.v1.image_projects.wait(id=created.id)
                assert project.status == "complete"

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(n)))
        return time.perf_counter() - started


async def journaled(url: str, n: int, concurrency: int, journal: SQLiteJournal) -> float:
    """The same jobs through a Batch: add them all, run them all."""
    async with AsyncClient(token=TOKEN, base_url=url, poll=POLL) as client, Batch(client, journal) as batch:
        started = time.perf_counter()
        for first in range(0, n, 500):  # concurrent adds share commits
            await asyncio.gather(
                *(batch.add(f"job-{i}", TOOL, body(i), estimate=5) for i in range(first, min(n, first + 500)))
            )
        finished = 0
        async for job in batch.run(concurrency=concurrency):
            assert job.state == "complete", job
            finished += 1
        elapsed = time.perf_counter() - started
        assert finished == n
        return elapsed


def measure_batch(n: int, concurrency: int, speed: float, rounds: int) -> str:
    times: dict[str, list[float]] = {"plain": [], "FULL": [], "NORMAL": []}
    with server_process("magic_hour_async.testing", "--speed", str(speed), "--token", TOKEN) as url:
        for round_ in range(rounds):
            order = list(times)
            order = order[round_ % 3 :] + order[: round_ % 3]  # rotate who goes first
            for which in order:
                if which == "plain":
                    times[which].append(asyncio.run(plain(url, n, concurrency)))
                    continue
                with tempfile.TemporaryDirectory() as directory:
                    journal = SQLiteJournal(Path(directory) / "batch.db", synchronous=which)
                    times[which].append(asyncio.run(journaled(url, n, concurrency, journal)))
    base = median(times["plain"])
    ratios = {name: median(values) / base for name, values in times.items()}
    dump("batch", {"n": n, "concurrency": concurrency, "speed": speed, "times": times, "ratios": ratios})
    rows = [
        ["plain create + wait (no journal)", f"{base:.2f}", "1.00"],
        [
            "Batch, SQLite journal, synchronous=FULL (default)",
            f"{median(times['FULL']):.2f}",
            f"{ratios['FULL']:.3f}",
        ],
        [
            "Batch, SQLite journal, synchronous=NORMAL",
            f"{median(times['NORMAL']):.2f}",
            f"{ratios['NORMAL']:.3f}",
        ],
    ]
    title = f"{n} jobs, concurrency {concurrency}, renders {5 * speed:.2f} s, median of {rounds} runs"
    return f"**batch**: {title}\n\n" + table(["path", "wall s", "x plain"], rows)


# -- fleet: worker processes on one PostgreSQL journal -----------------------------------------------------


async def add_jobs(journal: str, url: str, n: int) -> None:
    async with AsyncClient(token=TOKEN, base_url=url) as client, Batch(client, journal) as batch:
        for first in range(0, n, 500):
            await asyncio.gather(
                *(batch.add(f"job-{i}", TOOL, body(i), estimate=5) for i in range(first, min(n, first + 500)))
            )


async def worker(
    journal: str, url: str, concurrency: int, *, webhooks: bool = False, times: str | None = None
) -> None:
    """One fleet worker; with ``times``, write ``{project id: time.monotonic() when run() yielded it}``."""
    poll = PollPolicy() if times is not None else FLEET_POLL
    settled: dict[str, float] = {}
    async with (
        AsyncClient(token=TOKEN, base_url=url, poll=poll) as client,
        Batch(client, journal) as batch,
    ):
        async for job in batch.run(concurrency=concurrency, webhooks=webhooks):
            if job.project_id is not None:
                settled[job.project_id] = time.monotonic()
    if times is not None:
        await asyncio.to_thread(Path(times).write_text, json.dumps(settled))


async def journal_counts(journal: str) -> tuple[int, int]:
    import asyncpg

    connection = await asyncpg.connect(journal)
    try:
        complete = await connection.fetchval("SELECT count(*) FROM magic_hour_jobs WHERE state = 'complete'")
        projects = await connection.fetchval("SELECT count(DISTINCT project_id) FROM magic_hour_jobs")
    finally:
        await connection.close()
    return int(complete), int(projects)


def run_fleet(
    server: object, url: str, workers: int, n: int, concurrency: int, name: str
) -> tuple[float, int]:
    journal = server.create_database(name)  # type: ignore[attr-defined]
    asyncio.run(add_jobs(journal, url, n))
    root = Path(__file__).resolve().parent.parent
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_batch", "worker", journal, url, str(concurrency)],
            cwd=root,
        )
        for _ in range(workers)
    ]
    for process in processes:
        assert process.wait() == 0
    elapsed = time.perf_counter() - started
    complete, projects = asyncio.run(journal_counts(journal))
    assert complete == n == projects, (complete, projects, n)
    return elapsed, projects


def measure_fleet(n: int, concurrency: int, speed: float, rounds: int) -> str:
    from tests._postgres_server import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        return "**fleet**: skipped, no PostgreSQL binaries (initdb, pg_ctl) found"
    server = PostgresServer(binaries)
    server.start()
    one: list[float] = []
    three: list[float] = []
    duplicates = 0
    try:
        # The emulator serves from a thread of this process, which only waits for the workers meanwhile:
        # its request counters tell how many creates arrived.
        with Emulator(speed=speed, token=TOKEN, output_size=256) as emu:
            for round_ in range(rounds):
                seconds, _ = run_fleet(server, emu.url, 1, n // 3, concurrency, f"one_{round_}")
                one.append((n // 3) / seconds)
                before = emu.counters.count(f"POST /v1/{TOOL}")
                seconds, _ = run_fleet(server, emu.url, 3, n, concurrency, f"three_{round_}")
                three.append(n / seconds)
                duplicates += emu.counters.count(f"POST /v1/{TOOL}") - before - n
    finally:
        server.stop()
    scale = median(three) / median(one)
    dump("fleet", {"n": n, "concurrency": concurrency, "speed": speed, "one": one, "three": three,
                   "scale": scale, "duplicates": duplicates})  # fmt: skip
    rows = [
        ["1 worker", n // 3, f"{median(one):.1f}", "1.00", "-"],
        ["3 workers", n, f"{median(three):.1f}", f"{scale:.2f}", str(duplicates)],
    ]
    title = (
        f"PostgreSQL journal, concurrency {concurrency} per worker, renders {5 * speed:.2f} s, "
        f"median of {rounds} runs"
    )
    return f"**fleet**: {title}\n\n" + table(
        ["workers", "jobs", "jobs/s", "x 1 worker", "duplicate creates"], rows
    )


# -- fleet-webhooks: the same fleet, polling vs a webhook receiver ------------------------------------------

SECRET = "whsec_bench_fleet"
GETS = "GET /v1/image-projects/{id}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_receiver(journal: str, url: str) -> tuple[subprocess.Popen[str], str]:
    """The receiver process of ``tests/_webhook_receiver.py``; its webhook URL."""
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests._webhook_receiver", journal, url, TOKEN, SECRET],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run_fleet_mode(
    server: object, emu: Emulator, *, webhooks: bool, n: int, concurrency: int, name: str
) -> dict[str, float]:
    """One fleet run of 3 workers; GETs per job, settle latencies (p50, p95) and jobs per second."""
    journal = server.create_database(name)  # type: ignore[attr-defined]
    asyncio.run(add_jobs(journal, emu.url, n))
    receiver = None
    if webhooks:
        receiver, hook_url = start_receiver(journal, emu.url)
        emu.webhooks.configure(hook_url, SECRET)
    root = Path(__file__).resolve().parent.parent
    gets = emu.counters.count(GETS)
    with tempfile.TemporaryDirectory() as directory:
        files = [str(Path(directory) / f"times-{index}.json") for index in range(3)]
        started = time.perf_counter()
        command = [sys.executable, "-m", "benchmarks.bench_batch", "worker", journal, emu.url]
        command.append(str(concurrency))
        extra = ["--webhooks"] if webhooks else []
        processes = [subprocess.Popen([*command, "--times", file, *extra], cwd=root) for file in files]
        for process in processes:
            assert process.wait() == 0
        elapsed = time.perf_counter() - started
        settled: dict[str, float] = {}
        for file in files:
            settled.update(json.loads(Path(file).read_text()))
    gets = emu.counters.count(GETS) - gets
    if receiver is not None:
        emu.webhooks.disable()
        assert receiver.stdin is not None
        receiver.stdin.close()
        assert receiver.wait(60) == 0
    assert len(settled) == n, (len(settled), n)
    latencies = [at - emu._state.get(project_id).ends for project_id, at in settled.items()]
    return {
        "gets_per_job": gets / n,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "jobs_per_s": n / elapsed,
    }


def measure_fleet_webhooks(n: int, concurrency: int, speed: float, rounds: int) -> str:
    from tests._postgres_server import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        return "**fleet-webhooks**: skipped, no PostgreSQL binaries (initdb, pg_ctl) found"
    server = PostgresServer(binaries)
    server.start()
    runs: dict[str, list[dict[str, float]]] = {"polling": [], "webhooks": []}
    try:
        with Emulator(speed=speed, token=TOKEN, output_size=256) as emu:
            for round_ in range(rounds):
                order = ["polling", "webhooks"] if round_ % 2 == 0 else ["webhooks", "polling"]
                for mode in order:
                    run = run_fleet_mode(
                        server, emu, webhooks=mode == "webhooks", n=n, concurrency=concurrency,
                        name=f"{mode}_{round_}",
                    )  # fmt: skip
                    runs[mode].append(run)
    finally:
        server.stop()
    dump("fleet-webhooks", {"n": n, "concurrency": concurrency, "speed": speed, "runs": runs})

    def med(mode: str, field: str) -> float:
        return median([run[field] for run in runs[mode]])

    rows = [
        [
            mode,
            f"{med(mode, 'gets_per_job'):.2f}",
            f"{med(mode, 'p50'):.3f}",
            f"{med(mode, 'p95'):.3f}",
            f"{med(mode, 'jobs_per_s'):.1f}",
        ]
        for mode in ("polling", "webhooks")
    ]
    title = (
        f"3 workers on one PostgreSQL journal, {n} jobs, concurrency {concurrency} per worker, renders "
        f"{5 * speed:.2f} s, default PollPolicy, median of {rounds} runs"
    )
    return f"**fleet-webhooks**: {title}\n\n" + table(
        ["mode", "GETs per job", "complete -> settled p50 s", "p95 s", "jobs/s"], rows
    )


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_batch worker")
    parser.add_argument("journal")
    parser.add_argument("url")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--webhooks", action="store_true")
    parser.add_argument("--times")
    args = parser.parse_args(sys.argv[2:])
    asyncio.run(worker(args.journal, args.url, args.concurrency, webhooks=args.webhooks, times=args.times))
    os._exit(0)
