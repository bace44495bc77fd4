"""The pytest plugin (entry point ``pytest11``): emulator fixtures for tests of Magic Hour integrations.

Fixtures run the emulator in a background thread (``with Emulator()``), so the same fixture serves synchronous
tests, the blocking client and async tests on any event loop or loop scope. The emulator is only imported when
a fixture is used, to keep plugin loading free for test suites that never touch it.

- ``magic_hour_emulator``: a running :class:`~magic_hour_async.testing.Emulator` for one test, ``speed=0.01``
  by default. Options come from ``@pytest.mark.magic_hour_emulator(seed=..., speed=..., clock=..., ...)``.
- ``magic_hour_emulator_factory``: ``factory(**options) -> Emulator`` for several emulators or custom options;
  all are stopped at teardown.
- ``magic_hour_env``: the ``magic_hour_emulator`` with ``MAGIC_HOUR_BASE_URL`` and ``MAGIC_HOUR_API_KEY`` set,
  so code that builds its own client from the environment talks to the emulator.

All three turn on :func:`~magic_hour_async.testing.set_testing` for the test (restored at teardown): a fault
that makes the client retry costs no backoff sleep, and waits poll on a compressed schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .._test_mode import set_testing

if TYPE_CHECKING:
    from ._emulator import Emulator

FIXTURE_DEFAULTS: dict[str, Any] = {"speed": 0.01}


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that configures ``magic_hour_emulator``."""
    config.addinivalue_line(
        "markers",
        "magic_hour_emulator(**options): keyword arguments for the magic_hour_emulator fixture's Emulator",
    )


@pytest.fixture
def magic_hour_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with custom options: ``emu = magic_hour_emulator_factory(seed=1, speed=0.001)``."""
    from ._emulator import Emulator  # deferred: loading the plugin stays cheap

    started: list[Emulator] = []

    def factory(**options: Any) -> Emulator:
        emulator = Emulator(**{**FIXTURE_DEFAULTS, **options})
        emulator.__enter__()
        started.append(emulator)
        return emulator

    with set_testing(True):
        yield factory
        for emulator in reversed(started):
            emulator.__exit__(None, None, None)


@pytest.fixture
def magic_hour_emulator(
    request: pytest.FixtureRequest, magic_hour_emulator_factory: Callable[..., Emulator]
) -> Emulator:
    """A running emulator for this test; configure it with ``@pytest.mark.magic_hour_emulator(...)``."""
    marker = request.node.get_closest_marker("magic_hour_emulator")
    return magic_hour_emulator_factory(**(marker.kwargs if marker is not None else {}))


@pytest.fixture
def magic_hour_env(magic_hour_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The test's emulator, with ``MAGIC_HOUR_BASE_URL``/``MAGIC_HOUR_API_KEY`` pointing at it."""
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", magic_hour_emulator.url)
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", magic_hour_emulator.token)
    return magic_hour_emulator
