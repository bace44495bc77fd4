"""Fake ``Async*`` resources: a generic base, an async generator, overloads, a sub-resource, skipped members.

Never imported by the package; ``tests/test_gen_sync.py`` generates twins from this file and runs them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, overload

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")

#: What the async generators saw, in order: "closed" when one was closed before it finished.
EVENTS: list[str] = []


class AsyncBox(Generic[T]):
    """Holds one value."""

    def __init__(self, value: T) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"<AsyncBox {self._value!r}>"

    async def get(self) -> T:
        """Return the value.

        Example:
            ``value = await box.get()``
        """
        await asyncio.sleep(0)
        return self._value


class AsyncDoubler:
    """A sub-resource."""

    async def double(self, x: int) -> int:
        return 2 * x


class AsyncNumbers(AsyncBox[int]):
    """Counts with ``async for n in AsyncNumbers(0).count(3)``."""

    label: str = "numbers"

    def __init__(self, value: int = 0) -> None:
        super().__init__(value)
        self.doubler = AsyncDoubler()
        self.name = "numbers"

    async def count(
        self, n: int, /, *, start: int = 0, mode: Literal["up", "down"] = "up"
    ) -> AsyncIterator[int]:
        """Yield ``n`` numbers from ``start``."""
        try:
            for i in range(n):
                await asyncio.sleep(0)
                yield start + i if mode == "up" else start - i
        except GeneratorExit:
            EVENTS.append("closed")
            raise

    async def pairs(self, *names: str, **extra: int) -> AsyncGenerator[tuple[str, int], None]:
        for name in names:
            yield name, extra.get(name, 0)

    async def stream(self) -> AsyncIterator[int]:
        """A coroutine that returns an async iterator (not a generator itself)."""
        return self.count(2)

    @overload
    async def pick(self, key: int) -> int: ...

    @overload
    async def pick(self, key: str) -> str: ...

    async def pick(self, key: int | str) -> int | str:
        return key

    def later(self, x: int) -> Awaitable[int]:
        return self.pick(x)

    def scale(self, factor: float = 2.0) -> float:
        """Plain method: runs in the caller's thread."""
        return self._value * factor

    @property
    def base(self) -> int:
        return self._value

    async def stamp(self, path: Path | None = None, *, when: dt.date = dt.date(2024, 1, 2)) -> str:
        """Annotations from a ``TYPE_CHECKING`` import and an aliased module."""
        return f"{path}@{when.isoformat()}"

    async def fail(self, message: str = 'it\'s "broken"') -> None:
        raise ValueError(message)

    async def consume(self, source: AsyncIterator[int]) -> int:
        return sum([n async for n in source])

    @staticmethod
    def helper() -> None:
        return None

    async def __aenter__(self) -> AsyncNumbers:
        return self

    shut = fail
