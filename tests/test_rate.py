"""The adaptive rate limiter, step by step: every method takes ``now``, so each case is exact."""

from __future__ import annotations

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


def throttled_at_ten() -> AdaptiveRate:
    """A limiter that measured 10 requests/s for 10 s, then was throttled at t=10."""
    rate = AdaptiveRate()
    last = steady(rate, 10, 0.0, 10.0)
    rate.on_throttle(10.0, sent_at=last)
    return rate


def test_unlimited_until_the_first_throttle() -> None:
    rate = AdaptiveRate()

    assert [rate.acquire(0.0) for _ in range(1000)] == [0.0] * 1000
    rate.on_success(1.0)  # successes alone never switch the limit on
    assert rate.allowed is None
    assert rate.acquire(1.0) == 0.0


def test_the_measured_rate_is_the_smoothed_send_rate() -> None:
    rate = AdaptiveRate()
    steady(rate, 10, 0.0, 10.0)

    assert rate.measured == pytest.approx(10.0)


def test_a_throttle_cuts_the_allowed_rate_to_seventy_percent_of_the_measured_one() -> None:
    assert throttled_at_ten().allowed == pytest.approx(7.0)


def test_throttles_of_requests_sent_within_a_second_of_the_last_cut_are_ignored() -> None:
    rate = throttled_at_ten()

    # Requests in flight with the throttled one, or sent into the same exhausted window: already answered.
    for now, sent_at in [(10.01, 9.7), (10.01, 9.9), (10.5, 10.4), (11.0, 10.99)]:
        rate.on_throttle(now, sent_at=sent_at)
    assert rate.allowed == pytest.approx(7.0)

    # A request sent later that is throttled again cuts again, from the lower allowed rate.
    rate.on_throttle(11.2, sent_at=11.0)
    assert rate.allowed == pytest.approx(4.9)


@pytest.mark.parametrize(
    ("since_throttle", "allowed"),
    [
        (0.0, 7.0),  # where the throttle left it
        (1.0, 9.64893600966),  # climbing fast
        (1.9574338205844317, 10.0),  # K: back at the rate that was throttled
        (3.0, 10.453284520772092),  # flat around it, then probing above
        (4.0, 13.408697022224185),
        (6.0, 20.0),  # never above twice the measured rate
        (60.0, 20.0),
    ],
)
def test_successes_grow_the_rate_back_along_the_cubic_curve(since_throttle: float, allowed: float) -> None:
    rate = throttled_at_ten()

    rate.on_success(10.0 + since_throttle)

    assert rate.allowed == pytest.approx(allowed)


def test_the_token_bucket_spaces_requests_at_the_allowed_rate() -> None:
    rate = throttled_at_ten()  # 7/s, the bucket starts empty

    assert rate.acquire(10.0) == pytest.approx(1 / 7)
    assert rate.acquire(10.0) == pytest.approx(1 / 7)  # asking again takes nothing
    assert rate.acquire(10.0 + 1 / 7) == 0.0
    assert rate.acquire(10.0 + 1 / 7) == pytest.approx(1 / 7)
    # An idle spell banks a tenth of a second of requests, at least one.
    sent = 0
    while rate.acquire(100.0) == 0.0:
        sent += 1
    assert sent == 1


@pytest.mark.parametrize(
    ("retry_after", "now", "wait"),
    [
        (2.0, 10.0, 2.0),
        (2.0, 11.5, 0.5),
        (3600.0, 10.0, 60.0),  # capped at a minute
        (3600.0, 69.0, 1.0),
    ],
)
def test_retry_after_pauses_every_request(retry_after: float, now: float, wait: float) -> None:
    rate = AdaptiveRate()
    rate.on_throttle(10.0, sent_at=9.9, retry_after=retry_after)

    assert rate.acquire(now) == pytest.approx(wait)


def test_retry_after_applies_even_to_throttles_already_answered() -> None:
    rate = throttled_at_ten()

    rate.on_throttle(10.1, sent_at=9.0, retry_after=5.0)

    assert rate.allowed == pytest.approx(7.0)
    assert rate.acquire(12.0) == pytest.approx(3.1)


def test_the_rate_never_drops_below_one_request_every_two_seconds() -> None:
    rate = AdaptiveRate()

    rate.on_throttle(0.1, sent_at=0.0)  # nothing sent, nothing measured

    assert rate.allowed == 0.5
    assert rate.acquire(0.1) == pytest.approx(2.0)


def test_a_burst_throttled_before_the_first_bucket_closes_is_measured_from_that_bucket() -> None:
    rate = AdaptiveRate()
    for _ in range(10):
        rate.acquire(0.0)

    rate.on_throttle(0.01, sent_at=0.0)

    assert rate.measured == 20.0  # 10 requests in a half-second bucket
    assert rate.allowed == pytest.approx(14.0)


def test_a_fast_rate_banks_a_tenth_of_a_second_of_requests() -> None:
    rate = AdaptiveRate()
    steady(rate, 1000, 0.0, 5.0)
    rate.on_throttle(5.0, sent_at=4.999)  # 700/s

    allowed = rate.allowed
    assert allowed is not None
    assert allowed == pytest.approx(700)
    sent = 0
    while rate.acquire(9.0) == 0.0:
        sent += 1
    assert sent == int(allowed / 10)  # 69 or 70, depending on float dust in the measured rate
