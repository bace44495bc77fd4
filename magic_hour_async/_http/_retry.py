"""The one retry policy: for every kind of request, which errors are transient and how long to wait.

Every loop that retries asks :class:`RetryPolicy`: the transport's API calls, downloads, uploads and the
polling scheduler (``RetryPolicy.transient(RequestKind.POLL, error)``). Nothing here sleeps or does I/O; the
jitter comes in as ``rand`` and the clock as ``now``, so the rules are table-tested (``tests/test_retry.py``).

The rules, by :class:`RequestKind`:

- ``READ`` (GET, DELETE, asking for upload URLs), ``DOWNLOAD`` (a signed output URL), ``UPLOAD`` (a PUT to a
  presigned URL) and ``POLL``: connection errors, timeouts, and the statuses in :data:`TRANSIENT_STATUSES`
  (408, 429, 500, 502, 503, 504). Other 5xx (501 Not Implemented, 505, ...) say the request itself is wrong.
  ``POLL`` also rides out a body that would not decode (a proxy's garbage page): the next poll may be fine.
- ``CREATE`` (a POST that starts a render and costs credits; the API has no idempotency key): only a 429,
  or a connection that failed before anything was sent (``APIConnectionError.request_sent`` is False). A
  5xx or a connection lost after sending may have created the render, so it is raised, never retried.

Waits are exponential with full jitter, ``U(0, min(cap, base * 2**attempt))``, unless the server said how
long (``retry-after-ms``, else ``Retry-After`` in seconds or as an HTTP-date): that is honoured up to
``max_retry_after``; a longer hint ends the retries and the error is raised for the caller to schedule.
In test mode (:func:`magic_hour_async.testing.set_testing`) every wait is zero; this is the one place that
reads the switch for retries.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Mapping

import attrs

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    RateLimitError,
    ResponseDecodeError,
)
from .._test_mode import is_testing

__all__ = ["TRANSIENT_STATUSES", "RequestKind", "RetryPolicy", "parse_retry_after"]

#: HTTP statuses worth another attempt for every kind of request but a paid create (which retries 429 only).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RequestKind(enum.Enum):
    """What a request does, which decides what may be retried."""

    READ = "read"
    CREATE = "create"
    UPLOAD = "upload"
    DOWNLOAD = "download"
    POLL = "poll"


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be a non-negative integer, not {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Which failures to retry and when; pure, so one instance serves every request of a client.

    Attributes:
        max_retries: extra attempts after the first (the client's ``max_retries``).
        base: the first backoff ceiling in seconds; it doubles per attempt.
        cap: the largest backoff ceiling in seconds.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one is raised instead of slept.
    """

    max_retries: int = attrs.field(default=2, validator=_non_negative_int)
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if not (0 < self.base <= self.cap) or self.max_retry_after < 0:
            raise ConfigurationError(f"invalid retry settings: {self!r}")

    def transient(self, kind: RequestKind, error: BaseException) -> bool:
        """Whether another attempt of a ``kind`` request may succeed where this one failed with ``error``."""
        if isinstance(error, APIStatusError):
            if kind is RequestKind.CREATE:
                return error.status_code == 429
            return error.status_code in TRANSIENT_STATUSES
        if isinstance(error, APIConnectionError):
            return error.request_sent is False if kind is RequestKind.CREATE else True
        return isinstance(error, ResponseDecodeError) and kind is RequestKind.POLL

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds before retry number ``attempt`` (0-based) with no server hint; ``rand`` is in [0, 1)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling * rand

    def next_delay(
        self,
        kind: RequestKind,
        error: BaseException,
        *,
        attempt: int,
        rand: float,
        max_retries: int | None = None,
    ) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based) after ``error``; None: raise it now.

        Args:
            max_retries: overrides the policy's own for this call (the scheduler polls with 0).
        """
        limit = self.max_retries if max_retries is None else max_retries
        if attempt >= limit or not self.transient(kind, error):
            return None
        hinted = server_hint(error)
        if hinted is not None and hinted > self.max_retry_after:
            return None  # the server asked for longer than we wait in a call: tell the caller
        if is_testing():
            return 0.0
        return hinted if hinted is not None else self.backoff(attempt, rand)


def server_hint(error: BaseException) -> float | None:
    """The delay the server asked for with ``error`` (429 or 503 with ``Retry-After``), in seconds."""
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return error.retry_after
    if isinstance(error, APIStatusError) and error.status_code in TRANSIENT_STATUSES:
        return parse_retry_after(error.headers)
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's requested delay in seconds, from ``retry-after-ms`` or ``Retry-After`` (any case).

    ``Retry-After`` may be a number of seconds or an HTTP-date; dates in the past give 0. Unparseable
    values give None (the caller falls back to its own backoff).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return _finite(float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return _finite(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    try:
        return max(0.0, when.timestamp() - current)
    except (OverflowError, ValueError, OSError):
        return None


def _finite(seconds: float) -> float | None:
    """``seconds`` clamped at 0; None for NaN (``float("nan")`` parses) so a hint never poisons a sleep."""
    if seconds != seconds:
        return None
    return max(0.0, seconds)
