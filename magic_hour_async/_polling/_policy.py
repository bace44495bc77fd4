"""How often to poll a render: the :class:`PollPolicy` and the pure function that times each poll.

Polls follow the project's age geometrically: the poll after one at age ``a`` happens at about
``a * multiplier``, never sooner than ``initial`` and never later than ``maximum`` after it. A render that
finishes at age ``T`` is therefore noticed within ``max(initial, (multiplier - 1) * T)`` (capped at
``maximum``), a fixed fraction of its own duration, while the number of polls grows only with ``log(T)``.
A schedule driven by age rather than by a poll count stays right when polls are delayed (a throttled
scheduler, a retried error): an old project is polled slowly however few polls it has had.

Jitter only ever lengthens an interval, by up to ``jitter`` of it: no poll comes before its schedule (a render
that takes exactly as long as the schedule's next step is seen at that step, not one step later), while
thousands of projects started together drift apart instead of polling in lock-step.

The defaults are computed, not guessed (``tests/test_poll_policy.py`` simulates both cases with
:func:`poll_delay` and asserts them):

* A 6-second render costs 7 GETs and is noticed within 0.6 s: ``initial=1`` polls about every second until the
  interval ``0.13 * age`` overtakes it at 7.7 s.
* A batch of 1,000 renders with durations log-uniform between 3 s and 300 s costs 15% of the GETs of the
  incumbent's fixed 0.5-s poller (19,660 against 130,480), and is noticed within ``max(1 s, 15% of its
  duration)``: the p95 uses 87% of that bound. ``multiplier=1.13`` leaves room for the jitter: ``0.13 * 1.1 <
  0.15``. Only 3-s renders can exceed the 1 s, by at most the 0.1 s of jitter.
* ``maximum=30`` only binds after about 230 s; an hour-long render costs about 140 GETs.
* ``jitter=0.1`` spreads 1,000 projects created together over half a second by their tenth poll.
* ``max_concurrency=16`` requests in flight serve about 160 polls a second at a 100-ms round trip, and leave
  most of aiohttp's default 100-connection pool to creates and downloads.
* ``max_rate=10`` polls a second for the whole client, however many renders it waits for: what the official
  SDK spends on five renders (a GET every 0.5 s each; five is the Pro plan's cap on concurrent renders), so
  the API already takes it from one account. Below it the schedule above runs untouched: five young renders
  cost 5 GETs a second, and a batch of 1,000 renders older than about 4 minutes (30-s intervals) needs 33. A
  larger batch is served in order of lateness (see the scheduler) and its renders are noticed later, instead
  of the client sending hundreds of GETs a second (1,000 new renders would want 1,000 a second for their first
  8 s).
* ``give_up_after=300``: five minutes without one successful poll of a render, with every poll failing
  transiently, is an outage to report, not a blip to ride out; ten of the 30-s polls fit in it.

Test mode (:func:`magic_hour_async.testing.set_testing`) divides every duration of the scheduler by
:data:`TEST_MODE_SPEEDUP` (1,000): poll intervals, backoff, ``Retry-After`` pauses and ``give_up_after``, and
multiplies ``max_rate`` by it, so the whole schedule runs a thousand times faster while each request sent
stays the same. ``initial=1`` becomes 1 ms and ``maximum=30`` 30 ms.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .._exceptions import ConfigurationError
from .._test_mode import is_testing

__all__ = ["TEST_MODE_SPEEDUP", "PollPolicy", "poll_delay", "time_scale"]

#: How much faster the scheduler's clock runs in test mode: durations are divided by it, rates multiplied.
TEST_MODE_SPEEDUP = 1000.0

# 2.0 ** 1024 overflows; far beyond any cap, so the exponent is clamped before it can.
_MAX_EXPONENT = 60


def _positive(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigurationError(f"PollPolicy.{attribute.name} must be a positive number, got {value!r}")


def _check_multiplier(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
        raise ConfigurationError(f"PollPolicy.multiplier must be a number >= 1, got {value!r}")


def _check_jitter(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ConfigurationError(f"PollPolicy.jitter must be in [0, 1), got {value!r}")


def _positive_or_inf(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    # ``inf`` is allowed: no budget, never give up.
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ConfigurationError(f"PollPolicy.{attribute.name} must be a number > 0 or inf, got {value!r}")


def _check_concurrency(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"PollPolicy.max_concurrency must be an integer >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """When the client polls a render it waits for, and how many polls may run at once.

    Attributes:
        initial: The shortest interval between two polls of one project, in seconds; also the
            detection delay for renders shorter than ``initial / (multiplier - 1)``.
        maximum: The longest interval between two polls of one project, in seconds.
        multiplier: Each poll happens at about ``multiplier`` times the project's age at the previous one,
            so a render is noticed within ``multiplier - 1`` of its duration. ``1`` polls every ``initial``.
        jitter: Each interval is lengthened by a random fraction in ``[0, jitter)`` of itself.
        max_concurrency: Poll requests in flight at once, for the whole client.
        max_rate: Polls per second, for the whole client (``math.inf``: no budget). When more polls are due,
            the most overdue (relative to their own interval) go first, and no one-second window ever holds
            more than ``max_rate`` polls. A server's 429s may lower the rate further, for a while.
        give_up_after: Seconds a watched render may go without a successful poll, while its polls keep
            failing transiently (no connection, 5xx, 429, a garbled body), before every wait on it raises the
            last poll error.

    Example:
        ```python
        # A batch job that can notice completions later and spend fewer requests:
        AsyncClient(poll=PollPolicy(initial=2, multiplier=1.3, maximum=60))
        ```
    """

    initial: float = attrs.field(default=1.0, validator=_positive)
    maximum: float = attrs.field(default=30.0, validator=_positive)
    multiplier: float = attrs.field(default=1.13, validator=_check_multiplier)
    jitter: float = attrs.field(default=0.1, validator=_check_jitter)
    max_concurrency: int = attrs.field(default=16, validator=_check_concurrency)
    max_rate: float = attrs.field(default=10.0, validator=_positive_or_inf)
    give_up_after: float = attrs.field(default=300.0, validator=_positive_or_inf)

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise ConfigurationError(
                f"PollPolicy.maximum ({self.maximum!r}) must not be less than initial ({self.initial!r})"
            )


def poll_delay(
    policy: PollPolicy,
    *,
    age: float,
    rand: float,
    failures: int = 0,
    scale: float = 1.0,
    testing: bool | None = None,
) -> float:
    """Seconds from a poll of a project at ``age`` to its next poll. Pure: same inputs, same delay.

    Args:
        policy: The poll policy.
        age: Seconds since the project started being watched, at the poll just made.
        rand: A random number in ``[0, 1)``, which picks the jitter.
        failures: Polls of this project failed in a row with a transient error. Retries back off
            exponentially from ``initial`` (``initial * 2 ** (failures - 1)``, capped at ``maximum``) whatever
            the age: the failed poll brought no news, so an old project is retried sooner than its cadence.
        scale: Multiplies the whole delay; a scheduler that also receives webhooks polls slower.
        testing: Whether test mode is on, dividing the delay by :data:`TEST_MODE_SPEEDUP`; None reads
            :func:`magic_hour_async.testing.set_testing`'s switch.

    Example:
        >>> poll_delay(PollPolicy(), age=0.0, rand=0.0)
        1.0
        >>> poll_delay(PollPolicy(), age=100.0, rand=0.0)  # 15% of the age
        15.000000000000002
        >>> poll_delay(PollPolicy(), age=0.0, rand=0.0, testing=True)  # a thousand times faster
        0.001
    """
    interval = min(policy.maximum, max(policy.initial, age * (policy.multiplier - 1.0)))
    if failures > 0:
        interval = min(policy.maximum, policy.initial * 2.0 ** min(failures - 1, _MAX_EXPONENT))
    return interval * scale * (1.0 + policy.jitter * rand) * time_scale(testing)


def time_scale(testing: bool | None = None) -> float:
    """What the scheduler multiplies its durations by: ``1 / TEST_MODE_SPEEDUP`` in test mode, else 1."""
    on = is_testing() if testing is None else testing
    return 1.0 / TEST_MODE_SPEEDUP if on else 1.0
