"""End to end on loopback: the emulator sends signed webhooks to a receiver connected to an AsyncClient.

The batch test runs the same 300 renders twice, polling alone and hybrid (webhooks plus safety polling), and
compares the GETs each run cost. The other tests pin the emulator's delivery rules: the lifecycle events and
their payloads, no event for a cancel, retries with backoff on the emulator's clock, duplicate deliveries.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from magic_hour_async import AsyncClient, PollPolicy, webhooks
from magic_hour_async.testing import Emulator, ManualClock

SECRET = "whsec_e2e"
GET_VIDEO = "GET /v1/video-projects/{id}"
# Renders of 0.6 to 1 s: polling alone polls each every 0.2 s, the hybrid run's safety polling every 2 s,
# after every render has finished. Polling alone stays well below what the emulator can answer, so the
# GET counts do not depend on the machine's speed.
POLICY = PollPolicy(initial=0.2, maximum=2.0, max_concurrency=32, max_rate=50)  # 5 times faster
FAST_POLICY = PollPolicy(initial=0.02, max_rate=500)  # 50 times faster


class Inbox:
    """What the receiver's callback saw, with a way to wait until a condition holds."""

    def __init__(self) -> None:
        self.events: list[webhooks.WebhookEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: webhooks.WebhookEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def until(self, predicate: Callable[[list[webhooks.WebhookEvent]], bool]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.events)), 10)

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, for state that offers no notification (the emulator's counters)."""
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


@asynccontextmanager
async def receiving(
    callback: webhooks.WebhookCallback | None = None,
    *,
    client: AsyncClient | None = None,
    middlewares: tuple[Any, ...] = (),
) -> AsyncIterator[tuple[str, web.Application]]:
    """A receiver app on 127.0.0.1: yields its URL and the app (``app[webhooks.HANDLER_KEY].stats``)."""
    app = webhooks.create_app(callback, secret=SECRET, client=client)
    app.middlewares.extend(middlewares)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/webhooks/magic-hour", app
    finally:
        await runner.cleanup()


async def render_batch(*, hybrid: bool, count: int = 300) -> tuple[int, list[str]]:
    """Wait for ``count`` renders of 0.6 to 1 s; return the GETs spent and the statuses."""
    rng = random.Random(7)
    durations = [rng.uniform(0.6, 1.0) for _ in range(count)]
    async with (
        Emulator(seed=7) as emu,
        AsyncClient(token=emu.token, base_url=emu.url, poll=POLICY) as client,
        receiving(client=client if hybrid else None) as (url, _),
    ):
        if hybrid:
            emu.webhooks.configure(url, SECRET)
        ids = [emu.create_project("video", duration=duration) for duration in durations]
        projects = await client.v1.video_projects.wait_many(ids, timeout=30)
        if hybrid:  # started and completed for each (a poll may have seen the last one first)
            await eventually(lambda: emu.webhooks.stats.events == 2 * count)
        return emu.counters.count(GET_VIDEO), [str(project.status) for project in projects]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_webhooks_resolve_hundreds_of_waits_with_far_fewer_polls() -> None:
    polled_gets, polled = await render_batch(hybrid=False)
    hybrid_gets, hybrid = await render_batch(hybrid=True)
    print(f"300 renders: polling alone {polled_gets} GETs; hybrid {hybrid_gets} GETs")

    assert polled == hybrid == ["complete"] * 300
    # Each hybrid render costs its first poll (none when its webhook came first); polling alone costs about
    # five (0, 0.2, 0.4, ... s until it finishes).
    assert hybrid_gets <= 1.5 * 300
    assert hybrid_gets * 3 <= polled_gets


@pytest.mark.asyncio
async def test_a_canceled_render_sends_no_webhook_and_safety_polling_still_finds_it() -> None:
    inbox, polled = Inbox(), asyncio.Event()
    async with (
        Emulator() as emu,
        AsyncClient(
            token=emu.token, base_url=emu.url, poll=FAST_POLICY, on_poll_event=lambda _: polled.set()
        ) as client,
        receiving(inbox, client=client) as (url, _),
    ):
        emu.webhooks.configure(url, SECRET)
        project_id = emu.create_project("video", status="rendering")
        wait = asyncio.create_task(client.v1.video_projects.wait(id=project_id, timeout=10))
        await polled.wait()  # the first poll saw it rendering
        emu.cancel(project_id)
        project = await wait
        stats = emu.webhooks.stats

    assert project.status == "canceled"
    assert (stats.events, stats.attempts) == (0, 0)
    assert inbox.events == []
    # The second poll, ten times later than polling alone would have made it, found the cancel.
    assert emu.counters.count(GET_VIDEO, id=project_id) == 2


@pytest.mark.asyncio
async def test_the_lifecycle_follows_a_manual_clock_with_the_get_body_as_payload() -> None:
    clock, inbox = ManualClock(), Inbox()
    async with Emulator(clock=clock) as emu, receiving(inbox) as (url, _):
        emu.webhooks.configure(url, SECRET)
        video = emu.create_project("video", duration=10)
        audio = emu.create_project("audio", duration=10, outcome="error", error_code="invalid_voice")
        image = emu.create_project("image", type="AI_IMAGE", duration=10)  # fast mode: no image.started
        canceled = emu.create_project("video", duration=10, outcome="canceled")

        clock.advance(2)  # everything starts rendering
        await inbox.until(lambda events: len(events) == 3)
        assert sorted(inbox.types) == ["audio.started", "video.started", "video.started"]
        started = {event.project_id: event.payload for event in inbox.events}
        assert getattr(started[video], "status", None) == "rendering" == emu.project(video)["status"]
        assert getattr(started[video], "downloads", None) == ()

        clock.advance(8)  # and finishes
        await inbox.until(lambda events: len(events) == 6)
        later = {event.project_id: event for event in inbox.events[3:]}
        assert set(later) == {video, audio, image}
        assert later[video].type == "video.completed"
        assert later[image].type == "image.completed"
        assert later[audio].type == "audio.errored"
        body = emu.project(video)

    completed = later[video].payload
    assert not isinstance(completed, dict)
    assert completed.status == "complete"
    assert completed.id == body["id"] and completed.credits_charged == body["credits_charged"]
    assert len(completed.downloads) == 1
    errored = later[audio].payload
    assert not isinstance(errored, dict)
    assert errored.error is not None and errored.error.code == "invalid_voice"
    # A render canceled while rendering had started, and sends nothing more.
    assert [event.type for event in inbox.events if event.project_id == canceled] == ["video.started"]


@pytest.mark.asyncio
async def test_an_event_skipped_by_a_jump_still_carries_its_own_status() -> None:
    clock, inbox = ManualClock(), Inbox()
    async with Emulator(clock=clock) as emu, receiving(inbox) as (url, _):
        emu.webhooks.configure(url, SECRET)
        emu.create_project("video", duration=10)
        clock.advance(60)  # past both transitions at once
        await inbox.until(lambda events: len(events) == 2)
    statuses = {event.type: getattr(event.payload, "status", None) for event in inbox.events}
    assert statuses == {"video.started": "rendering", "video.completed": "complete"}


@pytest.mark.asyncio
async def test_only_transitions_after_configure_are_announced_and_instant_renders_complete() -> None:
    clock, inbox = ManualClock(), Inbox()
    async with Emulator(clock=clock) as emu, receiving(inbox) as (url, _):
        rendering = emu.create_project("video", duration=10)
        finished = emu.create_project("video", duration=1)
        clock.advance(5)  # one rendering, one complete, before anybody listens
        emu.webhooks.configure(url, SECRET)
        instant = emu.create_project("audio", duration=0)
        clock.advance(5)
        await inbox.until(lambda events: len(events) == 2)
    assert sorted((event.type, event.project_id) for event in inbox.events) == sorted(
        [("video.completed", rendering), ("audio.completed", instant)]
    )
    assert finished not in {event.project_id for event in inbox.events}


@pytest.mark.asyncio
async def test_forced_outcomes_and_the_event_filter() -> None:
    inbox = Inbox()
    async with Emulator() as emu, receiving(inbox) as (url, _):
        emu.webhooks.configure(url, SECRET, events=["video.errored", "video.completed"])
        first = emu.create_project("video", status="rendering")
        second = emu.create_project("video", status="queued")
        emu.fail(first, "no_source_face")
        emu.complete(second)
        await inbox.until(lambda events: len(events) == 2)
        # The receiver answered; the emulator books the attempts a moment later.
        await eventually(lambda: emu.webhooks.stats.pending == 0)
        emu.complete(first)  # nothing follows a terminal status
        emu.set_status(second, "rendering")
        assert emu.webhooks.config is not None
        assert emu.webhooks.config.events == {"video.errored", "video.completed"}
        emu.webhooks.disable()
        emu.complete(emu.create_project("video", status="rendering"))  # nothing is even scheduled
        assert (emu.webhooks.config, emu.webhooks.stats.events, emu.webhooks.stats.pending) == (None, 2, 0)
    assert sorted((event.type, event.project_id) for event in inbox.events) == sorted(
        [("video.errored", first), ("video.completed", second)]
    )


def failing_first(times: int) -> Any:
    """A middleware answering 500 to the first ``times`` requests."""
    remaining = [times]

    @web.middleware
    async def fail(request: web.Request, handler: Any) -> web.StreamResponse:
        if remaining[0] > 0:
            remaining[0] -= 1
            return web.json_response({"message": "try again"}, status=500)
        response: web.StreamResponse = await handler(request)
        return response

    return fail


@pytest.mark.asyncio
async def test_a_non_2xx_answer_is_retried_and_the_event_arrives() -> None:
    inbox = Inbox()
    async with Emulator(speed=0.001) as emu, receiving(inbox, middlewares=(failing_first(1),)) as (url, _):
        emu.webhooks.configure(url, SECRET, events=["video.completed"])
        project_id = emu.create_project("video", status="rendering")
        emu.complete(project_id)
        await inbox.until(lambda events: len(events) == 1)
        await eventually(lambda: len(emu.webhooks.attempts) == 2)  # booked after the answer arrives
        attempts = [(a.attempt, a.status) for a in emu.webhooks.attempts]
        stats = emu.webhooks.stats
    assert inbox.types == ["video.completed"]
    assert attempts == [(1, 500), (2, 200)]
    assert (stats.deliveries, stats.failed_attempts, stats.given_up) == (1, 1, 0)


@pytest.mark.asyncio
async def test_retries_back_off_on_the_emulators_clock_and_give_up_after_max_attempts() -> None:
    clock = ManualClock()
    async with (
        Emulator(clock=clock) as emu,
        receiving(middlewares=(failing_first(1000),)) as (url, app),
    ):
        emu.webhooks.configure(url, SECRET, retry_base=1.0, max_attempts=3)
        emu.complete(emu.create_project("audio", status="rendering"))

        await eventually(lambda: len(emu.webhooks.attempts) == 1)
        assert emu.webhooks.stats.pending == 1  # a retry waits for the clock: nothing moves until it does
        clock.advance(1)  # 1 s after the first attempt
        await eventually(lambda: len(emu.webhooks.attempts) == 2)
        clock.advance(2)  # the second retry waits 2 s
        await eventually(lambda: emu.webhooks.stats.given_up == 1)
        stats = emu.webhooks.stats
        assert app[webhooks.HANDLER_KEY].stats.received == 0  # the middleware answered every one
    assert [(a.attempt, a.status) for a in emu.webhooks.attempts] == [(1, 500), (2, 500), (3, 500)]
    assert (stats.deliveries, stats.failed_attempts, stats.given_up, stats.pending) == (0, 3, 1, 0)


@pytest.mark.asyncio
async def test_duplicate_deliveries_reach_the_callback_once() -> None:
    inbox = Inbox()
    async with Emulator() as emu, receiving(inbox) as (url, app):
        emu.webhooks.configure(url, SECRET, duplicates=2)
        ids = [emu.create_project("audio", status="rendering") for _ in range(5)]
        for project_id in ids:
            emu.complete(project_id)
        handler = app[webhooks.HANDLER_KEY]
        await inbox.until(lambda events: len(events) == 5)
        await eventually(lambda: emu.webhooks.stats.deliveries == 15)  # the copies may still be on the wire
        stats = emu.webhooks.stats
    assert sorted(event.project_id or "" for event in inbox.events) == sorted(ids)
    assert (stats.events, stats.deliveries) == (5, 15)
    assert (handler.stats.accepted, handler.stats.duplicates) == (5, 10)


def test_the_emulator_in_thread_mode_delivers_to_a_receiver_in_another_loop() -> None:
    async def main() -> list[str]:
        inbox = Inbox()
        async with receiving(inbox) as (url, _):
            with Emulator(webhook_url=url, webhook_secret=SECRET) as emu:
                # Called from this thread while the emulator's loop runs in its own.
                project_id = emu.create_project("video", status="rendering")
                emu.complete(project_id)
                await inbox.until(lambda events: len(events) == 1)
        return [f"{event.type} {event.project_id == project_id}" for event in inbox.events]

    assert asyncio.run(main()) == ["video.completed True"]
