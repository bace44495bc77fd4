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
import inspect
import logging
import re
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import ConfigurationError

if TYPE_CHECKING:  # the event classes load with the first hook: `import magic_hour_async` stays cheap
    from .events import Event, Hook

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


class Hooks:
    """The registered hooks of one client."""

    __slots__ = ("_failed", "_hooks", "_injectors", "_next_id", "_tasks")

    def __init__(self, hooks: list[Hook] | tuple[Hook, ...] = ()) -> None:
        for hook in hooks:
            _check(hook)
        self._hooks: list[Hook] = list(hooks)
        self._injectors: list[Injector] = []
        self._failed: set[int] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._next_id = 0

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def __len__(self) -> int:
        return len(self._hooks)

    def add(self, hook: Hook) -> None:
        """Register one more hook; it sees events from now on."""
        _check(hook)
        self._hooks.append(hook)

    def add_injector(self, injector: Injector) -> None:
        """Register a header injector for outgoing API requests (trace context propagation)."""
        self._injectors.append(injector)

    @property
    def injects(self) -> bool:
        return bool(self._injectors)

    def request_id(self) -> int:
        """A fresh id pairing a :class:`~.events.RequestSent` with the event that ends it."""
        self._next_id += 1
        return self._next_id

    def inject(self, request_id: int, headers: MutableMapping[str, str]) -> None:
        for injector in self._injectors:
            try:
                injector(request_id, headers)
            except Exception:
                self._report(injector)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every hook; never raises."""
        for hook in self._hooks:
            try:
                result = hook(event)
            except Exception:
                self._report(hook)
                continue
            if inspect.isawaitable(result):
                self._spawn(hook, result)

    def transfers(
        self, direction: Literal["download", "upload"], on_progress: Callable[[Any], None] | None
    ) -> Callable[[Any], None] | None:
        """``on_progress`` for a transfer, also reporting :class:`~.events.TransferProgressed` to the hooks.

        Uploads always know their size, so their :class:`~.events.TransferCompleted` is sent here when the
        last byte went out; downloads send theirs once the file is saved (:meth:`saved`).
        """
        if not self._hooks:
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
        if self._hooks:
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
