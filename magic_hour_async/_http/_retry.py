"""Pure retry timing: how long to wait before the next attempt, and what the server asked for.

Nothing here sleeps or does I/O, so the rules are table-tested without a clock. The transport (and the
downloader) call these and sleep through an injected ``sleep``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import attrs

from .. import _test_mode
from .._exceptions import ConfigurationError


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` waits ``U(0, min(cap, base * 2**n))`` seconds."""

    base: float = 0.5
    cap: float = 8.0
    #: Longest ``Retry-After`` honoured; a longer one is raised as ``RateLimitError`` instead of slept.
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.max_retry_after < 0:
            raise ConfigurationError(f"invalid backoff settings: {self!r}")

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
        if _test_mode.is_testing():
            return 0.0  # set_testing(True): retry at once (what is sent does not change)
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling * rand


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's requested delay in seconds, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP-date; dates in the past give 0. Unparseable
    values give None (the caller falls back to its own backoff). ``headers`` must look up
    case-insensitively (aiohttp's CIMultiDict does).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
