"""Waits converge under rate limits and fail loudly: the scheduler against hostile servers, in virtual time.

Each server here is a fake ``fetch`` driven by the virtual clock (tests/_clock.py) and a seeded random source,
so every number is exact and repeatable: a proxy answering a fixed share with 429 and 503, a token-bucket rate
limit, an unreachable host, a server answering garbage. tests/test_waits_hostile.py runs the same failures
over loopback through a real client.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import pickle
import random
from collections.abc import Awaitable, Callable

import pytest

from magic_hour_async._exceptions import (
    APIConnectionError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    WaitTimeoutError,
)
from magic_hour_async._polling._policy import PollPolicy, poll_delay
from magic_hour_async._polling._scheduler import PollEvent, Scheduler
from magic_hour_async._test_mode import set_testing
from tests._clock import run, virtual_time
from tests.test_scheduler import Project, is_terminal, now

Fetch = Callable[[str, str], Awaitable[Project]]


class Renders:
    """Renders finishing at set times after it is made; a fixed share of GETs answered 429 or 503."""

    def __init__(self, durations: dict[str, float], *, throttled: float = 0.0, failed: float = 0.0) -> None:
        self.durations = durations
        self.throttled = throttled
        self.failed = failed
        self.random = random.Random(7)
        self.start = now()
        self.calls: list[float] = []  # times since the start
        self.seen_done: dict[str, float] = {}

    async def fetch(self, kind: str, id: str) -> Project:
        at = now() - self.start
        self.calls.append(at)
        await asyncio.sleep(0.005)  # a round trip
        roll = self.random.random()
        if roll < self.throttled:
            raise RateLimitError("Too Many Requests", retry_after=1.0)
        if roll < self.throttled + self.failed:
            raise ServerError("Service Unavailable", status_code=503)
        done = at >= self.durations[id]
        if done:
            self.seen_done.setdefault(id, at)
        return Project(id, "complete" if done else "rendering", at)


def batch(n: int) -> dict[str, float]:
    """``n`` renders of 2 to 30 s, evenly spread, all started at 0."""
    return {str(i): 2 + 28 * i / (n - 1) for i in range(n)}


async def finish_all(server: Renders, policy: PollPolicy) -> tuple[float, Scheduler[Project]]:
    scheduler = Scheduler(server.fetch, is_terminal, policy=policy, random=random.Random(3).random)
    projects = await scheduler.wait_many("video", list(server.durations), timeout=3600)
    assert all(p.status == "complete" for p in projects)
    finished = now() - server.start
    await scheduler.aclose()
    return finished, scheduler


@pytest.mark.parametrize("max_rate", [10.0, math.inf], ids=["default budget", "no budget"])
def test_sporadic_429s_and_503s_do_not_ratchet_the_rate_down(max_rate: float) -> None:
    async def main() -> None:
        policy = PollPolicy(max_rate=max_rate)
        calm_wall, _ = await finish_all(Renders(batch(1000)), policy)
        hostile = Renders(batch(1000), throttled=0.03, failed=0.10)

        wall, scheduler = await finish_all(hostile, policy)

        stats = scheduler.stats
        assert stats.rate_limited > 0.02 * stats.polls_sent  # the proxy did throttle
        assert wall <= 1.3 * calm_wall  # all 1,000 finished, almost as soon as without faults
        # A fixed share of 429s is no rate limit: the allowed rate is still the budget.
        assert stats.allowed_rate == (None if math.isinf(max_rate) else pytest.approx(0.95 * max_rate))

    run(main())


class TokenBucket:
    """A server allowing ``rate`` GETs a second, bursts of up to ``burst``; else 429 with the exact wait."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = 0.0
        self.log: list[tuple[float, bool]] = []

    async def fetch(self, kind: str, id: str) -> Project:
        at = now()
        self.tokens = min(self.burst, self.tokens + (at - self.updated) * self.rate)
        self.updated = at
        ok = self.tokens >= 1
        if ok:
            self.tokens -= 1
        self.log.append((at, ok))
        await asyncio.sleep(0.005)
        if not ok:
            raise RateLimitError("Too Many Requests", retry_after=(1 - self.tokens) / self.rate)
        return Project(id, "rendering", at)

    def between(self, start: float, end: float) -> tuple[float, float]:
        """(requests served per second, share answered 429) between ``start`` and ``end``."""
        outcomes = [ok for t, ok in self.log if start <= t < end]
        return outcomes.count(True) / (end - start), outcomes.count(False) / len(outcomes)


