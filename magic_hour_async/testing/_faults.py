"""Fault injection: programmable misbehaviour, matched per request.

A :class:`Fault` says *which* requests it hits (``route`` pattern, optional ``project_id``, the next ``times``
matches) and *what* happens to them. Rules are checked in the order they were added; the first live rule that
matches is consumed by one hit. Effects, which can be combined with ``delay``:

- ``status=...``: answer with that status instead of the real response. The body is ``{"code", "message"}``
  JSON, or an nginx-style HTML page with ``html=True``, or ``body=`` verbatim. ``retry_after`` (implies 429
  when no status is given) adds ``Retry-After`` in seconds or HTTP-date form; ``retry_after_ms`` adds
  ``retry-after-ms``.
- ``reset="before"`` drops the TCP connection (RST) before the request is handled; ``reset="after"`` lets the
  request take effect (a render is created and charged) and then drops the connection instead of answering.
- ``delay=seconds`` waits (real time) before handling, to exercise client timeouts.
- ``truncate_after=k`` sends the real headers, including the full ``Content-Length``, then ``k`` body bytes,
  then closes the connection.
- ``expired=True`` on a download or upload URL answers 403 as if the signed URL had expired.
- ``hold=True`` parks matching requests until ``fault.release()``; ``fault.held`` counts them. This makes
  concurrency assertions (in-flight caps, request coalescing) exact instead of timing-dependent.

A global token bucket (:meth:`Faults.rate_limit`) answers 429 with ``Retry-After``/``retry-after-ms`` once the
burst is spent; it refills on the emulator's clock, so a manual clock makes it deterministic.

Example:
    >>> emu.faults.add(route="GET /v1/video-projects/{id}", status=503, times=2)  # doctest: +SKIP
    >>> emu.faults.add(route="POST /v1/*", reset="after")  # doctest: +SKIP
    >>> emu.faults.rate_limit(rate=5, burst=10)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, Literal, TypeVar, cast

import attrs
from aiohttp import web

from ._clock import Clock
from ._latch import Latch
from ._routing import route_matches
from ._throttle import RateLimit

_T = TypeVar("_T")

ResetMode = Literal["before", "after"]
RetryAfterFormat = Literal["seconds", "http-date"]

_NGINX = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _snake(reason: str) -> str:
    return "_".join(reason.lower().replace("-", " ").split()) or "error"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_key(name: str, kind: type[_T]) -> web.RequestKey[_T]:
    """A typed key for per-request storage.

    aiohttp 3.14 warns (``NotAppKeyWarning``) when a request is indexed with a string, and a test suite that
    runs with ``-W error`` would turn that warning into a 500 in the middle of a configured fault. aiohttp
    before 3.14 has no ``RequestKey`` and does not warn about strings, so the plain name serves there.
    """
    factory: Any = getattr(web, "RequestKey", None)
    return cast("web.RequestKey[_T]", name if factory is None else factory(name, kind))


def current_fault(request: web.Request) -> Fault | None:
    """The fault rule the middleware matched for this request, for handlers that apply it themselves."""
    fault: Fault | None = request.get(FAULT_KEY)
    return fault


def drop_connection(request: web.Request, *, reset: bool) -> None:
    """Close the client connection: with an RST (``reset``) or after flushing what was written (FIN)."""
    request[DROPPED_KEY] = True
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN: "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


@attrs.define(kw_only=True)
class Fault:
    """One injected fault rule (see the module docstring); ``hits`` counts the requests it has affected."""

    route: str = "*"
    project_id: str | None = None
    times: int | None = 1
    status: int | None = None
    body: str | Mapping[str, Any] | None = None
    html: bool = False
    headers: Mapping[str, str] = attrs.field(factory=dict[str, str])
    retry_after: float | None = None
    retry_after_format: RetryAfterFormat = "seconds"
    retry_after_ms: float | None = None
    reset: ResetMode | None = None
    delay: float = 0.0
    truncate_after: int | None = None
    expired: bool = False
    hold: bool = False
    hits: int = 0
    _latch: Latch = attrs.field(factory=Latch, init=False, repr=False, eq=False)

    @property
    def remaining(self) -> int | None:
        """How many more requests this rule will hit (``None``: unlimited)."""
        return None if self.times is None else max(self.times - self.hits, 0)

    @property
    def held(self) -> int:
        """How many requests are waiting on this ``hold`` rule right now."""
        return self._latch.waiting

    def release(self) -> None:
        """Let requests held by this rule (and any it holds from now on) proceed; callable from any thread."""
        self._latch.open()

    async def wait_released(self) -> None:
        """Wait, on the server's loop, until :meth:`release` is called (returns at once if it was)."""
        await self._latch.wait()

    def matches(self, route: str, project_id: str | None) -> bool:
        """Whether this live rule applies to a request with this route key and id."""
        if self.remaining == 0:
            return False
        if self.project_id is not None and self.project_id != project_id:
            return False
        return route_matches(self.route, route)

    def response(self, now: float) -> web.Response:
        """The response replacing the real one (``status`` is set); ``now`` is Unix time, for HTTP-dates."""
        assert self.status is not None  # only called for status faults
        headers = dict(self.headers)
        if self.retry_after is not None:
            if self.retry_after_format == "http-date":
                when = datetime.fromtimestamp(math.ceil(now + self.retry_after), tz=timezone.utc)
                headers["Retry-After"] = format_datetime(when, usegmt=True)
            else:
                headers["Retry-After"] = f"{self.retry_after:g}"
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = f"{self.retry_after_ms:g}"
        reason = _reason(self.status)
        if self.html:
            return web.Response(
                status=self.status,
                headers=headers,
                content_type="text/html",
                text=_NGINX.format(code=self.status, reason=reason),
            )
        if isinstance(self.body, str):
            return web.Response(status=self.status, headers=headers, text=self.body)
        # The code is the status's reason in snake case: a fault is not an API refusal, so it implies none of
        # the spec's specific codes (a 402 fault is not "insufficient_credits").
        default = {"code": _snake(reason), "message": reason}
        payload = dict(self.body) if self.body is not None else default
        return web.Response(
            status=self.status, headers=headers, content_type="application/json", text=json.dumps(payload)
        )


