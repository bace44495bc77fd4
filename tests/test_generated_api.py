"""The generated tool resources (``client.v1.ai_image_generator`` and the rest) and their generator."""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import subprocess
import sys
import textwrap
import typing
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest

import magic_hour_async as mh
from magic_hour_async._generated import RESOURCES, AsyncV1Generated
from magic_hour_async._generated.ai_image_editor import AiImageEditorAssets
from magic_hour_async._generated.ai_image_generator import AiImageGeneratorStyle, AsyncAiImageGenerator
from magic_hour_async._generated.ai_meme_generator import AiMemeGeneratorStyle
from magic_hour_async._generated.face_detection import FaceDetectionDetails
from magic_hour_async._generated.face_swap import (
    FaceSwapAssets,
    FaceSwapAssetsFaceMapping,
    FaceSwapBody,
    FaceSwapStyle,
)
from magic_hour_async._resources.create import AsyncCreateResource, to_wire
from tests._scripted import Scripted, ScriptedServer
from tests._spec import spec_path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tools" / "generate_api.py"
GENERATED = REPO / "magic_hour_async" / "_generated"
TOKEN = "mhk_test_generated"


@pytest.fixture
def spec_file() -> Path:
    """The pinned spec (skips here, fails under CI=true, when it is missing or differs from the pin)."""
    return spec_path()


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_api", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_api"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _sent(server: ScriptedServer, method: str, path: str) -> list[Any]:
    return [json.loads(r.body) for r in server.requests if r.method == method and r.path == path]


def _client(server: ScriptedServer) -> mh.AsyncClient:
    return mh.AsyncClient(token=TOKEN, base_url=server.url)


# -- request bodies ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_optional_fields_are_omitted_not_sent_as_null(scripted: ScriptedServer) -> None:
    scripted.add("/v1/ai-image-generator", Scripted(body={"id": "p1", "credits_charged": 5}))
    scripted.add("/v1/ai-image-generator", Scripted(body={"id": "p2", "credits_charged": 5}))
    async with _client(scripted) as client:
        first = await client.v1.ai_image_generator.create(image_count=1, style={"prompt": "a fox"})
        await client.v1.ai_image_generator.create(
            image_count=1, style={"prompt": "a fox", "tool": None}, name=None, model=None
        )
    assert first == mh.CreateResponse(id="p1", credits_charged=5)
    assert _sent(scripted, "POST", "/v1/ai-image-generator") == [
        {"image_count": 1, "style": {"prompt": "a fox"}},
        {"image_count": 1, "style": {"prompt": "a fox"}},
    ]


@pytest.mark.asyncio
async def test_nested_dicts_and_attrs_classes_send_the_same_body(scripted: ScriptedServer) -> None:
    as_dicts: dict[str, Any] = {
        "assets": {
            "video_source": "file",
            "video_file_path": "api-assets/v.mp4",
            "face_mappings": [{"original_face": "api-assets/0-0.png", "new_face": "api-assets/f.png"}],
        },
        "style": {"version": "v2"},
    }
    as_classes: dict[str, Any] = {
        "assets": FaceSwapAssets(
            video_source="file",
            video_file_path="api-assets/v.mp4",
            face_mappings=[
                FaceSwapAssetsFaceMapping(original_face="api-assets/0-0.png", new_face="api-assets/f.png")
            ],
        ),
        "style": FaceSwapStyle(version="v2"),
    }
    mixed: dict[str, Any] = {
        "assets": {**as_dicts["assets"], "face_mappings": as_classes["assets"].face_mappings},
        "style": as_classes["style"],
    }
    async with _client(scripted) as client:
        for nested in (as_dicts, as_classes, mixed):
            await client.v1.face_swap.create(start_seconds=0, end_seconds=2.5, **nested)
    bodies = _sent(scripted, "POST", "/v1/face-swap")
    assert bodies == [{"start_seconds": 0, "end_seconds": 2.5, **as_dicts}] * 3


