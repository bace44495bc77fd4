"""Who waits for what: the tickets behind the scheduler's waits, and the ``as_completed`` iterator.

A ticket is one call's interest in some projects under one deadline. The scheduler pushes each project's
outcome (the terminal project, or the exception that failed it) into every ticket that holds the project,
and the caller takes the outcomes in completion order. Withdrawing a ticket is synchronous, so dropping an
``as_completed`` iterator (a ``break``) withdraws at once rather than when the loop finalises a generator.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

__all__ = ["Completions", "Key", "Ticket"]

P = TypeVar("P")
Key = tuple[str, str]  # (kind, id)


class Ticket(Generic[P]):
    """One caller's interest in some projects: their outcomes queue here until the caller takes them."""

    __slots__ = ("active", "error", "expired", "keys", "outcomes", "signal")

    def __init__(self, keys: list[Key]) -> None:
        # A tuple of string pairs, which the cyclic GC stops tracking; a list would stay tracked.
        self.keys = tuple(keys)
        self.outcomes: deque[tuple[Key, P | BaseException]] | None = None  # created by the first push
        self.active = True
        self.expired = False
        self.error: BaseException | None = None
        self.signal: asyncio.Future[None] | None = None

    def push(self, key: Key, outcome: P | BaseException) -> None:
        if self.outcomes is None:
            self.outcomes = deque()
        self.outcomes.append((key, outcome))
        self._poke()

    def expire(self) -> None:
        self.expired = True
        self._poke()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._poke()

    def _poke(self) -> None:
        if self.signal is not None and not self.signal.done():
            self.signal.set_result(None)

    async def next(self) -> tuple[Key, P | BaseException] | None:
        """The next outcome, in completion order; None once the deadline has passed."""
        while not self.outcomes:
            if self.error is not None:
                raise self.error
            if self.expired:
                return None
            self.signal = asyncio.get_running_loop().create_future()
            try:
                await self.signal
            finally:
                self.signal = None
        return self.outcomes.popleft()


class Completions(AsyncIterator[P]):
    """The iterator behind ``Scheduler.as_completed``; a class so that dropping it withdraws at once."""

    def __init__(
        self,
        keys: list[Key],
        timeout: float | None,
        *,
        register: Callable[[list[Key], float | None], Ticket[P]],
        withdraw: Callable[[Ticket[P], bool], None],
        timeout_error: Callable[[list[Key], int, float | None], BaseException],
    ) -> None:
        self._register = register
        self._withdraw = withdraw
        self._timeout_error = timeout_error
        self._keys = keys
        self._timeout = timeout
        self._remaining = Counter(keys)
        self._out: deque[P] = deque()
        self._ticket: Ticket[P] | None = None
        self._done = not keys

    def __aiter__(self) -> Completions[P]:
        return self

    async def __anext__(self) -> P:
        if self._out:
            return self._out.popleft()
        if self._done or not self._remaining:
            await self.aclose()
            raise StopAsyncIteration
        if self._ticket is None:
            self._ticket = self._register(list(self._remaining), self._timeout)
        try:
            item = await self._ticket.next()
            if item is None:
                unique = list(dict.fromkeys(self._keys))
                unfinished = [k for k in unique if k in self._remaining]
                raise self._timeout_error(unfinished, len(unique), self._timeout)
            key, outcome = item
            if isinstance(outcome, BaseException):
                raise outcome
        except BaseException:
            await self.aclose()
            raise
        self._out.extend([outcome] * self._remaining.pop(key))
        if not self._remaining:
            await self.aclose()
        return self._out.popleft()

    async def aclose(self) -> None:
        """Stop early: withdraw interest in the projects not yielded yet."""
        self._done = True
        if self._ticket is not None:
            self._withdraw(self._ticket, True)

    def __del__(self) -> None:
        # `break` out of `async for` drops the iterator without closing it; withdraw now, not at loop close.
        if self._ticket is not None:
            self._withdraw(self._ticket, False)
