"""Behaviours that make code written for the official ``magic_hour`` SDK run here unchanged.

``request_options`` on every method, deprecated parameters (warned, still sent), ``additional_properties``,
``account.list``, ``face_detection.generate``, ``upload_urls.create`` returning what the server sent, and a
blocking resource that keeps its client alive. Loopback servers only.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import magic_hour_async as mh
from magic_hour_async.testing import Emulator
from tests._scripted import Scripted, ScriptedServer

TOKEN = "mhk_test_dropin"


def _portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("magic-hour-async-portal")]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(seed=2, speed=0.001) as emulator:
        yield emulator


# -- request_options --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_request_options_add_headers_and_query_params(scripted: ScriptedServer) -> None:
    scripted.add(
        "/v1/video-projects/v1?trace=on&tag=a&tag=b", Scripted(body={"id": "v1", "status": "queued"})
    )
    options: Any = {
        "additional_headers": {"X-Trace": "abc"},
        "additional_params": {"trace": "on", "tag": ["a", "b"], "skip": None},
    }
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        project = await client.v1.video_projects.get(id="v1", request_options=options)
    sent = scripted.requests[0]
    assert project.id == "v1"
    assert sent.raw_path == "/v1/video-projects/v1?trace=on&tag=a&tag=b"
    assert sent.headers["X-Trace"] == "abc" and sent.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.asyncio
async def test_request_options_timeout_bounds_one_call(scripted: ScriptedServer) -> None:
    scripted.add("/v1/account", Scripted(body={}, delay=2.0))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url, max_retries=0) as client:
        with pytest.raises(mh.APITimeoutError):
            await client.v1.account.get(request_options={"timeout": 0.05})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeuot": 5}, "unknown keys"),
        ({"timeout": 0}, "positive number"),
        ({"additional_headers": {"Authorization": "Bearer other"}}, "cannot replace"),
        ({"additional_headers": {"X-A": 1}}, "strings"),
    ],
)
async def test_malformed_request_options_fail_before_sending(
    scripted: ScriptedServer, options: Any, match: str
) -> None:
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        with pytest.raises(mh.ConfigurationError, match=match):
            await client.v1.ai_image_generator.create(
                image_count=1, style={"prompt": "x"}, request_options=options
            )
    assert scripted.requests == []


# -- deprecated parameters, additional_properties, account.list ---------------------------------------------


@pytest.mark.asyncio
async def test_deprecated_parameters_warn_with_the_replacement_and_are_still_sent(
    scripted: ScriptedServer,
) -> None:
    scripted.add("/v1/ai-image-generator", Scripted(body={"id": "i1", "credits_charged": 5}))
    scripted.add("/v1/face-swap", Scripted(body={"id": "v1", "credits_charged": 5}))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        with pytest.warns(
            DeprecationWarning, match="'orientation' is deprecated: use 'aspect_ratio' instead"
        ):
            await client.v1.ai_image_generator.create(
                image_count=1, style={"prompt": "x"}, orientation="square"
            )
        with pytest.warns(DeprecationWarning, match="'width' is deprecated: the API ignores it"):
            await client.v1.face_swap.create(
                start_seconds=0, end_seconds=1, assets={"video_source": "file"}, width=640
            )
    assert json.loads(scripted.requests[0].body)["orientation"] == "square"
    assert json.loads(scripted.requests[1].body)["width"] == 640


@pytest.mark.asyncio
async def test_additional_properties_join_the_body_without_replacing_fields(scripted: ScriptedServer) -> None:
    scripted.add("/v1/ai-music-generator", Scripted(body={"id": "a1", "credits_charged": 30}))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        created = await client.v1.ai_music_generator.create(
            duration=30, style={"prompt": "lofi"}, additional_properties={"seed": 7, "duration": 999}
        )
    assert created.id == "a1"
    assert json.loads(scripted.requests[0].body) == {"duration": 30, "style": {"prompt": "lofi"}, "seed": 7}


@pytest.mark.asyncio
async def test_account_list_is_the_official_name_for_get(emu: Emulator) -> None:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        assert await client.v1.account.list() == await client.v1.account.get()


# -- upload_urls.create returns what the server sent ---------------------------------------------------------


@pytest.mark.asyncio
async def test_upload_urls_create_returns_every_url_a_mock_sends(scripted: ScriptedServer) -> None:
    example = {
        "items": [
            {"upload_url": "https://storage.example/a?sig=1", "expires_at": "2024-07-25T16:56:21.932Z",
             "file_path": "api-assets/id/video.mp4"},
            {"upload_url": "https://storage.example/b?sig=2", "expires_at": "2024-07-25T16:56:21.932Z",
             "file_path": "api-assets/id/audio.mp3"},
        ]
    }  # fmt: skip
    scripted.add("/v1/files/upload-urls", Scripted(body=example))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        answer = await client.v1.files.upload_urls.create(items=[{"type_": "video", "extension": "mp4"}])
    assert [item.file_path for item in answer.items] == ["api-assets/id/video.mp4", "api-assets/id/audio.mp3"]
    assert json.loads(scripted.requests[0].body) == {"items": [{"type": "video", "extension": "mp4"}]}


# -- face_detection.generate ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_face_detection_generate_waits_and_saves_the_faces(emu: Emulator, tmp_path: Path) -> None:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        result = await client.v1.face_detection.generate(
            assets={"target_file_path": "https://example.com/group.png"}, download_directory=tmp_path
        )
    assert result.status == "complete" and result.faces
    assert len(result.downloaded_paths) == len(result.faces)
    saved = [Path(path) for path in result.downloaded_paths]
    assert all(path.parent == tmp_path for path in saved)
    assert all(size > 0 for size in await asyncio.to_thread(lambda: [p.stat().st_size for p in saved]))


@pytest.mark.asyncio
async def test_face_detection_generate_without_waiting_downloads_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        result = await client.v1.face_detection.generate(
            assets={"target_file_path": "https://example.com/group.png"},
            wait_for_completion=False,
            download_directory=tmp_path,
        )
    assert result.id and result.downloaded_paths == []
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


# -- a resource keeps its client alive -----------------------------------------------------------------------


def test_chained_blocking_calls_keep_the_client_alive_until_done(emu: Emulator) -> None:
    before = len(_portal_threads())
    created = mh.Client(token=emu.token, base_url=emu.url).v1.ai_image_generator.create(
        image_count=1, style={"prompt": "x"}
    )
    items = list(mh.Client(token=emu.token, base_url=emu.url).v1.saved_items.iterate(limit=10))
    assert created.id and created.credits_charged > 0
    assert len(items) == 45
    gc.collect()  # the clients are unreachable now: their finalizers stop their loops
    assert len(_portal_threads()) == before


def test_a_resource_outlives_the_name_of_its_client(emu: Emulator) -> None:
    resource = mh.Client(token=emu.token, base_url=emu.url).v1.account
    gc.collect()
    assert resource.get().tier == "pro"
    del resource
    gc.collect()


@pytest.mark.asyncio
async def test_async_chained_form_works(emu: Emulator) -> None:
    v1 = mh.AsyncClient(token=emu.token, base_url=emu.url).v1
    gc.collect()  # nothing names the client any more: v1 keeps it alive
    account = await v1.account.get()
    assert account.credits > 0
    await v1._client.close()  # what the official samples never do; closing is the caller's job here too


# -- import paths, environments, model_dump ----------------------------------------------------------------


def test_the_official_import_paths_exist() -> None:
    from magic_hour_async.environment import Environment
    from magic_hour_async.types import models, params

    assert Environment is mh.Environment
    assert Environment.ENVIRONMENT is Environment.PRODUCTION
    assert Environment.MOCK_SERVER.value.startswith("https://")
    assert models.V1VideoProjectsGetResponse is mh.VideoProject
    assert models.V1AccountListResponse.__name__ == "Account"
    body: params.V1AiImageGeneratorCreateBody = {"image_count": 1, "style": {"prompt": "a fox"}}
    assets: params.V1FaceSwapGenerateBodyAssets = {"video_source": "file", "video_file_path": "clip.mp4"}
    assert body["style"]["prompt"] == "a fox" and assets["video_source"] == "file"


def test_mock_server_environment_sets_the_base_url() -> None:
    client = mh.AsyncClient(token=TOKEN, environment=mh.Environment.MOCK_SERVER)
    assert client.base_url == mh.Environment.MOCK_SERVER.value


@pytest.mark.asyncio
async def test_model_dump_gives_the_wire_format(emu: Emulator) -> None:
    project_id = emu.create_project("video", status="complete")
    async with mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        project = await client.v1.video_projects.get(id=project_id)
        account = await client.v1.account.get()
    wire = emu.project(project_id)
    dumped = project.model_dump()
    assert dumped["status"] == "complete" and type(dumped["status"]) is str
    assert project.created_at is not None and dumped["created_at"] == project.created_at.isoformat()
    assert dumped["downloads"][0]["url"].split("?")[0] == wire["downloads"][0]["url"].split("?")[0]
    assert dumped["download"] == dumped["downloads"][0]
    assert dumped["total_frame_cost"] == project.total_frame_cost
    assert json.loads(project.model_dump_json()) == dumped
    assert json.loads(account.model_dump_json(indent=2))["subscription"]["price"]["amount"] == 4900


def test_an_httpx_client_is_accepted_and_ignored_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="httpx_client is ignored"):
        client = mh.AsyncClient(token=TOKEN, httpx_client=object())
    assert client.base_url == mh.Environment.PRODUCTION.value
    with (
        pytest.warns(UserWarning, match="httpx_client is ignored"),
        mh.Client(token=TOKEN, httpx_client=object()) as blocking,
    ):
        assert blocking.base_url == mh.Environment.PRODUCTION.value