def test_python_names_become_wire_names_and_unknown_keys_pass_through() -> None:
    wire = {"style": {"topic": "t", "template": "Random", "searchWeb": True}}
    assert to_wire({"style": AiMemeGeneratorStyle(topic="t", template="Random", search_web=True)}) == wire
    # A dict in a known position gets the same rename; the wire name itself and new keys are sent as given.
    meme_body = sys.modules[AiMemeGeneratorStyle.__module__].AiMemeGeneratorBody
    assert to_wire({"style": {"topic": "t", "template": "Random", "search_web": True}}, meme_body) == wire
    assert to_wire(
        {"style": {"topic": "t", "template": "Random", "searchWeb": True, "new": 1}}, meme_body
    ) == {"style": {**wire["style"], "new": 1}}


def test_to_wire_builds_new_objects_and_leaves_the_input_alone() -> None:
    mappings = [{"original_face": "a", "new_face": "b", "note": None}]
    assets = {"video_source": "file", "face_mappings": mappings, "image_file_path": None}
    snapshot = json.dumps(assets, sort_keys=True)
    wire = to_wire(FaceSwapBody(start_seconds=0, end_seconds=1, assets=assets))
    assert wire == {
        "start_seconds": 0,
        "end_seconds": 1,
        "assets": {"video_source": "file", "face_mappings": [{"original_face": "a", "new_face": "b"}]},
    }
    assert json.dumps(assets, sort_keys=True) == snapshot
    assert wire["assets"] is not assets and wire["assets"]["face_mappings"][0] is not mappings[0]


# -- signatures ----------------------------------------------------------------------------------------------


def _hints(function: Any) -> dict[str, Any]:
    return typing.get_type_hints(function)


def test_enums_are_literal_types_in_the_signatures() -> None:
    hints = _hints(AsyncAiImageGenerator.create)
    # Small enums are closed Literals; long ones (models, voices, styles) are ``Literal[...] | str`` so a
    # value the server adds later is no type error.
    aspect = [arg for arg in typing.get_args(hints["aspect_ratio"]) if arg is not type(None)]
    assert len(aspect) == 1 and typing.get_args(aspect[0]) == ("1:1", "16:9", "9:16")
    model = [arg for arg in typing.get_args(hints["model"]) if arg is not type(None)]
    assert len(model) == 2 and typing.get_origin(model[0]) is Literal and model[1] is str
    assert typing.get_args(model[0])[:3] == ("default", "z-image-turbo", "qwen-image-2.1")
    style_hints = _hints(AiImageGeneratorStyle)
    tool = next(arg for arg in typing.get_args(style_hints["tool"]) if typing.get_origin(arg) is Literal)
    assert "ai-anime-generator" in typing.get_args(tool) and "general" in typing.get_args(tool)
    # A number enum stays numeric.
    editor = sys.modules[AiImageEditorAssets.__module__]
    hint = _hints(editor.AsyncAiImageEditor.create)["image_count"]
    count = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    assert typing.get_args(count) == (1, 4, 9, 16)


def test_required_fields_are_required_keywords_and_optional_ones_default_to_none() -> None:
    parameters = inspect.signature(AsyncAiImageGenerator.create).parameters
    assert [name for name, p in parameters.items() if p.default is inspect.Parameter.empty] == [
        "self",
        "image_count",
        "style",
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in parameters.items() if name != "self")
    assert {
        name: p.default for name, p in parameters.items() if name not in ("self", "image_count", "style")
    } == {
        "name": None,
        "model": None,
        "aspect_ratio": None,
        "resolution": None,
        "orientation": None,
        "request_options": None,
    }


