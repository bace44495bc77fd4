"""The aiohttp webhook receiver over loopback: verification answers, de-duplication, callbacks, shutdown.

Ordering claims ("the response came before the callback finished") are made with events the test controls,
never with sleeps.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from magic_hour_async import AsyncClient, Client, ConfigurationError, VideoProject, webhooks
from magic_hour_async.testing import Emulator

SECRET = "whsec_receiver_test"
PATH = "/webhooks/magic-hour"  # create_app's default


def delivery(
    event_type: str = "video.completed",
    project_id: str = "p1",
    *,
    status: str = "complete",
    secret: str = SECRET,
    stamp: int | None = None,
    name: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery as Magic Hour sends it: the body and its two headers."""
    payload = {"id": project_id, "status": status, "type": "FACE_SWAP", "name": name, "downloads": []}
    body = json.dumps({"type": event_type, "payload": payload}).encode()
    ts = str(int(time.time()) if stamp is None else stamp)
    return body, {
        "Content-Type": "application/json",
        "magic-hour-event-signature": webhooks.sign(body, secret, ts),
        "magic-hour-event-timestamp": ts,
    }


class Receiver:
    """A receiver app served on 127.0.0.1, and a session to post to it."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, app: web.Application) -> None:
        self.server, self.session, self.app = server, session, app

    @property
    def handler(self) -> webhooks.WebhookHandler:
        return self.app[webhooks.HANDLER_KEY]

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.server.make_url(PATH), data=body, headers=headers) as response:
            return response.status, await response.json()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[Receiver]:
    """Serve ``app`` on loopback; leaving the block runs the app's cleanup."""
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        yield Receiver(server, session, app)


def other_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.mark.asyncio
async def test_a_valid_delivery_is_answered_200_and_reaches_the_async_callback() -> None:
    received: asyncio.Queue[webhooks.WebhookEvent] = asyncio.Queue()

    async def on_event(event: webhooks.WebhookEvent) -> None:
        await received.put(event)

    async with serving(webhooks.create_app(on_event, secret=SECRET)) as receiver:
        status, answer = await receiver.post(*delivery("video.completed", "p1"))
        event = await received.get()
        stats = receiver.handler.stats

    assert (status, answer) == (200, {"received": True})
    assert event.type == "video.completed"
    assert isinstance(event.payload, VideoProject)
    assert event.payload.id == "p1"
    assert (stats.received, stats.accepted, stats.rejected, stats.pending_callbacks) == (1, 1, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda b, h: (b.replace(b"p1", b"p2"), h), "bad signature"),
        (lambda b, h: delivery(secret="whsec_someone_else"), "bad signature"),
        (lambda b, h: delivery(stamp=int(time.time()) - 400), "stale timestamp"),
        (lambda b, h: delivery(stamp=int(time.time()) + 400), "timestamp in the future"),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "magic-hour-event-signature"}),
            "missing header magic-hour-event-signature",
        ),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "magic-hour-event-timestamp"}),
            "missing header magic-hour-event-timestamp",
        ),
        (lambda b, h: (b, {**h, "magic-hour-event-timestamp": "soon"}), "malformed timestamp"),
        (lambda b, h: (b, {**h, "magic-hour-event-signature": "abc"}), "malformed signature"),
    ],
)
async def test_each_failure_is_answered_401_with_its_precise_reason(
    tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]], reason: str
) -> None:
    calls: list[webhooks.WebhookEvent] = []
    async with serving(webhooks.create_app(calls.append, secret=SECRET)) as receiver:
        status, answer = await receiver.post(*tamper(*delivery()))
        stats = receiver.handler.stats

    assert status == 401
    assert answer["message"].startswith(reason), answer
    assert (stats.rejected, stats.accepted) == (1, 0)
    assert calls == []


