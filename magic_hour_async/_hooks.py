"""The client's hook dispatcher: one object that delivers :mod:`.events` to every registered hook.

The emitting code checks ``if hooks:`` first, so a client without hooks builds no event objects on the request
path. Plain hooks run inline in the caller's context (an OpenTelemetry hook relies on that: its spans get the
caller's span as parent; ``RequestSent`` runs from a loop callback in a copy of that context); coroutine hooks
become tasks that :meth:`Hooks.aclose` awaits, so none outlives the client. A hook that raises is logged once,
with its traceback, and otherwise ignored: observing never breaks a call.

:meth:`Hooks.request_sent` keeps hooks off a request's path: its :class:`~.events.RequestSent` is built and
delivered on the event loop's next turn (on a kept-alive connection the request is written by then), and
:meth:`Hooks.request_answered` and :meth:`Hooks.request_failed` deliver it first if the request ended before
the loop turned, so hooks always see a request's events in order.

``inject`` lets an instrumentation add headers (W3C ``traceparent``) to an outgoing API request; it is only
called when an injector was registered, which OpenTelemetry does only when the caller asks for propagation.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import re
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._exceptions import ConfigurationError
from ._http._redact import redact_url

if TYPE_CHECKING:  # the event classes load with the first hook: `import magic_hour_async` stays cheap
    from .events import Event, Hook, RequestFailed, RequestSent, ResponseReceived, RetryScheduled

    # method, url, path, attempt and time.time_ns() of a request whose RequestSent is not delivered yet
    _Sent = tuple[str, str, str, int, int]

logger = logging.getLogger("magic_hour_async.hooks")

Injector = Callable[[int, MutableMapping[str, str]], None]

# /v1/video-projects/abc -> /v1/video-projects/{id}; /v1/face-detection/abc -> /v1/face-detection/{id}
_ITEM = re.compile(r"^(/v1/(?:[a-z]+-projects|face-detection))/[^/?]+$")


def route_template(path: str) -> str:
    """The route template of an API path, for span names and metric attributes (low cardinality)."""
    path = path.partition("?")[0]
    match = _ITEM.match(path)
    return f"{match.group(1)}/{{id}}" if match else path


def poll_route(kind: str) -> str:
    """The route a poll of ``kind`` uses: of a project kind (``image``) or a job path (``/v1/...``)."""
    return f"{kind}/{{id}}" if kind.startswith("/") else f"/v1/{kind}-projects/{{id}}"


def project_id_of(path: str) -> str | None:
    """The project id in an item path (``/v1/image-projects/{id}``), else None."""
    match = _ITEM.match(path.partition("?")[0])
    return path.partition("?")[0].rsplit("/", 1)[1] if match else None


class RequestEvents(NamedTuple):
    """The event classes of the request path, imported once (a function-level import costs a microsecond
    or two per call, and a request emits two events)."""

    sent: type[RequestSent]
    received: type[ResponseReceived]
    failed: type[RequestFailed]
    retry: type[RetryScheduled]


@functools.cache
def request_events() -> RequestEvents:
    """The request path's event classes; the first call imports :mod:`.events`."""
    from .events import RequestFailed, RequestSent, ResponseReceived, RetryScheduled

    return RequestEvents(RequestSent, ResponseReceived, RequestFailed, RetryScheduled)


