"""PollPolicy validation, the pure poll_delay function, and simulations that justify the defaults."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import attrs
import pytest

from magic_hour_async._exceptions import ConfigurationError
from magic_hour_async._polling._policy import PollPolicy, poll_delay


def test_defaults() -> None:
    policy = PollPolicy()

    assert (policy.initial, policy.maximum, policy.multiplier, policy.jitter, policy.max_concurrency) == (
        1.0,
        30.0,
        1.13,
        0.1,
        16,
    )
    assert (policy.max_rate, policy.give_up_after) == (10.0, 300.0)


@pytest.mark.parametrize("field", ["max_rate", "give_up_after"])
@pytest.mark.parametrize("value", [0, -1.0, math.nan, "10", True])
def test_bad_budgets_raise_configuration_error(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        PollPolicy(**{field: value})  # type: ignore[arg-type]


def test_no_budget_and_never_giving_up_are_allowed() -> None:
    policy = PollPolicy(max_rate=math.inf, give_up_after=math.inf)

    assert (policy.max_rate, policy.give_up_after) == (math.inf, math.inf)


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = PollPolicy(initial=2, maximum=60)

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.initial = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PollPolicy(1.0)  # type: ignore[call-arg]
    assert attrs.evolve(policy, jitter=0.0).jitter == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial", 0),
        ("initial", -1.0),
        ("initial", math.inf),
        ("initial", math.nan),
        ("initial", "1"),
        ("maximum", 0.5),  # below initial
        ("maximum", math.inf),
        ("multiplier", 0.9),
        ("multiplier", math.nan),
        ("jitter", -0.1),
        ("jitter", 1.0),
        ("jitter", math.nan),
        ("max_concurrency", 0),
        ("max_concurrency", 2.0),
        ("max_concurrency", True),
    ],
)
def test_bad_values_raise_configuration_error(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field if field != "maximum" else "maximum"):
        PollPolicy(**{field: value})  # type: ignore[arg-type]


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(jitter=2)


NO_JITTER = PollPolicy(jitter=0.0)


@pytest.mark.parametrize(
    ("policy", "age", "rand", "failures", "scale", "expected"),
    [
        # Young projects poll every `initial`.
        (NO_JITTER, 0.0, 0.0, 0, 1.0, 1.0),
        (NO_JITTER, 5.0, 0.0, 0, 1.0, 1.0),
        # Then at 13% of the age: the next poll comes at 1.13 x the age.
        (NO_JITTER, 20.0, 0.0, 0, 1.0, 2.6),
        (NO_JITTER, 100.0, 0.0, 0, 1.0, 13.0),
        # Capped at `maximum` (binds from about 231 s).
        (NO_JITTER, 240.0, 0.0, 0, 1.0, 30.0),
        (NO_JITTER, 10_000.0, 0.0, 0, 1.0, 30.0),
        # Jitter only ever lengthens, by up to `jitter` of the interval: no poll comes before its time.
        (PollPolicy(), 0.0, 0.0, 0, 1.0, 1.0),
        (PollPolicy(), 0.0, 0.5, 0, 1.0, 1.05),
        (PollPolicy(), 100.0, 0.999, 0, 1.0, 13.0 * (1 + 0.0999)),
        (PollPolicy(jitter=0.5), 20.0, 0.5, 0, 1.0, 2.6 * 1.25),
        # Transient failures back off exponentially from ``initial``, capped, whatever the age.
        (NO_JITTER, 0.0, 0.0, 1, 1.0, 1.0),
        (NO_JITTER, 0.0, 0.0, 2, 1.0, 2.0),
        (NO_JITTER, 0.0, 0.0, 4, 1.0, 8.0),
        (NO_JITTER, 0.0, 0.0, 6, 1.0, 30.0),
        (NO_JITTER, 0.0, 0.0, 5000, 1.0, 30.0),
        (NO_JITTER, 100.0, 0.0, 1, 1.0, 1.0),  # the failed poll brought no news: retried soon
        (NO_JITTER, 100.0, 0.0, 2, 1.0, 2.0),
        # The webhook safety factor scales everything, the cap included.
        (NO_JITTER, 0.0, 0.0, 0, 10.0, 10.0),
        (NO_JITTER, 1000.0, 0.0, 0, 4.0, 120.0),
        # multiplier=1 is a fixed interval.
        (PollPolicy(initial=0.5, multiplier=1.0, jitter=0.0), 1000.0, 0.0, 0, 1.0, 0.5),
    ],
)
def test_poll_delay(
    policy: PollPolicy, age: float, rand: float, failures: int, scale: float, expected: float
) -> None:
    delay = poll_delay(policy, age=age, rand=rand, failures=failures, scale=scale)

    assert delay == pytest.approx(expected)


def simulate(policy: PollPolicy, duration: float, rand: Callable[[], float]) -> tuple[int, float]:
    """GETs spent and detection delay for a render finishing at ``duration``, polled from age 0."""
    t, gets = 0.0, 1  # the first poll is immediate
    while t < duration:
        t += poll_delay(policy, age=t, rand=rand())
        gets += 1
    return gets, t - duration


def fixed_poller(duration: float, interval: float = 0.5) -> int:
    """GETs the incumbent spends: one at once, then every ``interval`` until it sees the render done."""
    return math.ceil(duration / interval) + 1


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.9999999])
def test_a_six_second_render_costs_at_most_8_gets_and_is_noticed_within_a_second(rand: float) -> None:
    gets, delay = simulate(PollPolicy(), 6.0, lambda: rand)

    assert gets <= 8
    assert 0 <= delay <= 1.0


def test_a_six_second_render_with_random_jitter() -> None:
    rng = random.Random(6)
    runs = [simulate(PollPolicy(), 6.0, rng.random) for _ in range(1000)]

    assert max(gets for gets, _ in runs) == 7
    assert max(delay for _, delay in runs) <= 0.6


def test_a_log_uniform_batch_costs_under_a_fifth_of_a_fixed_poller_and_meets_the_delay_bound() -> None:
    # 1,000 render times evenly spread on a log scale from 3 s to 300 s, jitter from a seeded generator.
    rng = random.Random(300)
    durations = [3 * 100 ** ((i + 0.5) / 1000) for i in range(1000)]
    runs = [simulate(PollPolicy(), d, rng.random) for d in durations]

    ours = sum(gets for gets, _ in runs)
    theirs = sum(fixed_poller(d) for d in durations)
    # Each delay as a fraction of its bound, max(1 s, 15% of the render time).
    used = sorted(delay / max(1.0, 0.15 * d) for (_, delay), d in zip(runs, durations, strict=True))

    assert ours / theirs < 0.2
    assert (ours, theirs) == (19_660, 130_480)  # 15.1%
    assert used[949] <= 0.9  # p95: 87% of the bound
    # Only the shortest renders can pass it, by at most the jitter of the 1-s interval.
    assert used[-1] <= 1.1
    assert used[0] >= 0.0


def test_thousands_of_projects_started_together_drift_apart() -> None:
    rng = random.Random(1)

    def tenth_poll() -> float:
        t = 0.0
        for _ in range(10):
            t += poll_delay(PollPolicy(), age=t, rand=rng.random())
        return t

    times = sorted(tenth_poll() for _ in range(1000))
    # Spread over about half a second instead of firing in one instant.
    per_10ms = max(sum(1 for t in times if b / 100 <= t < (b + 1) / 100) for b in range(800, 1100))
    assert times[-1] - times[0] > 0.4
    assert per_10ms < 60


def test_huge_failure_counts_do_not_overflow() -> None:
    assert poll_delay(PollPolicy(), age=0.0, rand=0.0, failures=10**9) == 30.0
