"""A ready aiohttp receiver for Magic Hour webhooks, and the bridge from events to a client's waits.

The request path does as little as possible, because Magic Hour wants a 2xx within seconds and retries
anything else: read the raw body, :func:`~magic_hour_async.webhooks.verify` it (401 ``{"message": reason}``
on failure), drop a duplicate, hand the event to a connected client, schedule the user's callback, and
answer 200 ``{"received": true}``. The callback never runs before the response is on its way:

- an ``async`` callback runs as a task, kept in a set so it is neither garbage-collected mid-flight nor
  leaked: cleanup gives pending callbacks ``shutdown_timeout`` seconds, then cancels them and awaits them;
- a plain callback runs in a worker thread (``asyncio.to_thread``), so it may block (a database write, a
  blocking HTTP call) without stalling the receiver. It is awaited at cleanup too, but a thread cannot be
  cancelled: a callback that never returns delays the loop's shutdown.

Callback exceptions are logged on ``magic_hour_async.webhooks`` and counted; they never reach aiohttp.

With ``batch=``, each event first settles its job in the batch's journal (``Batch.accept_webhook_event``)
and the callback, if any, runs after that, in the same task: a fleet's receiver is
``create_app(batch=batch)``.

Duplicates (Magic Hour retries, replays within the timestamp window) are dropped by ``event.dedupe_key``
(``"{project id}:{type}"``, payloads carry no event id) within ``dedupe_window`` seconds: an ordered dict of
key to expiry, purged from the oldest end on every delivery and capped at ``dedupe_size`` keys, on an
injectable monotonic clock.

Hybrid waits: with ``client=``, each verified event also goes to :meth:`AsyncClient.accept_webhook_event`,
which ends ``wait``/``wait_many``/``as_completed`` on a ``*.completed``/``*.errored`` project at once. The
receiver's lifespan (``app.cleanup_ctx``) sets the client's poll ``safety_factor`` (default 10) on startup,
so polling continues ten times slower (canceled renders send no webhook; a lost delivery must still be
found), and restores it on cleanup. The scheduler belongs to one event loop: from any other thread the
hand-over is scheduled on that loop with ``call_soon_threadsafe`` (so the blocking ``Client``, whose loop
runs on its own thread, works too).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, cast

import attrs
from aiohttp import web

from .._exceptions import ConfigurationError, WebhookVerificationError

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._models import Project
    from .._polling._scheduler import Scheduler
    from .._sync import Client
    from ..batch import Batch
    from ._verify import WebhookEvent

__all__ = [
    "HANDLER_KEY",
    "WebhookCallback",
    "WebhookHandler",
    "WebhookReceiverStats",
    "create_app",
    "handler",
    "notify_waits",
]

logger = logging.getLogger("magic_hour_async.webhooks")

# A string: ``webhooks`` re-exports this module, so this module must not import it at import time.
WebhookCallback = Callable[["WebhookEvent"], object]
"""``callback(event)``: a plain function (run in a worker thread) or an ``async def`` (run as a task)."""

DEFAULT_PATH = "/webhooks/magic-hour"


def _on_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], object]) -> None:
    """Run ``fn`` on ``loop``: now when we are on it (or it is unknown), else scheduled there."""
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if loop is None or loop is current:
        fn()
    elif not loop.is_closed():
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # closed in the meantime: its client is gone, nobody waits any more
            logger.debug("client loop closed; webhook hand-over dropped")


def notify_waits(scheduler: Scheduler[Project], event: WebhookEvent) -> None:
    """Hand a verified event's project to ``scheduler`` (what ``AsyncClient.accept_webhook_event`` does)."""
    project = event.payload
    if event.kind is None or isinstance(project, dict):
        return  # an event type of no known kind carries no project
    loop = scheduler._loop
    if loop is None:
        return  # this client never waited for anything: nobody to tell
    _on_loop(loop, functools.partial(scheduler.notify, event.kind, project.id, project))