class Hooks:
    """The registered hooks of one client."""

    __slots__ = ("_failed", "_injectors", "_next_id", "_open", "_pending", "_tasks", "registered")

    def __init__(self, hooks: list[Hook] | tuple[Hook, ...] = ()) -> None:
        for hook in hooks:
            _check(hook)
        #: The hooks, in order; the request path tests this list (not ``bool(hooks)``, a Python call).
        self.registered: list[Hook] = list(hooks)
        self._injectors: list[Injector] = []
        self._failed: set[int] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._next_id = itertools.count(1)
        self._pending: dict[int, _Sent] = {}
        self._open: dict[int, tuple[str, str, int]] = {}  # method, route, attempt of requests announced

    def __bool__(self) -> bool:
        return bool(self.registered)

    def __len__(self) -> int:
        return len(self.registered)

    def add(self, hook: Hook) -> None:
        """Register one more hook; it sees events from now on."""
        _check(hook)
        self.registered.append(hook)

    def add_injector(self, injector: Injector) -> None:
        """Register a header injector for outgoing API requests (trace context propagation)."""
        self._injectors.append(injector)

    @property
    def injects(self) -> bool:
        return bool(self._injectors)

    def request_sent(self, method: str, url: str, path: str, attempt: int) -> int:
        """A request is going out now: its :class:`~.events.RequestSent` follows; returns its request id.

        The event, stamped with this moment, is built and delivered on the event loop's next turn, after the
        request is written to a kept-alive connection, so hooks cost the request nothing but this call.
        With an injector registered it is delivered at once: the trace context it injects must exist before
        the headers are written.
        """
        request_id = next(self._next_id)
        sent = (method, url, path, attempt, time.time_ns())
        if self._injectors:
            self._deliver(request_id, sent)
        else:
            self._pending[request_id] = sent
            asyncio.get_running_loop().call_soon(self._deliver_pending, request_id)
        return request_id

    def request_answered(self, request_id: int, status: int, elapsed: float) -> None:
        """Deliver a request's :class:`~.events.ResponseReceived` (after its ``RequestSent`` if pending)."""
        method, route, attempt = self._ended(request_id)
        received = request_events().received
        self.emit(
            received(
                request_id=request_id,
                method=method,
                route=route,
                status=status,
                elapsed=elapsed,
                attempt=attempt,
            )
        )

    def request_failed(self, request_id: int, error: BaseException, elapsed: float) -> None:
        """Deliver a request's :class:`~.events.RequestFailed` (after its ``RequestSent`` if pending)."""
        method, route, attempt = self._ended(request_id)
        failed = request_events().failed
        self.emit(
            failed(
                request_id=request_id,
                method=method,
                route=route,
                error=error,
                elapsed=elapsed,
                attempt=attempt,
            )
        )

    def _ended(self, request_id: int) -> tuple[str, str, int]:
        """Method, route and attempt of a request that just ended, its ``RequestSent`` delivered first."""
        if self._pending:
            self._deliver_pending(request_id)
        return self._open.pop(request_id)

    def _deliver_pending(self, request_id: int) -> None:
        sent = self._pending.pop(request_id, None)
        if sent is not None:  # else delivered already, by the end of the request
            self._deliver(request_id, sent)

    def _deliver(self, request_id: int, sent: _Sent) -> None:
        method, url, path, attempt, sent_at_ns = sent
        route = route_template(path)  # here, off the request's path, for the event that will end it too
        self._open[request_id] = (method, route, attempt)
        event = request_events().sent(
            request_id=request_id,
            method=method,
            url=redact_url(url),
            route=route,
            path=path,
            attempt=attempt,
            sent_at_ns=sent_at_ns,
        )
        self.emit(event)

    def inject(self, request_id: int, headers: MutableMapping[str, str]) -> None:
        for injector in self._injectors:
            try:
                injector(request_id, headers)
            except Exception:
                self._report(injector)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every hook; never raises."""
        for hook in self.registered:
            try:
                result = hook(event)
            except Exception:
                self._report(hook)
                continue
            if result is not None and inspect.isawaitable(result):  # a plain hook returns None: no check
                self._spawn(hook, result)

    def transfers(
        self, direction: Literal["download", "upload"], on_progress: Callable[[Any], None] | None
    ) -> Callable[[Any], None] | None:
        """``on_progress`` for a transfer, also reporting :class:`~.events.TransferProgressed` to the hooks.

        Uploads always know their size, so their :class:`~.events.TransferCompleted` is sent here when the
        last byte went out; downloads send theirs once the file is saved (:meth:`saved`).
        """
        if not self.registered:
            return on_progress
        from .events import TransferCompleted, TransferProgressed

        def report(progress: Any) -> None:
            done, total = progress.bytes_done, progress.bytes_total
            self.emit(TransferProgressed(direction=direction, path=progress.name, done=done, total=total))
            if direction == "upload" and total is not None and done == total:
                self.emit(TransferCompleted(direction=direction, path=progress.name, size=total))
            if on_progress is not None:
                on_progress(progress)

        return report

    def saved(self, paths: list[Path]) -> None:
        """Report downloaded files (their size from the file system: the server may not have sent one)."""
        if self.registered:
            from .events import TransferCompleted

            for path in paths:
                self.emit(TransferCompleted(direction="download", path=str(path), size=path.stat().st_size))

    async def aclose(self) -> None:
        """Wait for coroutine hooks still running (the client is closing)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, hook: Hook, awaitable: object) -> None:
        async def run() -> object:
            try:
                return await awaitable  # type: ignore[misc]  # checked by inspect.isawaitable
            except Exception:
                self._report(hook)
                return None

        try:
            task: asyncio.Task[object] = asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no running loop: a coroutine hook emitted from a thread; close it unrun
            getattr(awaitable, "close", lambda: None)()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report(self, hook: object) -> None:
        key = id(hook)
        if key in self._failed:
            return
        self._failed.add(key)
        name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
        logger.exception("hook %s raised; it keeps receiving events, further errors are not logged", name)


def _check(hook: object) -> None:
    if not callable(hook):
        raise ConfigurationError(f"a hook must be callable, not {type(hook).__name__}")
