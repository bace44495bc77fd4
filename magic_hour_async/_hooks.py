"""The client's hook dispatcher: one object that delivers :mod:`.events` to every registered hook.

The emitting code checks ``if hooks:`` first, so a client without hooks builds no event objects on the request
path. Plain hooks run inline in the emitting task (an OpenTelemetry hook relies on that: its spans see the
caller's context); coroutine hooks become tasks that :meth:`Hooks.aclose` awaits, so none outlives the client.
A hook that raises is logged once, with its traceback, and otherwise ignored: observing never breaks a call.

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
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._exceptions import ConfigurationError

if TYPE_CHECKING:  # the event classes load with the first hook: `import magic_hour_async` stays cheap
    from .events import Event, Hook, RequestFailed, RequestSent, ResponseReceived, RetryScheduled

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

    __slots__ = ("_failed", "_injectors", "_next_id", "_tasks", "registered")

    def __init__(self, hooks: list[Hook] | tuple[Hook, ...] = ()) -> None:
        for hook in hooks:
            _check(hook)
        #: The hooks, in order; the request path tests this list (not ``bool(hooks)``, a Python call).
        self.registered: list[Hook] = list(hooks)
        self._injectors: list[Injector] = []
        self._failed: set[int] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._next_id = itertools.count(1)

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

    def request_id(self) -> int:
        """A fresh id pairing a :class:`~.events.RequestSent` with the event that ends it."""
        return next(self._next_id)

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
