"""OpenTelemetry spans and metrics, read back from the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is a test dependency of the otel extra")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import magic_hour_async as mh
from magic_hour_async import otel
from magic_hour_async.testing import Emulator, ManualClock
from tests._scripted import Scripted, ScriptedServer

pytestmark = pytest.mark.asyncio

FAST = mh.PollPolicy(initial=0.01, maximum=0.02)
GET = "GET /v1/image-projects/{id}"


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self._data: Any = None

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every point of ``metric``: a sum's value or a histogram's count."""
        # Read once per test: opentelemetry-sdk 1.20 empties a cumulative histogram on a second read.
        if self._data is None:
            self._data = self.reader.get_metrics_data()
        data = self._data
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        for point in m.data.data_points:
                            value = getattr(point, "value", None)
                            found.append((dict(point.attributes or {}), getattr(point, "count", value)))
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=9, clock=ManualClock(), output_size=256) as emulator:
        yield emulator


async def _no_sleep(_: float) -> None:
    return None


@pytest_asyncio.fixture
async def client(emu: Emulator, telemetry: Telemetry) -> AsyncIterator[mh.AsyncClient]:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client:
        client._transport._sleep = _no_sleep
        otel.instrument(
            client, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        yield client


async def test_a_get_is_one_client_span_with_http_attributes(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    project_id = emu.create_project("image", status="complete")
    await client.v1.image_projects.get(id=project_id)
    [span] = telemetry.finished()
    assert span.name == "GET /v1/image-projects/{id}"
    assert span.kind == SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.template"] == "/v1/image-projects/{id}"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == emu.port
    assert attributes["url.full"] == f"{emu.url}/v1/image-projects/{project_id}"
    assert "http.request.resend_count" not in attributes
    assert telemetry.points("magic_hour.client.requests") == [
        (
            {
                "http.request.method": "GET",
                "url.template": "/v1/image-projects/{id}",
                "http.response.status_code": 200,
            },
            1,
        )
    ]


async def test_a_retried_get_has_two_spans_and_counts_the_retry(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    project_id = emu.create_project("image", status="complete")
    emu.faults.add(route=GET, status=503, times=1)
    await client.v1.image_projects.get(id=project_id)
    failed, ok = telemetry.finished()
    assert failed.status.status_code == StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "503"
    assert dict(ok.attributes or {})["http.request.resend_count"] == 1
    assert [value for _, value in telemetry.points("magic_hour.client.retries")] == [1]
    points = telemetry.points("magic_hour.client.requests")
    statuses = {a["http.response.status_code"]: v for a, v in points}
    assert statuses == {503: 1, 200: 1}


async def test_spans_are_children_of_the_callers_span(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    project_id = emu.create_project("image", status="complete")
    with tracer.start_as_current_span("handler") as parent:
        await client.v1.image_projects.get(id=project_id)
    request = telemetry.finished("GET /v1/image-projects/{id}")[0]
    assert request.parent is not None
    assert request.parent.span_id == parent.get_span_context().span_id


async def test_a_request_span_covers_the_exchange_and_is_finished_when_the_call_returns(
    client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    # The SDK's span start runs when hooks get RequestSent, on the loop's next turn: the span must still
    # start when the request went out and carry the caller's context, and be ended by the time the awaited
    # call returns (a caller reads its exporter right after).
    from aiohttp import web

    from magic_hour_async.events import RequestSent

    arrived: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        arrived.append(time.time_ns())
        return web.json_response({"id": request.match_info["id"], "status": "complete"})

    app = web.Application()
    app.router.add_get("/v1/image-projects/{id}", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with mh.AsyncClient(token="t0ken-for-tests", base_url=url) as other:
            otel.instrument(
                other, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
            )
            sent: list[int] = []  # when the request went out, as RequestSent says
            other.add_hook(
                lambda event: sent.append(event.sent_at_ns) if isinstance(event, RequestSent) else None
            )
            tracer = telemetry.tracer_provider.get_tracer("app")
            with tracer.start_as_current_span("handler") as parent:
                before = time.time_ns()
                await other.v1.image_projects.get(id="p1")
                [span] = telemetry.finished(GET)  # read at once: no loop turn after the call
                after = time.time_ns()
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time == sent[0] <= arrived[0] <= span.end_time <= after
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert dict(span.attributes or {})["http.response.status_code"] == 200


async def test_a_cancelled_call_ends_its_span_and_tells_the_hooks(telemetry: Telemetry) -> None:
    # A web handler whose client hung up is cancelled mid-request: the request's span must end (not stay
    # open in the recorder for the life of the process) and hooks must hear the request is over.
    from aiohttp import web

    from magic_hour_async.events import RequestFailed

    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(3600)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v1/image-projects/{id}", handle)
    seen: list[object] = []
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with mh.AsyncClient(token="t0ken-for-tests", base_url=url, hooks=[seen.append]) as other:
            otel.instrument(
                other, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
            )
            call = asyncio.ensure_future(other.v1.image_projects.get(id="p1"))
            await asyncio.wait_for(arrived.wait(), 10)  # the request is in flight
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
    [failed] = [event for event in seen if isinstance(event, RequestFailed)]
    assert isinstance(failed.error, asyncio.CancelledError)
    [span] = telemetry.finished(GET)
    assert dict(span.attributes or {})["error.type"] == "CancelledError"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_request_answered_before_the_loop_turns_still_gets_its_whole_span(
    telemetry: Telemetry,
) -> None:
    # The answer can end a request before the loop turns to deliver its RequestSent: the span is then
    # started and ended on the spot, from the request's own start time; nothing is lost or left open.
    from magic_hour_async._hooks import Hooks

    hooks = Hooks()
    hooks.add(
        otel._Recorder(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    )
    before = time.time_ns()
    request_id = hooks.request_sent(
        "GET", "http://127.0.0.1:9/v1/image-projects/p1", "/v1/image-projects/p1", 0
    )
    hooks.request_answered(request_id, 404, 0.0)
    [span] = telemetry.finished(GET)
    assert dict(span.attributes or {})["http.response.status_code"] == 404
    assert span.status.status_code == StatusCode.ERROR
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time <= span.end_time
    await asyncio.sleep(0)  # the delivery scheduled for the request finds nothing left to do
    assert len(telemetry.finished()) == 1


async def test_a_paid_create_and_its_wait_make_a_render_span_linked_to_three_polls(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    polls = 0
    two_polls = asyncio.Event()

    def count(event: Any) -> None:
        nonlocal polls
        if type(event).__name__ == "RenderPolled":
            polls += 1
            if polls == 2:
                two_polls.set()

    client.add_hook(count)
    created = await client.v1.ai_image_generator.create(image_count=1, style={"prompt": "fox"})
    waiting = asyncio.ensure_future(client.v1.image_projects.wait(id=created.id, timeout=30))
    await asyncio.wait_for(two_polls.wait(), 10)
    emu.complete(created.id)
    project = await waiting
    [post] = telemetry.finished("POST /v1/ai-image-generator")
    [render] = telemetry.finished("magic_hour.render ai-image-generator")
    attributes = dict(render.attributes or {})
    assert attributes["magic_hour.project.id"] == created.id
    assert attributes["magic_hour.tool"] == "ai-image-generator"
    assert attributes["magic_hour.render.status"] == "complete"
    assert attributes["magic_hour.credits_charged"] == project.credits_charged
    assert render.status.status_code != StatusCode.ERROR
    gets = telemetry.finished("GET /v1/image-projects/{id}")
    assert len(gets) == polls >= 3
    assert all([link.context.span_id for link in g.links] == [render.context.span_id] for g in gets)
    assert dict(post.attributes or {})["http.response.status_code"] == 200
    assert telemetry.points("magic_hour.renders") == [
        ({"magic_hour.render.kind": "image", "magic_hour.render.status": "complete"}, 1)
    ]
    assert telemetry.points("magic_hour.credits_charged") == [
        ({"magic_hour.render.kind": "image"}, project.credits_charged)
    ]
    [(_, waits)] = telemetry.points("magic_hour.render.wait.duration")
    assert waits == 1


async def test_a_failed_render_marks_its_span_as_an_error(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry
) -> None:
    created = await client.v1.ai_image_generator.create(image_count=1, style={"prompt": "fox"})
    emu.fail(created.id, code="no_source_face")
    project = await client.v1.image_projects.wait(id=created.id, timeout=30)
    assert project.status == "error"
    [render] = telemetry.finished("magic_hour.render ai-image-generator")
    assert render.status.status_code == StatusCode.ERROR
    assert dict(render.attributes or {})["magic_hour.render.status"] == "error"
    assert telemetry.points("magic_hour.renders") == [
        ({"magic_hour.render.kind": "image", "magic_hour.render.status": "error"}, 1)
    ]


async def test_trace_context_reaches_the_api_only_when_asked(
    scripted: ScriptedServer, telemetry: Telemetry
) -> None:
    body = {"id": "p1", "status": "complete", "type": "AI_IMAGE", "image_count": 1}
    scripted.add("/v1/image-projects/p1", Scripted(body=body), Scripted(body=body))
    for propagate in (False, True):
        async with mh.AsyncClient(token="mhk_test_otel", base_url=scripted.url) as client:
            otel.instrument(client, tracer_provider=telemetry.tracer_provider, propagate=propagate)
            await client.v1.image_projects.get(id="p1")
    seen = [r.headers.get("traceparent") for r in scripted.requests]
    spans = telemetry.finished(GET)
    assert seen[0] is None
    assert seen[1] is not None
    assert seen[1].split("-")[2] == format(spans[1].context.span_id, "016x")


async def test_a_download_is_a_span_with_the_file_and_its_bytes(
    emu: Emulator, client: mh.AsyncClient, telemetry: Telemetry, tmp_path: Path
) -> None:
    project_id = emu.create_project("image", status="complete")
    project = await client.v1.image_projects.get(id=project_id)
    [saved] = await client.download_outputs(project, tmp_path)
    [span] = telemetry.finished("magic_hour.download")
    assert dict(span.attributes or {}) == {"magic_hour.file.name": saved.name, "magic_hour.file.size": 256}
    assert telemetry.points("magic_hour.transfer.bytes") == [
        ({"magic_hour.transfer.direction": "download"}, 256)
    ]
    assert [s.name for s in telemetry.finished()] == ["GET /v1/image-projects/{id}", "magic_hour.download"]
