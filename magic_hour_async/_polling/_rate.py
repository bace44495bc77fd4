"""The scheduler's send rate: a budget, and a limit learnt from 429s that sporadic 429s do not ratchet down.

Two limits pace polls through one token bucket, and the lower one binds:

* The budget, ``PollPolicy.max_rate``. Under a budget the bucket banks a single request, so polls leave evenly
  spaced and no second holds more than ``max_rate``: not at the client, and not at the server either, because
  they are paced at 95% of it (``1 / (0.95 * max_rate)`` apart), which leaves 50 ms a second for a poll
  delayed on its way (a busy loop on either side, a slow connection) to arrive closer to the next one: at 2%
  (20 ms), a loaded loopback benchmark still saw 11 polls in one second of a budget of 10. Without a budget
  the bucket banks a tenth of a second of requests, so a fast learnt rate is served without waking for each
  one.
* A learnt limit, CUBIC as in botocore's adaptive mode, off until the server shows a real rate limit. Each cut
  sets it to 90% of the rate the server *accepted* (the measured send rate times the share of answers that
  were not 429), and each success moves it along a cubic curve: back to 95% of the accepted rate, flat there,
  then probing above, in a time unit of 1,000 answers at the accepted rate (50 s at 20 a second, 5 s at 200),
  so the probing that ends in the next cut is a small share of the answers whatever the rate: against token
  buckets of 5 to 100 requests a second, 92-100% of the limit is used with 1-3% of answers 429. It never
  exceeds twice the measured send rate, so an idle client does not bank the right to a burst, and once it has
  probed to twice the rate it was cut at (or to the budget) without a cut, the limit is forgotten.

A 429 alone is not a rate limit: a proxy or an overloaded backend answers a fixed share of requests with 429
whatever our rate. Cutting at each one (0.7x per throttle, as before) took 1,000 waits behind a 3%-429 proxy
down to 5 polls a second for good. So a cut needs evidence, and is bounded per window:

* at least 20 answers and 3 throttles since the last cut, of which more than 15% are 429 among the last 50,
  falling with the square root of the sample to 7.5% among the last 200 (the answers of the last 2 s count,
  at least 50 and at most 200). A fixed 3% share crosses that about once in thousands of windows, and then
  costs one cut that the curve recovers from; a server throttling our excess shows it within a second.
* only for requests sent at least a second after the last cut: those sent earlier were in flight with the
  throttled one, or fell in the server's exhausted window (rate limits count per second or longer), and the
  cut already answered them, as TCP reduces once per window.

A ``Retry-After`` is a pause, not a cut. The scheduler holds back the throttled project itself; the whole
client pauses (capped at a minute) only when the 429 also brought a cut, that is when the limit is real.
Nothing here reads a clock: every method takes ``now``, so the class is deterministic and tested table-driven.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["AdaptiveRate"]

_BACKOFF = 0.9  # fraction of the accepted rate kept after a cut
_PLATEAU = 0.95  # fraction of the accepted rate the curve flattens at, before it probes above
_PROBE = 1000  # answers: the curve's time unit is how long the accepted rate takes to answer this many
_MIN_RATE = 0.5  # never slower than a poll every two seconds
_SMOOTHING = 0.8  # weight of the newest bucket in the measured rate
_BUCKET = 0.5  # seconds per measurement bucket
_MAX_PAUSE = 60.0  # a longer Retry-After is taken as a minute; the bucket does the rest
_BURST = 0.1  # seconds of requests the bucket banks without a budget: pacing stays smooth
_BUDGET_SHARE = 0.95  # of max_rate that polls are paced at: 50 ms a second of slack for a delayed arrival
_HOLD = 1.0  # seconds a cut needs to show: rate limits count per second (or longer)
_WINDOW = 2.0  # seconds of answers that count as evidence of a rate limit...
_WINDOW_MIN = 50  # ...but never fewer answers than this (a slow client looks further back)
_WINDOW_MAX = 200  # ...nor more (a fast one needs no more to tell 3% from 10%)
_MIN_ANSWERS = 20  # fewer answers since the last cut are not evidence
_MIN_THROTTLES = 3  # nor are fewer 429s
_TOLERANCE = 0.15  # share of 429s in 50 answers that is not yet evidence of a rate limit
_EPSILON = 1e-9  # float dust: a bucket this close to a whole token has it (else waits of 1e-17 s spin)
_MARGIN = 1e-6  # seconds added to a wait, so that float dust never fits an extra request into a second


def _tolerance(answers: int) -> float:
    """The share of 429s in ``answers`` answers that is not yet evidence of a rate limit.

    15% of 50 answers, falling with the square root of the sample to 7.5% of 200: a larger sample tells a
    fixed 3% from a real limit sooner (3% of 200 reaches 7.5% about once in 10,000 windows).
    """
    return max(_TOLERANCE * math.sqrt(_WINDOW_MIN / answers), _TOLERANCE / 2)


class AdaptiveRate:
    """When the next request may be sent, from the budget and from throttled and successful responses.

    Args:
        max_rate: The budget in requests per second (``inf``: none); settable, for test mode.
    """

    def __init__(self, *, max_rate: float = math.inf) -> None:
        self._max_rate = max_rate
        self._learnt = math.inf  # no learnt limit until a cut
        self._tokens = 0.0
        self._refilled_at = -math.inf  # the first refill fills the bucket
        self._paused_until = -math.inf
        self._measured = 0.0
        self._count = 0
        self._bucket = -math.inf
        self._w_max = 0.0
        self._k = 0.0
        self._unit = 1.0
        self._cut_at = -math.inf
        # (answered at, throttled), since the last cut only; see _WINDOW.
        self._answers: deque[tuple[float, bool]] = deque()
        self._throttles = 0  # in ``_answers``

    @property
    def max_rate(self) -> float:
        """The budget in requests per second."""
        return self._max_rate

    def set_max_rate(self, now: float, max_rate: float) -> None:
        """Change the budget from ``now`` on."""
        if max_rate != self._max_rate:
            self._refill(now)
            self._max_rate = max_rate
            self._tokens = min(self._tokens, self._capacity())

    @property
    def allowed(self) -> float | None:
        """Requests per second allowed now: the budget or the learnt limit, the lower; None if neither."""
        rate = self._rate()
        return None if math.isinf(rate) else rate

    @property
    def learnt(self) -> float | None:
        """The limit learnt from 429s, per second, or None while no real rate limit has been seen."""
        return None if math.isinf(self._learnt) else self._learnt

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
        rate = self._rate()
        if not math.isinf(rate):
            self._refill(now)
            if self._tokens < 1.0 - _EPSILON:
                return (1.0 - self._tokens) / rate + _MARGIN
            self._tokens = max(self._tokens - 1.0, 0.0)
        self._record(now)
        return 0.0

    def on_throttle(self, now: float, *, sent_at: float, retry_after: float | None = None) -> bool:
        """A request sent at ``sent_at`` was answered with a 429 at ``now``; True if that cut the rate."""
        if sent_at < self._cut_at + _HOLD:
            return False  # answered by the last cut already
        self._answer(now, throttled=True)
        answers = len(self._answers)
        if (
            answers < _MIN_ANSWERS
            or self._throttles < _MIN_THROTTLES
            or self._throttles <= _tolerance(answers) * answers
        ):
            return False
        sending = self.measured if math.isinf(self._learnt) else min(self.measured, self._learnt)
        accepted = max(sending * (1.0 - self._throttles / answers), _MIN_RATE)
        self._w_max = accepted * _PLATEAU
        self._unit = _PROBE / accepted
        # The curve starts at ``_BACKOFF * accepted``: K units before its plateau.
        self._k = self._unit * (1.0 - _BACKOFF / _PLATEAU) ** (1.0 / 3.0)
        self._cut_at = now
        self._answers.clear()
        self._throttles = 0
        self._set_learnt(now, accepted * _BACKOFF)
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + min(retry_after, _MAX_PAUSE))
        return True

    def on_success(self, now: float, *, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered without throttling at ``now``."""
        if sent_at >= self._cut_at + _HOLD:
            self._answer(now, throttled=False)
        if math.isinf(self._learnt):
            return
        cubic = self._w_max * (1.0 + ((now - self._cut_at - self._k) / self._unit) ** 3)
        if cubic >= min(2.0 * self._w_max, self._max_rate):
            # Probed far above the throttled rate, or up to the budget, without a cut: the limit has gone.
            self._set_learnt(now, math.inf)
        else:
            self._set_learnt(now, min(cubic, 2.0 * self.measured))

    def _answer(self, now: float, *, throttled: bool) -> None:
        answers = self._answers
        answers.append((now, throttled))
        self._throttles += throttled
        while len(answers) > _WINDOW_MAX or (len(answers) > _WINDOW_MIN and answers[0][0] < now - _WINDOW):
            self._throttles -= answers.popleft()[1]

    def _rate(self) -> float:
        return min(self._learnt, self._max_rate * _BUDGET_SHARE)

    def _set_learnt(self, now: float, rate: float) -> None:
        self._refill(now)
        self._learnt = max(rate, _MIN_RATE)
        self._tokens = min(self._tokens, self._capacity())

    def _refill(self, now: float) -> None:
        rate = self._rate()
        if math.isinf(rate):
            self._refilled_at = now
            self._tokens = 0.0  # a limit that starts later starts with an empty bucket
        elif now > self._refilled_at:
            elapsed = now - self._refilled_at
            self._tokens = min(self._capacity(), self._tokens + elapsed * rate)
            self._refilled_at = now

    def _capacity(self) -> float:
        if not math.isinf(self._max_rate):
            return 1.0  # banked requests plus a second's refill must fit in the budget
        return max(1.0, self._rate() * _BURST)

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
