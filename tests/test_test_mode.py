"""The test switch: ``set_testing`` zeroes retry waits and compresses polls; what is sent stays the same."""

from __future__ import annotations

import pytest

from magic_hour_async import AsyncClient, PollPolicy, ServerError, Timeout
from magic_hour_async._http._retry import RequestKind, RetryPolicy
from magic_hour_async._http._transport import Transport
from magic_hour_async._polling._policy import TEST_MODE_SPEEDUP, poll_delay
from magic_hour_async._test_mode import is_testing
from magic_hour_async.testing import Emulator, set_testing

PROJECT_ROUTE = "GET /v1/video-projects/{id}"


class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def test_set_testing_switches_test_mode_on_and_off() -> None:
    assert not is_testing()  # a test that uses no emulator fixture runs with real waits
    try:
        set_testing(True)
        assert is_testing()
        set_testing(False)
        assert not is_testing()
    finally:
        set_testing(False)


def test_set_testing_as_a_context_manager_restores_the_previous_mode() -> None:
    with set_testing(True):
        assert is_testing()
        with set_testing(False):
            assert not is_testing()
        assert is_testing()
    assert not is_testing()
    with pytest.raises(RuntimeError, match="boom"), set_testing(True):
        raise RuntimeError("boom")
    assert not is_testing()


def test_test_mode_zeroes_backoff_and_compresses_the_poll_schedule() -> None:
    retry, policy = RetryPolicy(max_retries=4), PollPolicy()
    error = ServerError("HTTP 503", status_code=503)

    def delays() -> list[float | None]:
        return [retry.next_delay(RequestKind.READ, error, attempt=a, rand=0.9) for a in range(4)]

    real = delays()
    polls = [poll_delay(policy, age=age, rand=0.5, failures=2) for age in (0.0, 10.0, 100.0, 1000.0)]
    with set_testing(True):
        assert delays() == [0.0] * 4
        compressed = [poll_delay(policy, age=age, rand=0.5, failures=2) for age in (0.0, 10.0, 100.0, 1000.0)]
    assert all(delay is not None and delay > 0 for delay in real)
    assert compressed == pytest.approx([delay / TEST_MODE_SPEEDUP for delay in polls])
    assert delays() == real  # off again


def test_the_emulator_fixtures_turn_test_mode_on(magic_hour_emulator: Emulator) -> None:
    assert is_testing()


def _sent(emu: Emulator) -> list[tuple[str, str, str, tuple[tuple[str, str], ...]]]:
    return [(r.method, r.path, r.query, tuple(sorted(r.headers.items()))) for r in emu.counters.requests()]


async def _ride_out_faults(emu: Emulator, pid: str) -> list[float]:
    """A GET through two 503s and a paid POST through a 429 with Retry-After; the waits it asked for."""
    emu.counters.reset()
    emu.faults.add(route=PROJECT_ROUTE, status=503, times=2)
    emu.faults.add(route="POST /v1/ai-image-generator", status=429, retry_after=3, times=1)
    sleep = SleepRecorder()
    transport = Transport(
        base_url=emu.url,
        token=emu.token,
        timeout=Timeout(),
        retry=RetryPolicy(max_retries=2),
        sleep=sleep,
        rand=lambda: 0.5,
    )
    try:
        assert (await transport.request("GET", f"/v1/video-projects/{pid}"))["id"] == pid
        body = {"image_count": 1, "style": {"prompt": "a fox"}}
        await transport.request("POST", "/v1/ai-image-generator", json_body=body, paid=True)
    finally:
        await transport.aclose()
    return sleep.delays


@pytest.mark.asyncio
async def test_test_mode_sends_the_same_requests_and_only_skips_the_waits() -> None:
    async with Emulator(seed=3) as emu:
        pid = emu.create_project("video", duration=60)
        waits = await _ride_out_faults(emu, pid)
        sent = _sent(emu)
        with set_testing(True):
            test_waits = await _ride_out_faults(emu, pid)
        test_sent = _sent(emu)
    assert waits == [0.25, 0.5, 3.0]  # backoff with rand 0.5, then the server's Retry-After
    assert test_waits == [0.0, 0.0, 0.0]
    assert len(sent) == 5
    assert test_sent == sent  # same methods, paths, queries and headers, in the same order


@pytest.mark.asyncio
async def test_a_wait_in_test_mode_polls_with_the_same_request_as_get() -> None:
    async with Emulator(seed=4) as emu, AsyncClient(token=emu.token, base_url=emu.url) as client:
        pid = emu.create_project("video", duration=0.05)
        await client.v1.video_projects.get(id=pid)
        (get,) = _sent(emu)
        emu.counters.reset()
        emu.faults.add(route=PROJECT_ROUTE, status=503, times=2)
        with set_testing(True):
            project = await client.v1.video_projects.wait(id=pid, timeout=30)
        polls = _sent(emu)
    assert project.status == "complete"
    assert len(polls) >= 3  # two 503s ridden out, then at least the poll that saw it complete
    assert set(polls) == {get}
