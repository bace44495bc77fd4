"""Lifecycle events for hooks: dispatch rules, the render timeline, events from real calls over loopback."""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async import events
from magic_hour_async._hooks import Hooks, project_id_of, route_template
from magic_hour_async._render_timeline import RenderTimeline
from magic_hour_async.testing import Emulator, ManualClock

FAST = mh.PollPolicy(initial=0.01, maximum=0.02)


@pytest.mark.parametrize(
    ("path", "route", "project"),
    [
        ("/v1/video-projects/abc", "/v1/video-projects/{id}", "abc"),
        ("/v1/image-projects/x%2Fy?q=1", "/v1/image-projects/{id}", "x%2Fy"),
        ("/v1/face-detection/f1", "/v1/face-detection/{id}", "f1"),
        ("/v1/ai-image-generator", "/v1/ai-image-generator", None),
        ("/v1/files/upload-urls", "/v1/files/upload-urls", None),
    ],
)
def test_route_templates_keep_cardinality_low(path: str, route: str, project: str | None) -> None:
    assert route_template(path) == route
    assert project_id_of(path) == project


def test_a_raising_hook_is_logged_once_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[events.Event] = []

    def broken(event: events.Event) -> None:
        raise RuntimeError("hook bug")

    hooks = Hooks([broken, seen.append])
    event = events.RenderPolled(kind="image", project_id="p", status="queued")
    with caplog.at_level(logging.ERROR, logger="magic_hour_async.hooks"):
        hooks.emit(event)
        hooks.emit(event)
    assert seen == [event, event]
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "hook test_a_raising_hook_is_logged_once_and_the_others_still_run.<locals>.broken raised"
    ]


def test_hooks_must_be_callable() -> None:
    with pytest.raises(mh.ConfigurationError, match="callable"):
        Hooks(["not a hook"])  # type: ignore[list-item]


@pytest.mark.asyncio
async def test_coroutine_hooks_run_as_tasks_that_close_awaits() -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def slow(event: events.Event) -> None:
        await release.wait()
        done.append(type(event).__name__)

    hooks = Hooks([slow])
    hooks.emit(events.RenderPolled(kind="image", project_id="p", status="queued"))
    assert done == []
    closing = asyncio.ensure_future(hooks.aclose())
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await closing
    assert done == ["RenderPolled"]


def test_the_timeline_measures_queued_and_rendering_as_observed() -> None:
    now = [100.0]
    timeline = RenderTimeline(clock=lambda: now[0])
    timeline.created("p")
    now[0] = 103.0
    assert timeline.observe("video", "p", "queued", None)[1] is None
    now[0] = 105.0
    timeline.observe("video", "p", "rendering", None)
    now[0] = 112.5
    polled, finished = timeline.observe("video", "p", "complete", 40)
    assert polled == events.RenderPolled(kind="video", project_id="p", status="complete")
    assert finished == events.RenderFinished(
        kind="video",
        project_id="p",
        status="complete",
        credits_charged=40,
        queued_seconds=5.0,
        rendering_seconds=7.5,
    )
    assert len(timeline) == 0


def test_the_timeline_says_nothing_it_did_not_see() -> None:
    timeline = RenderTimeline(clock=lambda: 7.0)
    _, finished = timeline.observe("image", "q", "error", 0)
    assert finished is not None
    assert (finished.queued_seconds, finished.rendering_seconds) == (None, None)


def test_events_are_frozen_and_pickle() -> None:
    event = events.RenderCreated(tool="ai-image-generator", project_id="p", credits=5)
    with pytest.raises(AttributeError):
        event.credits = 6  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(event)) == event


# -- events from real calls -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=3, clock=ManualClock(), output_size=512) as emulator:
        yield emulator


def _names(seen: list[Any]) -> list[str]:
    return [type(e).__name__ for e in seen]


@pytest.mark.asyncio
async def test_a_retried_get_reports_request_response_and_retry(emu: Emulator) -> None:
    seen: list[events.Event] = []
    project_id = emu.create_project("image", status="complete")
    emu.faults.add(route="GET /v1/image-projects/{id}", status=503, times=1)
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, hooks=[seen.append]) as client:
        client._transport._sleep = _no_sleep  # the retry's backoff is not what this test is about
        await client.v1.image_projects.get(id=project_id)
    assert _names(seen) == [
        "RequestSent",
        "ResponseReceived",
        "RetryScheduled",
        "RequestSent",
        "ResponseReceived",
    ]
    first, failed, retry, second, ok = seen
    assert isinstance(first, events.RequestSent) and isinstance(second, events.RequestSent)
    assert (first.route, first.attempt, second.attempt) == ("/v1/image-projects/{id}", 0, 1)
    assert isinstance(failed, events.ResponseReceived) and failed.status == 503
    assert failed.request_id == first.request_id != second.request_id
    assert isinstance(retry, events.RetryScheduled) and isinstance(retry.error, mh.ServerError)
    assert isinstance(ok, events.ResponseReceived) and ok.status == 200 and ok.elapsed >= 0