class _ClientLink:
    """One receiver's connection to one client: events in, a slower poll cadence while connected."""

    def __init__(self, client: AsyncClient | Client, safety_factor: float) -> None:
        from .._client import AsyncClient  # here: _client imports this module lazily, not at import time
        from .._sync import Client

        if isinstance(client, AsyncClient):
            self.client: AsyncClient = client
            self._loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: client._scheduler._loop
        elif isinstance(client, Client):  # its AsyncClient lives on the portal's loop thread
            self.client = client._wrapped
            portal_loop = client._portal._loop
            self._loop = lambda: portal_loop
        else:
            raise ConfigurationError(f"client must be an AsyncClient or a Client, not {client!r}")
        if not (
            isinstance(safety_factor, (int, float)) and math.isfinite(safety_factor) and safety_factor >= 1
        ):
            raise ConfigurationError(f"safety_factor must be a number >= 1, got {safety_factor!r}")
        self._factor = float(safety_factor)
        self._previous: float | None = None

    def accept(self, event: WebhookEvent) -> None:
        self.client.accept_webhook_event(event)

    def connect(self) -> None:
        _on_loop(self._loop(), self._connect)

    def disconnect(self) -> None:
        _on_loop(self._loop(), self._disconnect)

    def _connect(self) -> None:
        scheduler = self.client._scheduler
        self._previous = scheduler.safety_factor
        scheduler.safety_factor = self._factor

    def _disconnect(self) -> None:
        scheduler, previous, self._previous = self.client._scheduler, self._previous, None
        # Another receiver (or the user) may have changed it since: then it is theirs to restore.
        if previous is not None and scheduler.safety_factor == self._factor:
            scheduler.safety_factor = previous


