"""The polling scheduler, in virtual time (see tests/_clock.py) against fake fetch functions."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
from collections import deque

import attrs
import pytest

from magic_hour_async._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    MagicHourError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from magic_hour_async._polling._policy import PollPolicy, poll_delay
from magic_hour_async._polling._scheduler import PollEvent, Scheduler, SchedulerStats, is_transient
from tests._clock import run, virtual_time

TERMINAL = frozenset({"complete", "error", "canceled"})


@attrs.frozen
class Project:
    id: str
    status: str
    seen_at: float = 0.0


def is_terminal(project: Project) -> bool:
    return project.status in TERMINAL


class FakeAPI:
    """Renders that finish at set times; answers GETs from the clock and records each one.

    ``errors[id]`` queues exceptions that the next GETs of that id raise; ``latency`` is each GET's duration.
    """

    def __init__(
        self,
        done_at: dict[str, float] | None = None,
        *,
        final: str = "complete",
        running: str = "rendering",
        latency: float = 0.0,
    ) -> None:
        self.done_at = done_at or {}
        self.final = final
        self.running = running
        self.latency = latency
        self.errors: dict[str, deque[Exception]] = {}
        self.calls: list[tuple[float, str, str]] = []

    async def fetch(self, kind: str, id: str) -> Project:
        now = asyncio.get_running_loop().time()
        self.calls.append((now, kind, id))
        if self.latency:
            await asyncio.sleep(self.latency)
        queued = self.errors.get(id)
        if queued:
            raise queued.popleft()
        status = self.final if now >= self.done_at.get(id, math.inf) else self.running
        return Project(id, status, now)

    def times(self, id: str) -> list[float]:
        return [t for t, _, i in self.calls if i == id]


#: The default policy without the poll budget: most tests look at one project's timing, not at the budget.
UNBUDGETED = PollPolicy(max_rate=math.inf)


def make(api: FakeAPI, policy: PollPolicy = UNBUDGETED, **kwargs: object) -> Scheduler[Project]:
    return Scheduler(api.fetch, is_terminal, policy=policy, random=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle() -> None:
    """Let cancelled and finishing tasks run their last steps."""
    for _ in range(5):
        await asyncio.sleep(0)


def schedule(policy: PollPolicy, until: float) -> list[float]:
    """The poll times poll_delay gives (no jitter, instant GETs) up to the first at or after ``until``."""
    times = [0.0]
    while times[-1] < until:
        times.append(times[-1] + poll_delay(policy, age=times[-1], rand=0.0))
    return times


# Timing


@virtual_time
async def test_first_poll_is_immediate() -> None:
    api = FakeAPI({"a": 0.0})
    scheduler = make(api)

    project = await scheduler.wait("video", "a")

    assert project == Project("a", "complete", 0.0)
    assert api.calls == [(0.0, "video", "a")]
    assert now() == 0.0


@virtual_time
async def test_polls_follow_the_policy_as_the_project_ages() -> None:
    api = FakeAPI({"a": 100.0})
    scheduler = make(api)

    await scheduler.wait("video", "a")

    expected = schedule(PollPolicy(), 100.0)
    assert api.times("a") == pytest.approx(expected)
    assert expected[:8] == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7])  # every second while young
    assert expected[-1] - expected[-2] == pytest.approx(0.13 * expected[-2])  # then 13% of the age


@virtual_time
async def test_jitter_comes_from_the_injected_random_source() -> None:
    api = FakeAPI({"a": 3.0})
    scheduler = Scheduler(api.fetch, is_terminal, random=lambda: 0.5)

    await scheduler.wait("video", "a")

    assert api.times("a") == pytest.approx([0.0, 1.05, 2.1, 3.15])


@virtual_time
async def test_the_next_poll_is_timed_from_the_end_of_the_previous_one() -> None:
    api = FakeAPI({"a": 2.0}, latency=0.25)
    scheduler = make(api)

    await scheduler.wait("video", "a")

    assert api.times("a") == pytest.approx([0.0, 1.25, 2.5])


@virtual_time
async def test_an_injected_clock_and_sleep_drive_all_timing() -> None:
    # A clock running at ten times the loop's speed: the scheduler reads and sleeps on it only.
    def clock() -> float:
        return now() * 10

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / 10)

    api = FakeAPI({"a": 0.3})
    scheduler = Scheduler(api.fetch, is_terminal, clock=clock, sleep=sleep, random=lambda: 0.0)

    await scheduler.wait("video", "a")
    with pytest.raises(WaitTimeoutError):
        await scheduler.wait("video", "b", timeout=5)

    assert api.times("a") == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert now() == pytest.approx(0.8)


# Concurrency and sharing


@virtual_time
async def test_concurrent_polls_never_exceed_max_concurrency() -> None:
    gate = asyncio.Event()
    running = peak = 0

    async def fetch(kind: str, id: str) -> Project:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return Project(id, "complete")

    scheduler = Scheduler(fetch, is_terminal, policy=PollPolicy(max_concurrency=3))
    waits = asyncio.gather(*(scheduler.wait("image", str(i)) for i in range(20)))
    await asyncio.sleep(1)

    assert (running, peak) == (3, 3)
    assert scheduler.stats.in_flight == 3
    gate.set()
    assert len(await waits) == 20
    assert peak == 3
    assert scheduler.stats.max_in_flight == 3
    assert scheduler.stats.polls_sent == 20


@virtual_time
async def test_waits_on_one_id_share_one_poll_stream_and_one_result() -> None:
    api = FakeAPI({"a": 10.0})
    scheduler = make(api)

    first = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(3.5)
    second = asyncio.create_task(scheduler.wait("video", "a"))
    results = await asyncio.gather(first, second)

    assert results[0] is results[1]
    assert api.times("a") == pytest.approx(schedule(PollPolicy(), 10.0))  # as if one waited alone


@virtual_time
async def test_the_same_id_of_another_kind_is_another_project() -> None:
    api = FakeAPI({"a": 0.0})
    scheduler = make(api)

    await asyncio.gather(scheduler.wait("video", "a"), scheduler.wait("audio", "a"))

    assert sorted(api.calls) == [(0.0, "audio", "a"), (0.0, "video", "a")]


# Withdrawing interest


@virtual_time
async def test_a_cancelled_wait_stops_polling_its_project() -> None:
    api = FakeAPI()
    scheduler = make(api)

    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(2.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(100)

    assert api.times("a") == [0.0, 1.0, 2.0]
    assert scheduler.stats.watched_projects == 0
    assert scheduler.stats.active_waits == 0


@virtual_time
async def test_cancelling_one_of_two_waits_keeps_polling_for_the_other() -> None:
    api = FakeAPI({"a": 5.0})
    scheduler = make(api)

    quitter = asyncio.create_task(scheduler.wait("video", "a"))
    stayer = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(1.5)
    quitter.cancel()

    assert (await stayer).status == "complete"
    assert api.times("a") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@virtual_time
async def test_a_timeout_raises_with_the_last_project_seen_and_stops_polling() -> None:
    api = FakeAPI()
    scheduler = make(api)

    with pytest.raises(WaitTimeoutError, match=r"video project 'a' did not finish within 3.5 s") as caught:
        await scheduler.wait("video", "a", timeout=3.5)
    assert now() == 3.5
    await asyncio.sleep(100)

    assert isinstance(caught.value, TimeoutError)
    assert caught.value.project == Project("a", "rendering", 3.0)
    assert api.times("a") == [0.0, 1.0, 2.0, 3.0]


@virtual_time
async def test_a_timeout_before_any_answer_carries_no_project() -> None:
    api = FakeAPI(latency=10.0)
    scheduler = make(api)

    with pytest.raises(WaitTimeoutError) as caught:
        await scheduler.wait("video", "a", timeout=1)

    assert caught.value.project is None
    await asyncio.sleep(10)  # the GET in flight ends; its answer is dropped


@virtual_time
async def test_timeouts_of_finished_waits_do_not_pile_up_in_the_heap() -> None:
    api = FakeAPI({str(i): 0.0 for i in range(5000)})
    scheduler = make(api)

    for i in range(5000):
        await scheduler.wait("video", str(i), timeout=3600)

    assert len(scheduler._timers) <= 1024 + 2  # stale deadlines are swept, not kept for an hour


@virtual_time
async def test_a_poll_with_no_news_keeps_the_state_already_held() -> None:
    answers: list[Project] = []

    async def fetch(kind: str, id: str) -> Project:
        answers.append(Project(id, "rendering"))  # equal every time, a new object every time
        return answers[-1]

    scheduler = Scheduler(fetch, is_terminal, random=lambda: 0.0)

    with pytest.raises(WaitTimeoutError) as caught:
        await scheduler.wait("video", "a", timeout=3.5)

    assert len(answers) == 4
    assert caught.value.project is answers[0]  # the later copies died young instead of replacing it


@virtual_time
async def test_watched_projects_cost_few_objects_for_the_cyclic_gc() -> None:
    # Thousands of watches live for minutes, and every full collection traverses each object they hold.
    api = FakeAPI()  # renders that never finish
    scheduler = make(api)
    gc.collect()
    before = len(gc.get_objects())

    task = asyncio.create_task(scheduler.wait_many("video", [str(i) for i in range(1000)]))
    await asyncio.sleep(9.5)  # every project polled 10 times (0 to 8, 9.04), its state held
    gc.collect()
    per_watch = (len(gc.get_objects()) - before) / 1000

    assert len(api.calls) == 10_000
    assert per_watch < 2.5  # the watch and the project seen, nothing per ticket or per timer entry
    task.cancel()
    await settle()


# Errors


TRANSIENT: list[Exception] = [
    ServerError("bad gateway", status_code=502),
    APIConnectionError("connection reset"),
    APITimeoutError("read timed out"),
    RateLimitError("slow down"),
    APIStatusError("request timeout", status_code=408),
    ResponseDecodeError("not JSON"),
]


@virtual_time
async def test_transient_errors_never_fail_a_wait() -> None:
    api = FakeAPI({"a": 0.0})
    api.errors["a"] = deque(TRANSIENT)
    events: list[PollEvent[Project]] = []
    scheduler = make(api, on_event=events.append)

    project = await scheduler.wait("video", "a")

    assert project.status == "complete"
    assert [e.error for e in events if e.what == "retry"] == TRANSIENT
    assert scheduler.stats.polls_failed == scheduler.stats.polls_retried == 6
    assert scheduler.stats.rate_limited == 1


@virtual_time
async def test_repeated_transient_errors_back_off_exponentially_up_to_the_maximum() -> None:
    api = FakeAPI({"a": 0.0})
    api.errors["a"] = deque(ServerError("down", status_code=503) for _ in range(8))
    scheduler = make(api)

    await scheduler.wait("video", "a")

    gaps = [b - a for a, b in itertools.pairwise(api.times("a"))]
    assert gaps == pytest.approx([1, 2, 4, 8, 16, 30, 30, 30])


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("bad", status_code=400),
        AuthenticationError("who are you", status_code=401),
        PaymentRequiredError("no credits", status_code=402),
        PermissionDeniedError("not allowed", status_code=403),
        NotFoundError("no such project", status_code=404),
        UnprocessableEntityError("invalid", status_code=422),
        APIStatusError("conflict", status_code=409),
    ],
    ids=lambda e: str(e.status_code),
)
def test_a_permanent_error_fails_every_waiter_with_that_very_exception(error: APIStatusError) -> None:
    async def main() -> None:
        api = FakeAPI()
        api.errors["a"] = deque([ServerError("blip", status_code=500), error])
        scheduler = make(api)

        results = await asyncio.gather(
            scheduler.wait("video", "a"),
            scheduler.wait_many("video", ["a", "b"]),
            return_exceptions=True,
        )
        await asyncio.sleep(100)

        assert results[0] is error
        assert results[1] is error
        assert api.times("a") == [0.0, 1.0]
        assert api.times("b") == [0.0, 1.0]  # the failed wait_many withdrew from "b" too
        assert scheduler.stats.polls_failed == 2
        assert scheduler.stats.polls_retried == 1

    run(main())


@virtual_time
async def test_an_unexpected_exception_from_fetch_fails_the_wait() -> None:
    boom = KeyError("bug in fetch")

    async def fetch(kind: str, id: str) -> Project:
        raise boom

    scheduler = Scheduler(fetch, is_terminal)

    with pytest.raises(KeyError) as caught:
        await scheduler.wait("video", "a")
    assert caught.value is boom


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        *((e, True) for e in TRANSIENT),
        (ServerError("weird", status_code=599), False),
        (ServerError("not implemented", status_code=501), False),
        (APIStatusError("gateway timeout without subclass", status_code=504), True),
        (APIStatusError("too many without subclass", status_code=429), True),
        (NotFoundError("gone", status_code=404), False),
        (APIStatusError("teapot", status_code=418), False),
        (MagicHourError("other"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


# Throttling


@virtual_time
async def test_retry_after_holds_back_the_throttled_project_only() -> None:
    api = FakeAPI({"a": 20.0, "b": 20.0})
    api.errors["a"] = deque([RateLimitError("slow down", retry_after=5.0)])
    scheduler = make(api)

    await scheduler.wait_many("video", ["a", "b"])

    assert api.times("a")[:2] == [0.0, 5.0]
    assert api.times("b")[:3] == [0.0, 1.0, 2.0]  # one 429 is no rate limit: the others go on


class FixedRateServer:
    """Allows ``limit`` GETs per second (a fixed window per whole second) and answers the rest with 429."""

    def __init__(self, limit: int, *, retry_after: float | None = None) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.window = -1
        self.used = 0
        self.log: list[tuple[float, bool]] = []

    async def fetch(self, kind: str, id: str) -> Project:
        at = now()
        await asyncio.sleep(0.002)
        if math.floor(at) != self.window:
            self.window, self.used = math.floor(at), 0
        self.used += 1
        ok = self.used <= self.limit
        self.log.append((at, ok))
        if not ok:
            raise RateLimitError("too many requests", retry_after=self.retry_after)
        return Project(id, "rendering", at)

    def rejected_share(self, after: float) -> float:
        outcomes = [ok for t, ok in self.log if t >= after]
        return outcomes.count(False) / len(outcomes)

    def served_per_second(self, after: float, until: float) -> float:
        return sum(1 for t, ok in self.log if ok and after <= t < until) / (until - after)


@pytest.mark.parametrize("retry_after", [None, 1.0])
def test_throttling_adapts_the_poll_rate_to_a_fixed_rate_server(retry_after: float | None) -> None:
    async def main() -> None:
        # 300 projects polled every second want 300 GETs a second; the server allows 50.
        server = FixedRateServer(50, retry_after=retry_after)
        policy = PollPolicy(multiplier=1.0, max_concurrency=16, max_rate=math.inf)
        scheduler = Scheduler(server.fetch, is_terminal, policy=policy)

        with pytest.raises(WaitTimeoutError):
            await scheduler.wait_many("video", [str(i) for i in range(300)], timeout=120)
        await scheduler.aclose()  # polls still in flight end here

        stats = scheduler.stats
        assert server.rejected_share(after=10) < 0.1
        assert server.served_per_second(10, 120) > 25  # it still uses much of what the server allows
        assert stats.rate_limited == sum(1 for _, ok in server.log if not ok)
        assert stats.allowed_rate is not None
        assert stats.allowed_rate < 100

    run(main())


# as_completed


@virtual_time
async def test_as_completed_yields_in_completion_order() -> None:
    api = FakeAPI({"slow": 30.0, "fast": 2.0, "mid": 8.0})
    scheduler = make(api)
    seen: list[tuple[str, float]] = []

    async for project in scheduler.as_completed("video", ["slow", "fast", "mid"]):
        seen.append((project.id, now()))

    assert [id for id, _ in seen] == ["fast", "mid", "slow"]
    assert [t for _, t in seen] == pytest.approx([2.0, 8.0, 30.0 + 0.0], abs=4.5)


@virtual_time
async def test_as_completed_yields_duplicates_once_per_occurrence() -> None:
    api = FakeAPI({"a": 1.0, "b": 3.0})
    scheduler = make(api)

    ids = [p.id async for p in scheduler.as_completed("video", ["b", "a", "b"])]

    assert ids == ["a", "b", "b"]


@virtual_time
async def test_breaking_out_of_as_completed_stops_polling_the_rest() -> None:
    api = FakeAPI({"a": 1.0, "b": 50.0, "c": 50.0})
    scheduler = make(api)

    async for project in scheduler.as_completed("video", ["a", "b", "c"]):
        assert project.id == "a"
        break
    polled = len(api.calls)
    await asyncio.sleep(100)

    assert len(api.calls) == polled
    assert scheduler.stats.watched_projects == 0
    assert scheduler.stats.active_waits == 0


@virtual_time
async def test_closing_as_completed_early_withdraws_interest() -> None:
    api = FakeAPI({"a": 1.0, "b": 50.0})
    scheduler = make(api)

    iterator = scheduler.as_completed("video", ["a", "b"])
    assert (await iterator.__anext__()).id == "a"
    await iterator.aclose()
    polled = len(api.calls)
    await asyncio.sleep(100)

    assert len(api.calls) == polled
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


@virtual_time
async def test_as_completed_times_out_with_the_first_unfinished_id_in_input_order() -> None:
    api = FakeAPI({"a": 1.0, "b": 50.0, "c": 50.0})
    scheduler = make(api)
    seen: list[str] = []

    async def consume() -> None:
        async for project in scheduler.as_completed("video", ["b", "a", "c"], timeout=10):
            seen.append(project.id)

    with pytest.raises(WaitTimeoutError, match=r"video project 'b' .* 10 s \(2 of 3 unfinished\)") as caught:
        await consume()

    assert seen == ["a"]
    assert caught.value.project is not None
    assert caught.value.project.id == "b"
    await asyncio.sleep(100)
    assert max(t for t, _, _ in api.calls) < 10


@virtual_time
async def test_as_completed_of_nothing_yields_nothing() -> None:
    scheduler = make(FakeAPI())

    assert [p async for p in scheduler.as_completed("video", [])] == []
    assert await scheduler.wait_many("video", []) == []


# Statuses


@virtual_time
async def test_an_unknown_status_keeps_polling() -> None:
    api = FakeAPI({"a": 5.0}, running="upscaling")
    scheduler = make(api)

    project = await scheduler.wait("video", "a")

    assert project.status == "complete"
    assert len(api.times("a")) == 6


@pytest.mark.parametrize("final", ["error", "canceled"])
def test_failed_renders_are_returned_not_raised(final: str) -> None:
    async def main() -> None:
        scheduler = make(FakeAPI({"a": 2.0}, final=final))
        assert (await scheduler.wait("video", "a")).status == final

    run(main())


# wait_many


@virtual_time
async def test_wait_many_returns_input_order_with_duplicates() -> None:
    api = FakeAPI({"a": 9.0, "b": 1.0, "c": 4.0})
    scheduler = make(api)

    projects = await scheduler.wait_many("image", ["a", "b", "a", "c"])

    assert [p.id for p in projects] == ["a", "b", "a", "c"]
    assert projects[0] is projects[2]
    assert api.times("a") == pytest.approx(schedule(PollPolicy(), 9.0))  # one poll stream, not two
    assert api.times("b") == [0.0, 1.0]


@virtual_time
async def test_wait_many_timeout_reports_the_first_unfinished_id_and_withdraws() -> None:
    api = FakeAPI({"a": 1.0, "b": 60.0, "c": 60.0})
    scheduler = make(api)

    with pytest.raises(WaitTimeoutError, match=r"image project 'c' .* \(2 of 3 unfinished\)") as caught:
        await scheduler.wait_many("image", ["a", "c", "b"], timeout=5)
    await asyncio.sleep(100)

    # The GET sent at the deadline answers after it: the last project seen is the one from 4 s.
    assert caught.value.project == Project("c", "rendering", 4.0)
    assert max(t for t, _, _ in api.calls) == 5.0
    assert scheduler.stats.watched_projects == 0


# notify


@virtual_time
async def test_notify_with_a_terminal_state_resolves_waiters_at_once() -> None:
    api = FakeAPI()
    scheduler = make(api)

    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(2.5)
    pushed = Project("a", "complete", -1.0)
    scheduler.notify("video", "a", pushed)

    assert await task is pushed
    assert now() == 2.5
    await asyncio.sleep(100)
    assert api.times("a") == [0.0, 1.0, 2.0]


@virtual_time
async def test_notify_with_a_running_state_is_kept_as_the_last_seen() -> None:
    api = FakeAPI()
    scheduler = make(api)

    task = asyncio.create_task(scheduler.wait("video", "a", timeout=10))
    await asyncio.sleep(9.5)
    scheduler.notify("video", "a", Project("a", "queued", -1.0))

    with pytest.raises(WaitTimeoutError) as caught:
        await task
    assert caught.value.project == Project("a", "queued", -1.0)


@virtual_time
async def test_notify_for_an_unwatched_id_is_ignored() -> None:
    api = FakeAPI({"a": 0.0})
    scheduler = make(api)

    scheduler.notify("video", "a", Project("a", "rendering"))
    project = await scheduler.wait("video", "a")

    assert project.status == "complete"
    assert scheduler.stats.watched_projects == 0


@virtual_time
async def test_safety_factor_slows_polling_and_lowering_it_brings_polls_forward() -> None:
    api = FakeAPI()
    scheduler = make(api)
    scheduler.safety_factor = 10

    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(22)
    assert api.times("a") == [0.0, 10.0]  # 10 x 1 s, then 10 x 13% of 10 s: the next is due at 23
    scheduler.safety_factor = 1  # the webhook went away: the poll due at 23 was due at 11.3, so now
    await asyncio.sleep(4)
    assert api.times("a") == pytest.approx([0.0, 10.0, 22.0, 24.86])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("value", [0.5, math.inf, math.nan, "2"])
def test_a_bad_safety_factor_is_rejected(value: object) -> None:
    scheduler = make(FakeAPI())

    with pytest.raises(ConfigurationError, match="safety_factor"):
        scheduler.safety_factor = value  # type: ignore[assignment]


# Lifecycle


def test_a_scheduler_can_be_created_outside_a_running_loop() -> None:
    api = FakeAPI({"a": 1.0})
    scheduler = make(api)  # like a client constructed synchronously

    async def main() -> Project:
        return await scheduler.wait("video", "a")

    assert run(main()).status == "complete"


@virtual_time
async def test_the_driver_stops_when_idle_and_restarts_on_demand() -> None:
    api = FakeAPI({"a": 1.0, "b": 13.0})
    scheduler = make(api)

    await scheduler.wait("video", "a")
    await settle()
    assert asyncio.all_tasks() == {asyncio.current_task()}

    await asyncio.sleep(10)
    assert (await scheduler.wait("video", "b")).status == "complete"
    assert api.times("b")[0] == 11.0  # polled at once by a new driver
    await settle()
    assert asyncio.all_tasks() == {asyncio.current_task()}


@virtual_time
async def test_aclose_fails_pending_waiters_and_leaves_no_tasks() -> None:
    api = FakeAPI(latency=0.5)
    scheduler = make(api)

    async def first_completed() -> list[Project]:
        return [p async for p in scheduler.as_completed("video", ["c"])]

    waits = [
        asyncio.create_task(scheduler.wait("video", "a")),
        asyncio.create_task(scheduler.wait_many("video", ["a", "b"])),
        asyncio.create_task(first_completed()),
    ]
    await asyncio.sleep(3.2)  # polls in flight right now
    await scheduler.aclose()
    results = await asyncio.gather(*waits, return_exceptions=True)

    assert all(type(r) is ClientClosedError for r in results)
    assert str(results[0]) == "client closed"
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(ClientClosedError):
        await scheduler.wait("video", "a")
    await scheduler.aclose()  # closing twice is harmless


@virtual_time
async def test_aclose_raises_the_error_the_factory_builds() -> None:
    class Closed(MagicHourError):
        pass

    scheduler = make(FakeAPI(), closed_error=lambda: Closed("the client is closed"))
    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(1)
    await scheduler.aclose()

    with pytest.raises(Closed, match="the client is closed"):
        await task


# Observability


@virtual_time
async def test_stats_count_polls_failures_retries_and_throttles() -> None:
    api = FakeAPI({"a": 3.0, "b": 100.0})
    api.errors["a"] = deque([RateLimitError("slow"), ServerError("down", status_code=503)])
    api.errors["c"] = deque([NotFoundError("gone", status_code=404)])
    scheduler = make(api, policy=PollPolicy(max_concurrency=2, max_rate=math.inf))

    assert scheduler.stats == SchedulerStats(
        polls_sent=0,
        polls_failed=0,
        polls_retried=0,
        rate_limited=0,
        active_waits=0,
        watched_projects=0,
        in_flight=0,
        max_in_flight=0,
        allowed_rate=None,
    )
    waiting_for_b = asyncio.create_task(scheduler.wait("video", "b"))
    results = await asyncio.gather(
        scheduler.wait("video", "a"), scheduler.wait("video", "c"), return_exceptions=True
    )
    stats = scheduler.stats

    assert isinstance(results[1], NotFoundError)
    assert stats.polls_sent == len(api.calls)
    assert (stats.polls_failed, stats.polls_retried, stats.rate_limited) == (3, 2, 1)
    assert (stats.active_waits, stats.watched_projects) == (1, 1)
    assert stats.max_in_flight == 2
    assert stats.allowed_rate is None  # one 429 is no rate limit
    waiting_for_b.cancel()
    await settle()


@virtual_time
async def test_on_event_reports_each_step() -> None:
    api = FakeAPI({"a": 2.0})
    api.errors["a"] = deque([ServerError("down", status_code=500)])
    api.errors["b"] = deque([NotFoundError("gone", status_code=404)])
    events: list[PollEvent[Project]] = []
    scheduler = make(api, on_event=events.append)

    await asyncio.gather(scheduler.wait("video", "a"), scheduler.wait("video", "b"), return_exceptions=True)

    assert [(e.what, e.id) for e in events] == [
        ("retry", "a"),
        ("error", "b"),
        ("polled", "a"),
        ("terminal", "a"),
    ]
    assert events[-1].project == Project("a", "complete", 2.0)
    assert isinstance(events[1].error, NotFoundError)


@virtual_time
async def test_a_failing_on_event_callback_does_not_break_polling() -> None:
    def explode(event: PollEvent[Project]) -> None:
        raise RuntimeError("bad callback")

    scheduler = make(FakeAPI({"a": 2.0}), on_event=explode)

    assert (await scheduler.wait("video", "a")).status == "complete"


# The event loop never stalls (real time).


@pytest.mark.asyncio
async def test_hundreds_of_waits_never_stall_the_event_loop() -> None:
    polls: dict[str, int] = {}

    async def fetch(kind: str, id: str) -> Project:
        polls[id] = polls.get(id, 0) + 1
        return Project(id, "complete" if polls[id] >= 4 else "rendering")

    policy = PollPolicy(initial=0.02, maximum=0.1, max_rate=math.inf)
    scheduler = Scheduler(fetch, is_terminal, policy=policy)
    worst = 0.0
    stop = False

    async def ticker() -> None:
        # CPU time of the loop's thread between two ticks: a stall is work done on the loop, which wall time
        # would confuse with other processes taking the machine's cores.
        nonlocal worst
        while not stop:
            before = time.thread_time()
            await asyncio.sleep(0.005)
            worst = max(worst, time.thread_time() - before)

    gc.collect()  # garbage earlier tests left would otherwise be collected at a random tick
    ticking = asyncio.create_task(ticker())
    projects = await asyncio.gather(*(scheduler.wait("video", str(i)) for i in range(500)))
    stop = True
    await ticking
    await scheduler.aclose()

    assert len(projects) == 500
    assert all(p.status == "complete" for p in projects)
    assert worst < 0.05


@virtual_time
async def test_poll_now_brings_a_planned_poll_forward() -> None:
    api = FakeAPI({"a": 2.5})
    scheduler = make(api)
    scheduler.safety_factor = 10  # the next planned poll is at 10 s

    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(3)
    scheduler.poll_now("video", "a")

    project = await task
    assert project.status == "complete"
    assert now() == 3.0
    assert api.times("a") == [0.0, 3.0]


@virtual_time
async def test_poll_now_during_a_poll_in_flight_polls_again_when_it_answers() -> None:
    # The GET in flight was answered from the state before the news; without a second poll the wait
    # would go on until the slow poll planned 10 s later.
    api = FakeAPI({"a": 0.5}, latency=1.0)
    scheduler = make(api)
    scheduler.safety_factor = 10

    task = asyncio.create_task(scheduler.wait("video", "a"))
    await asyncio.sleep(0.5)
    scheduler.poll_now("video", "a")

    project = await task
    assert project.status == "complete"
    assert api.times("a") == [0.0, 1.0]
    assert now() == 2.0


@virtual_time
async def test_poll_now_for_an_unwatched_id_sends_nothing() -> None:
    api = FakeAPI({"a": 0.0})
    scheduler = make(api)

    scheduler.poll_now("video", "a")
    await asyncio.sleep(5)

    assert api.calls == []
    assert scheduler.stats.watched_projects == 0


@virtual_time
async def test_a_just_created_project_is_first_polled_one_interval_later() -> None:
    api = FakeAPI({"a": 0.5, "b": 0.5})
    scheduler = make(api)

    fresh = asyncio.create_task(scheduler.wait("video", "a", just_created=True))
    await asyncio.sleep(0)
    old = asyncio.create_task(scheduler.wait("video", "b"))

    assert (await fresh).status == "complete" and (await old).status == "complete"
    assert api.times("a") == [1.0]  # no poll at 0: it could only have said "queued"
    assert api.times("b") == [0.0, 1.0]