async def _no_sleep(_: float) -> None:
    return None


@pytest.mark.asyncio
async def test_a_render_reports_created_polled_and_finished(emu: Emulator) -> None:
    seen: list[events.Event] = []
    polled = asyncio.Event()

    def hook(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.RenderPolled):
            polled.set()

    async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST, hooks=[hook]) as client:
        created = await client.v1.ai_image_generator.create(image_count=1, style={"prompt": "fox"})
        waiting = asyncio.ensure_future(client.v1.image_projects.wait(id=created.id, timeout=30))
        await asyncio.wait_for(polled.wait(), 10)
        emu.complete(created.id)
        project = await waiting
    renders = [
        e for e in seen if isinstance(e, (events.RenderCreated, events.RenderPolled, events.RenderFinished))
    ]
    assert renders[0] == events.RenderCreated(
        tool="ai-image-generator", project_id=created.id, credits=created.credits_charged
    )
    assert isinstance(renders[-1], events.RenderFinished)
    assert renders[-1].status == "complete" and renders[-1].credits_charged == project.credits_charged
    assert renders[-1].queued_seconds is not None
    assert {e.status for e in renders if isinstance(e, events.RenderPolled)} >= {"complete"}


@pytest.mark.asyncio
async def test_hooks_see_no_token_and_no_signed_query(emu: Emulator, tmp_path: Path) -> None:
    seen: list[events.Event] = []
    project_id = emu.create_project("image", status="complete")
    emu.faults.add(route="GET /v1/image-projects/{id}", status=401, times=1)
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, hooks=[seen.append]) as client:
        with pytest.raises(mh.AuthenticationError):
            await client.v1.image_projects.get(id=project_id)
        project = await client.v1.image_projects.get(id=project_id)
        await client.download_outputs(project, tmp_path)
    text = repr(seen) + "".join(str(getattr(e, "error", "")) for e in seen)
    assert seen
    assert emu.token not in text
    assert "X-Amz" not in text and "signature" not in text.lower()


@pytest.mark.asyncio
async def test_no_hooks_builds_no_events(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = events.RequestSent.__init__

    def spy(self: events.RequestSent, **kwargs: Any) -> None:
        built.append("RequestSent")
        original(self, **kwargs)

    monkeypatch.setattr(events.RequestSent, "__init__", spy)
    project_id = emu.create_project("image", status="complete")
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        await client.v1.image_projects.get(id=project_id)
    assert built == []


@pytest.mark.asyncio
async def test_downloads_and_uploads_report_progress_and_completion(emu: Emulator, tmp_path: Path) -> None:
    seen: list[events.Event] = []
    progress: list[mh.TransferProgress] = []
    project_id = emu.create_project("image", status="complete")
    source = tmp_path / "face.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000))
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, hooks=[seen.append]) as client:
        project = await client.v1.image_projects.get(id=project_id)
        [saved] = await client.download_outputs(project, tmp_path / "out", on_progress=progress.append)
        await client.v1.files.upload_file(source)
    transfers = [e for e in seen if isinstance(e, (events.TransferProgressed, events.TransferCompleted))]
    downloads = [e for e in transfers if e.direction == "download"]
    uploads = [e for e in transfers if e.direction == "upload"]
    assert progress  # the caller's own callback still runs
    assert downloads[-1] == events.TransferCompleted(direction="download", path=str(saved), size=512)
    assert [e.done for e in downloads if isinstance(e, events.TransferProgressed)][-1] == 512
    assert uploads[-1] == events.TransferCompleted(direction="upload", path="face.png", size=3008)
    assert isinstance(uploads[-2], events.TransferProgressed) and uploads[-2].done == 3008


