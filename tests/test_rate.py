"""The poll rate, step by step: every method takes ``now``, so each case is exact."""

from __future__ import annotations

import itertools
import math

import pytest

from magic_hour_async._polling._rate import AdaptiveRate


def steady(rate: AdaptiveRate, per_second: int, start: float, end: float) -> float:
    """Send ``per_second`` requests a second from ``start`` until ``end``; return the time of the last."""
    t = start
    step = 1.0 / per_second
    while t < end - 1e-9:
        assert rate.acquire(t) == 0.0
        t += step
    return t - step


def answer(
    rate: AdaptiveRate, now: float, *, ok: int, throttled: int, retry_after: float | None = None
) -> bool:
    """Answer ``ok`` requests, then ``throttled`` with 429, all sent at ``now``; True if one cut the rate."""
    for _ in range(ok):
        rate.on_success(now, sent_at=now)
    cuts = 0
    for _ in range(throttled):  # every one, even after a cut
        cuts += rate.on_throttle(now, sent_at=now, retry_after=retry_after)
    return cuts > 0


def cut_at_ten() -> tuple[AdaptiveRate, float]:
    """No budget; 10 requests/s for 10 s, then 20% of 50 answers throttled at t=10; and the rate measured."""
    rate = AdaptiveRate()
    steady(rate, 10, 0.0, 10.0)
    measured = rate.measured
    assert answer(rate, 10.0, ok=40, throttled=10)
    return rate, measured


def test_without_a_budget_nothing_limits_until_a_cut() -> None:
    rate = AdaptiveRate()

    assert [rate.acquire(0.0) for _ in range(1000)] == [0.0] * 1000
    assert rate.allowed is None


def test_the_budget_spaces_requests_evenly_and_no_second_holds_more() -> None:
    rate = AdaptiveRate(max_rate=10)
    sent: list[float] = []
    t = 0.0
    while t < 10:
        wait = rate.acquire(t)
        if wait == 0:
            sent.append(t)
        else:
            t += wait

    assert sent[0] == 0.0  # the first at once
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps == pytest.approx([1 / 9.5] * len(gaps), abs=1e-5)  # at 95% of the budget
    assert all(sent[i + 10] - sent[i] >= 1.05 for i in range(len(sent) - 10))
    assert rate.allowed == pytest.approx(9.5)


def test_an_idle_budget_banks_one_request_only() -> None:
    rate = AdaptiveRate(max_rate=10)

    assert rate.acquire(100.0) == 0.0
    assert rate.acquire(100.0) > 0.09


@pytest.mark.parametrize(
    ("ok", "throttled"),
    [
        (0, 1),  # one 429 is no rate limit
        (10, 2),  # nor two, whatever the share
        (15, 4),  # nor too few answers
        (43, 7),  # nor 14% of 50 answers
        (186, 14),  # nor 7% of 200: a proxy's share
    ],
)
def test_429s_without_evidence_of_a_rate_limit_never_cut(ok: int, throttled: int) -> None:
    rate = AdaptiveRate(max_rate=100)
    steady(rate, 90, 0.0, 2.0)

    assert not answer(rate, 2.0, ok=ok, throttled=throttled, retry_after=1.0)
    assert rate.allowed == pytest.approx(95)
    assert rate.learnt is None
    assert rate.acquire(2.0) == 0.0  # and a Retry-After alone pauses nobody


def test_a_cut_keeps_ninety_percent_of_the_rate_the_server_accepted() -> None:
    rate, measured = cut_at_ten()

    assert measured == pytest.approx(10, rel=0.05)
    # The 8th 429 makes the evidence (8 of 48 answers, over 15%): 40/48 was accepted.
    assert rate.learnt == pytest.approx(measured * 40 / 48 * 0.9)


def test_a_cut_brings_a_retry_after_pause_for_the_whole_client() -> None:
    rate = AdaptiveRate()
    steady(rate, 10, 0.0, 10.0)

    assert answer(rate, 10.0, ok=40, throttled=10, retry_after=2.0)

    assert rate.acquire(11.0) == pytest.approx(1.0)


def test_throttles_of_requests_sent_within_a_second_of_the_last_cut_are_ignored() -> None:
    rate, _ = cut_at_ten()
    learnt = rate.learnt

    for now, sent_at in [(10.01, 9.7), (10.5, 10.4), (11.0, 10.99)] * 20:
        assert not rate.on_throttle(now, sent_at=sent_at)
    assert rate.learnt == learnt


def test_after_a_cut_evidence_is_gathered_afresh() -> None:
    rate, _ = cut_at_ten()
    steady(rate, 5, 11.0, 20.0)

    assert not answer(rate, 20.0, ok=15, throttled=4)  # 19 answers since the cut: not yet
    assert answer(rate, 20.0, ok=1, throttled=0) is False
    assert answer(rate, 20.0, ok=0, throttled=1)  # 21 answers, 5 throttled


def test_the_learnt_rate_recovers_and_is_forgotten_once_probed_far_above() -> None:
    rate, measured = cut_at_ten()
    cut = measured * 40 / 48 * 0.9
    seen: list[float] = []
    t = 10.0
    while rate.learnt is not None:
        t += 0.1
        rate.on_success(t, sent_at=t)
        seen.append(rate.learnt or math.inf)

    assert seen[0] == pytest.approx(cut, rel=0.01)  # starts at the cut
    assert min(seen) >= cut  # never lower without another cut
    plateau = measured * 40 / 48 * 0.95
    assert sum(abs(r - plateau) < 0.05 for r in seen) > 50  # flat for seconds at 95% of the accepted
    # 1,000 answers at the accepted rate are the curve's unit of time (120 s here): back on the plateau
    # after 0.37 units, then probing up to twice the plateau, where the limit is forgotten, after 1.37.
    assert t - 10.0 == pytest.approx(1.37 * 1000 / (measured * 40 / 48), rel=0.02)
    assert rate.allowed is None


def test_the_learnt_rate_never_drops_below_one_request_every_two_seconds() -> None:
    rate = AdaptiveRate()
    rate.acquire(0.0)

    assert answer(rate, 0.1, ok=0, throttled=20)  # nothing accepted at all

    assert rate.learnt == 0.5
    assert rate.acquire(0.1) == pytest.approx(2.0, abs=1e-3)


def test_the_budget_binds_when_lower_than_the_learnt_rate() -> None:
    rate = AdaptiveRate(max_rate=5)
    steady(rate, 4, 0.0, 10.0)
    rate.set_max_rate(10.0, 3.0)

    assert rate.allowed == pytest.approx(3 * 0.95)
    assert rate.acquire(10.0) == 0.0
    assert rate.acquire(10.0) == pytest.approx(1 / 2.85, abs=1e-3)