@pytest.mark.parametrize(
    ("rate", "max_rate"), [(20.0, math.inf), (50.0, math.inf), (20.0, 100.0), (5.0, 10.0)]
)
def test_a_real_rate_limit_is_found_and_held(rate: float, max_rate: float) -> None:
    async def main() -> None:
        # 300 renders polled every second want 300 GETs a second, far above what the server allows.
        server = TokenBucket(rate, burst=rate)
        policy = PollPolicy(multiplier=1.0, max_rate=max_rate)
        scheduler = Scheduler(server.fetch, is_terminal, policy=policy, random=random.Random(5).random)

        with pytest.raises(WaitTimeoutError):
            await scheduler.wait_many("video", [str(i) for i in range(300)], timeout=300)
        await scheduler.aclose()

        served, throttled = server.between(30, 300)
        assert served >= 0.8 * rate
        assert throttled <= 0.05

    run(main())


def seconds_over_budget(times: list[float], budget: int) -> list[float]:
    """Start times of one-second windows ``[t, t + 1)`` holding more than ``budget`` of ``times``."""
    times = sorted(times)
    return [a for a, b in zip(times, times[budget:], strict=False) if b - a < 1.0]


@virtual_time
async def test_a_thousand_waits_created_at_once_never_exceed_max_rate_in_any_second() -> None:
    server = Renders({str(i): 5.0 for i in range(1000)})
    scheduler = Scheduler(server.fetch, is_terminal, policy=PollPolicy(), random=random.Random(1).random)

    await asyncio.gather(*(scheduler.wait("video", id) for id in server.durations))

    assert len(server.calls) >= 1000
    assert seconds_over_budget(server.calls, 10) == []
    assert seconds_over_budget(server.calls, 9) != []  # and the budget is used
    assert seconds_over_budget([t + 0.049 * (i % 2) for i, t in enumerate(server.calls)], 10) == []
    assert scheduler.stats.allowed_rate == pytest.approx(9.5)  # paced with slack for arrival jitter


@virtual_time
async def test_when_the_budget_binds_the_most_overdue_poll_goes_first() -> None:
    # 200 long renders saturate a budget of 5 polls a second; a 3-s render starts among them at 300 s.
    durations = {str(i): 10_000.0 for i in range(200)}
    server = Renders({**durations, "short": 303.0})
    scheduler = Scheduler(
        server.fetch, is_terminal, policy=PollPolicy(max_rate=5), random=random.Random(2).random
    )
    batch_waits = asyncio.ensure_future(scheduler.wait_many("video", list(durations)))
    await asyncio.sleep(300)

    short = await scheduler.wait("video", "short")

    # Late by a few seconds: its 1-s polls are more overdue, in their own terms, than the batch's 30-s ones.
    # Served first come, first served it would wait behind the batch's backlog (more than a minute).
    assert short.seen_at - 303 < 3
    batch_waits.cancel()
    await asyncio.gather(batch_waits, return_exceptions=True)
    await scheduler.aclose()


# Waits fail loudly.


class Unreachable:
    """Every GET fails the same way, after a round trip."""

    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error
        self.calls: list[tuple[float, str]] = []

    async def fetch(self, kind: str, id: str) -> Project:
        self.calls.append((now(), id))
        await asyncio.sleep(0.01)
        raise self.error()


@pytest.mark.parametrize(
    "error",
    [
        lambda: APIConnectionError("Cannot connect to host 127.0.0.1:9"),
        lambda: ResponseDecodeError("the response is not JSON"),
        lambda: ServerError("Bad Gateway", status_code=502),
        lambda: RateLimitError("Too Many Requests", retry_after=1.0),
    ],
    ids=["unreachable", "garbage", "502", "429"],
)
def test_a_project_failing_transiently_for_give_up_after_fails_every_wait_with_the_last_error(
    error: Callable[[], Exception],
) -> None:
    async def main() -> None:
        server = Unreachable(error)
        events: list[PollEvent[Project]] = []
        policy = PollPolicy(give_up_after=120)
        scheduler = Scheduler(server.fetch, is_terminal, policy=policy, on_event=events.append)

        results = await asyncio.gather(
            scheduler.wait("video", "a"),  # no timeout: it must not hang
            scheduler.wait_many("video", ["a", "b"], timeout=None),
            return_exceptions=True,
        )

        failed_at = now()
        assert type(results[0]) is type(error())  # the very exception of the last poll
        assert type(results[1]) is type(error())  # of "a" or of "b", whichever gave up first
        assert 120 <= failed_at <= 120 + 30 + 3  # at the first failed poll after give_up_after
        retries = [e for e in events if e.what == "retry" and e.id == "a"]
        assert len(retries) == sum(1 for _, id in server.calls if id == "a") - 1  # all but the last
        assert all(type(e.error) is type(error()) for e in retries)
        assert [e.error for e in events if e.what == "error" and e.id == "a"] == [results[0]]
        await scheduler.aclose()

    run(main())


