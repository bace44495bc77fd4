"""The token bucket behind ``Faults.rate_limit``: a global "N requests per second, burst B" limit.

It refills on the emulator's injectable clock, so a test with a manual clock decides exactly when tokens come
back. Refused requests get 429 with ``Retry-After`` (whole seconds, at least 1) and the precise
``retry-after-ms``.
"""

from __future__ import annotations

import math

import attrs
from aiohttp import web


@attrs.define(kw_only=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float
    burst: int
    route: str
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until a token is available."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def rate_limited(wait: float) -> web.Response:
    """The 429 answered by the token bucket."""
    headers = {
        "Retry-After": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
    }
    return web.json_response(
        {"code": "too_many_requests", "message": "Too Many Requests"}, status=429, headers=headers
    )
