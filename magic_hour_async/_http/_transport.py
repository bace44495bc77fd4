"""The only module that talks to aiohttp: one session, one retry loop, one exception mapping.

Retry rules (credits are charged per create request and the API has no idempotency key):

- idempotent requests (GET, DELETE, a PUT to a presigned URL) retry on connection errors, timeouts, 408, 429
  and 5xx;
- a paid POST retries only on 429 or when the connection failed before the request was sent (connect refused,
  DNS failure). A 5xx or a connection lost after sending is raised at once: the render may exist.

The last SDK error is re-raised as is when retries run out, never wrapped. Sleeping goes through an injected
``sleep`` and jitter through an injected ``random`` so tests run without real waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    MagicHourError,
    RateLimitError,
    ResponseDecodeError,
    status_error,
)
from .._hooks import Hooks, route_template
from ..events import RequestFailed, RequestSent, ResponseReceived, RetryScheduled
from ._config import Timeout, user_agent
from ._retry import Backoff, parse_retry_after

logger = logging.getLogger("magic_hour_async")

Sleep = Callable[[float], Awaitable[None]]

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def redact_url(url: str) -> str:
    """A URL fit for logs: signed query strings (download and upload URLs) are replaced."""
    base, sep, _ = url.partition("?")
    return base + ("?<redacted>" if sep else "")


def map_exception(exc: BaseException, token: str) -> APIConnectionError:
    """The one place that turns aiohttp/asyncio failures into SDK errors, scrubbing the token."""
    detail = str(exc).replace(token, "<redacted>") or type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return APITimeoutError(f"request timed out: {detail}")
    return APIConnectionError(f"connection failed ({type(exc).__name__}): {detail}")


def _sent_nothing(exc: BaseException) -> bool:
    """True when the failure happened before any byte of the request could reach the server."""
    return isinstance(exc, aiohttp.ClientConnectorError)


class Transport:
    """Sends requests to the API with auth, timeouts and retries.

    The session is created lazily inside the running loop and reused; a caller-owned session is used as is
    and never closed here.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: Timeout,
        max_retries: int,
        session: aiohttp.ClientSession | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep | None = None,
        rand: Callable[[], float] = random.random,
        hooks: Hooks | None = None,
    ) -> None:
        self.base_url = base_url
        self.hooks = hooks if hooks is not None else Hooks()
        self._token = token
        self._timeout = timeout.to_aiohttp()
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rand = rand
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": user_agent(),
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running loop."""
        if self._closed:
            raise ClientClosedError("this client is closed; create a new one")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        paid: bool = False,
        max_retries: int | None = None,
    ) -> Any:
        """Send a request to ``base_url + path`` and return the decoded JSON body (None for 204).

        Args:
            paid: the request creates a render; see the module docstring for what is retried.
            max_retries: override the client's ``max_retries`` (the scheduler polls with 0: it rides out
                failures itself and must see every 429).
        """
        retries = self.max_retries if max_retries is None else max_retries
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                return await self._send(method, url, path, json_body, attempt)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error: MagicHourError = map_exception(exc, self._token)
                retryable = not paid or _sent_nothing(exc)
                hinted = None
            except APIStatusError as exc:
                error = exc
                retryable = exc.status_code in _RETRY_STATUSES and (not paid or exc.status_code == 429)
                hinted = exc.retry_after if isinstance(exc, RateLimitError) else None
            if hinted is not None and hinted > self.backoff.max_retry_after:
                retryable = False  # the server asked for longer than we wait: tell the caller
            if not retryable or attempt >= retries:
                logger.debug("%s %s failed: %s", method, redact_url(url), error)
                raise error from None
            delay = hinted if hinted is not None else self.backoff.delay(attempt, self._rand())
            logger.debug("%s %s: %s; retry %d in %.2fs", method, redact_url(url), error, attempt + 1, delay)
            if self.hooks:
                route = route_template(path)
                self.hooks.emit(
                    RetryScheduled(method=method, route=route, attempt=attempt + 1, error=error, delay=delay)
                )
            attempt += 1
            await self._sleep(delay)

    async def _send(self, method: str, url: str, path: str, json_body: Any, attempt: int) -> Any:
        session = self.session()
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
        headers = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        hooks = self.hooks
        request_id, route = 0, ""
        if hooks:  # no event objects are built for a client without hooks
            request_id = hooks.request_id()
            route = route_template(path)
            sent = RequestSent(
                request_id=request_id,
                method=method,
                url=redact_url(url),
                route=route,
                path=path,
                attempt=attempt,
            )
            hooks.emit(sent)
            if hooks.injects:
                headers = {**headers}
                hooks.inject(request_id, headers)
        started = time.perf_counter()
        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if hooks:
                hooks.emit(
                    RequestFailed(
                        request_id=request_id,
                        method=method,
                        route=route,
                        error=map_exception(exc, self._token),
                        elapsed=time.perf_counter() - started,
                        attempt=attempt,
                    )
                )
            raise
        if hooks:
            elapsed = time.perf_counter() - started
            hooks.emit(
                ResponseReceived(
                    request_id=request_id,
                    method=method,
                    route=route,
                    status=status,
                    elapsed=elapsed,
                    attempt=attempt,
                )
            )
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug("%s %s -> %d in %.1f ms", method, redact_url(url), status, elapsed)
        if status >= 400:
            response_headers = response.headers
            raise status_error(
                status,
                raw,
                dict(response_headers),
                reason=response.reason or "",
                retry_after=parse_retry_after(response_headers),
            )
        if status == 204 or not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            excerpt = raw[:120].decode("utf-8", "replace")
            raise ResponseDecodeError(
                f"{method} {redact_url(url)} returned invalid JSON (HTTP {status}): {excerpt!r}"
            ) from None

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
        data: Any = None,
    ) -> AsyncGenerator[aiohttp.ClientResponse, None]:
        """A streaming exchange with an absolute signed URL (downloads, uploads): no auth header, no retries.

        The caller reads the body, maps failures with :func:`map_exception` and decides what to retry:
        transfers resume and re-sign URLs, which this generic loop cannot know about.
        """
        async with self.session().request(
            method, url, headers=headers, data=data, timeout=timeout
        ) as response:
            yield response
