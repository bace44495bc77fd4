"""The HTTP seam: the only client-side module that imports aiohttp.

Everything the SDK sends goes through :class:`Transport`:

- :meth:`Transport.request` is an API call: auth, a JSON body, the retry loop of :class:`RetryPolicy`, a
  total deadline per attempt (``Timeout.total``, kept by :class:`Deadlines`), and a bounded, decoded JSON
  answer;
- :meth:`Transport.stream` is one exchange with an absolute URL (signed download and upload URLs): no auth,
  no retries (transfers resume and re-sign, which a generic loop cannot know), and a :class:`StreamResponse`
  owned by the SDK (status, headers, chunks) instead of aiohttp's.

aiohttp and asyncio exceptions become SDK errors in one place, :class:`_ExceptionMap` (the model: httpx's
``map_httpcore_exceptions``), which wraps both sending and every read of a body. The SDK error it raises is
scrubbed of the token and signed query strings and has no ``__cause__`` or ``__context__``: aiohttp's
exceptions quote full URLs and their ``request_info`` holds the ``Authorization`` header. The same goes for
error bodies (:func:`status_error` scrubs what a server echoes) and DEBUG logs (URLs without queries).

Responses are bounded: an API answer larger than ``max_response_bytes`` (by ``Content-Length``, or counted
while streaming when there is none or the body is compressed) raises ``ResponseDecodeError`` as soon as the
limit is passed, closing the connection instead of reading on; JSON nested too deep to decode does too.

Sessions: one ``aiohttp.ClientSession`` per event loop, created on first use in it. An ``AsyncClient`` may be
used in one ``asyncio.run()`` after another (notebooks do that): a session belongs to the loop that made it,
and a small async generator started on that loop (:func:`_session_keeper`) closes it when the loop shuts
down its async generators, which ``asyncio.run`` and the blocking client's loop do before closing. So a
client nobody closed leaves no "Unclosed client session" behind, and the next loop gets a fresh session.
A caller-owned session is used as is and never closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import random
import time
import types
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from .._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    MagicHourError,
    ResponseDecodeError,
    raise_detached,
    status_error,
)
from .._hooks import Hooks, request_events, route_template
from .._version import __version__
from ._config import MAX_RESPONSE_BYTES, Timeout
from ._deadlines import Deadlines
from ._redact import redact_url, scrub, url_secrets
from ._retry import RequestKind, RetryPolicy, parse_retry_after

__all__ = ["StreamResponse", "Transport", "user_agent"]

logger = logging.getLogger("magic_hour_async")

Sleep = Callable[[float], Awaitable[None]]

# Enough of an error body for its message and a useful ``.body``; the rest is not read.
_ERROR_BODY_LIMIT = 64 << 10
_CLOSED = "this client is closed; create a new one"
_CALLER_CLOSED = "the aiohttp session passed as session= is closed; pass an open one, or none"
# Failures that happen before any byte of the request is written: safe to retry even a paid create.
_connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp >= 3.10
_NOT_SENT: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,) + (
    (_connect_timeout,) if isinstance(_connect_timeout, type) else ()
)


def _read_limit(timeout: Timeout) -> float | None:
    """The silence limit aiohttp must watch: none when ``Timeout.total`` always ends an attempt first.

    A silence of ``read`` seconds inside one attempt means the attempt lasted ``read`` seconds, so with
    ``read >= total`` the total deadline fires first (at most one sweep step of :class:`Deadlines` later).
    """
    read, total = timeout.read, timeout.total
    return None if read is not None and total is not None and read >= total else read


def user_agent() -> str:
    """``magic-hour-async/<version> (python <version>; aiohttp <version>)``."""
    return (
        f"magic-hour-async/{__version__} (python {platform.python_version()}; aiohttp {aiohttp.__version__})"
    )


class _ExceptionMap:
    """``with _ExceptionMap(secrets):`` turns aiohttp/asyncio failures into scrubbed SDK errors.

    A class rather than a generator-based context manager: it is entered for every request and every chunk.
    """

    __slots__ = ("secrets",)

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, MagicHourError):  # APITimeoutError is a TimeoutError too
            return
        if not isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
            return
        # The context (aiohttp's exception) quotes URLs and holds request headers: it goes.
        raise_detached(_sdk_error(exc, self.secrets))


def _sdk_error(exc: BaseException, secrets: tuple[str, ...]) -> APIConnectionError:
    """The most specific SDK error for an aiohttp/asyncio failure, its text scrubbed."""
    detail = scrub(str(exc), secrets) or type(exc).__name__
    sent = not isinstance(exc, _NOT_SENT)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return APITimeoutError(f"request timed out: {detail}", request_sent=sent)
    return APIConnectionError(f"connection failed ({type(exc).__name__}): {detail}", request_sent=sent)


class _Chunks:
    """The body of a :class:`StreamResponse` in chunks of at most ``size`` bytes, failures mapped."""

    __slots__ = ("_map", "_read")

    def __init__(self, response: aiohttp.ClientResponse, size: int, mapping: _ExceptionMap) -> None:
        self._read = response.content.iter_chunked(size).__anext__
        self._map = mapping

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        with self._map:
            return await self._read()


class StreamResponse:
    """An answer being received by :meth:`Transport.stream`: status, headers, and the body on demand."""

    __slots__ = ("_map", "_response", "headers", "reason", "status")

    def __init__(self, response: aiohttp.ClientResponse, mapping: _ExceptionMap) -> None:
        self._response = response
        self._map = mapping
        self.status: int = response.status
        self.reason: str = response.reason or ""
        self.headers: Mapping[str, str] = response.headers  # case-insensitive

    @property
    def content_length(self) -> int | None:
        """``Content-Length`` when the body is sent as is; None when unknown or compressed."""
        if self.headers.get("Content-Encoding", "identity").lower() != "identity":
            return None
        return self._response.content_length

    def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, in chunks of at most ``size``."""
        return _Chunks(self._response, size, self._map)

    async def read_prefix(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (an error page's start); the rest is left unread."""
        parts: list[bytes] = []
        size = 0
        with self._map:
            while size < limit:
                chunk = await self._response.content.read(limit - size)
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        return b"".join(parts)

    def error(self, raw: bytes) -> MagicHourError:
        """The SDK error for this (failed) status with body ``raw``.

        Scrubbed of the token and of the signed queries of the URL asked for and of every redirect on the
        way (storage error pages quote the signature they were given).
        """
        hops = [str(hop.url) for hop in self._response.history] + [str(self._response.url)]
        secrets = [secret for hop in hops for secret in url_secrets(hop)]
        return status_error(
            self.status,
            raw,
            self.headers,
            reason=self.reason,
            retry_after=parse_retry_after(self.headers),
            secrets=(*self._map.secrets, *secrets),
        )


async def _session_keeper(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Suspended for the session's whole life; its ``finally`` runs when the loop shuts down async
    generators (``asyncio.run``'s end), or the client closes it, or it is collected with its loop running."""
    try:
        yield
    finally:
        await session.close()


class _LoopSession:
    """The session of one event loop and the keeper that closes it with that loop."""

    __slots__ = ("keeper", "loop", "session")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: aiohttp.ClientTimeout) -> None:
        self.loop = loop
        self.session = aiohttp.ClientSession(timeout=timeout)
        self.keeper = _session_keeper(self.session)
        # Start it synchronously: the first step registers it with this loop's asyncgen hooks and runs up
        # to the ``yield`` without awaiting anything.
        step: Any = self.keeper.asend(None)
        with contextlib.suppress(StopIteration):
            step.send(None)

    async def close(self) -> None:
        """Close the session from any loop, as far as that is possible from where we are."""
        here = asyncio.get_running_loop()
        if self.loop is here:
            await self.keeper.aclose()
        elif self.loop.is_closed():
            # The loop ended without shutting down async generators: nothing can run on it any more.
            # Closing the session from here only marks it closed (its sockets died with the loop).
            with contextlib.suppress(Exception):
                await self.session.close()
        elif self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.keeper.aclose(), self.loop)
        # A loop that is neither running nor closed closes it when it shuts down its async generators.


class Transport:
    """Sends requests with auth, time limits, bounded bodies and the client's :class:`RetryPolicy`.

    Args:
        base_url: prefix of API paths, without a trailing slash.
        token: the API token (never logged; scrubbed from everything raised).
        timeout: time limits; ``total`` applies to each attempt of an API call, not to transfers.
        retry: what to retry and how long to wait.
        max_response_bytes: the largest API answer read; a larger one raises ``ResponseDecodeError``.
        session: a caller-owned session, used as is and never closed.
        sleep, rand: injected for tests (no real backoff sleeps, fixed jitter).
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: Timeout,
        retry: RetryPolicy | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep | None = None,
        rand: Callable[[], float] = random.random,
        hooks: Hooks | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_response_bytes = max_response_bytes
        self._secrets = (token,)
        # No total here: Deadlines enforces it at a fraction of the cost of aiohttp's per-request timer.
        # aiohttp's read timer is re-armed on every packet received (two timer handles per small answer,
        # about 8% of a loopback get()'s CPU); it is only armed when it can fire before the total does.
        self._api_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.connect, sock_read=_read_limit(timeout)
        )
        self._watch: Deadlines | None = None
        # Transfers: no total (a large file takes what it takes), no sock_read (the caller's stall watchdog
        # bounds silence without re-arming a timer per packet).
        self._transfer_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect or 10.0)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rand = rand
        self.hooks = hooks if hooks is not None else Hooks()
        self._own: _LoopSession | None = None
        self._caller_session = session
        self._closed = False
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": user_agent(),
            "Accept": "application/json",
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._map = _ExceptionMap(self._secrets)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    # -- sessions -------------------------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession | None:
        """The session for the running loop, or None when one must be (re)made first."""
        if self._closed:
            raise ClientClosedError(_CLOSED)
        caller = self._caller_session
        if caller is not None:
            if caller.closed:  # aiohttp would raise a bare RuntimeError("Session is closed")
                raise ClientClosedError(_CALLER_CLOSED)
            return caller
        own = self._own
        # Only its loop's shutdown closes a session we own, and then that loop is never running again.
        if own is not None and own.loop is asyncio.get_running_loop():
            return own.session
        return None

    async def _new_session(self) -> aiohttp.ClientSession:
        previous, loop = self._own, asyncio.get_running_loop()
        if previous is not None and previous.loop is not loop:
            self._own = None
            await previous.close()
            session = self._session()  # another task of this loop may have made one meanwhile
            if session is not None:
                return session
        self._own = own = _LoopSession(loop, self._api_timeout)
        return own.session

    async def aclose(self) -> None:
        """Close the client's session (not a caller-owned one). Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        own, self._own = self._own, None
        if own is not None:
            await own.close()

    # -- waiting --------------------------------------------------------------------------------------------
    async def retry_pause(
        self, kind: RequestKind, error: BaseException, *, attempt: int, max_retries: int | None = None
    ) -> bool:
        """Sleep before retry ``attempt`` (0-based) if the policy retries ``error``; False: raise it now."""
        delay = self.retry.next_delay(
            kind, error, attempt=attempt, rand=self._rand(), max_retries=max_retries
        )
        if delay is None:
            return False
        await self._sleep(delay)
        return True

    # -- API calls ------------------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        paid: bool = False,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a request to ``base_url + path`` and return the decoded JSON body (None for 204).

        Args:
            paid: the request creates a render (``RequestKind.CREATE``); see :mod:`._retry` for what that
                allows to retry.
            max_retries: override the client's ``max_retries`` (the scheduler polls with 0: it rides out
                failures itself and must see every 429).
            headers: extra headers for this request (a call's ``request_options``).
            timeout: total seconds for each attempt of this request, instead of the client's ``Timeout``.
        """
        kind = RequestKind.CREATE if paid else RequestKind.READ
        url = self.base_url + path
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
        attempt = 0
        while True:
            try:
                return await self._send(method, url, data, headers, timeout, path=path, attempt=attempt)
            except MagicHourError as exc:
                error = exc
            delay = self.retry.next_delay(
                kind, error, attempt=attempt, rand=self._rand(), max_retries=max_retries
            )
            route = route_template(path)
            fields = {"method": method, "route": route, "attempt": attempt}
            if delay is None:
                logger.debug("%s %s failed: %s", method, redact_url(url), error, extra=fields)
                raise_detached(error)
            logger.debug(
                "%s %s: %s; retry %d in %.2fs",
                method,
                redact_url(url),
                error,
                attempt + 1,
                delay,
                extra=fields,
            )
            if self.hooks.registered:
                retry = request_events().retry
                self.hooks.emit(
                    retry(method=method, route=route, attempt=attempt + 1, error=error, delay=delay)
                )
            attempt += 1
            await self._sleep(delay)

    def _deadlines(self) -> Deadlines | None:
        """This loop's watch over ``Timeout.total``, or None when there is no total."""
        found = self._watch
        if found is None or found.loop is not asyncio.get_running_loop():
            if self.timeout.total is None:
                return None
            found = self._watch = Deadlines(asyncio.get_running_loop(), self.timeout.total)
        return found

    async def _send(
        self,
        method: str,
        url: str,
        data: str | None,
        extra_headers: Mapping[str, str] | None = None,
        total: float | None = None,
        *,
        path: str = "",
        attempt: int = 0,
    ) -> Any:
        session = self._session() or await self._new_session()
        headers = self._headers if data is None else self._json_headers
        if extra_headers:  # a call's request_options: never in place of auth or content type
            headers = {**extra_headers, **headers}
        timeout = self._api_timeout
        deadlines = self._deadlines()
        if total is not None:  # a call's own limit: aiohttp's per-request timer instead of the shared watch
            timeout = aiohttp.ClientTimeout(total=total, sock_connect=timeout.sock_connect)
            deadlines = None
        hooks = self.hooks if self.hooks.registered else None
        request_id = 0
        if hooks is not None:  # a client without hooks builds no event objects (and never imports them)
            request_id = hooks.request_sent(method, url, path, attempt)
            if hooks.injects:
                headers = {**headers}
                hooks.inject(request_id, headers)
        started = time.perf_counter()
        task = deadlines.enter() if deadlines is not None else None
        try:
            try:
                with self._map:
                    async with session.request(
                        method, url, data=data, headers=headers, timeout=timeout
                    ) as response:
                        status, raw = await self._receive(response, method, url)
            except asyncio.CancelledError:
                if deadlines is None or not deadlines.expired(task):
                    raise
                total = deadlines.total
                raise_detached(APITimeoutError(f"no complete answer within {total:g} s (Timeout.total)"))
            finally:
                if deadlines is not None:
                    deadlines.leave(task)
        except BaseException as exc:
            # Whatever ends a request without an answer ends it for the hooks too: a cancelled call (the
            # caller's timeout, a client that hung up on a web handler), an error aiohttp raises that is not
            # mapped. Hooks that opened something for it (a span) must hear that it is over.
            if hooks is not None:
                hooks.request_failed(request_id, exc, time.perf_counter() - started)
            raise
        if hooks is not None:
            hooks.request_answered(request_id, status, time.perf_counter() - started)
        if logger.isEnabledFor(logging.DEBUG):
            elapsed_ms = (time.perf_counter() - started) * 1000
            fields = {"method": method, "route": route_template(path), "status": status, "attempt": attempt}
            logger.debug("%s %s -> %d in %.1f ms", method, redact_url(url), status, elapsed_ms, extra=fields)
        if status >= 400:
            headers_in = response.headers
            raise status_error(
                status,
                raw,
                headers_in,
                reason=response.reason or "",
                retry_after=parse_retry_after(headers_in),
                secrets=self._secrets,
            )
        if status == 204 or not raw:
            return None
        return self._decode(raw, method, url, status)

    async def _receive(self, response: aiohttp.ClientResponse, method: str, url: str) -> tuple[int, bytes]:
        """The status and the body: at most a prefix of an error, all of a success up to the size cap."""
        status = response.status
        if status >= 400:
            return status, await _read_prefix(response, _ERROR_BODY_LIMIT)
        length = response.content_length
        if (
            length is not None
            and length <= self.max_response_bytes
            and "Content-Encoding" not in response.headers
        ):
            return status, await response.read()  # the common case: one read of a known, small size
        return status, await self._read_bounded(response, method, url)

    async def _read_bounded(self, response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        """The whole body, or ResponseDecodeError as soon as it is known to pass ``max_response_bytes``."""
        limit = self.max_response_bytes
        length = response.content_length
        compressed = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        if length is not None and length > limit and not compressed:
            response.close()  # do not read it: the connection goes, not the memory
            raise self._too_large(method, url, f"Content-Length is {length:,} bytes")
        if length is not None and not compressed:
            return await response.read()
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                response.close()
                raise self._too_large(method, url, f"more than {limit:,} bytes arrived")
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self, method: str, url: str, what: str) -> ResponseDecodeError:
        return ResponseDecodeError(
            f"{method} {redact_url(url)}: the answer is larger than max_response_bytes "
            f"({self.max_response_bytes:,}): {what}"
        )

    def _decode(self, raw: bytes, method: str, url: str, status: int) -> Any:
        problem = None
        try:
            return json.loads(raw)
        except ValueError:
            problem = "invalid JSON"
        except RecursionError:
            problem = "JSON nested too deeply to decode"
        excerpt = scrub(raw[:120].decode("utf-8", "replace"), self._secrets)
        raise ResponseDecodeError(
            f"{method} {redact_url(url)} returned {problem} (HTTP {status}): {excerpt!r}"
        )

    # -- transfers ------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] | None = None,
    ) -> AsyncGenerator[StreamResponse, None]:
        """One exchange with an absolute URL (a signed download or upload URL): no auth header, no retries.

        The connect timeout applies; there is no total and no read timeout (the caller watches for stalls).
        Every failure, while sending or while reading the body, is an SDK error with the URL's query
        scrubbed. Redirects are followed (a storage URL may redirect to another signed URL).

        Example:
            ```python
            async with transport.stream("GET", url, headers={"Range": "bytes=100-"}) as response:
                async for chunk in response.iter_chunks(1 << 20):
                    ...
            ```
        """
        session = self._session() or await self._new_session()
        mapping = _ExceptionMap((*self._secrets, *url_secrets(url)))
        sent = {"User-Agent": self._headers["User-Agent"], **(headers or {})}
        with mapping:
            async with session.request(
                method, url, headers=sent, data=body, timeout=self._transfer_timeout
            ) as response:
                yield StreamResponse(response, mapping)


async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
