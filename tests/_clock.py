"""Virtual time for asyncio tests: an event loop whose clock jumps to the next timer whenever it is idle.

Code under test sleeps, times out and reads ``loop.time()`` as usual, but a test of an hour of polling takes
milliseconds and every timestamp is exact. The loop does no real waiting: when no callback is ready it
advances its clock by exactly the time to the next timer. Real I/O is not supported (a socket would never
be waited for), and a test that waits for something nothing will ever do fails with ``Deadlock`` instead of
hanging.

pytest-asyncio creates its own loop, so tests in virtual time are plain functions decorated with
:func:`virtual_time`, which runs the coroutine on a fresh :class:`VirtualTimeLoop` and fails the test if it
leaves a task behind.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
Params = ParamSpec("Params")


class Deadlock(AssertionError):
    """Nothing is scheduled and nothing is ready: the test waits for an event that cannot come."""


class _JumpSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise Deadlock("virtual time: no timer is scheduled and no callback is ready")
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a virtual clock that starts at 0 and only moves when the loop is idle."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_JumpSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += seconds


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh virtual-time loop; fail if it leaves tasks or async generators running."""
    loop = VirtualTimeLoop()
    try:
        result = loop.run_until_complete(main)
        # Let cancelled tasks (a driver's sleeper, say) finish their last step before counting.
        loop.run_until_complete(asyncio.sleep(0))
        leftover = _cancel_all(loop)
        if leftover:
            raise AssertionError(f"the test left tasks behind: {leftover}")
        return result
    finally:
        # After a failure too: a coroutine collected once its loop is closed reports an unraisable error.
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    return leftover


def virtual_time(test: Callable[Params, Coroutine[Any, Any, None]]) -> Callable[Params, None]:
    """Decorate an ``async def`` test to run it in virtual time (fixtures still work)."""

    @functools.wraps(test)
    def run_test(*args: Params.args, **kwargs: Params.kwargs) -> None:
        run(test(*args, **kwargs))

    return run_test