@pytest.mark.asyncio
async def test_a_signed_body_that_is_not_an_event_is_rejected() -> None:
    body = b'{"hello": "world"}'
    ts = str(int(time.time()))
    headers = {
        "magic-hour-event-signature": webhooks.sign(body, SECRET, ts),
        "magic-hour-event-timestamp": ts,
    }
    async with serving(webhooks.create_app(secret=SECRET)) as receiver:
        status, answer = await receiver.post(body, headers)
    assert (status, answer) == (401, {"message": "body lacks a string 'type' and an object 'payload'"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_duplicate_deliveries_reach_the_callback_once_within_the_window() -> None:
    clock = FakeClock()
    keys: list[str] = []

    async def on_event(event: webhooks.WebhookEvent) -> None:
        keys.append(event.dedupe_key)

    app = webhooks.create_app(on_event, secret=SECRET, dedupe_window=60, clock=clock)
    async with serving(app) as receiver:
        first = await receiver.post(*delivery("video.completed", "p1"))
        # A retry is signed again with a later timestamp: same event, different bytes on the wire.
        again = await receiver.post(*delivery("video.completed", "p1", stamp=int(time.time()) + 1))
        other = await receiver.post(*delivery("video.started", "p1", status="rendering"))
        clock.now = 61.0  # the window has passed: the same key is new again
        later = await receiver.post(*delivery("video.completed", "p1"))
        stats = receiver.handler.stats

    assert first == (200, {"received": True})
    assert again == (200, {"received": True, "duplicate": True})
    assert other == later == (200, {"received": True})
    assert keys == ["p1:video.completed", "p1:video.started", "p1:video.completed"]
    assert (stats.accepted, stats.duplicates) == (3, 1)


@pytest.mark.asyncio
async def test_the_dedupe_memory_is_bounded_and_forgets_the_oldest_key() -> None:
    keys: list[str] = []

    async def on_event(event: webhooks.WebhookEvent) -> None:
        keys.append(event.project_id or "")

    async with serving(webhooks.create_app(on_event, secret=SECRET, dedupe_size=2)) as receiver:
        for project_id in ("a", "b", "c", "a", "c"):
            await receiver.post(*delivery(project_id=project_id))
    # "a" was forgotten when "c" arrived; "c" is still remembered.
    assert keys == ["a", "b", "c", "a"]


@pytest.mark.asyncio
async def test_a_sync_callback_runs_in_a_worker_thread() -> None:
    done = threading.Event()
    seen: list[tuple[str, str]] = []

    def on_event(event: webhooks.WebhookEvent) -> None:
        seen.append((event.type, threading.current_thread().name))
        done.set()

    async with serving(webhooks.create_app(on_event, secret=SECRET)) as receiver:
        status, _ = await receiver.post(*delivery("audio.errored", "a1", status="error"))
        assert await asyncio.to_thread(done.wait, 5)

    assert status == 200
    assert seen[0][0] == "audio.errored"
    assert seen[0][1] != threading.current_thread().name


@pytest.mark.asyncio
async def test_a_slow_async_callback_does_not_delay_the_response() -> None:
    release, finished = asyncio.Event(), asyncio.Event()

    async def on_event(event: webhooks.WebhookEvent) -> None:
        await release.wait()
        finished.set()

    async with serving(webhooks.create_app(on_event, secret=SECRET)) as receiver:
        status, _ = await receiver.post(*delivery())
        # The callback cannot have finished: only this test releases it, and it has not yet.
        assert status == 200
        assert not finished.is_set()
        assert receiver.handler.stats.pending_callbacks == 1
        release.set()
        await asyncio.wait_for(finished.wait(), 5)


@pytest.mark.asyncio
async def test_a_blocking_sync_callback_does_not_delay_the_response() -> None:
    release, finished = threading.Event(), threading.Event()

    def on_event(event: webhooks.WebhookEvent) -> None:
        release.wait(5)
        finished.set()

    async with serving(webhooks.create_app(on_event, secret=SECRET)) as receiver:
        status, _ = await receiver.post(*delivery())
        assert status == 200
        assert not finished.is_set()
        # A second delivery is served while the first callback still blocks its thread.
        assert (await receiver.post(*delivery(project_id="p2")))[0] == 200
        release.set()
        assert await asyncio.to_thread(finished.wait, 5)


@pytest.mark.asyncio
async def test_callback_exceptions_are_logged_and_the_receiver_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def on_event(event: webhooks.WebhookEvent) -> None:
        await handled.put(event.project_id or "")
        if event.project_id == "boom":
            raise RuntimeError("the callback broke")

    caplog.set_level(logging.ERROR, logger="magic_hour_async.webhooks")
    async with serving(webhooks.create_app(on_event, secret=SECRET)) as receiver:
        assert (await receiver.post(*delivery(project_id="boom")))[0] == 200
        assert await handled.get() == "boom"
        assert (await receiver.post(*delivery(project_id="fine")))[0] == 200
        assert await handled.get() == "fine"
    stats = receiver.handler.stats

    assert stats.callback_errors == 1
    [record] = [r for r in caplog.records if r.name == "magic_hour_async.webhooks"]
    assert "boom:video.completed" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "the callback broke"


@pytest.mark.asyncio
async def test_cleanup_waits_for_callbacks_that_finish_in_time() -> None:
    finished = asyncio.Event()

    async def on_event(event: webhooks.WebhookEvent) -> None:
        await asyncio.sleep(0.01)
        finished.set()

    async with serving(webhooks.create_app(on_event, secret=SECRET, shutdown_timeout=5)) as receiver:
        await receiver.post(*delivery())
    assert finished.is_set()
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_cleanup_cancels_callbacks_that_do_not_finish_and_leaves_no_task() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def on_event(event: webhooks.WebhookEvent) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.set()
            raise

    app = webhooks.create_app(on_event, secret=SECRET, shutdown_timeout=0.01)
    async with serving(app) as receiver:
        await receiver.post(*delivery())
        await started.wait()
    assert cancelled.is_set()
    assert receiver.handler.stats.pending_callbacks == 0
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_a_closed_handler_answers_503_so_the_delivery_is_retried() -> None:
    receiver_handler = webhooks.handler(secret=SECRET)
    app = web.Application()
    app[webhooks.HANDLER_KEY] = receiver_handler
    app.router.add_post(PATH, receiver_handler)
    async with serving(app) as receiver:
        await receiver_handler.aclose()
        status, answer = await receiver.post(*delivery())
    assert (status, answer) == (503, {"message": "receiver is shutting down"})


def test_the_client_must_be_a_magic_hour_client() -> None:
    with pytest.raises(ConfigurationError, match="AsyncClient or a Client"):
        webhooks.handler(secret=SECRET, client=object())  # type: ignore[arg-type]


def test_a_secret_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGIC_HOUR_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="MAGIC_HOUR_WEBHOOK_SECRET"):
        webhooks.handler()
    monkeypatch.setenv("MAGIC_HOUR_WEBHOOK_SECRET", SECRET)
    assert isinstance(webhooks.handler(), webhooks.WebhookHandler)


@pytest.mark.asyncio
async def test_a_connected_client_polls_slower_while_the_app_runs_and_waits_end_on_the_event() -> None:
    polled = asyncio.Event()
    async with (
        Emulator() as emu,
        AsyncClient(token=emu.token, base_url=emu.url, on_poll_event=lambda _: polled.set()) as client,
    ):
        # Pinned: polling alone would never see it finish, so only the webhook can end the wait.
        project_id = emu.create_project("video", status="rendering")
        app = webhooks.create_app(secret=SECRET, client=client, safety_factor=7)
        assert client._scheduler.safety_factor == 1
        async with serving(app) as receiver:
            assert client._scheduler.safety_factor == 7
            wait = asyncio.create_task(client.v1.video_projects.wait(id=project_id, timeout=30))
            await polled.wait()  # the wait is registered: its first poll has been answered
            await receiver.post(*delivery("video.completed", project_id, name="from the webhook"))
            project = await wait
        assert client._scheduler.safety_factor == 1

    assert project.status == "complete"
    assert project.name == "from the webhook"


@pytest.mark.asyncio
async def test_a_blocking_client_is_resolved_on_its_own_loop_thread() -> None:
    loop, polled = asyncio.get_running_loop(), asyncio.Event()

    def on_poll_event(event: object) -> None:  # runs on the client's loop thread
        loop.call_soon_threadsafe(polled.set)

    with Emulator() as emu, Client(token=emu.token, base_url=emu.url, on_poll_event=on_poll_event) as client:
        project_id = emu.create_project("video", status="queued")
        scheduler = client._wrapped._scheduler
        async with serving(webhooks.create_app(secret=SECRET, client=client)) as receiver:
            wait = asyncio.ensure_future(
                asyncio.to_thread(client.v1.video_projects.wait, id=project_id, timeout=30)
            )
            await polled.wait()
            assert scheduler.safety_factor == 10  # set on the client's loop thread, not this one
            await receiver.post(*delivery("video.errored", project_id, status="error"))
            project = await wait
        # The restore was queued on the client's loop thread; a call queued after it sees its effect.
        factor = await asyncio.to_thread(client._portal.call_sync, lambda: scheduler.safety_factor)
        assert factor == 1

    assert project.status == "error"


@pytest.mark.asyncio
async def test_accept_webhook_event_resolves_a_wait_and_ignores_what_nobody_waits_for() -> None:
    polled = asyncio.Event()
    async with (
        Emulator() as emu,
        AsyncClient(token=emu.token, base_url=emu.url, on_poll_event=lambda _: polled.set()) as client,
    ):
        project_id = emu.create_project("image", status="rendering")
        # Before any wait, and for a kind the SDK does not know: nothing to resolve, nothing raised.
        client.accept_webhook_event(webhooks.parse(delivery("image.completed", project_id)[0]))
        client.accept_webhook_event(webhooks.parse(delivery("model.completed", project_id)[0]))
        waits = asyncio.ensure_future(
            asyncio.gather(
                client.v1.image_projects.wait(id=project_id),
                client.v1.image_projects.wait_many([project_id, project_id]),
            )
        )
        await polled.wait()
        started = webhooks.parse(delivery("image.started", project_id, status="rendering")[0])
        client.accept_webhook_event(started)  # only the last state seen
        assert client.poll_stats.watched_projects == 1  # a resolution would have dropped the watch at once
        client.accept_webhook_event(webhooks.parse(delivery("image.completed", project_id, name="done")[0]))
        one, many = await waits
    assert one.name == "done"
    assert [p.name for p in many] == ["done", "done"]


def _no_tracebacks(records: list[logging.LogRecord]) -> None:
    tracebacks = [r.getMessage() for r in records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert tracebacks == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "hostile",
    [
        {"magic-hour-event-timestamp": "9" * 400},
        {"magic-hour-event-timestamp": "9" * 5000},
        {"magic-hour-event-timestamp": ""},
        {"magic-hour-event-timestamp": "\uff11\uff17\uff12\uff19"},
        {"magic-hour-event-signature": ""},
        {"magic-hour-event-signature": "é" * 64},
        {"magic-hour-event-signature": "f" * 4000},
    ],
)
async def test_hostile_headers_are_answered_401_without_a_traceback(
    hostile: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    calls: list[webhooks.WebhookEvent] = []
    body, headers = delivery()
    async with serving(webhooks.create_app(calls.append, secret=SECRET)) as receiver:
        status, answer = await receiver.post(body, {**headers, **hostile})
        stats = receiver.handler.stats
    assert status == 401
    assert answer["message"].startswith(("malformed timestamp", "malformed signature")), answer
    assert (stats.rejected, calls) == (1, [])
    _no_tracebacks(caplog.records)


async def _raw_request(server: TestServer, head: bytes, body: bytes) -> int:
    """Send bytes aiohttp's client would refuse to write; return the answer's status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.mark.asyncio
async def test_undecodable_header_bytes_are_answered_4xx_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body, headers = delivery()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"magic-hour-event-signature: {headers['magic-hour-event-signature']}\r\n"
    ).encode() + b"magic-hour-event-timestamp: \xff\xfe17293\xc0\r\n"
    async with serving(webhooks.create_app(secret=SECRET)) as receiver:
        status = await _raw_request(receiver.server, head, body)
    assert 400 <= status < 500
    _no_tracebacks(caplog.records)


@pytest.mark.asyncio
async def test_a_signed_body_nested_too_deep_is_answered_401_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b'{"type": "video.completed", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    ts = str(int(time.time()))
    signature = webhooks.sign(body, SECRET, ts)
    headers = {"magic-hour-event-signature": signature, "magic-hour-event-timestamp": ts}
    async with serving(webhooks.create_app(secret=SECRET)) as receiver:
        status, answer = await receiver.post(body, headers)
    assert (status, answer) == (401, {"message": "body is not JSON: nested too deeply"})
    _no_tracebacks(caplog.records)


@pytest.mark.asyncio
async def test_an_oversized_body_is_refused_413_before_verification(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body, headers = delivery()
    huge = body + b" " * (2 * 1024 * 1024)  # past aiohttp's 1 MiB client_max_size
    async with serving(webhooks.create_app(secret=SECRET)) as receiver:
        post = receiver.session.post(receiver.server.make_url(PATH), data=io.BytesIO(huge), headers=headers)
        async with post as response:
            status = response.status
        stats = receiver.handler.stats
    assert status == 413
    assert stats.accepted == 0
    _no_tracebacks(caplog.records)
