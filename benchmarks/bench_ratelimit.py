"""Waiting for renders behind a hostile proxy: sporadic 429s and 503s, a real rate limit, the poll budget.

The emulator (``python -m magic_hour_async.testing``) and ``benchmarks/_hostile_proxy.py`` in front of it each
run in their own process; the client talks to the proxy, which forwards to the emulator or answers project
GETs itself as configured before each run, and logs the arrival time and status of every project GET: the
rates and shares below are counted there, by the server side. Fresh projects with chosen render durations are
inserted through the emulator's test-only ``POST /_emulator/projects`` right before each run.

- ``faults``: 1,000 waits on renders of 2 to 30 s (evenly spread), fault-free and behind 3% random 429s
  (``Retry-After: 1``) plus 10% random 503s, alternating within each round: all complete, wall time of the
  faulty run vs the fault-free one. Time-scaled by ``speed``: render times, ``Retry-After``, ``initial`` and
  ``maximum`` are multiplied by it and ``max_rate`` divided by it, so the run is the default policy's at ``1 /
  speed`` times the pace (the same scaling as ``bench_scheduler``'s ``mixed``).
- ``bucket``: a token bucket of R project GETs a second on the proxy (burst R; 429 with ``Retry-After`` and
  the exact ``retry-after-ms`` beyond it), and 300 renders polled every second (300 GETs a second wanted): the
  rate served and the share of 429s once the first ten seconds have passed.
- ``budget``: 1,000 waits created at once; the most project GETs the proxy saw in any one-second window."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import TOKEN, dump, median, server_process, table
from benchmarks.bench_scheduler import emulator, http, insert
from magic_hour_async import AsyncClient, PollPolicy, WaitTimeoutError


@contextlib.contextmanager
def hostile_proxy() -> Iterator[str]:
    """The proxy's URL, in front of a fresh emulator."""
    with emulator() as upstream, server_process("benchmarks._hostile_proxy", "--upstream", upstream) as url:
        yield url


async def configure(proxy: str, **config: float) -> None:
    async with http() as session, session.post(f"{proxy}/_proxy/config", json=config) as response:
        response.raise_for_status()


