"""The scheduler's adaptive send rate: a token bucket whose rate follows CUBIC, as botocore's adaptive mode.

Bounding concurrency is not enough against a rate limit: on loopback one connection makes a thousand requests
a second. So the first 429 switches on a client-side token bucket. Each throttle sets the allowed rate to
``0.7 x`` the rate actually measured (or the allowed one, if lower); each success moves it along the CUBIC
curve ``0.4 * (t - K) ** 3 + W``, which climbs quickly back towards ``W`` (the rate at the last throttle),
flattens there, then probes above it. The rate never exceeds twice the measured one, so an idle client does
not bank the right to a burst, and the bucket banks only a tenth of a second of requests, so polls leave
evenly spaced. A throttled response to a request sent less than a second after the last cut is ignored:
those requests were in flight with the throttled one, or still fell in the server's exhausted window (rate
limits count per second or longer), and the cut already answered them, as TCP reduces once per window.
Without this, one exhausted window cuts the rate again and again, to a fraction of what the server allows.

A ``Retry-After`` pauses every poll until it passes, capped at a minute. Nothing here reads a clock: every
method takes ``now``, so the class is deterministic and tested table-driven.
"""

from __future__ import annotations

import math

__all__ = ["AdaptiveRate"]

_BETA = 0.7  # fraction of the measured rate kept after a throttle
_SCALE = 0.4  # CUBIC's C: how fast the rate climbs back (requests/s per s**3)
_MIN_RATE = 0.5  # never slower than a poll every two seconds
_SMOOTHING = 0.8  # weight of the newest bucket in the measured rate
_BUCKET = 0.5  # seconds per measurement bucket
_MAX_PAUSE = 60.0  # a longer Retry-After is taken as a minute; the bucket does the rest
_BURST = 0.1  # seconds of requests the bucket banks: pacing stays smooth, a fixed window sees no burst
_HOLD = 1.0  # seconds a cut needs to show: rate limits count per second (or longer)
_EPSILON = 1e-9  # float dust: a bucket this close to a whole token has it (else waits of 1e-17 s spin)


class AdaptiveRate:
    """When the next request may be sent, learnt from throttled and successful responses."""

    def __init__(self) -> None:
        self._enabled = False  # no client-side limit until the server first throttles
        self._rate = math.inf
        self._tokens = 0.0
        self._refilled_at = 0.0
        self._paused_until = -math.inf
        self._measured = 0.0
        self._count = 0
        self._bucket = -math.inf
        self._w_max = 0.0
        self._k = 0.0
        self._throttled_at = -math.inf

    @property
    def allowed(self) -> float | None:
        """The allowed rate in requests per second, or None while unlimited."""
        return self._rate if self._enabled else None

    @property
    def measured(self) -> float:
        """The rate of requests sent, per second: smoothed, or the current bucket's if that is higher."""
        # The current bucket counts too, so a burst right at the start is not measured as zero.
        return max(self._measured, self._count / _BUCKET)

    def acquire(self, now: float) -> float:
        """Take the right to send one request now.

        Returns:
            0.0 when the request may go (and it is counted as sent), else the seconds to wait before asking
            again; nothing is taken then.
        """
        if now < self._paused_until:
            return self._paused_until - now
        if self._enabled:
            self._refill(now)
            if self._tokens < 1.0 - _EPSILON:
                return (1.0 - self._tokens) / self._rate
            self._tokens = max(self._tokens - 1.0, 0.0)
        self._record(now)
        return 0.0

    def on_throttle(self, now: float, *, sent_at: float, retry_after: float | None = None) -> None:
        """A request sent at ``sent_at`` was answered with a 429 at ``now``."""
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + min(retry_after, _MAX_PAUSE))
        if sent_at < self._throttled_at + _HOLD:
            return
        base = self.measured if not self._enabled else min(self.measured, self._rate)
        self._w_max = base
        self._k = (base * (1.0 - _BETA) / _SCALE) ** (1.0 / 3.0)
        self._throttled_at = now
        if not self._enabled:
            self._enabled = True
            self._refilled_at = now
            self._tokens = 0.0
        self._set_rate(now, base * _BETA)

    def on_success(self, now: float) -> None:
        """A request was answered without throttling at ``now``."""
        if not self._enabled:
            return
        cubic = _SCALE * (now - self._throttled_at - self._k) ** 3 + self._w_max
        self._set_rate(now, min(cubic, 2.0 * self.measured))

    def _set_rate(self, now: float, rate: float) -> None:
        self._refill(now)
        self._rate = max(rate, _MIN_RATE)
        self._tokens = min(self._tokens, self._capacity())

    def _refill(self, now: float) -> None:
        if now > self._refilled_at:
            self._tokens = min(self._capacity(), self._tokens + (now - self._refilled_at) * self._rate)
            self._refilled_at = now

    def _capacity(self) -> float:
        return max(self._rate * _BURST, 1.0)

    def _record(self, now: float) -> None:
        # The measured rate is an exponentially smoothed count per half-second bucket, as botocore's.
        bucket = math.floor(now / _BUCKET) * _BUCKET
        if not math.isfinite(self._bucket):
            self._bucket = bucket
        elif bucket > self._bucket:
            current = self._count / (bucket - self._bucket)
            self._measured = current * _SMOOTHING + self._measured * (1.0 - _SMOOTHING)
            self._count = 0
            self._bucket = bucket
        self._count += 1
