"""``generate()`` end to end against the emulator: upload local files, create, wait, download."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async.testing import Emulator

pytestmark = pytest.mark.asyncio

FAST = mh.PollPolicy(initial=0.01, maximum=0.05, max_rate=1000)  # the defaults, 100 times faster


class Bodies:
    """The JSON bodies the client POSTs, by path (seen through an aiohttp trace on a caller-owned session)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[Any]] = {}
        self._chunks: dict[int, bytes] = {}
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_chunk_sent.append(self._chunk)
        self.trace.on_request_end.append(self._end)

    async def _chunk(
        self, _: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
    ) -> None:
        self._chunks[id(ctx)] = self._chunks.get(id(ctx), b"") + params.chunk

    async def _end(self, _: object, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        raw = self._chunks.pop(id(ctx), b"")
        if params.method == "POST" and raw:
            self.sent.setdefault(params.url.path, []).append(json.loads(raw))


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=11, speed=0.001, output_size=4096) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def bodies() -> Bodies:
    return Bodies()


@pytest_asyncio.fixture
async def client(emu: Emulator, bodies: Bodies) -> AsyncIterator[mh.AsyncClient]:
    async with (
        aiohttp.ClientSession(trace_configs=[bodies.trace]) as session,
        mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST, session=session) as sdk,
    ):
        yield sdk


def _file(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def _files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def _uploaded_as(emu: Emulator, content: bytes) -> str:
    """The ``api-assets/...`` path under which the emulator received exactly these bytes."""
    digest = hashlib.sha256(content).hexdigest()
    (file_path,) = [path for path, upload in emu.uploads.items() if upload.sha256 == digest]
    return file_path


def _assert_downloaded(emu: Emulator, project: mh.Project, directory: Path) -> None:
    assert project.status == "complete"
    assert len(project.downloaded_paths) == len(project.downloads) >= 1
    for index, saved in enumerate(project.downloaded_paths):
        path = Path(saved)
        assert path.parent == directory
        assert path.read_bytes() == emu.output_bytes(project.id, index)


async def test_image_tool_uploads_a_local_file_renders_and_downloads(
    emu: Emulator, client: mh.AsyncClient, bodies: Bodies, tmp_path: Path
) -> None:
    face = _file(tmp_path, "face.png", b"\x89PNG face")
    assets = {"image_file_path": str(face)}
    out = tmp_path / "out"
    project = await client.v1.ai_headshot_generator.generate(assets=assets, download_directory=str(out))
    assert isinstance(project, mh.ImageProject)
    assert project.type == "AI_HEADSHOT"
    sent = bodies.sent["/v1/ai-headshot-generator"]
    assert sent == [{"assets": {"image_file_path": _uploaded_as(emu, b"\x89PNG face")}}]
    assert assets == {"image_file_path": str(face)}  # the caller's dict is unchanged
    _assert_downloaded(emu, project, out)


async def test_video_tool_uploads_two_files_with_one_upload_url_request(
    emu: Emulator, client: mh.AsyncClient, bodies: Bodies, tmp_path: Path
) -> None:
    clip = _file(tmp_path, "clip.mp4", b"mp4 clip bytes")
    face = _file(tmp_path, "new-face.png", b"png face bytes")
    project = await client.v1.face_swap.generate(
        start_seconds=0,
        end_seconds=3,
        assets={"video_source": "file", "video_file_path": clip, "image_file_path": str(face)},
        download_directory=str(tmp_path),
    )
    assert isinstance(project, mh.VideoProject)
    assert project.type == "FACE_SWAP"
    assert emu.counters.count("POST /v1/files/upload-urls") == 1
    (sent,) = bodies.sent["/v1/face-swap"]
    assert sent["assets"] == {
        "video_source": "file",
        "video_file_path": _uploaded_as(emu, b"mp4 clip bytes"),
        "image_file_path": _uploaded_as(emu, b"png face bytes"),
    }
    _assert_downloaded(emu, project, tmp_path)


async def test_audio_tool_generates_from_a_local_recording(
    emu: Emulator, client: mh.AsyncClient, bodies: Bodies, tmp_path: Path
) -> None:
    voice = _file(tmp_path, "voice.mp3", b"ID3 voice sample")
    project = await client.v1.ai_voice_cloner.generate(
        assets={"audio_file_path": str(voice)},
        style={"prompt": "Hello there"},
        download_directory=str(tmp_path),
    )
    assert isinstance(project, mh.AudioProject)
    assert project.type == "VOICE_CLONER"
    assert bodies.sent["/v1/ai-voice-cloner"] == [
        {
            "assets": {"audio_file_path": _uploaded_as(emu, b"ID3 voice sample")},
            "style": {"prompt": "Hello there"},
        }
    ]
    _assert_downloaded(emu, project, tmp_path)


async def test_generate_without_download_leaves_downloaded_paths_empty(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    project = await client.v1.ai_image_generator.generate(
        image_count=2, style={"prompt": "two foxes"}, download_outputs=False, download_directory=str(tmp_path)
    )
    assert project.status == "complete" and len(project.downloads) >= 1
    assert project.downloaded_paths == []
    assert _files_in(tmp_path) == []
    assert emu.uploads == {}


async def test_a_failed_render_is_returned_not_raised_and_nothing_is_downloaded(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.error_rate = 1.0
    project = await client.v1.ai_voice_generator.generate(
        style={"prompt": "hi", "voice_name": "Elon Musk"}, download_directory=str(tmp_path)
    )
    assert project.status == "error" and project.error is not None
    assert project.downloaded_paths == []
    with pytest.raises(mh.RenderError):
        project.raise_for_status()


async def test_face_detection_create_then_get(emu: Emulator, client: mh.AsyncClient) -> None:
    created = await client.v1.face_detection.create(
        assets={"target_file_path": "api-assets/x/face.png"}, confidence_score=0.5
    )
    detection = await client.v1.face_detection.get(id=created.id)
    assert detection.id == created.id
    assert detection.status in ("queued", "rendering", "complete", "error")
    assert emu.counters.count("GET /v1/face-detection/{id}") == 1


async def test_face_detection_wait_polls_through_the_scheduler_until_complete(
    emu: Emulator, client: mh.AsyncClient
) -> None:
    created = await client.v1.face_detection.create(assets={"target_file_path": "api-assets/x/face.png"})
    detection = await client.v1.face_detection.wait(id=created.id, timeout=30)
    assert detection.id == created.id
    assert detection.status == "complete"
    assert client.poll_stats.polls_sent == emu.counters.count("GET /v1/face-detection/{id}") >= 1


async def test_face_detection_wait_times_out_with_the_last_state(
    emu: Emulator, client: mh.AsyncClient
) -> None:
    created = await client.v1.face_detection.create(assets={"target_file_path": "api-assets/x/face.png"})
    emu.faults.add(route="GET /v1/face-detection/{id}", status=503, times=None)
    with pytest.raises(mh.WaitTimeoutError) as caught:
        await client.v1.face_detection.wait(id=created.id, timeout=0.2)
    assert caught.value.project is None  # every poll failed: nothing was seen
    assert client.poll_stats.polls_retried >= 1
