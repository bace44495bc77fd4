"""Client configuration and lifecycle."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable
from urllib.parse import unquote

import aiohttp
import pytest

import magic_hour_async as mh
from tests._scripted import ScriptedServer

TOKEN = "mhk_live_do_not_print_me"


def test_missing_token_raises_configuration_error_naming_the_variable() -> None:
    with pytest.raises(mh.ConfigurationError, match="MAGIC_HOUR_API_KEY"):
        mh.AsyncClient()


def test_blank_token_is_missing_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", "  ")
    with pytest.raises(mh.ConfigurationError):
        mh.AsyncClient()


def test_token_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", TOKEN)
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", "http://127.0.0.1:9/")
    client = mh.AsyncClient()
    assert client.base_url == "http://127.0.0.1:9"
    assert client._transport._headers["Authorization"] == f"Bearer {TOKEN}"


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", "env-token")
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", "http://env.test")
    client = mh.AsyncClient(token=TOKEN, base_url="https://explicit.test")
    assert client.base_url == "https://explicit.test"
    assert client._transport._headers["Authorization"] == f"Bearer {TOKEN}"


def test_default_base_url_is_production() -> None:
    assert mh.AsyncClient(token=TOKEN).base_url == "https://api.magichour.ai"
    assert mh.Environment.PRODUCTION.value == "https://api.magichour.ai"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x"},
        {"timeout": -1},
        {"timeout": "10"},
        {"max_retries": -1},
        {"max_retries": True},
    ],
)
def test_bad_options_raise_configuration_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(mh.ConfigurationError):
        mh.AsyncClient(token=TOKEN, **kwargs)  # type: ignore[arg-type]


def test_timeout_number_and_object() -> None:
    assert mh.AsyncClient(token=TOKEN, timeout=5)._transport.timeout == mh.Timeout(connect=5, read=5, total=5)
    t = mh.AsyncClient(token=TOKEN, timeout=mh.Timeout(connect=1, read=2))._transport.timeout
    assert (t.connect, t.read, t.total) == (1, 2, 60.0)  # every API call has a finite total by default
    assert mh.AsyncClient(token=TOKEN)._transport.timeout == mh.Timeout(connect=10, read=60, total=60)


@pytest.mark.parametrize("field", ["connect", "read", "total"])
@pytest.mark.parametrize("value", [0, -1, True, "5"])
def test_nonsense_timeouts_are_refused(field: str, value: object) -> None:
    with pytest.raises(mh.ConfigurationError, match=f"Timeout.{field}"):
        mh.Timeout(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    ["tok\r\nX-Injected: 1", "tok en", "tok\t", "tok\n", "\x00tok", "t\u00f6ken", "tok\x7f"],
)
def test_a_token_with_whitespace_or_control_characters_is_refused_at_construction(token: str) -> None:
    with pytest.raises(mh.ConfigurationError, match="whitespace, a control character") as info:
        mh.AsyncClient(token=token)
    assert token not in str(info.value)


def test_a_bad_token_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", "mhk_live_abc\n")
    with pytest.raises(mh.ConfigurationError, match="MAGIC_HOUR_API_KEY environment variable contains"):
        mh.AsyncClient()


@pytest.mark.parametrize("value", [1023, 0, True, 2.5])
def test_max_response_bytes_must_be_a_sane_integer(value: object) -> None:
    with pytest.raises(mh.ConfigurationError, match="max_response_bytes"):
        mh.AsyncClient(token=TOKEN, max_response_bytes=value)  # type: ignore[arg-type]


def test_token_is_absent_from_reprs() -> None:
    client = mh.AsyncClient(token=TOKEN)
    for text in (
        repr(client),
        str(client),
        repr(client.v1),
        repr(client.v1.video_projects),
        repr(client._transport),
    ):
        assert TOKEN not in text


@pytest.mark.asyncio
async def test_path_parameters_are_url_encoded(scripted: ScriptedServer) -> None:
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        await client.v1.video_projects.get(id="a/b")
        await client.v1.image_projects.get(id="../../v1/audio-projects/x?y=1#z")
    assert scripted.requests[0].raw_path == "/v1/video-projects/a%2Fb"
    tricky = scripted.requests[1].raw_path
    assert tricky.startswith("/v1/image-projects/..%2F..%2Fv1%2Faudio-projects%2Fx%3F")
    assert tricky.count("/") == 3  # one path segment: the id cannot climb to another route
    assert unquote(tricky.rsplit("/", 1)[1]) == "../../v1/audio-projects/x?y=1#z"


@pytest.mark.asyncio
async def test_empty_id_is_rejected_before_any_request(scripted: ScriptedServer) -> None:
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        with pytest.raises(mh.ConfigurationError):
            await client.v1.video_projects.get(id="")
    assert scripted.requests == []


@pytest.mark.asyncio
async def test_close_twice_is_harmless_and_a_closed_client_says_so(scripted: ScriptedServer) -> None:
    client = mh.AsyncClient(token=TOKEN, base_url=scripted.url)
    await client.v1.audio_projects.get(id="x")
    await client.close()
    await client.close()
    assert client.closed
    with pytest.raises(mh.ClientClosedError, match="closed"):
        await client.v1.audio_projects.get(id="x")


@pytest.mark.asyncio
async def test_session_is_created_lazily_and_reused(scripted: ScriptedServer) -> None:
    client = mh.AsyncClient(token=TOKEN, base_url=scripted.url)
    assert client._transport._session() is None
    async with client:
        await client.v1.video_projects.get(id="a")
        session = client._transport._session()
        await client.v1.video_projects.delete(id="a")
        assert client._transport._session() is session
    assert session is not None and session.closed


def resource_warnings_when_collected(make: Callable[[], object]) -> list[str]:
    """The ResourceWarnings raised while an object made by ``make()`` is dropped and garbage-collected."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dropped = make()
        del dropped
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.asyncio
async def test_unused_client_needs_no_close() -> None:
    # Constructing without using it creates no session, so nothing can warn about an unclosed one.
    assert resource_warnings_when_collected(lambda: mh.AsyncClient(token=TOKEN)) == []
    # ... while the same check does see an unclosed session.
    unclosed = resource_warnings_when_collected(aiohttp.ClientSession)
    assert any("Unclosed client session" in message for message in unclosed)


@pytest.mark.asyncio
async def test_not_found_over_http(scripted: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    from tests._scripted import Scripted

    scripted.add("/v1/video-projects/gone", Scripted(status=404, body={"message": "Not Found"}))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        with (
            caplog.at_level(logging.DEBUG, logger="magic_hour_async"),
            pytest.raises(mh.NotFoundError) as info,
        ):
            await client.v1.video_projects.get(id="gone")
    assert info.value.message == "Not Found"
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text
