"""The test switch behind :func:`magic_hour_async.testing.set_testing` (the model: stamina's ``set_testing``).

It lives apart from :mod:`magic_hour_async.testing` so that the retry policy and the scheduler can read it
without importing the emulator (and ``aiohttp.web``). In test mode nothing that is sent changes: only how long
the SDK waits between attempts and between polls.
"""

from __future__ import annotations

import types

_testing = False


def is_testing() -> bool:
    """Whether test mode is on (retry backoff is zero, poll intervals are compressed)."""
    return _testing


class _Restore:
    """Returned by :func:`set_testing`; as a context manager it restores the previous mode on exit."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        global _testing
        _testing = self._previous


def set_testing(testing: bool = True) -> _Restore:
    """Turn test mode on or off; ``with set_testing(True): ...`` restores the previous mode on exit."""
    global _testing
    previous, _testing = _testing, bool(testing)
    return _Restore(previous)