@virtual_time
async def test_a_successful_poll_restarts_the_give_up_clock() -> None:
    outcomes = itertools.cycle([True, False, False, False])  # one poll in four succeeds

    async def fetch(kind: str, id: str) -> Project:
        if next(outcomes):
            return Project(id, "rendering", now())
        raise ServerError("Service Unavailable", status_code=503)

    policy = PollPolicy(give_up_after=20, maximum=5)
    scheduler = Scheduler(fetch, is_terminal, policy=policy, random=lambda: 0.0)

    with pytest.raises(WaitTimeoutError) as caught:
        await scheduler.wait("video", "a", timeout=200)

    assert isinstance(caught.value.last_error, ServerError)  # still retrying at the deadline
    await scheduler.aclose()


@virtual_time
async def test_a_timeout_carries_the_last_poll_error_as_last_error_and_cause() -> None:
    server = Unreachable(lambda: ServerError("Service Unavailable", status_code=503))
    scheduler = Scheduler(server.fetch, is_terminal)

    with pytest.raises(WaitTimeoutError) as caught:
        await scheduler.wait("video", "a", timeout=30)

    error = caught.value
    assert isinstance(error.last_error, ServerError)
    assert error.__cause__ is error.last_error
    assert "ServerError" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy.last_error, ServerError)
    assert copy.last_error.status_code == 503
    assert copy.__cause__ is copy.last_error
    await scheduler.aclose()


@virtual_time
async def test_a_timeout_after_polls_recovered_carries_no_last_error() -> None:
    calls = itertools.count()

    async def fetch(kind: str, id: str) -> Project:
        if next(calls) < 2:
            raise APIConnectionError("Connection reset by peer")
        return Project(id, "rendering", now())

    scheduler = Scheduler(fetch, is_terminal)

    with pytest.raises(WaitTimeoutError) as caught:
        await scheduler.wait("video", "a", timeout=30)

    assert caught.value.last_error is None
    assert caught.value.__cause__ is None
    assert caught.value.project is not None
    await scheduler.aclose()


def test_wait_timeout_error_without_a_poll_error_pickles_with_no_cause() -> None:
    error = WaitTimeoutError("video project 'a' did not finish within 5 s")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.message, copy.project, copy.last_error, copy.__cause__) == (error.message, None, None, None)


# Test mode.


def test_test_mode_compresses_poll_delays_a_thousandfold() -> None:
    policy = PollPolicy()

    assert poll_delay(policy, age=0, rand=0, testing=True) == pytest.approx(0.001)
    assert poll_delay(policy, age=10_000, rand=0, testing=True) == pytest.approx(0.030)
    assert poll_delay(policy, age=0, rand=0, testing=False) == 1.0
    with set_testing(True):
        assert poll_delay(policy, age=0, rand=0) == pytest.approx(0.001)
    assert poll_delay(policy, age=0, rand=0) == 1.0


@virtual_time
async def test_in_test_mode_the_scheduler_polls_a_thousand_times_faster() -> None:
    server = Renders({"a": 0.0095})
    scheduler = Scheduler(server.fetch, is_terminal, policy=PollPolicy(jitter=0))

    with set_testing(True):
        project = await scheduler.wait("video", "a")

    assert project.status == "complete"
    # Polls at 0, then 1 ms after each answer (5 ms round trips): 0, 6, 12 ms.
    assert server.calls == pytest.approx([0.0, 0.006, 0.012])
    await scheduler.aclose()


@virtual_time
async def test_in_test_mode_give_up_after_and_the_budget_run_a_thousand_times_faster() -> None:
    server = Unreachable(lambda: APIConnectionError("Connection refused"))
    scheduler = Scheduler(server.fetch, is_terminal)  # give_up_after=300, max_rate=10

    with set_testing(True):
        with pytest.raises(APIConnectionError):
            await scheduler.wait("video", "a")
        given_up_at = now()
        busy = Renders({str(i): 0.0 for i in range(100)})
        batch_scheduler = Scheduler(busy.fetch, is_terminal)
        await batch_scheduler.wait_many("video", list(busy.durations))

    assert 0.3 <= given_up_at <= 0.35  # 300 s, plus up to a 33-s retry interval, 1,000 times faster
    # 100 polls at an uncompressed budget of 10 a second take 10 s; here only the 16 polls in flight with
    # 5-ms answers bound them (31 ms).
    assert max(busy.calls) < 0.04
    await scheduler.aclose()
    await batch_scheduler.aclose()
