"""Sequential ``get()`` throughput: AsyncClient vs raw aiohttp (GET + json) vs the official SDK.

Every contender opens its client once, against the same loopback server process, and warms it up; then the
measurement runs in rounds, and in each round every contender (in rotating order, so none always goes first)
makes ``n`` sequential GETs, timed. Short interleaved rounds keep a load change on a shared machine from
favouring whoever ran at that moment; a garbage collection before each timed block keeps one contender's
garbage from being collected on another's clock. The server and the client run on different cores (where the
machine has two or more), as a remote API would. The table reports the median over rounds of requests per
second and of each contender's ratio to raw aiohttp in the same round.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from benchmarks._common import TOKEN, cores_apart, dump, median, server_process, table

PROJECT_ID = "clx7uu86w0a5qp55yxz315r6r"
WARM_UP = 50
Call = Callable[[], Awaitable[Any]]
#: Runs ``n`` sequential GETs and returns the seconds they took.
Block = Callable[[int], Awaitable[float]]
#: A contender: given the server's URL, an async context that opens its client and yields its block runner.
Contender = Callable[[str], contextlib.AbstractAsyncContextManager[Block]]


@contextlib.asynccontextmanager
async def raw_aiohttp(url: str) -> AsyncIterator[Block]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    target = f"{url}/v1/video-projects/{PROJECT_ID}"
    async with aiohttp.ClientSession() as session:

        async def get() -> Any:
            async with session.get(target, headers=headers) as response:
                return await response.json()

        yield lambda n: _block(get, n)


@contextlib.asynccontextmanager
async def ours_async(url: str) -> AsyncIterator[Block]:
    from magic_hour_async import AsyncClient

    async with AsyncClient(token=TOKEN, base_url=url) as client:
        yield lambda n: _block(lambda: client.v1.video_projects.get(id=PROJECT_ID), n)


@contextlib.asynccontextmanager
async def ours_observed(url: str) -> AsyncIterator[Block]:
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

    def keep(event: object) -> None:  # a hook that records every event, as a test or a log handler would
        events.append(event)
        if len(events) >= 1000:
            events.clear()

    try:
        async with AsyncClient(token=TOKEN, base_url=url, hooks=[keep]) as client:
            otel.instrument(client, tracer_provider=tracer_provider, meter_provider=meter_provider)
            yield lambda n: _block(lambda: client.v1.video_projects.get(id=PROJECT_ID), n)
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


@contextlib.asynccontextmanager
async def ours_sync(url: str) -> AsyncIterator[Block]:
    from magic_hour_async import Client  # type: ignore[attr-defined]

    with Client(token=TOKEN, base_url=url) as client:
        yield lambda n: asyncio.to_thread(_sync_block, client, n)


@contextlib.asynccontextmanager
async def official_async(url: str) -> AsyncIterator[Block]:
    from magic_hour import AsyncClient  # type: ignore[import-not-found]

    client = AsyncClient(token=TOKEN, base_url=url)
    yield lambda n: _block(lambda: client.v1.video_projects.get(id=PROJECT_ID), n)


@contextlib.asynccontextmanager
async def official_sync(url: str) -> AsyncIterator[Block]:
    from magic_hour import Client  # type: ignore[import-not-found]

    client = Client(token=TOKEN, base_url=url)
    yield lambda n: asyncio.to_thread(_sync_block, client, n)


def _sync_block(client: Any, n: int) -> float:
    """A blocking client's block, run in a thread (its own calls block that thread, not the loop)."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(n):
        client.v1.video_projects.get(id=PROJECT_ID)
    return time.perf_counter() - started


def contenders() -> dict[str, Contender]:
    found: dict[str, Contender] = {"raw aiohttp": raw_aiohttp, "magic-hour-async AsyncClient": ours_async}
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


async def _block(get: Call, n: int) -> float:
    gc.collect()
    started = time.perf_counter()
    for _ in range(n):
        await get()
    return time.perf_counter() - started


async def measure(n: int, rounds: int) -> str:
    names = list(contenders())
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    with cores_apart() as server_cpus, server_process("benchmarks._fixed_server", cpus=server_cpus) as url:
        async with contextlib.AsyncExitStack() as stack:
            blocks = {name: await stack.enter_async_context(make(url)) for name, make in contenders().items()}
            for block in blocks.values():
                await block(WARM_UP)
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                elapsed = {name: await blocks[name](n) for name in order}
                for name in names:
                    rates[name].append(n / elapsed[name])
                    ratios[name].append(elapsed["raw aiohttp"] / elapsed[name])
    rows = [[name, f"{median(rates[name]):,.0f}", f"{median(ratios[name]):.2f}x"] for name in names]
    dump("get", {name: round(median(ratios[name]), 3) for name in names})
    return f"Sequential `get()`: {n} requests per contender per round, {rounds} rounds, medians.\n\n" + table(
        ["contender", "requests/s", "vs raw aiohttp"], rows
    )
