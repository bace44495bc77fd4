"""Waiting for renders: the scheduler vs a raw aiohttp poller and the official SDK, against the emulator.

The emulator (``python -m magic_hour_async.testing``) runs in its own process. Before each contender
starts, fresh projects with chosen render durations are inserted through the emulator's test-only
``POST /_emulator/projects`` route, so every contender of a round waits on identical renders of the same
server.
GETs are counted by each contender (``client.poll_stats.polls_sent`` for ours: one poll is one GET).

- ``waits``: 200 concurrent ``wait()`` on 2-second renders: wall time (from the first wait to the last result)
  and GETs; ours with the default policy (its 10-polls-a-second budget binds: 600 GETs take a minute), with
  ``max_rate=inf`` (the scheduler itself, as before the budget) and also ``jitter=0``, a raw aiohttp poller
  (one task per project, a GET every 0.5 s until terminal), and the official SDK's
  ``check_result(wait_for_completion=True)`` when ``magic_hour`` is importable (``nox -s bench``). That one
  calls ``time.sleep`` on the event loop, so its run is cut off after ``OFFICIAL_CAP`` seconds and the table
  reports how far it got.
- ``mixed``: renders log-uniform between 3 s and 300 s, time-scaled by the emulator speed ``speed``; GETs and
  detection delay (seen terminal minus finished, divided by ``speed``: unscaled seconds) of ours vs a fixed
  0.5-s poller. The poll policy is in real seconds, so both pollers are scaled the same way: ours polls with
  ``PollPolicy(initial=1 * speed, maximum=30 * speed, max_rate=inf)`` and the fixed poller every
  ``0.5 * speed`` (no budget: the schedule itself is measured; ``bench_ratelimit`` measures the budget).
- ``many``: 10,000 concurrent waits on 5-second renders in a fresh client process per run (``python -m
  benchmarks.bench_scheduler many-client ...``): peak RSS and the worst event-loop lag seen by a 5 ms ticker,
  for one ``wait_many`` call and for 10,000 ``wait()`` tasks created at once. Two rows calibrate: an idle run
  (the ticker alone: the machine's own noise) and 10,000 bare tasks each awaiting a future (what asyncio
  itself costs for the one-task-per-project shape, with no SDK code at all). The policy is the default with
  ``max_rate=inf``: every poll the scheduler would send, not the budget's 10 a second."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import aiohttp

from benchmarks._common import TOKEN, dump, median, proc_status_bytes, reset_peak_rss, server_process, table
from magic_hour_async import AsyncClient, PollPolicy  # imported here: never inside a timed region

TERMINAL = frozenset({"complete", "error", "canceled"})
#: Seconds the official SDK may run before it is cut off (it blocks the loop: 200 waits take minutes).
OFFICIAL_CAP = 30.0


@contextlib.contextmanager
def emulator(speed: float = 1.0) -> Iterator[str]:
    with server_process(
        "magic_hour_async.testing", "--speed", str(speed), "--seed", "1", "--token", TOKEN
    ) as url:
        yield url


def http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})


async def insert(url: str, durations: list[float]) -> list[str]:
    """Fresh video projects finishing ``durations`` seconds from now (emulator clock, not scaled)."""
    async with (
        http() as session,
        session.post(f"{url}/_emulator/projects", json={"kind": "video", "durations": durations}) as response,
    ):
        response.raise_for_status()
        return [str(id) for id in (await response.json())["ids"]]


async def fixed_poll(
    session: aiohttp.ClientSession, url: str, id: str, interval: float
) -> tuple[int, dict[str, Any]]:
    """The hand-written poller: GET, then again every ``interval`` until terminal. Returns (GETs, body)."""
    gets = 0
    while True:
        async with session.get(f"{url}/v1/video-projects/{id}") as response:
            body: dict[str, Any] = await response.json()
        gets += 1
        if body["status"] in TERMINAL:
            return gets, body
        await asyncio.sleep(interval)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# -- waits: 200 concurrent waits on 2-second renders -------------------------------------------------------

Waiter = Callable[[str, list[str]], Awaitable[int]]


async def raw_waits(url: str, ids: list[str]) -> int:
    async with http() as session:
        results = await asyncio.gather(*(fixed_poll(session, url, id, 0.5) for id in ids))
    return sum(gets for gets, _ in results)


def ours_waits(jitter: float | None, max_rate: float | None = None) -> Waiter:
    async def run(url: str, ids: list[str]) -> int:
        policy = PollPolicy(
            jitter=PollPolicy().jitter if jitter is None else jitter,
            max_rate=PollPolicy().max_rate if max_rate is None else max_rate,
        )
        async with AsyncClient(token=TOKEN, base_url=url, poll=policy) as client:
            projects = await asyncio.gather(*(client.v1.video_projects.wait(id=id) for id in ids))
            assert all(p.status == "complete" for p in projects)
            return client.poll_stats.polls_sent

    return run


async def official_waits(url: str, ids: list[str], cap: float) -> tuple[float, int, int]:
    """The official SDK, cut off after ``cap`` seconds: (seconds it ran, GETs, waits finished)."""
    from magic_hour import AsyncClient as OfficialClient  # type: ignore[import-not-found]

    os.environ["MAGIC_HOUR_POLL_INTERVAL"] = "0.5"  # its default, stated
    client = OfficialClient(token=TOKEN, base_url=url)
    resource_ = client.v1.video_projects
    counted = resource_.get
    gets = finished = 0

    async def get(**kwargs: Any) -> Any:
        nonlocal gets
        gets += 1
        return await counted(**kwargs)

    resource_.get = get  # check_result calls self.get: count its GETs

    async def one(id: str) -> None:
        nonlocal finished
        await resource_.check_result(id=id, wait_for_completion=True, download_outputs=False)
        finished += 1

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(id)) for id in ids]
    # asyncio.wait's timeout fires late: the loop only gets control back between two time.sleep calls.
    await asyncio.wait(tasks, timeout=cap)
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed, gets, finished


async def measure_waits(n: int, rounds: int, duration: float = 2.0) -> str:
    contenders: dict[str, Waiter] = {
        "raw aiohttp, GET every 0.5 s": raw_waits,
        "magic-hour-async wait(), default PollPolicy() (max_rate=10)": ours_waits(None),
        "magic-hour-async wait(), PollPolicy(max_rate=inf)": ours_waits(None, math.inf),
        "magic-hour-async wait(), PollPolicy(jitter=0, max_rate=inf)": ours_waits(0.0, math.inf),
    }
    names = list(contenders)
    walls: dict[str, list[float]] = {name: [] for name in names}
    gets: dict[str, list[int]] = {name: [] for name in names}
    official: tuple[float, int, int] | None = None
    with emulator() as url:
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                ids = await insert(url, [duration] * n)
                start = time.perf_counter()
                gets[name].append(await contenders[name](url, ids))
                walls[name].append(time.perf_counter() - start)
        with contextlib.suppress(ImportError):
            import magic_hour  # type: ignore[import-not-found]  # noqa: F401

            official = await official_waits(url, await insert(url, [duration] * n), OFFICIAL_CAP)
    raw = names[0]
    rows = [
        [
            name,
            f"{median(walls[name]):.2f}",
            f"{median(walls[name]) / median(walls[raw]):.2f}x",
            f"{median(gets[name]):.0f}",
            f"{median(gets[name]) / median(gets[raw]):.2f}x",
        ]
        for name in names
    ]
    notes = ""
    if official is not None:
        seconds, official_gets, finished = official
        rows.append(
            [
                "official magic_hour check_result (one run, cut off)",
                f"> {seconds:.1f} ({finished} of {n} done)",
                "-",
                f"{official_gets} so far",
                "-",
            ]
        )
        notes = (
            f"\n\nThe official SDK's run was cut off after {OFFICIAL_CAP:.0f} s: it blocks the event loop in "
            "`time.sleep(0.5)` after every GET, so its waits progress one at a time."
        )
    dump(
        "waits",
        {
            "n": n,
            "rounds": rounds,
            "wall": {name: round(median(walls[name]), 3) for name in names},
            "gets": {name: median(gets[name]) for name in names},
            "official": official,
        },
    )
    return (
        f"{n} concurrent waits on {duration:g}-second renders, {rounds} rounds, medians; ratios to the raw "
        "poller.\n\n" + table(["contender", "wall s", "wall vs raw", "GETs", "GETs vs raw"], rows) + notes
    )


# -- mixed: log-uniform render times, time-scaled ---------------------------------------------------------


def mixed_durations(n: int) -> list[float]:
    """Render times evenly spread on a log scale from 3 s to 300 s (unscaled seconds)."""
    return [3 * 100 ** ((i + 0.5) / n) for i in range(n)]


def finished_at(created_at: str | datetime, duration: float) -> float:
    """Unix time a render finished: its ``created_at`` (emulator wall clock, ms) plus its duration."""
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return created_at.timestamp() + duration


Delays = dict[str, float]  # project id -> detection delay in real seconds


async def ours_mixed(
    url: str, ids: list[str], durations: dict[str, float], speed: float
) -> tuple[int, Delays]:
    delays: Delays = {}
    # No budget: this measures the schedule itself (50 renders polled every second at first would make the
    # default 10-a-second budget bind, which bench_ratelimit measures).
    policy = PollPolicy(initial=1.0 * speed, maximum=30.0 * speed, max_rate=math.inf)
    async with AsyncClient(token=TOKEN, base_url=url, poll=policy) as client:
        async for project in client.v1.video_projects.as_completed(ids):
            delays[project.id] = time.time() - finished_at(project.created_at, durations[project.id])
        return client.poll_stats.polls_sent, delays


async def fixed_mixed(
    url: str, ids: list[str], durations: dict[str, float], speed: float
) -> tuple[int, Delays]:
    delays: Delays = {}

    async def one(session: aiohttp.ClientSession, id: str) -> int:
        gets, body = await fixed_poll(session, url, id, 0.5 * speed)
        delays[id] = time.time() - finished_at(body["created_at"], durations[id])
        return gets

    async with http() as session:
        gets = await asyncio.gather(*(one(session, id) for id in ids))
    return sum(gets), delays


async def measure_mixed(n: int, speed: float, rounds: int) -> str:
    unscaled = mixed_durations(n)
    contenders = {
        "fixed 0.5-s poller (raw aiohttp)": fixed_mixed,
        "magic-hour-async as_completed()": ours_mixed,
    }
    names = list(contenders)
    gets: dict[str, list[int]] = {name: [] for name in names}
    p95: dict[str, list[float]] = {name: [] for name in names}
    p95_of_bound: dict[str, list[float]] = {name: [] for name in names}
    worst_of_bound: dict[str, list[float]] = {name: [] for name in names}
    with emulator(speed) as url:
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                ids = await insert(url, [d * speed for d in unscaled])
                render = dict(zip(ids, unscaled, strict=True))  # unscaled seconds
                count, delays = await contenders[name](
                    url, ids, {id: d * speed for id, d in render.items()}, speed
                )
                unscaled_delays = {id: delay / speed for id, delay in delays.items()}
                used = [delay / max(1.0, 0.15 * render[id]) for id, delay in unscaled_delays.items()]
                gets[name].append(count)
                p95[name].append(nearest_rank(list(unscaled_delays.values()), 0.95))
                p95_of_bound[name].append(nearest_rank(used, 0.95))
                worst_of_bound[name].append(max(used))
    fixed = names[0]
    rows = [
        [
            name,
            f"{median(gets[name]):,.0f}",
            f"{median(gets[name]) / median(gets[fixed]):.2f}x",
            f"{median(p95[name]):.2f}",
            f"{median(p95_of_bound[name]):.0%}",
            f"{median(worst_of_bound[name]):.0%}",
        ]
        for name in names
    ]
    dump(
        "mixed",
        {
            "n": n,
            "speed": speed,
            "rounds": rounds,
            "gets": {name: median(gets[name]) for name in names},
            "p95_delay_s": {name: round(median(p95[name]), 3) for name in names},
            "p95_of_bound": {name: round(median(p95_of_bound[name]), 3) for name in names},
            "worst_of_bound": {name: round(median(worst_of_bound[name]), 3) for name in names},
        },
    )
    return (
        f"{n} renders log-uniform from 3 s to 300 s at emulator speed {speed:g} (the batch takes "
        f"{300 * speed:g} s), {rounds} rounds, medians. Delays in unscaled seconds; the bound is "
        "max(1 s, 15% of the render time).\n\n"
        + table(
            ["contender", "GETs", "GETs vs fixed", "p95 delay s", "p95 delay / bound", "worst delay / bound"],
            rows,
        )
    )


# -- many: 10,000 concurrent waits, each run in a fresh client process ------------------------------------


def _status_mib(field: str) -> float | None:
    """``VmRSS``/``VmHWM`` in MiB, or None off Linux."""
    found = proc_status_bytes(field)
    return None if found is None else found / 2**20


def _rss_now() -> float:
    return _status_mib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_peak(exact: bool) -> float:
    peak = _status_mib("VmHWM") if exact else None
    return peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def many_client(url: str, n: int, mode: str, duration: float) -> dict[str, Any]:
    """One run of ``many`` in this (fresh) process; ``mode`` is a key of :data:`MANY_LABELS`."""
    pauses: list[float] = []  # full (oldest generation) collections, seconds each
    started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if info["generation"] == 2:
            if phase == "start":
                started = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started)

    ids = await insert(url, [duration] * n) if mode in ("wait_many", "tasks") else []
    lags: list[float] = []
    busy: list[
        float
    ] = []  # CPU time this thread spent per tick: the part of a lag that was work, not waiting
    running = True

    async def ticker() -> None:
        while running:
            before, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)
            busy.append(time.thread_time() - cpu)

    # No budget: this measures the scheduler's memory and loop lag with every poll it would send.
    async with AsyncClient(token=TOKEN, base_url=url, poll=PollPolicy(max_rate=math.inf)) as client:
        exact = reset_peak_rss()
        baseline = _rss_now()
        gc.callbacks.append(on_gc)
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        if mode == "wait_many":
            projects = await client.v1.video_projects.wait_many(ids)
        elif mode == "tasks":
            projects = await asyncio.gather(*(client.v1.video_projects.wait(id=id) for id in ids))
        elif mode == "bare_tasks":
            # asyncio's own floor for this shape: as many tasks, each awaiting a future, no SDK at all.
            loop = asyncio.get_running_loop()
            futures = [loop.create_future() for _ in range(n)]
            loop.call_later(duration, lambda: [f.set_result(None) for f in futures])
            projects = await asyncio.gather(*(_await(f) for f in futures))
        else:
            projects = []
            await asyncio.sleep(duration)
        elapsed = time.perf_counter() - start
        running = False
        await ticking
        gc.callbacks.remove(on_gc)
        assert len(projects) == (0 if mode == "idle" else n)
        polls = client.poll_stats.polls_sent
    return {
        "mode": mode,
        "seconds": round(elapsed, 2),
        "polls": polls,
        "rss_before_mib": round(baseline, 1),
        "peak_rss_mib": round(_rss_peak(exact), 1),
        "max_lag_ms": round(max(lags) * 1000, 1),
        "p99_lag_ms": round(nearest_rank(lags, 0.99) * 1000, 1),
        "max_busy_ms": round(max(busy) * 1000, 1),
        "full_gcs": len(pauses),
        "max_full_gc_ms": round(max(pauses, default=0.0) * 1000, 1),
    }


async def _await(future: asyncio.Future[None]) -> None:
    await future


def run_many_client(url: str, n: int, mode: str, duration: float) -> dict[str, Any]:
    args = ["many-client", url, str(n), mode, str(duration)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scheduler", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


MANY_LABELS = {
    "idle": "idle loop, ticker only (the machine's noise)",
    "bare_tasks": "no SDK: one task per project awaiting a future (asyncio's floor for tasks)",
    "wait_many": "one wait_many() call",
    "tasks": "one wait() task per project, created at once",
}


async def measure_many(n: int, rounds: int, duration: float = 5.0) -> str:
    modes = list(MANY_LABELS)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with emulator() as url:
        for r in range(rounds):
            for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                runs[mode].append(await asyncio.to_thread(run_many_client, url, n, mode, duration))

    def med(mode: str, field: str) -> float:
        return median([run[field] for run in runs[mode]])

    def spread(mode: str, field: str) -> str:
        values = sorted(run[field] for run in runs[mode])
        return f"{med(mode, field):g} ({values[0]:g}-{values[-1]:g})"

    rows = [
        [
            MANY_LABELS[mode],
            f"{med(mode, 'seconds'):.1f}",
            f"{med(mode, 'polls'):,.0f}",
            f"{med(mode, 'rss_before_mib'):.0f}",
            spread(mode, "peak_rss_mib"),
            spread(mode, "max_lag_ms"),
            f"{med(mode, 'p99_lag_ms'):g}",
            spread(mode, "max_busy_ms"),
            f"{med(mode, 'full_gcs'):g}",
            spread(mode, "max_full_gc_ms"),
        ]
        for mode in modes
    ]
    dump("many", {"n": n, "rounds": rounds, "runs": runs})
    return (
        f"{n:,} concurrent waits on {duration:g}-second renders (default policy, max_rate=inf), each run in "
        f"a fresh client process, {rounds} rounds; medians (min-max).\n\n"
        + table(
            [
                "shape",
                "wall s",
                "GETs",
                "RSS before MiB",
                "peak RSS MiB",
                "max loop lag ms",
                "p99 lag ms",
                "max CPU per tick ms",
                "full GCs",
                "longest full GC ms",
            ],
            rows,
        )
    )


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "many-client":
    _, _, url_, n_, mode_, duration_ = sys.argv
    print(json.dumps(asyncio.run(many_client(url_, int(n_), mode_, float(duration_)))))
