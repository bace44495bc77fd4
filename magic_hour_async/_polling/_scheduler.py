"""The polling scheduler: one per client, it serves every wait on a render.

One driver task keeps a heap of next-poll deadlines and wait deadlines (:mod:`._timers`). When a poll is due,
the project joins the backlog of due polls (:mod:`._backlog`: the most overdue relative to its own interval
goes first), and the driver starts a poll task for it as soon as a concurrency slot
(``PollPolicy.max_concurrency``) and the rate (:mod:`._rate`: the ``max_rate`` budget, or less after a real
rate limit) allow. A newly watched project's first poll is due at once, so it joins the backlog directly.
Nothing sleeps per project: a watched project costs a few hundred bytes and a few objects for the cyclic GC to
traverse, and a task exists only while its GET is in flight. The driver starts lazily on the first wait, stops
when nothing is watched, and starts again on demand.

Waits on the same ``(kind, id)`` share one watch, so one poll stream and one result. Each call to
:meth:`Scheduler.wait`, :meth:`~Scheduler.wait_many` or :meth:`~Scheduler.as_completed` holds a ticket
(:mod:`._tickets`) on the projects it waits for; a ticket that is satisfied, times out or is cancelled
withdraws, and a project no ticket holds is forgotten at once and dropped from the heap lazily.

Poll timing is :func:`._policy.poll_delay` (pure). Transient errors (:func:`is_transient`: no response, a
timeout, 408, 429, 500, 502, 503, 504, an undecodable body) are retried with backoff, each reported to
``on_event`` as a ``"retry"``; a 429's ``Retry-After`` holds that project back at least that long. They fail
the waits only once the project has gone ``PollPolicy.give_up_after`` seconds without a successful poll: then
every waiter gets the last poll error, so an unreachable host or a server answering garbage cannot make a wait
hang. A wait that times out carries the last poll error (since the last success) as
``WaitTimeoutError.last_error``. Other errors (401, 403, 404, 422, ...) fail every waiter of that project at
once with the very exception raised. All time comes from the injected ``clock`` and ``sleep``, by default the
running loop's, so tests run in virtual time; test mode (:func:`._policy.time_scale`) runs the scheduler's
durations a thousand times faster.

News from elsewhere comes in two forms: :meth:`Scheduler.notify` hands over a project state (a webhook's
payload) and resolves the waits at once; :meth:`Scheduler.poll_now` only says a project changed (a batch
journal's notification) and makes its next poll due now, through the same rate and concurrency bounds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Literal, TypeVar

import attrs

from .._exceptions import (
    APIStatusError,
    ClientClosedError,
    ConfigurationError,
    RateLimitError,
    WaitTimeoutError,
)
from .._hooks import poll_route
from .._http._retry import RequestKind, RetryPolicy
from ._backlog import Backlog
from ._policy import PollPolicy, poll_delay, time_scale
from ._rate import AdaptiveRate
from ._tickets import Completions, Key, Ticket
from ._timers import Timers

__all__ = ["PollEvent", "Scheduler", "SchedulerStats"]

P = TypeVar("P")
EventKind = Literal["polled", "terminal", "error", "retry"]

logger = logging.getLogger("magic_hour_async.scheduler")


@attrs.frozen(kw_only=True)
class PollEvent(Generic[P]):
    """What just happened to a watched project, for ``on_event`` (a live progress table, say).

    ``what`` is ``"polled"`` (not finished yet), ``"terminal"`` (finished; by a poll or ``notify``),
    ``"retry"`` (a transient error; polling goes on) or ``"error"`` (a permanent error; waiters fail).
    """

    what: EventKind
    kind: str
    id: str
    project: P | None = None
    error: BaseException | None = None


@attrs.frozen(kw_only=True)
class SchedulerStats:
    """A snapshot of the scheduler's counters.

    ``allowed_rate`` is the rate polls may be sent at now, per second: 95% of ``PollPolicy.max_rate`` (the
    rest is slack for delayed arrivals), or less while a real rate limit holds it down; None if unlimited.
    """

    polls_sent: int
    polls_failed: int
    polls_retried: int
    rate_limited: int
    active_waits: int
    watched_projects: int
    in_flight: int
    max_in_flight: int
    allowed_rate: float | None


_MAX_HOLD = 60.0  # a longer Retry-After holds a project back a minute


_RETRY = RetryPolicy()  # only its classification is used: the scheduler times its own retries


def is_transient(exc: BaseException) -> bool:
    """Whether a failed poll is worth retrying: no response, a timeout, 408, 429, 500, 502-504, bad JSON.

    The one retry policy decides (``RequestKind.POLL``); anything else fails the waits at once.
    """
    return _RETRY.transient(RequestKind.POLL, exc)


class _Watch(Generic[P]):
    """One watched project, shared by every ticket on it.

    Thousands may be alive at once, so a watch is kept small (a few hundred bytes, as few objects as the
    cyclic GC must traverse as can be): slots, and the first ticket held in a slot rather than in a set.
    """

    __slots__ = (
        "due",
        "error",
        "failures",
        "interval",
        "key",
        "last",
        "more",
        "ok_at",
        "polled_at",
        "recheck",
        "started",
        "state",
        "ticket",
    )

    def __init__(self, key: Key, now: float, interval: float) -> None:
        self.key = key
        self.ticket: Ticket[P] | None = None  # the first holder; most projects have only one
        self.more: list[Ticket[P]] | None = None  # the others, if any
        self.last: P | None = None
        self.error: BaseException | None = None  # of the last poll, if polls failed since the last success
        self.started = self.polled_at = self.ok_at = now  # ok_at: the last successful poll, or the start
        self.due = now  # when the next poll is planned; a timer entry for another time is stale
        self.interval = interval  # the interval that poll was planned with: the backlog's yardstick
        self.failures = 0
        self.recheck = False  # news arrived while a poll was in flight: poll again as soon as it answers
        self.state: Literal["scheduled", "ready", "in_flight"] = "ready"  # the first poll is immediate

    def hold(self, ticket: Ticket[P]) -> None:
        if self.ticket is None:
            self.ticket = ticket
        elif self.ticket is ticket or (self.more is not None and ticket in self.more):
            return  # held already: a ticket holds a project once however often its id was given
        elif self.more is None:
            self.more = [ticket]
        else:
            self.more.append(ticket)

    def release(self, ticket: Ticket[P]) -> bool:
        """Drop ``ticket`` if it holds this watch; True when no ticket holds it any more."""
        if self.ticket is ticket:
            self.ticket = self.more.pop() if self.more else None
        elif self.more is not None and ticket in self.more:
            self.more.remove(ticket)
        return self.ticket is None

    def holders(self) -> list[Ticket[P]]:
        if self.ticket is None:
            return []
        return [self.ticket, *self.more] if self.more else [self.ticket]


class Scheduler(Generic[P]):
    """Polls projects until they finish, for any number of concurrent waits, with one driver task.

    Args:
        fetch: Performs one GET of ``(kind, id)`` (no retries of its own) and returns the project, or raises
            the SDK's exceptions.
        is_terminal: Whether a project has finished (``complete``, ``error`` or ``canceled``).
        policy: Poll timing and the concurrency bound.
        clock: Seconds on a monotonic clock; the running loop's ``time()`` by default.
        sleep: Sleeps on that clock; :func:`asyncio.sleep` by default.
        random: Returns a float in ``[0, 1)`` for jitter.
        on_event: Called with a :class:`PollEvent` after each poll and resolution; it must not block.
        closed_error: Builds the error that pending and later waits fail with after :meth:`aclose`.

    The scheduler may be created outside a running loop; it then serves one event loop at a time.

    Example:
        ```python
        scheduler = Scheduler(fetch, lambda p: p.status in ("complete", "error", "canceled"))
        project = await scheduler.wait("video", "cuid", timeout=600)
        ```
    """

    def __init__(
        self,
        fetch: Callable[[str, str], Awaitable[P]],
        is_terminal: Callable[[P], bool],
        *,
        policy: PollPolicy | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        random: Callable[[], float] = _random.random,
        on_event: Callable[[PollEvent[P]], object] | None = None,
        closed_error: Callable[[], BaseException] | None = None,
    ) -> None:
        self._fetch = fetch
        self._is_terminal = is_terminal
        self._policy = policy if policy is not None else PollPolicy()
        self._clock = clock
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._random = random
        self._on_event = on_event
        self._closed_error = closed_error or (lambda: ClientClosedError("client closed"))
        self._rate = AdaptiveRate(max_rate=self._policy.max_rate)
        self._safety = 1.0
        self._watches: dict[Key, _Watch[P]] = {}
        # Due polls of watches and deadlines of tickets.
        self._timers: Timers[_Watch[P] | Ticket[P]] = Timers(self._sleep)
        self._ready: Backlog[_Watch[P]] = Backlog()  # due polls waiting for a slot or the rate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._closed = False
        self._tickets = 0
        self._sent = self._failed = self._retried = self._throttled = 0
        self._in_flight = self._max_in_flight = 0

    @property
    def policy(self) -> PollPolicy:
        """The poll policy."""
        return self._policy

    @property
    def safety_factor(self) -> float:
        """Multiplies every poll interval; set it above 1 while webhooks deliver the news, back to 1 after."""
        return self._safety

    @safety_factor.setter
    def safety_factor(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
            raise ConfigurationError(f"safety_factor must be a number >= 1, got {value!r}")
        lowered, self._safety = value < self._safety, float(value)
        if lowered and self._watches:
            # Bring forward polls planned at the slower cadence; raising it takes effect from each next poll.
            for watch in self._watches.values():
                if watch.state == "scheduled":
                    interval = self._delay(watch, watch.polled_at)
                    if watch.polled_at + interval < watch.due:
                        watch.interval = interval
                        self._push_watch(watch, watch.polled_at + interval)

    @property
    def stats(self) -> SchedulerStats:
        """A snapshot of the counters."""
        return SchedulerStats(
            polls_sent=self._sent,
            polls_failed=self._failed,
            polls_retried=self._retried,
            rate_limited=self._throttled,
            active_waits=self._tickets,
            watched_projects=len(self._watches),
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            allowed_rate=self._rate.allowed,
        )

    async def wait(
        self, kind: str, id: str, *, timeout: float | None = None, just_created: bool = False
    ) -> P:
        """Poll one project until it is terminal and return it (also when it ended in ``error``).

        ``just_created``: the caller created the render a moment ago, so a poll now could only say it is
        queued; its first poll comes one interval later instead of at once (unless it is watched already).

        Raises:
            WaitTimeoutError: ``timeout`` seconds passed; ``.project`` is the last state seen, or None, and
                ``.last_error`` (also ``__cause__``) the last poll error, if polls failed since a success.
            APIStatusError: A permanent error (400, 401, 402, 403, 404, 422) answered a poll; or a transient
                one (429, 5xx) answered every poll for ``PollPolicy.give_up_after`` seconds.
            APIConnectionError: Every poll failed to connect (or timed out) for ``give_up_after`` seconds.
            ResponseDecodeError: Every answer was undecodable for ``give_up_after`` seconds.
        """
        key = (kind, id)
        ticket = self._register([key], timeout, just_created=just_created)
        try:
            item = await ticket.next()
            if item is None:
                raise self._timeout_error([key], 1, timeout)
            outcome = item[1]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        finally:
            self._withdraw(ticket)

    async def wait_many(self, kind: str, ids: Iterable[str], *, timeout: float | None = None) -> list[P]:
        """Wait for all of ``ids`` under one deadline; return the terminal projects in input order.

        Duplicate ids are polled once and repeated in the result. On a timeout the
        :class:`WaitTimeoutError`'s ``.project`` is the last state seen of the first unfinished id in input
        order. Whatever ends the wait, interest in the unfinished ids is withdrawn.
        """
        keys = [(kind, id) for id in ids]
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        ticket = self._register(unique, timeout)
        results: dict[Key, P] = {}
        try:
            while len(results) < len(unique):
                item = await ticket.next()
                if item is None:
                    raise self._timeout_error([k for k in unique if k not in results], len(unique), timeout)
                key, outcome = item
                if isinstance(outcome, BaseException):
                    raise outcome
                results[key] = outcome
        finally:
            self._withdraw(ticket)
        return [results[key] for key in keys]

    def as_completed(self, kind: str, ids: Iterable[str], *, timeout: float | None = None) -> Completions[P]:
        """Yield each project of ``ids`` as it turns terminal, under one deadline from the first step on.

        A duplicate id yields its project once per occurrence. Stopping early (``break``, ``aclose()``, an
        exception) withdraws interest in the rest. A timeout raises :class:`WaitTimeoutError` carrying the
        last state seen of the first unfinished id in input order.
        """
        return Completions(
            [(kind, id) for id in ids],
            timeout,
            register=self._register,
            withdraw=self._withdraw,
            timeout_error=self._timeout_error,
        )

    def notify(self, kind: str, id: str, project: P) -> None:
        """Hand over a state learnt elsewhere (a webhook): a terminal one resolves its waiters at once.

        A state that is not terminal is kept as the last one seen. Ids nobody waits for are ignored.
        """
        watch = self._watches.get((kind, id))
        if watch is None:
            logger.debug(
                "notify: %s %s is not watched", kind, id, extra={"route": poll_route(kind), "project_id": id}
            )
            return
        watch.last = project
        if self._is_terminal(project):
            self._resolve(watch, project)
            self._emit("terminal", watch.key, project=project)

    def poll_now(self, kind: str, id: str) -> None:
        """A hint from elsewhere (a journal notification) that a watched project changed: poll it now.

        A poll planned for later is made due at once (still under the rate and concurrency bounds); a poll
        in flight may have been answered before the change, so another follows as soon as it returns. Ids
        nobody waits for are ignored.
        """
        watch = self._watches.get((kind, id))
        if watch is None:
            return
        if watch.state == "in_flight":
            watch.recheck = True
        elif watch.state == "scheduled":
            watch.state = "ready"  # its heap entry goes stale
            watch.due = self._now()
            self._ready.append(watch)
            self._timers.wake_at(-math.inf)

    async def aclose(self) -> None:
        """Stop polling, fail pending waits with the closed error, and wait for every task to end."""
        if self._closed:
            return
        self._closed = True
        for ticket in {t for watch in self._watches.values() for t in watch.holders()}:
            ticket.fail(self._closed_error())
        self._watches.clear()
        self._timers.clear()
        self._ready.clear()
        tasks = [t for t in (self._driver, self._timers.sleeper, *self._polls) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._driver = None

    # Tickets: registered and withdrawn by the wait methods and by Completions.

    def _register(self, keys: list[Key], timeout: float | None, *, just_created: bool = False) -> Ticket[P]:
        if self._closed:
            raise self._closed_error()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._driver is not None:
                raise RuntimeError("this scheduler is in use by another event loop")
            self._loop = loop
        now = self._now()
        ticket: Ticket[P] = Ticket(keys)
        watches, ready = self._watches, self._ready
        first = self._policy.initial * self._safety * time_scale()
        for key in keys:
            watch = watches.get(key)
            if watch is None:
                watch = watches[key] = _Watch(key, now, first)
                if just_created:
                    self._push_watch(watch, now + first)
                else:  # the first poll is immediate: straight to the backlog of due polls, not the heap
                    ready.append(watch)
            watch.hold(ticket)
        self._tickets += 1
        if timeout is not None:
            self._timers.push(now + max(timeout, 0.0), ticket)
        if ready:
            self._timers.wake_at(-math.inf)
        if self._driver is None:
            self._driver = loop.create_task(self._drive(), name="magic_hour_async.scheduler")
            self._driver.add_done_callback(self._driver_done)
        return ticket

    def _withdraw(self, ticket: Ticket[P], wake: bool = True) -> None:
        if not ticket.active:
            return
        ticket.active = False
        self._tickets -= 1
        for key in ticket.keys:
            watch = self._watches.get(key)
            if watch is not None and watch.release(ticket):
                del self._watches[key]  # its heap entry goes stale
        if wake and not self._watches:
            self._timers.wake_at(-math.inf)  # so an idle driver can stop

    def _timeout_error(self, unfinished: list[Key], total: int, timeout: float | None) -> WaitTimeoutError:
        kind, id = unfinished[0]
        watch = self._watches.get(unfinished[0])
        others = f" ({len(unfinished)} of {total} unfinished)" if total > 1 else ""
        error = watch.error if watch is not None else None
        # The error's class only: its text is the server's, and it is one ``__cause__`` away anyway.
        hint = f"; its last poll failed with {type(error).__name__}" if error is not None else ""
        return WaitTimeoutError(
            f"{kind} project {id!r} did not finish within {timeout} s{others}{hint}",
            project=watch.last if watch is not None else None,
            last_error=error,
        )

    # The driver and the polls.

    async def _drive(self) -> None:
        while True:
            now = self._now()
            self._advance(now)
            retry_at = self._dispatch(now)
            if not self._watches:
                self._timers.clear()
                self._ready.clear()
                self._driver = None
                return
            await self._timers.idle(min(retry_at, self._timers.next_at), now)

    def _advance(self, now: float) -> None:
        """Fire due deadlines: expire tickets, queue polls."""
        for when, target in self._timers.pop_due(now):
            if isinstance(target, Ticket):
                if target.active:
                    target.expire()
            elif self._live(when, target):
                target.state = "ready"
                self._ready.append(target)  # the heap yields in order of ``due``, as the backlog wants
        # Withdrawn projects, rescheduled polls and finished waits leave stale entries behind.
        self._timers.compact(self._live, len(self._watches) + self._tickets)

    def _live(self, when: float, target: _Watch[P] | Ticket[P]) -> bool:
        if isinstance(target, Ticket):
            return target.active
        # A rescheduled poll changed ``due``; an entry for another time is stale.
        return target.state == "scheduled" and target.due == when and self._watches.get(target.key) is target

    def _dispatch(self, now: float) -> float:
        """Start due polls while a slot and the rate allow; return when the rate allows the next, or inf."""
        ready = self._ready
        self._rate.set_max_rate(now, self._policy.max_rate / time_scale())
        while ready and self._in_flight < self._policy.max_concurrency:
            watch = ready.first(now, self._due_now)
            if watch is None:
                break
            wait = self._rate.acquire(now)
            if wait > 0:
                return now + wait
            ready.remove(watch)
            watch.state = "in_flight"
            self._sent += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            assert self._loop is not None
            task = self._loop.create_task(self._poll(watch, now))
            self._polls.add(task)
            task.add_done_callback(self._polls.discard)
        return math.inf

    def _due_now(self, watch: _Watch[P]) -> bool:
        return watch.state == "ready" and self._watches.get(watch.key) is watch

    async def _poll(self, watch: _Watch[P], sent_at: float) -> None:
        try:
            project = await self._fetch(*watch.key)
            terminal = self._is_terminal(project)
        except Exception as exc:
            self._failure(watch, exc, sent_at)
        else:
            self._success(watch, project, terminal, sent_at)
        finally:
            self._in_flight -= 1
            if self._ready:
                self._timers.wake_at(-math.inf)  # a slot is free

    def _success(self, watch: _Watch[P], project: P, terminal: bool, sent_at: float) -> None:
        now = self._now()
        self._rate.on_success(now, sent_at=sent_at)
        if self._watches.get(watch.key) is not watch:
            return  # nobody waits for it any more
        if watch.last is None or watch.last != project:
            # A poll with no news keeps the state already held, and the new one dies young. Replacing it on
            # every poll would promote a steady stream of objects to the oldest GC generation, and with
            # thousands of watches that triggers full collections, tens of milliseconds each.
            watch.last = project
        watch.failures = 0
        watch.error = None
        watch.ok_at = now
        if terminal:
            self._resolve(watch, project)
            self._emit("terminal", watch.key, project=project)
        else:
            self._reschedule(watch, now)
            self._emit("polled", watch.key, project=project)

    def _failure(self, watch: _Watch[P], exc: Exception, sent_at: float) -> None:
        now = self._now()
        scale = time_scale()
        self._failed += 1
        hold = 0.0
        if isinstance(exc, APIStatusError) and exc.status_code == 429:
            self._throttled += 1
            retry_after = exc.retry_after if isinstance(exc, RateLimitError) else None
            if retry_after is not None and retry_after > 0:
                hold = min(retry_after, _MAX_HOLD) * scale
            self._rate.on_throttle(now, sent_at=sent_at, retry_after=hold or None)
        if self._watches.get(watch.key) is not watch:
            return
        fields = {"method": "GET", "route": poll_route(watch.key[0]), "project_id": watch.key[1]}
        logger.debug("poll of %s %s failed: %r", *watch.key, exc, extra=fields)
        if is_transient(exc) and now - watch.ok_at < self._policy.give_up_after * scale:
            self._retried += 1
            watch.failures += 1
            watch.error = exc
            self._reschedule(watch, now, at_least=hold)
            self._emit("retry", watch.key, error=exc)
        else:
            # A permanent error, or a transient one that has lasted ``give_up_after``: fail loudly.
            self._resolve(watch, exc)
            self._emit("error", watch.key, error=exc)

    def _resolve(self, watch: _Watch[P], outcome: P | BaseException) -> None:
        del self._watches[watch.key]
        for ticket in watch.holders():
            ticket.push(watch.key, outcome)
        if not self._watches:
            self._timers.wake_at(-math.inf)  # so an idle driver can stop

    def _reschedule(self, watch: _Watch[P], now: float, *, at_least: float = 0.0) -> None:
        watch.polled_at = now
        watch.interval = max(self._delay(watch, now), at_least)
        recheck, watch.recheck = watch.recheck and not at_least, False
        self._push_watch(watch, now if recheck else now + watch.interval)

    def _delay(self, watch: _Watch[P], at: float) -> float:
        return poll_delay(
            self._policy,
            age=at - watch.started,
            rand=self._random(),
            failures=watch.failures,
            scale=self._safety,
        )

    def _push_watch(self, watch: _Watch[P], when: float) -> None:
        watch.state = "scheduled"
        watch.due = when  # any entry of this watch for another time is stale now
        self._timers.push(when, watch)

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        assert self._loop is not None
        return self._loop.time()

    def _emit(
        self, what: EventKind, key: Key, *, project: P | None = None, error: BaseException | None = None
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s: %s", key[0], key[1], what, extra={"route": poll_route(key[0]), "project_id": key[1]}
            )
        if self._on_event is not None:
            try:
                self._on_event(PollEvent(what=what, kind=key[0], id=key[1], project=project, error=error))
            except Exception:
                logger.debug("on_event callback failed", exc_info=True)

    def _driver_done(self, task: asyncio.Task[None]) -> None:
        if self._driver is task:
            self._driver = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug in the driver must not leave waiters hanging: fail them with it.
            for ticket in {t for watch in self._watches.values() for t in watch.holders()}:
                ticket.fail(exc)
            self._watches.clear()