def test_every_render_tool_has_create_and_generate_with_the_same_body_parameters() -> None:
    client = mh.AsyncClient(token=TOKEN)
    resources = {name: getattr(client.v1, name) for name in RESOURCES}
    tools = {name: value for name, value in resources.items() if isinstance(value, AsyncCreateResource)}
    assert len(tools) == 31  # 28 create endpoints of the spec, 3 of the official SDK's overlay
    for name, resource in tools.items():
        create = list(inspect.signature(resource.create).parameters)
        generate = inspect.signature(resource.generate).parameters
        assert create[-1] == "request_options", name
        body = create[:-1]
        assert list(generate)[: len(body)] == body, name
        assert list(generate)[len(body) :] == [
            "wait_for_completion",
            "download_outputs",
            "download_directory",
            "request_options",
        ]
        assert (
            generate["wait_for_completion"].default is True and generate["download_outputs"].default is True
        )
    assert isinstance(client.v1, AsyncV1Generated)
    assert {"face_detection", "ai_image_generator", "face_swap_photo", "ai_voice_generator"} <= set(
        vars(client.v1)
    )  # built on first access, then cached


@pytest.mark.slow
def test_mypy_checks_calls_against_the_real_signatures(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed in this environment")
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            from magic_hour_async import AsyncClient, CreateResponse, ImageProject

            async def main(client: AsyncClient) -> None:
                ok: CreateResponse = await client.v1.ai_image_generator.create(
                    image_count=1, style={"prompt": "fox", "tool": "ai-anime-generator"}, model="flux-schnell"
                )
                project: ImageProject = await client.v1.face_swap_photo.generate(
                    assets={"target_file_path": "a.png", "source_file_path": "b.png"}, download_directory="o"
                )
                await client.v1.ai_image_generator.create(image_count=1, style={"prompt": ""}, resolution="9")
                await client.v1.ai_image_generator.create(style={"prompt": "x"})
                await client.v1.ai_meme_generator.create(style={"topic": "t", "template": "Random", "bad": 1})
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(sample)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    errors = [
        line for line in result.stdout.splitlines() if line.startswith(f"{sample}:") and ": error:" in line
    ]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    # The bad (small, closed) enum, the missing required field, the unknown key; ``model="flux-schnell"`` is
    # in an open enum, where any string type-checks.
    assert lines == [11, 12, 13], result.stdout


# -- generate ------------------------------------------------------------------------------------------------


class RecordingFiles:
    """Stands in for ``client.v1.files`` to see exactly what ``generate`` asks to upload."""

    def __init__(self) -> None:
        self.calls: list[list[object]] = []

    async def upload_files(self, files: Sequence[object]) -> list[str]:
        self.calls.append(list(files))
        return [f"api-assets/up/{i}" for i in range(len(files))]


@pytest.mark.asyncio
async def test_generate_uploads_only_local_files_and_does_not_touch_the_callers_dicts(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    local = tmp_path / "person.png"
    buffer = io.BytesIO(b"png")
    assets: dict[str, Any] = {
        "image_file_paths": [str(local), "https://example.com/a.png", "api-assets/x/1.png", buffer],
    }
    snapshot = dict(assets), list(assets["image_file_paths"])
    scripted.add("/v1/ai-image-editor", Scripted(body={"id": "img1", "credits_charged": 50}))
    async with _client(scripted) as client:
        files = RecordingFiles()
        client.v1.files = files  # type: ignore[assignment]
        project = await client.v1.ai_image_editor.generate(
            style={"prompt": "edit"}, assets=assets, wait_for_completion=False
        )
    assert files.calls == [[str(local), buffer]]
    assert _sent(scripted, "POST", "/v1/ai-image-editor") == [
        {
            "style": {"prompt": "edit"},
            "assets": {
                "image_file_paths": [
                    "api-assets/up/0",
                    "https://example.com/a.png",
                    "api-assets/x/1.png",
                    "api-assets/up/1",
                ]
            },
        }
    ]
    assert (dict(assets), list(assets["image_file_paths"])) == snapshot
    assert assets["image_file_paths"][3] is buffer
    # Without waiting, the project is fetched once right after creation.
    assert isinstance(project, mh.ImageProject) and project.id == "img1"
    assert scripted.count("GET", "/v1/image-projects/img1") == 1


@pytest.mark.asyncio
async def test_generate_with_nothing_local_makes_no_upload(scripted: ScriptedServer) -> None:
    scripted.add("/v1/face-swap-photo", Scripted(body={"id": "fs1", "credits_charged": 10}))
    async with _client(scripted) as client:
        files = RecordingFiles()
        client.v1.files = files  # type: ignore[assignment]
        await client.v1.face_swap_photo.generate(
            assets={"target_file_path": "api-assets/t.png", "source_file_path": "https://x.test/s.png"},
            wait_for_completion=False,
        )
    assert files.calls == []
    assert (
        _sent(scripted, "POST", "/v1/face-swap-photo")[0]["assets"]["source_file_path"]
        == "https://x.test/s.png"
    )


@pytest.mark.asyncio
async def test_create_is_a_paid_post_not_retried_after_a_5xx(scripted: ScriptedServer) -> None:
    scripted.add("/v1/ai-voice-generator", Scripted(status=503, body={"message": "busy"}))
    async with _client(scripted) as client:
        with pytest.raises(mh.ServerError):
            await client.v1.ai_voice_generator.create(style={"prompt": "hi", "voice_name": "Elon Musk"})
    assert scripted.count("POST", "/v1/ai-voice-generator") == 1


@pytest.mark.asyncio
async def test_face_detection_get_decodes_faces_and_keeps_an_unknown_status(scripted: ScriptedServer) -> None:
    body = {"id": "fd1", "credits_charged": 0, "status": "thinking", "faces": [{"path": "p", "url": "u"}]}
    scripted.add("/v1/face-detection/fd1", Scripted(body=body))
    scripted.add("/v1/face-detection/a%2Fb", Scripted(status=404, body={"message": "Not Found"}))
    async with _client(scripted) as client:
        detection = await client.v1.face_detection.get(id="fd1")
        with pytest.raises(mh.NotFoundError):
            await client.v1.face_detection.get(id="a/b")  # encoded: never another route
    assert isinstance(detection, FaceDetectionDetails)
    assert detection.status == "thinking" and detection.faces[0].url == "u"


# -- the generator -------------------------------------------------------------------------------------------


def test_the_generator_is_idempotent(spec_file: Path, tmp_path: Path) -> None:
    generator = _generator()
    spec = json.loads(spec_file.read_text())
    first = generator.render(spec)
    assert generator.write(first, tmp_path) == sorted(first)
    assert generator.write(generator.render(spec), tmp_path) == []
    assert {p.name: p.read_text() for p in tmp_path.glob("*.py")} == first
    assert all(text.startswith(generator.HEADER + "\n") for text in first.values())


def test_check_passes_on_the_checked_in_files(
    spec_file: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--spec", str(spec_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


def test_check_lists_stale_and_leftover_files(spec_file: Path, tmp_path: Path) -> None:
    for source in GENERATED.glob("*.py"):
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "face_swap.py").write_text("# edited by hand\n")
    (tmp_path / "retired_tool.py").write_text("")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--spec", str(spec_file), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"stale: {tmp_path / 'face_swap.py'}",
        f"stale: {tmp_path / 'retired_tool.py'}",
    ]


def test_a_missing_pinned_spec_skips_outside_ci_fails_in_ci_and_a_missing_named_spec_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = _generator()
    monkeypatch.setenv("MAGIC_HOUR_OPENAPI", str(tmp_path / "absent.json"))
    monkeypatch.delenv("CI", raising=False)
    assert generator.main(["--check", "--out", str(tmp_path)]) == 0
    assert "is not at" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    assert generator.main(["--check", "--out", str(tmp_path)]) == 2
    assert generator.main(["--spec", str(tmp_path / "absent.json"), "--out", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_the_generator_refuses_an_operation_it_cannot_map() -> None:
    generator = _generator()
    spec = {"paths": {"/v1/ai-new-tool/{id}": {"delete": {"responses": {}}}}}
    with pytest.raises(generator.SpecError, match="DELETE /v1/ai-new-tool"):
        generator.render(spec)