FAULT_KEY = _request_key("magic_hour_async.fault", Fault)
"""The :class:`Fault` the middleware matched for a request (read with :func:`current_fault`)."""
DROPPED_KEY = _request_key("magic_hour_async.dropped", bool)
"""Set when the emulator dropped the connection on purpose: the request has no status to count."""


class Faults:
    """The fault rules of one emulator (``emu.faults``); safe to use from any thread."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._bucket: RateLimit | None = None

    def add(
        self,
        *,
        route: str = "*",
        project_id: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        body: str | Mapping[str, Any] | None = None,
        html: bool = False,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        retry_after_format: RetryAfterFormat = "seconds",
        retry_after_ms: float | None = None,
        reset: ResetMode | None = None,
        delay: float = 0.0,
        truncate_after: int | None = None,
        expired: bool = False,
        hold: bool = False,
    ) -> Fault:
        """Add a rule hitting the next ``times`` matching requests (``times=None``: all of them).

        Args:
            route: route key or glob, e.g. ``"GET /v1/video-projects/{id}"``, ``"POST /v1/*"``,
                ``"/outputs/*"`` (any method), ``"*"`` (everything).
            project_id: only requests whose path carries this id.
            times: how many requests to hit before the rule goes dead.
            status, body, html, headers: replace the response (JSON ``{"message"}`` body by default).
            retry_after, retry_after_format, retry_after_ms: rate-limit headers (``status`` defaults to 429).
            reset: ``"before"`` or ``"after"`` the request takes effect, drop the connection with no response.
            delay: seconds to wait (real time) before handling.
            truncate_after: close the connection after this many body bytes.
            expired: answer a signed download/upload URL with 403 as if it had expired.
            hold: keep matching requests waiting (after ``delay``) until ``fault.release()``.

        Returns:
            The rule, whose ``hits`` and ``remaining`` tests can inspect.
        """
        if status is None and (retry_after is not None or retry_after_ms is not None):
            status = 429
        effects = [status is not None, reset is not None, truncate_after is not None, expired]
        if sum(effects) > 1:
            raise ValueError(
                "choose one of status, reset, truncate_after and expired (delay combines with any)"
            )
        if sum(effects) == 0 and delay <= 0 and not hold:
            raise ValueError("a fault needs an effect: status, reset, truncate_after, expired, delay or hold")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"invalid HTTP status {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        fault = Fault(
            route=route,
            project_id=project_id,
            times=times,
            status=status,
            body=body,
            html=html,
            headers=dict(headers or {}),
            retry_after=retry_after,
            retry_after_format=retry_after_format,
            retry_after_ms=retry_after_ms,
            reset=reset,
            delay=delay,
            truncate_after=truncate_after,
            expired=expired,
            hold=hold,
        )
        with self._lock:
            self._rules.append(fault)
        return fault

    def rate_limit(self, rate: float, burst: int = 1, *, route: str = "* /v1/*") -> None:
        """Put requests matching ``route`` (API calls by default) behind a token bucket (replacing any)."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        with self._lock:
            self._bucket = RateLimit(
                rate=rate, burst=burst, route=route, tokens=float(burst), updated=self._clock()
            )

    def clear(self) -> None:
        """Remove every rule and the rate limit, releasing requests held by ``hold`` rules."""
        with self._lock:
            rules, self._rules = self._rules, []
            self._bucket = None
        for fault in rules:
            fault.release()

    def release_all(self) -> None:
        """Release every request held by a ``hold`` rule (the rules stay, and no longer hold)."""
        for fault in self.rules:
            fault.release()

    @property
    def rules(self) -> tuple[Fault, ...]:
        """The rules, live or spent, in matching order."""
        with self._lock:
            return tuple(self._rules)

    def throttle(self, route: str) -> float:
        """Seconds the caller must wait per the rate limit (0.0: go ahead)."""
        with self._lock:
            bucket = self._bucket
            if bucket is None or not route_matches(bucket.route, route):
                return 0.0
            return bucket.take(self._clock())

    def match(self, route: str, project_id: str | None) -> Fault | None:
        """Find and consume the first live rule for this request."""
        with self._lock:
            if not self._rules:
                return None
            for fault in self._rules:
                if fault.matches(route, project_id):
                    fault.hits += 1
                    return fault
            return None
