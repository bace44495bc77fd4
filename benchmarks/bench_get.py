"""Sequential ``get()`` throughput: AsyncClient vs raw aiohttp (GET + json) vs the official SDK.

Each contender makes N sequential GETs against the same loopback server process; a round runs every
contender once (in rotating order, so none always goes first); the table reports the median over rounds of
requests per second and each contender's ratio to raw aiohttp measured in the same round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from benchmarks._common import TOKEN, dump, median, server_process, table

PROJECT_ID = "clx7uu86w0a5qp55yxz315r6r"
Runner = Callable[[str, int], Awaitable[float]]


async def raw_aiohttp(url: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v1/video-projects/{PROJECT_ID}", headers=headers) as warm:
            await warm.json()
        start = time.perf_counter()
        for _ in range(n):
            async with session.get(f"{url}/v1/video-projects/{PROJECT_ID}", headers=headers) as response:
                await response.json()
        return time.perf_counter() - start


async def ours_async(url: str, n: int) -> float:
    from magic_hour_async import AsyncClient

    async with AsyncClient(token=TOKEN, base_url=url) as client:
        await client.v1.video_projects.get(id=PROJECT_ID)
        start = time.perf_counter()
        for _ in range(n):
            await client.v1.video_projects.get(id=PROJECT_ID)
        return time.perf_counter() - start


async def ours_observed(url: str, n: int) -> float:
    """AsyncClient with a hook and OpenTelemetry on: SDK tracer and meter, spans batched to a sink.

    The batch span processor is what production tracing uses (the simple one exports on the request path).
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from magic_hour_async import AsyncClient, otel

    class Sink(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Sink()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    events: list[object] = []
    async with AsyncClient(token=TOKEN, base_url=url, hooks=[events.append]) as client:
        otel.instrument(client, tracer_provider=tracer_provider, meter_provider=meter_provider)
        await client.v1.video_projects.get(id=PROJECT_ID)
        start = time.perf_counter()
        for _ in range(n):
            await client.v1.video_projects.get(id=PROJECT_ID)
        elapsed = time.perf_counter() - start
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return elapsed


async def ours_sync(url: str, n: int) -> float:
    from magic_hour_async import Client  # type: ignore[attr-defined]

    def run() -> float:
        with Client(token=TOKEN, base_url=url) as client:
            client.v1.video_projects.get(id=PROJECT_ID)
            start = time.perf_counter()
            for _ in range(n):
                client.v1.video_projects.get(id=PROJECT_ID)
            return time.perf_counter() - start

    return await asyncio.to_thread(run)


async def official_async(url: str, n: int) -> float:
    from magic_hour import AsyncClient  # type: ignore[import-not-found]

    client = AsyncClient(token=TOKEN, base_url=url)
    await client.v1.video_projects.get(id=PROJECT_ID)
    start = time.perf_counter()
    for _ in range(n):
        await client.v1.video_projects.get(id=PROJECT_ID)
    return time.perf_counter() - start


async def official_sync(url: str, n: int) -> float:
    from magic_hour import Client  # type: ignore[import-not-found]

    def run() -> float:
        client = Client(token=TOKEN, base_url=url)
        client.v1.video_projects.get(id=PROJECT_ID)
        start = time.perf_counter()
        for _ in range(n):
            client.v1.video_projects.get(id=PROJECT_ID)
        return time.perf_counter() - start

    return await asyncio.to_thread(run)


def contenders() -> dict[str, Runner]:
    found: dict[str, Runner] = {"raw aiohttp": raw_aiohttp, "magic-hour-async AsyncClient": ours_async}
    try:
        import opentelemetry.sdk  # noqa: F401

        found["AsyncClient + hooks + OpenTelemetry"] = ours_observed
    except ImportError:
        pass
    try:
        import magic_hour_async

        if hasattr(magic_hour_async, "Client"):
            found["magic-hour-async Client (sync)"] = ours_sync
    except ImportError:
        pass
    try:
        import magic_hour  # type: ignore[import-not-found]  # noqa: F401

        found["official magic_hour AsyncClient"] = official_async
        found["official magic_hour Client (sync)"] = official_sync
    except ImportError:
        pass
    return found


async def measure(n: int, rounds: int) -> str:
    runners = contenders()
    names = list(runners)
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    with server_process("benchmarks._fixed_server") as url:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            elapsed = {name: await runners[name](url, n) for name in order}
            for name in names:
                rates[name].append(n / elapsed[name])
                ratios[name].append(elapsed["raw aiohttp"] / elapsed[name])
    rows = [[name, f"{median(rates[name]):,.0f}", f"{median(ratios[name]):.2f}x"] for name in names]
    dump("get", {name: round(median(ratios[name]), 3) for name in names})
    return f"Sequential `get()`: {n} requests per contender per round, {rounds} rounds, medians.\n\n" + table(
        ["contender", "requests/s", "vs raw aiohttp"], rows
    )