@pytest.mark.asyncio
async def test_log_records_carry_structured_fields(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    project_id = emu.create_project("image", status="complete")
    emu.faults.add(route="GET /v1/image-projects/{id}", status=503, times=1)
    with caplog.at_level(logging.DEBUG, logger="magic_hour_async"):
        async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client:
            client._transport._sleep = _no_sleep
            await client.v1.image_projects.get(id=project_id)
            await client.v1.image_projects.wait(id=project_id, timeout=30)
    fields = [
        {k: getattr(r, k) for k in ("method", "route", "status", "attempt", "project_id") if hasattr(r, k)}
        for r in caplog.records
    ]
    route = "/v1/image-projects/{id}"
    assert {"method": "GET", "route": route, "attempt": 0} in fields  # the retry decision
    assert {"method": "GET", "route": route, "status": 503, "attempt": 0} in fields
    assert {"method": "GET", "route": route, "status": 200, "attempt": 1} in fields
    assert {"route": route, "project_id": project_id} in fields  # the scheduler's
    assert all("\n" not in r.getMessage() for r in caplog.records)
    assert emu.token not in caplog.text


# -- RequestSent is delivered off the request's path ------------------------------------------------------


@pytest.mark.asyncio
async def test_hooks_get_request_sent_once_the_request_is_on_the_wire() -> None:
    # A hook must not delay a request: on a kept-alive connection, when it gets RequestSent, the server has
    # the request already. The server is a socket in a thread (an in-loop server could not read while the
    # hook holds the loop); the hook waits for it, so a RequestSent delivered before the write times out.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    arrived = threading.Semaphore(0)

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            data = b""
            for _ in range(2):  # the first request opens the connection, the second reuses it
                while b"\r\n\r\n" not in data:
                    data += connection.recv(4096)
                data = data.partition(b"\r\n\r\n")[2]
                arrived.release()
                body = b'{"id": "p1", "status": "complete"}'
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                connection.sendall(head.encode() + b"\r\n\r\n" + body)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    seen: list[events.Event] = []
    on_the_wire: list[bool] = []

    def hook(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.RequestSent) and event.request_id == 2:
            on_the_wire.append(arrived.acquire(timeout=5))  # blocks the loop: only a sent request arrives

    try:
        url = f"http://127.0.0.1:{port}"
        async with mh.AsyncClient(token="t0ken-for-tests", base_url=url, hooks=[hook]) as client:
            await client.v1.image_projects.get(id="p1")
            assert arrived.acquire(timeout=5)  # the first request's arrival, counted off
            before = time.time_ns()
            await client.v1.image_projects.get(id="p1")
            after = time.time_ns()
    finally:
        listener.close()
        server.join(5)
    assert on_the_wire == [True]
    assert _names(seen) == ["RequestSent", "ResponseReceived"] * 2
    sent = seen[2]
    assert isinstance(sent, events.RequestSent) and sent.request_id == 2
    assert before <= sent.sent_at_ns <= after  # stamped as it went out, not when delivered


@pytest.mark.asyncio
async def test_a_request_ended_before_the_loop_turns_is_reported_in_order_and_once() -> None:
    seen: list[events.Event] = []
    hooks = Hooks([seen.append])
    request_id = hooks.request_sent(
        "GET", "http://127.0.0.1:9/v1/image-projects/p1?a=b", "/v1/image-projects/p1", 0
    )
    route = "/v1/image-projects/{id}"
    hooks.request_answered(request_id, 404, 0.0)
    await asyncio.sleep(0)  # the delivery scheduled for RequestSent finds it delivered already
    assert _names(seen) == ["RequestSent", "ResponseReceived"]
    sent = seen[0]
    assert isinstance(sent, events.RequestSent)
    assert (sent.request_id, sent.route, sent.url) == (
        request_id,
        route,
        "http://127.0.0.1:9/v1/image-projects/p1?<redacted>",
    )
    assert seen[1] == events.ResponseReceived(
        request_id=request_id, method="GET", route=route, status=404, elapsed=0.0, attempt=0
    )


@pytest.mark.asyncio
async def test_a_request_that_fails_without_an_answer_is_reported_in_order() -> None:
    # An error the SDK does not map (here a session whose request raises at once, before the loop turns) still
    # ends the request for the hooks: RequestSent first, then RequestFailed for the same request.
    class Broken:
        closed = False

        def request(self, *args: object, **kwargs: object) -> object:
            raise ValueError("unexpected")

    seen: list[events.Event] = []
    session = cast("aiohttp.ClientSession", Broken())
    async with mh.AsyncClient(
        token="t0ken-for-tests", base_url="http://127.0.0.1:9", session=session, hooks=[seen.append]
    ) as client:
        with pytest.raises(ValueError, match="unexpected"):
            await client.v1.image_projects.get(id="p1")
        await asyncio.sleep(0)
    assert _names(seen) == ["RequestSent", "RequestFailed"]
    sent, failed = seen
    assert isinstance(sent, events.RequestSent) and isinstance(failed, events.RequestFailed)
    assert sent.request_id == failed.request_id and isinstance(failed.error, ValueError)
