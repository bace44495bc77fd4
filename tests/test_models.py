"""Decoding of the three project kinds, field by field, through the client over loopback HTTP."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

import magic_hour_async as mh
from magic_hour_async._converter import decode, encode
from tests._scripted import Scripted, ScriptedServer

COMMON: dict[str, Any] = {
    "name": "Example Name",
    "status": "complete",
    "created_at": "2024-10-19T05:16:19.027Z",
    "enabled": True,
    "credits_charged": 450,
    "downloads": [
        {"url": "https://videos.magichour.ai/id/output.mp4", "expires_at": "2024-10-20T05:16:19Z"},
    ],
    "error": None,
    "total_frame_cost": 450,  # the frame cost real bodies carry (the spec lists it without defining it)
}
AWARE = datetime(2024, 10, 19, 5, 16, 19, 27000, tzinfo=timezone.utc)


@pytest.mark.asyncio
async def test_video_project_every_field(scripted: ScriptedServer) -> None:
    body = {
        **COMMON,
        "id": "v1",
        "type": "FACE_SWAP",
        "width": 512,
        "height": 960,
        "fps": 29.97,
        "start_seconds": 0.5,
        "end_seconds": 10,
        "download": None,
    }
    scripted.add("/v1/video-projects/v1", Scripted(body=body))
    async with mh.AsyncClient(token="t", base_url=scripted.url) as client:
        project = await client.v1.video_projects.get(id="v1")
    assert project == mh.VideoProject(
        id="v1",
        name="Example Name",
        status="complete",
        type="FACE_SWAP",
        created_at=AWARE,
        enabled=True,
        credits_charged=450,
        downloads=(
            mh.Download(
                url="https://videos.magichour.ai/id/output.mp4",
                expires_at=datetime(2024, 10, 20, 5, 16, 19, tzinfo=timezone.utc),
            ),
        ),
        error=None,
        width=512,
        height=960,
        fps=29.97,
        start_seconds=0.5,
        end_seconds=10.0,
        download=None,
        total_frame_cost=450,
    )
    assert isinstance(project.end_seconds, float)
    assert project.downloaded_paths == []
    assert project.is_terminal


@pytest.mark.asyncio
async def test_image_project_every_field(scripted: ScriptedServer) -> None:
    body = {
        **COMMON,
        "id": "i1",
        "type": "AI_IMAGE",
        "image_count": 2,
        "status": "error",
        "downloads": [],
        "error": {"code": "no_source_face", "message": "Use a face"},
    }
    scripted.add("/v1/image-projects/i1", Scripted(body=body))
    async with mh.AsyncClient(token="t", base_url=scripted.url) as client:
        project = await client.v1.image_projects.get(id="i1")
    assert project == mh.ImageProject(
        id="i1",
        name="Example Name",
        status="error",
        type="AI_IMAGE",
        created_at=AWARE,
        enabled=True,
        credits_charged=450,
        downloads=(),
        error=mh.ProjectError(code="no_source_face", message="Use a face"),
        image_count=2,
        total_frame_cost=450,
    )
    with pytest.raises(mh.RenderError) as info:
        project.raise_for_status()
    assert info.value.code == "no_source_face"
    assert info.value.project is project


@pytest.mark.asyncio
async def test_audio_project_every_field(scripted: ScriptedServer) -> None:
    body = {**COMMON, "id": "a1", "type": "VOICE_GENERATOR", "name": None, "enabled": False}
    scripted.add("/v1/audio-projects/a1", Scripted(body=body))
    async with mh.AsyncClient(token="t", base_url=scripted.url) as client:
        project = await client.v1.audio_projects.get(id="a1")
    assert project.name is None
    assert project.enabled is False
    assert project.type == "VOICE_GENERATOR"
    assert project.created_at == AWARE
    assert project.raise_for_status() is project


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-19T05:16:19Z", datetime(2024, 10, 19, 5, 16, 19, tzinfo=timezone.utc)),
        ("2024-10-19T05:16:19.1Z", datetime(2024, 10, 19, 5, 16, 19, 100000, tzinfo=timezone.utc)),
        ("2024-10-19T05:16:19.123456789Z", datetime(2024, 10, 19, 5, 16, 19, 123456, tzinfo=timezone.utc)),
        ("1970-01-01T00:00:00", datetime(1970, 1, 1, tzinfo=timezone.utc)),
        ("2024-10-19T07:16:19+02:00", datetime(2024, 10, 19, 5, 16, 19, tzinfo=timezone.utc)),
    ],
)
def test_datetimes_decode_aware(text: str, expected: datetime) -> None:
    project = decode({"id": "x", "status": "queued", "created_at": text}, mh.AudioProject)
    assert project.created_at == expected
    assert project.created_at is not None and project.created_at.tzinfo is not None


def test_status_equals_its_string_and_unknown_values_are_kept() -> None:
    known = decode({"id": "x", "status": "rendering"}, mh.VideoProject)
    assert known.status == "rendering"
    assert known.status is mh.ProjectStatus.RENDERING
    assert not known.is_terminal
    unknown = decode({"id": "x", "status": "upscaling"}, mh.VideoProject)
    assert unknown.status == "upscaling"
    assert not unknown.is_terminal
    assert unknown.raise_for_status() is unknown


@pytest.mark.parametrize("status", ["complete", "error", "canceled"])
def test_terminal_statuses(status: str) -> None:
    assert decode({"id": "x", "status": status}, mh.ImageProject).is_terminal


def test_canceled_raises_render_error_without_error_object() -> None:
    project = decode({"id": "x", "status": "canceled"}, mh.VideoProject)
    with pytest.raises(mh.RenderError, match="canceled"):
        project.raise_for_status()


@pytest.mark.parametrize(
    "body",
    [
        {"status": "complete"},  # no id
        {"id": "x", "status": "complete", "width": "wide"},
        {"id": "x", "status": "complete", "created_at": "yesterday"},
        {"id": "x", "status": "complete", "enabled": "yes"},
        {"id": "x", "status": "complete", "downloads": [{"expires_at": "2024-10-19T05:16:19Z"}]},
        {"id": 5, "status": "complete"},
        [1, 2],
        "nope",
    ],
)
def test_wrong_shapes_raise_response_decode_error(body: Any) -> None:
    with pytest.raises(mh.ResponseDecodeError, match="VideoProject"):
        decode(body, mh.VideoProject)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "x", "status": "complete", "width": "wide"}, "width"),
        ({"id": "x", "status": "complete", "downloads": [{"expires_at": "2024-10-19T05:16:19Z"}]}, "url"),
    ],
)
def test_a_wrong_shape_names_the_field_in_the_error(body: Any, field: str) -> None:
    # Answers decode on the fast path; one that fails is decoded again with cattrs' detailed validation,
    # whose message names the offending field.
    with pytest.raises(mh.ResponseDecodeError) as info:
        decode(body, mh.VideoProject)
    assert field in str(info.value)


@pytest.mark.asyncio
async def test_wrong_shape_over_http_raises_response_decode_error(scripted: ScriptedServer) -> None:
    scripted.add("/v1/video-projects/x", Scripted(body={"unexpected": True}))
    async with mh.AsyncClient(token="t", base_url=scripted.url) as client:
        with pytest.raises(mh.ResponseDecodeError):
            await client.v1.video_projects.get(id="x")


def test_models_are_frozen() -> None:
    import attrs

    project = decode({"id": "x", "status": "queued"}, mh.VideoProject)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        project.status = "complete"  # type: ignore[misc]


def test_encode_omits_none_at_every_depth() -> None:
    assert encode({"a": None, "b": {"c": None, "d": 1}, "e": [{"f": None}]}) == {"b": {"d": 1}, "e": [{}]}


def test_create_response_decodes() -> None:
    created = decode({"id": "c", "credits_charged": 5, "frame_cost": 5, "extra": 1}, mh.CreateResponse)
    assert (created.id, created.credits_charged, created.frame_cost) == ("c", 5, 5)