class _Seen:
    """Keys seen within the last ``window`` seconds, at most ``size`` of them (the oldest are forgotten)."""

    def __init__(self, window: float, size: int, clock: Callable[[], float]) -> None:
        self._window, self._size, self._clock = window, size, clock
        # One window for all keys on a monotonic clock: insertion order is expiry order.
        self._expiry: collections.OrderedDict[str, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def first_time(self, key: str) -> bool:
        """Record ``key``; False if it was already seen within the window."""
        now = self._clock()
        expiry = self._expiry
        while expiry and next(iter(expiry.values())) <= now:
            expiry.popitem(last=False)
        if key in expiry:
            return False
        expiry[key] = now + self._window
        if len(expiry) > self._size:
            expiry.popitem(last=False)
        return True


@attrs.frozen(kw_only=True)
class WebhookReceiverStats:
    """Counters of a :class:`WebhookHandler`: deliveries received, accepted, rejected, duplicates dropped."""

    received: int
    accepted: int
    rejected: int
    duplicates: int
    callback_errors: int
    pending_callbacks: int


def _mark_coroutine_function(obj: Callable[..., object]) -> None:
    """Make ``obj`` (a callable object) pass ``iscoroutinefunction``, as asgiref's helper of that name does.

    aiohttp wraps a handler that does not look like a coroutine function, with a DeprecationWarning.
    """
    if sys.version_info >= (3, 12):
        inspect.markcoroutinefunction(obj)
    else:  # what asyncio.iscoroutinefunction also looks for before 3.12
        setattr(obj, "_is_coroutine", getattr(asyncio.coroutines, "_is_coroutine"))  # noqa: B009, B010


def _is_async(callback: WebhookCallback) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


async def _call(callback: WebhookCallback, is_async: bool, event: WebhookEvent) -> None:
    """Await an ``async`` callback; run a plain one in a worker thread (and await what it returns, if any)."""
    if is_async:
        await cast("Awaitable[object]", callback(event))
    else:
        result = await asyncio.to_thread(callback, event)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            await result


def _settling(batch: Batch, then: WebhookCallback | None) -> WebhookCallback:
    """A callback that settles the event's job in ``batch``'s journal, then calls ``then`` (in any case)."""
    then_async = then is not None and _is_async(then)

    async def settle_then_call(event: WebhookEvent) -> None:
        try:
            await batch.accept_webhook_event(event)
        finally:
            if then is not None:
                await _call(then, then_async, event)

    return settle_then_call


class WebhookHandler:
    """An aiohttp request handler that verifies, de-duplicates and dispatches Magic Hour webhooks.

    Build it with :func:`handler`. Mount it with ``app.router.add_post(path, receiver)`` and register its
    lifespan with ``app.cleanup_ctx.append(receiver.lifespan)`` (:func:`create_app` does both): startup
    connects the client, cleanup disconnects it and finishes the callbacks.
    """

    def __init__(
        self,
        callback: WebhookCallback | None,
        *,
        secret: str,
        tolerance: float | None,
        dedupe_window: float | None,
        dedupe_size: int,
        client: AsyncClient | Client | None,
        safety_factor: float,
        shutdown_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        from ._verify import verify  # not at import time: webhooks re-exports this module

        self._verify = verify
        self._callback = callback
        self._async = callback is not None and _is_async(callback)
        self._secret = secret
        self._tolerance = tolerance
        self._seen = _Seen(dedupe_window, dedupe_size, clock) if dedupe_window else None
        self._link = _ClientLink(client, safety_factor) if client is not None else None
        self._shutdown_timeout = shutdown_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = self._connected = False
        _mark_coroutine_function(self)
        self._received = self._accepted = self._rejected = self._duplicates = self._errors = 0

    def __repr__(self) -> str:
        return f"<WebhookHandler {'closed' if self._closed else 'open'}, {len(self._tasks)} pending>"

    @property
    def stats(self) -> WebhookReceiverStats:
        """A snapshot of the counters."""
        return WebhookReceiverStats(
            received=self._received,
            accepted=self._accepted,
            rejected=self._rejected,
            duplicates=self._duplicates,
            callback_errors=self._errors,
            pending_callbacks=len(self._tasks),
        )

    async def __call__(self, request: web.Request) -> web.Response:
        self._received += 1
        if self._closed:
            # Not a 2xx, so Magic Hour delivers it again later, to whoever listens then.
            return web.json_response({"message": "receiver is shutting down"}, status=503)
        body = await request.read()
        try:
            event = self._verify(body, request.headers, self._secret, tolerance=self._tolerance)
        except WebhookVerificationError as exc:
            self._rejected += 1
            logger.info("webhook rejected: %s", exc)
            return web.json_response({"message": str(exc)}, status=401)
        if self._seen is not None and not self._seen.first_time(event.dedupe_key):
            self._duplicates += 1
            logger.debug("duplicate webhook %s dropped", event.dedupe_key)
            return web.json_response({"received": True, "duplicate": True})
        self._accepted += 1
        if self._link is not None:
            self._link.accept(event)
        if self._callback is not None:
            task = asyncio.get_running_loop().create_task(self._run_callback(self._callback, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response({"received": True})

    async def _run_callback(self, callback: WebhookCallback, event: WebhookEvent) -> None:
        try:
            await _call(callback, self._async, event)
        except Exception:
            self._errors += 1
            logger.exception("webhook callback failed for %s", event.dedupe_key)

    def connect(self) -> None:
        """Start slower safety polling on the client (:meth:`lifespan` does it on startup; idempotent)."""
        if self._link is not None and not self._connected and not self._closed:
            self._connected = True
            self._link.connect()

    async def aclose(self) -> None:
        """Disconnect the client, give pending callbacks ``shutdown_timeout`` seconds, cancel the rest.

        Later deliveries are answered 503. Closing twice is harmless.
        """
        if not self._closed:
            self._closed = True
            if self._link is not None and self._connected:
                self._link.disconnect()
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self._shutdown_timeout)
        for task in late:
            task.cancel()
        if late:
            logger.warning("%d webhook callbacks still running at shutdown were cancelled", len(late))
            await asyncio.gather(*late, return_exceptions=True)

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: connect the client on startup, :meth:`aclose` on cleanup."""
        self.connect()
        try:
            yield
        finally:
            await self.aclose()


HANDLER_KEY = web.AppKey("magic_hour_async.webhooks.handler", WebhookHandler)
"""Where :func:`create_app` keeps its :class:`WebhookHandler` (``app[HANDLER_KEY].stats``)."""


def handler(
    callback: WebhookCallback | None = None,
    *,
    secret: str | None = None,
    tolerance: float | None = 300,
    dedupe_window: float | None = 3600,
    dedupe_size: int = 100_000,
    client: AsyncClient | Client | None = None,
    batch: Batch | None = None,
    safety_factor: float = 10.0,
    shutdown_timeout: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> WebhookHandler:
    """An aiohttp handler for webhook deliveries: verify, answer at once, then call ``callback(event)``.

    Example:
        ```python
        async def on_event(event: webhooks.WebhookEvent) -> None:
            print(event.type, event.project_id)

        receiver = webhooks.handler(on_event, client=client)
        app.router.add_post("/webhooks/magic-hour", receiver)
        app.cleanup_ctx.append(receiver.lifespan)
        ```

    Args:
        callback: called once per new event, after the response: ``async def`` as a task, a plain function
            in a worker thread. Its exceptions are logged and counted, never raised.
        secret: the webhook secret; ``None`` reads ``MAGIC_HOUR_WEBHOOK_SECRET``.
        tolerance: the allowed timestamp skew in seconds (see :func:`verify`).
        dedupe_window: seconds during which a repeated ``"{id}:{type}"`` is dropped (answered 200);
            ``None`` or 0 disables de-duplication.
        dedupe_size: the most keys remembered; the oldest are forgotten first.
        client: an ``AsyncClient`` or ``Client`` whose waits the events resolve at once.
        batch: a :class:`~magic_hour_async.batch.Batch` whose jobs the events settle
            (``batch.accept_webhook_event``, before ``callback``); with a PostgreSQL journal the receiver
            may run on any machine, and the workers' waits end through the journal.
        safety_factor: while connected, the client polls this many times slower (canceled renders send
            no webhook, so polling never stops).
        shutdown_timeout: seconds cleanup waits for pending callbacks before cancelling them.
        clock: monotonic seconds for the de-duplication window.

    Raises:
        ConfigurationError: no secret given and ``MAGIC_HOUR_WEBHOOK_SECRET`` is unset.
    """
    from ._verify import SECRET_ENV  # not at import time: webhooks re-exports this module

    key = secret if secret is not None else os.environ.get(SECRET_ENV)
    if not key:
        raise ConfigurationError(f"no webhook secret: pass secret=... or set {SECRET_ENV}")
    if isinstance(dedupe_size, bool) or not isinstance(dedupe_size, int) or dedupe_size < 1:
        raise ConfigurationError(f"dedupe_size must be a positive integer, got {dedupe_size!r}")
    if batch is not None:
        callback = _settling(batch, callback)
    return WebhookHandler(
        callback,
        secret=key,
        tolerance=tolerance,
        dedupe_window=dedupe_window,
        dedupe_size=dedupe_size,
        client=client,
        safety_factor=safety_factor,
        shutdown_timeout=shutdown_timeout,
        clock=clock,
    )


def create_app(
    callback: WebhookCallback | None = None,
    *,
    path: str = DEFAULT_PATH,
    secret: str | None = None,
    tolerance: float | None = 300,
    dedupe_window: float | None = 3600,
    dedupe_size: int = 100_000,
    client: AsyncClient | Client | None = None,
    batch: Batch | None = None,
    safety_factor: float = 10.0,
    shutdown_timeout: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """An aiohttp application receiving webhooks on ``POST path``; arguments as for :func:`handler`.

    Example:
        ```python
        async with AsyncClient() as client:
            app = webhooks.create_app(client=client)  # secret from MAGIC_HOUR_WEBHOOK_SECRET
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "0.0.0.0", 8080).start()
            projects = await client.v1.video_projects.wait_many(ids)  # resolved by webhooks
            await runner.cleanup()
        ```
    """
    receiver = handler(
        callback,
        secret=secret,
        tolerance=tolerance,
        dedupe_window=dedupe_window,
        dedupe_size=dedupe_size,
        client=client,
        batch=batch,
        safety_factor=safety_factor,
        shutdown_timeout=shutdown_timeout,
        clock=clock,
    )
    app = web.Application()
    app[HANDLER_KEY] = receiver
    app.router.add_post(path, receiver)
    app.cleanup_ctx.append(receiver.lifespan)
    return app
