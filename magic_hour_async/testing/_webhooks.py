"""Signed webhook deliveries from the emulator, as Magic Hour sends them.

Project status is a pure function of the clock (:mod:`._lifecycle`), so nothing "happens" when a render
starts or ends; the emulator has to look. :class:`Webhooks` keeps a heap of clock times worth looking at:
when a project is added it schedules a check at the moment it starts rendering and one at its end, and a
forced status (``emu.complete/fail/cancel/set_status``) schedules a check for now. One task on the
emulator's loop sleeps until the earliest entry, so the same mechanism serves both clocks:

- with the default real clock (:func:`time.monotonic`, the loop's own time base) it sleeps exactly until
  the next entry is due;
- with any other clock (a :class:`ManualClock`) it cannot know when time will jump, so while entries are
  pending it re-reads the clock every ``TICK`` seconds of real time: ``clock.advance(10)`` delivers whatever
  became due within a few milliseconds, in due order. Adding an entry wakes the task at once, from any
  thread.

A check compares the project's status with the last one announced and turns a change into an event:
``rendering`` into ``{kind}.started``, ``complete`` into ``{kind}.completed``, ``error`` into
``{kind}.errored``. Like the real API there is no event for ``canceled`` (and nothing follows a terminal
status), and ``image.started`` is skipped for the fast AI Image Generator (type ``AI_IMAGE``).

Each event is POSTed as ``{"type": ..., "payload": <the GET body at that status>}`` with the
``magic-hour-event-signature`` (HMAC-SHA256 of ``"{timestamp}.{body}"``) and ``magic-hour-event-timestamp``
headers. The timestamp is real Unix time, not the emulator's: the receiver checks it against its own clock,
and a manual clock moved by an hour would otherwise make every delivery "stale". A non-2xx answer or a
connection failure is retried after ``retry_base * 2 ** (attempt - 1)`` clock seconds (default
``retry_base``: one second times the emulator's ``speed``), up to ``max_attempts`` POSTs; retries wait on
the same heap, so a manual clock controls them too. ``duplicates`` sends every event that many extra times
(each with its own retries), to test a receiver's de-duplication.

All bookkeeping happens under the emulator state's lock, because projects change from request handlers on
the server's loop and from test code in other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp
import attrs

from .._version import __version__
from ..webhooks._verify import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from ._bodies import project_body
from ._lifecycle import QUEUED_FRACTION, TERMINAL, Project
from ._state import State
from ._tools import KINDS

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "EVENT_TYPES",
    "WebhookAttempt",
    "WebhookConfig",
    "WebhookStats",
    "Webhooks",
]

DEFAULT_WEBHOOK_SECRET = "whsec_test_emulator"
_ACTIONS = {"rendering": "started", "complete": "completed", "error": "errored"}
EVENT_TYPES = frozenset(f"{kind}.{action}" for kind in KINDS for action in _ACTIONS.values())
TICK = 0.005  # real seconds between clock reads while entries are pending on a clock that is not real time
_FAST_IMAGE_TYPES = frozenset({"AI_IMAGE"})  # "image.started may be skipped for fast image modes"


@attrs.frozen(kw_only=True)
class WebhookAttempt:
    """One POST of a webhook: ``status`` is the HTTP status, or ``None`` when no response came (``error``)."""

    type: str
    project_id: str
    attempt: int
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@attrs.frozen(kw_only=True)
class WebhookStats:
    """Counters of the emulator's webhooks.

    ``events``: events generated; ``deliveries``: deliveries answered 2xx (an event with ``duplicates=1``
    counts twice); ``attempts``: POSTs sent; ``failed_attempts``: POSTs answered non-2xx or failed;
    ``given_up``: deliveries dropped after ``max_attempts``; ``pending``: deliveries in flight or waiting for
    a retry.
    """

    events: int
    deliveries: int
    attempts: int
    failed_attempts: int
    given_up: int
    pending: int


@attrs.frozen(kw_only=True)
class WebhookConfig:
    """Where and how the emulator delivers webhooks (see :meth:`Webhooks.configure`)."""

    url: str
    secret: str
    events: frozenset[str]
    duplicates: int
    retry_base: float | None
    max_attempts: int
    timeout: float


@attrs.define(slots=True, kw_only=True)
class _Delivery:
    type: str
    project_id: str
    body: bytes
    attempt: int = 1


@attrs.frozen(slots=True)
class _Check:
    project_id: str
    phase: str | None  # the lifecycle status due at this entry's time; None: whatever it is now


class Webhooks:
    """The emulator's webhook sender (``emu.webhooks``): configure it, then read its counters.

    Example:
        ```python
        emu.webhooks.configure("http://127.0.0.1:8080/webhooks/magic-hour", "whsec_test", duplicates=1)
        ...
        assert emu.webhooks.stats.deliveries == 2
        ```
    """

    def __init__(self, state: State, base_url: Callable[[], str], *, log_size: int = 10_000) -> None:
        self._state = state
        self._base_url = base_url
        self._real_clock = state.clock is time.monotonic
        self._config: WebhookConfig | None = None
        self._heap: list[tuple[float, int, _Check | _Delivery]] = []
        self._seq = itertools.count()
        self._announced: dict[str, str] = {}  # project id -> last status looked at
        self._log: deque[WebhookAttempt] = deque(maxlen=log_size)
        self._events = self._deliveries = self._attempts = self._failed = self._given_up = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._posts: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # POSTs not yet accounted for (a task outlives its accounting a little)
        self._session: aiohttp.ClientSession | None = None
        state.on_change = self._project_changed

    def __repr__(self) -> str:
        return f"<Webhooks {self.url or 'disabled'}>"

    @property
    def config(self) -> WebhookConfig | None:
        """The settings in force, or ``None`` while disabled."""
        return self._config

    @property
    def url(self) -> str | None:
        """Where webhooks go, or ``None`` while disabled."""
        config = self._config
        return config.url if config is not None else None

    # -- configuration --------------------------------------------------------------------------------------
    def configure(
        self,
        url: str,
        secret: str | None = None,
        *,
        events: Iterable[str] | None = None,
        duplicates: int = 0,
        retry_base: float | None = None,
        max_attempts: int = 8,
        timeout: float = 10.0,
    ) -> None:
        """Deliver webhooks to ``url`` from now on (projects that already finished are not announced).

        Args:
            url: where to POST, e.g. ``http://127.0.0.1:8080/webhooks/magic-hour``.
            secret: the signing secret (default ``"whsec_test_emulator"``).
            events: the event types to send (default: all nine of :data:`EVENT_TYPES`).
            duplicates: extra copies of every delivery (a fault, to test de-duplication).
            retry_base: seconds on the emulator's clock before the first retry; later ones double. Default:
                one second times the emulator's ``speed``.
            max_attempts: POSTs per delivery before giving up.
            timeout: real seconds a POST may take.
        """
        chosen = EVENT_TYPES if events is None else frozenset(events)
        if unknown := sorted(chosen - EVENT_TYPES):
            raise ValueError(f"unknown webhook event types {unknown}; known: {sorted(EVENT_TYPES)}")
        if duplicates < 0 or max_attempts < 1:
            raise ValueError("duplicates must be >= 0 and max_attempts >= 1")
        config = WebhookConfig(
            url=url,
            secret=secret or DEFAULT_WEBHOOK_SECRET,
            events=chosen,
            duplicates=duplicates,
            retry_base=retry_base,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        with self._state.lock:
            newly, self._config = self._config is None, config
            if newly:
                for project in self._state.projects.values():
                    self._track(project, new=False)

    def disable(self) -> None:
        """Stop sending: pending checks and retries are dropped (like a webhook disabled in the dashboard)."""
        with self._state.lock:
            self._config = None
            self._heap.clear()
            self._announced.clear()

    @property
    def stats(self) -> WebhookStats:
        """A snapshot of the counters."""
        with self._state.lock:
            retries = sum(1 for entry in self._heap if isinstance(entry[2], _Delivery))
            return WebhookStats(
                events=self._events,
                deliveries=self._deliveries,
                attempts=self._attempts,
                failed_attempts=self._failed,
                given_up=self._given_up,
                pending=retries + self._in_flight,
            )

    @property
    def attempts(self) -> list[WebhookAttempt]:
        """Recent POSTs, oldest first (up to the emulator's log size)."""
        with self._state.lock:
            return list(self._log)

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the timer task on the running loop (the emulator calls this)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._session = aiohttp.ClientSession(headers={"User-Agent": f"magic-hour-emulator/{__version__}"})
        self._runner = self._loop.create_task(self._run(), name="magic-hour-emulator-webhooks")

    async def stop(self) -> None:
        """Cancel the timer task and POSTs in flight, close the session (the emulator calls this)."""
        tasks = [t for t in (self._runner, *self._posts) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with self._state.lock:
            self._in_flight = 0  # the cancelled POSTs never reached their accounting
        if self._session is not None:
            await self._session.close()
        self._runner = self._session = self._loop = self._wake = None

    # -- scheduling (under the state's lock) ----------------------------------------------------------------
    def _project_changed(self, project: Project) -> None:
        """The state's hook: a project was added or its status pinned."""
        if self._config is None:
            return
        if project.id in self._announced:
            self._push(self._state.clock(), _Check(project.id, None))
        else:
            self._track(project, new=True)

    def _track(self, project: Project, *, new: bool) -> None:
        """Start watching a project: note its status and schedule checks at its lifecycle transitions.

        A new project counts as ``queued`` even if the clock has already moved past that (a render of a
        few microseconds): its transitions are then due at once. One that existed before webhooks were
        configured counts as whatever it is now, so only what happens from now on is announced.
        """
        if project.pinned is not None:
            status = project.pinned
        else:
            status = "queued" if new else project.status(self._state.clock())
        self._announced[project.id] = status
        if project.pinned is not None or status in TERMINAL:
            return
        if project.duration > 0:  # a render of no duration is never seen rendering
            self._push(project.created + project.duration * QUEUED_FRACTION, _Check(project.id, "rendering"))
        self._push(project.ends, _Check(project.id, project.outcome))

    def _push(self, when: float, item: _Check | _Delivery) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), item))
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return  # not running yet: start() finds it in the heap
        if _running_loop() is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # -- the timer task -------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            with self._state.lock:
                now = self._state.clock()
                while self._heap and self._heap[0][0] <= now:
                    item = heapq.heappop(self._heap)[2]
                    if isinstance(item, _Check):
                        self._check(item)
                    else:
                        self._send(item)
                next_at = self._heap[0][0] if self._heap else math.inf
            if next_at == math.inf:
                await self._wake.wait()
                continue
            delay = max(0.0, next_at - self._state.clock())
            if not self._real_clock:
                delay = min(delay, TICK)
            with contextlib.suppress(asyncio.TimeoutError):  # due: go round again
                await asyncio.wait_for(self._wake.wait(), delay)

    def _check(self, check: _Check) -> None:
        project, config = self._state.projects.get(check.project_id), self._config
        if project is None or config is None:
            return
        # A pinned status wins over the lifecycle, as in Project.status(); a lifecycle entry names its phase
        # itself because the clock may have moved past it (a manual clock advanced past several at once).
        if project.pinned is not None:
            status = project.pinned
        elif check.phase is not None:
            status = check.phase
        else:
            status = project.status(self._state.clock())
        previous = self._announced.get(project.id)
        if status == previous or previous in TERMINAL:
            return
        self._announced[project.id] = status
        action = _ACTIONS.get(status)
        if action is None:
            return  # queued, draft, canceled or an unknown status: Magic Hour sends nothing
        if action == "started" and project.kind == "image" and project.type in _FAST_IMAGE_TYPES:
            return
        event_type = f"{project.kind}.{action}"
        if event_type not in config.events:
            return
        # The payload is the GET body at the event's status, even if the clock has moved past it since.
        payload = project_body(self._state, self._base_url(), attrs.evolve(project, pinned=status))
        body = json.dumps({"type": event_type, "payload": payload}, separators=(",", ":")).encode()
        self._events += 1
        for _ in range(1 + config.duplicates):
            self._send(_Delivery(type=event_type, project_id=project.id, body=body))

    def _send(self, delivery: _Delivery) -> None:
        config = self._config  # the one in force now: a retry goes where webhooks go now
        if config is None or self._loop is None:
            return
        self._in_flight += 1
        task = self._loop.create_task(self._post(delivery, config))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, delivery: _Delivery, config: WebhookConfig) -> None:
        assert self._session is not None
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.body, config.secret, stamp),
            TIMESTAMP_HEADER: stamp,
        }
        status: int | None = None
        error: str | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=config.timeout)
            async with self._session.post(
                config.url, data=delivery.body, headers=headers, timeout=timeout
            ) as resp:
                status = resp.status
                await resp.read()
        except Exception as exc:  # no response (refused, reset, timeout, a bad URL): recorded, then retried
            error = f"{type(exc).__name__}: {exc}"
        attempt = WebhookAttempt(
            type=delivery.type,
            project_id=delivery.project_id,
            attempt=delivery.attempt,
            status=status,
            error=error,
        )
        with self._state.lock:
            self._in_flight -= 1
            self._attempts += 1
            self._log.append(attempt)
            if attempt.ok:
                self._deliveries += 1
                return
            self._failed += 1
            if delivery.attempt >= config.max_attempts:
                self._given_up += 1
                return
            base = config.retry_base if config.retry_base is not None else self._state.speed
            delay = base * 2.0 ** (delivery.attempt - 1)
            delivery.attempt += 1
            self._push(self._state.clock() + delay, delivery)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