async def proxy_log(proxy: str) -> list[tuple[float, int]]:
    async with http() as session, session.get(f"{proxy}/_proxy/log") as response:
        return [(float(t), int(status)) for t, status in await response.json()]


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` in any window ``[t, t + 1)``."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def lowest_allowed_rate(client: AsyncClient, done: asyncio.Event) -> float:
    """The lowest ``poll_stats.allowed_rate`` seen while the run lasts (sampled every 50 ms)."""
    lowest = math.inf
    while not done.is_set():
        allowed = client.poll_stats.allowed_rate
        lowest = min(lowest, math.inf if allowed is None else allowed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.05)
    return lowest


# -- faults: 1,000 waits, fault-free vs 3% 429s and 10% 503s -----------------------------------------------


def faults_durations(n: int) -> list[float]:
    return [2 + 28 * i / max(n - 1, 1) for i in range(n)]


async def faults_run(proxy: str, n: int, speed: float, hostile: bool, max_rate: float) -> dict[str, Any]:
    ids = await insert(proxy, [d * speed for d in faults_durations(n)])
    if hostile:
        await configure(proxy, throttle=0.03, fail=0.10, retry_after_ms=1000 * speed, seed=len(ids))
    else:
        await configure(proxy)
    policy = PollPolicy(initial=1.0 * speed, maximum=30.0 * speed, max_rate=max_rate / speed)
    async with AsyncClient(token=TOKEN, base_url=proxy, poll=policy) as client:
        done = asyncio.Event()
        watcher = asyncio.create_task(lowest_allowed_rate(client, done))
        start = time.perf_counter()
        projects = await client.v1.video_projects.wait_many(ids, timeout=3600)
        wall = time.perf_counter() - start
        done.set()
        lowest = await watcher
        stats = client.poll_stats
    log = await proxy_log(proxy)
    return {
        "wall": wall,
        "complete": sum(p.status == "complete" for p in projects),
        "gets": len(log),
        "429": sum(status == 429 for _, status in log),
        "503": sum(status == 503 for _, status in log),
        "lowest_allowed": lowest * speed,  # in unscaled polls per second
        "final_allowed": (stats.allowed_rate or math.inf) * speed,
        "polls_sent": stats.polls_sent,
    }


async def measure_faults(n: int, speed: float, rounds: int, max_rate: float = PollPolicy().max_rate) -> str:
    arms = {"fault-free": False, "3% 429 (Retry-After 1) + 10% 503": True}
    names = list(arms)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with hostile_proxy() as proxy:
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                runs[name].append(await faults_run(proxy, n, speed, arms[name], max_rate))

    def med(name: str, field: str) -> float:
        return median([run[field] for run in runs[name]])

    calm = med(names[0], "wall")
    rows = [
        [
            name,
            f"{min(run['complete'] for run in runs[name])} of {n}",
            f"{med(name, 'wall'):.1f} ({med(name, 'wall') / speed:.0f} unscaled)",
            f"{med(name, 'wall') / calm:.2f}x",
            f"{med(name, 'gets'):,.0f}",
            f"{med(name, '429'):,.0f} / {med(name, '503'):,.0f}",
            f"{min(run['lowest_allowed'] for run in runs[name]):g}",
        ]
        for name in names
    ]
    dump("faults", {"n": n, "speed": speed, "rounds": rounds, "max_rate": max_rate, "runs": runs})
    return (
        f"{n:,} waits on renders of 2-30 s, time-scaled by {speed:g} (default policy scaled alike, "
        f"max_rate {max_rate:g} unscaled: {max_rate / speed:g}/s), {rounds} rounds, medians; wall ratio to "
        "the fault-free run.\n\n"
        + table(
            [
                "proxy",
                "complete",
                "wall s",
                "wall vs fault-free",
                "GETs",
                "429s / 503s",
                "lowest allowed rate (unscaled polls/s)",
            ],
            rows,
        )
    )


# -- bucket: a real rate limit of R GETs a second ------------------------------------------------------------


async def bucket_run(proxy: str, rate: float, max_rate: float, seconds: float, n: int) -> dict[str, Any]:
    ids = await insert(proxy, [100_000.0] * n)
    await configure(proxy, rate=rate, burst=rate)
    policy = PollPolicy(multiplier=1.0, max_rate=max_rate)  # every render polled every second
    async with AsyncClient(token=TOKEN, base_url=proxy, poll=policy) as client:
        with contextlib.suppress(WaitTimeoutError):
            await client.v1.video_projects.wait_many(ids, timeout=seconds)
        allowed = client.poll_stats.allowed_rate
    log = [(t, status) for t, status in await proxy_log(proxy) if 10.0 <= t < seconds]
    served = sum(status == 200 for _, status in log)
    return {
        "served_per_s": served / (seconds - 10.0),
        "share_429": sum(status == 429 for _, status in log) / len(log),
        "allowed": allowed,
    }


async def measure_bucket(cases: list[tuple[float, float]], seconds: float, n: int) -> str:
    rows = []
    results = []
    with hostile_proxy() as proxy:
        for rate, max_rate in cases:
            result = await bucket_run(proxy, rate, max_rate, seconds, n)
            results.append({"rate": rate, "max_rate": max_rate, **result})
            rows.append(
                [
                    f"{rate:g}",
                    "none (inf)" if math.isinf(max_rate) else f"{max_rate:g}",
                    f"{result['served_per_s']:.1f}",
                    f"{result['served_per_s'] / rate:.2f}",
                    f"{result['share_429']:.1%}",
                ]
            )
    dump("bucket", {"seconds": seconds, "n": n, "results": results})
    return (
        f"{n} renders polled every second (PollPolicy(multiplier=1)), for {seconds:g} s; counted from 10 s "
        "on, one run per row.\n\n"
        + table(["server limit R (GETs/s)", "max_rate", "served GETs/s", "served / R", "429 share"], rows)
    )


# -- budget: 1,000 waits created at once ---------------------------------------------------------------------


async def budget_run(proxy: str, n: int, max_rate: float, seconds: float) -> dict[str, Any]:
    ids = await insert(proxy, [5.0] * n)
    await configure(proxy)
    async with AsyncClient(token=TOKEN, base_url=proxy, poll=PollPolicy(max_rate=max_rate)) as client:
        # The client's side too: when each poll left the scheduler (a hook on a private attribute).
        sent: list[float] = []
        fetch = client._scheduler._fetch

        async def counted(kind: str, id: str) -> Any:
            sent.append(time.monotonic())
            return await fetch(kind, id)

        client._scheduler._fetch = counted
        start = time.perf_counter()
        complete = 0
        with contextlib.suppress(WaitTimeoutError):
            tasks = [asyncio.ensure_future(client.v1.video_projects.wait(id=id)) for id in ids]
            finished, pending = await asyncio.wait(tasks, timeout=seconds)
            complete = len(finished)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - start
    times = [t for t, _ in await proxy_log(proxy)]
    return {
        "wall": wall,
        "complete": complete,
        "gets": len(times),
        "busiest": busiest_second(times),
        "busiest_sent": busiest_second(sent),
    }


async def measure_budget(n: int, cases: list[tuple[float, float]]) -> str:
    rows = []
    results = []
    with hostile_proxy() as proxy:
        for max_rate, seconds in cases:
            result = await budget_run(proxy, n, max_rate, seconds)
            results.append({"max_rate": max_rate, "seconds": seconds, **result})
            rows.append(
                [
                    "none (inf, as before)" if math.isinf(max_rate) else f"{max_rate:g}",
                    f"{result['wall']:.1f}",
                    f"{result['complete']} of {n}",
                    f"{result['gets']:,}",
                    f"{result['gets'] / result['wall']:.1f}",
                    f"{result['busiest_sent']}",
                    f"{result['busiest']}",
                ]
            )
    dump("budget", {"n": n, "results": results})
    return (
        f"{n:,} wait() tasks on 5-s renders created at once, one run per row (cut off at the row's time when "
        "the budget cannot finish them sooner); GETs counted by the proxy.\n\n"
        + table(
            [
                "max_rate",
                "s observed",
                "complete",
                "GETs",
                "GETs/s",
                "most polls sent in any 1-s window (client)",
                "most GETs received in any 1-s window (proxy)",
            ],
            rows,
        )
    )
