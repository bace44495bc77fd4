"""The emulator, driven over loopback by a plain aiohttp client (no SDK code involved).

Time is moved with a ManualClock; nothing here sleeps to make an assertion pass. The only real waits are the
``delay`` fault (asserted by ordering, not duration) and polling for held requests to arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from email.utils import parsedate_to_datetime
from importlib.metadata import entry_points
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yarl

from magic_hour_async.testing import Emulator, ManualClock


def _plugin_autoloaded() -> bool:
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.value == "magic_hour_async.testing._plugin" for ep in entry_points(group="pytest11"))


# The plugin normally arrives through the package's pytest11 entry point; load it by hand when the
# installed metadata lacks it, so these tests exercise the same fixtures either way.
if not _plugin_autoloaded():
    pytest_plugins = ["magic_hour_async.testing._plugin"]

FACE_SWAP = {
    "start_seconds": 0,
    "end_seconds": 15,
    "assets": {
        "video_source": "file",
        "video_file_path": "api-assets/id/1234.mp4",
        "image_file_path": "api-assets/id/1234.png",
    },
}
IMAGE = {"image_count": 1, "style": {"prompt": "a lighthouse at dusk"}}
VOICE = {"style": {"prompt": "Hello there", "voice_name": "Morgan Freeman"}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(seed=7, clock=clock) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.token}", "User-Agent": "emulator-tests/1.0"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str | yarl.URL, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        text = await response.text()
        is_json = text and response.content_type == "application/json"
        return response.status, json.loads(text) if is_json else text


async def fetch(
    http: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.read(), response


async def create(http: aiohttp.ClientSession, emu: Emulator, path: str, body: dict[str, Any]) -> str:
    status, answer = await call(http, "POST", emu.url + path, json=body)
    assert status == 200, answer
    return str(answer["id"])


# -- lifecycle ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_render_moves_through_statuses_with_the_clock(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    status, created = await call(http, "POST", emu.url + "/v1/face-swap", json=FACE_SWAP)
    assert status == 200
    assert created == {"id": created["id"], "credits_charged": 450, "estimated_frame_cost": 450}
    url = f"{emu.url}/v1/video-projects/{created['id']}"

    seen: list[str] = []
    for step in (0.0, 8.9, 0.1, 35.9, 0.1):  # face-swap renders in 45 s: queued for 20%, then rendering
        clock.advance(step)
        seen.append((await call(http, "GET", url))[1]["status"])
    assert seen == ["queued", "queued", "rendering", "rendering", "complete"]

    _, project = await call(http, "GET", url)
    assert project["type"] == "FACE_SWAP"
    assert project["error"] is None and project["enabled"] is True
    assert (project["start_seconds"], project["end_seconds"]) == (0, 15)
    # The create answer is an estimate at 30 fps; at completion the output's real frame rate sets the cost
    # (docs: "the cost is an estimate and will be adjusted when the video completes").
    assert project["fps"] in (24, 25, 30)
    assert project["credits_charged"] == round(450 * project["fps"] / 30)
    assert emu.credits == 1_000_000_000 - project["credits_charged"]
    assert len(project["downloads"]) == 1 and project["download"] == project["downloads"][0]
    assert project["created_at"].endswith("Z")


@pytest.mark.asyncio
async def test_speed_scales_default_durations(clock: ManualClock) -> None:
    async with Emulator(clock=clock, speed=0.001) as emu:
        project_id = emu.create_project("image", type="AI_IMAGE")
        assert emu.project(project_id)["status"] == "queued"
        clock.advance(0.005)  # AI_IMAGE takes 5 s at speed 1
        assert emu.project(project_id)["status"] == "complete"


@pytest.mark.asyncio
async def test_project_bodies_have_exactly_the_api_fields(emu: Emulator, http: aiohttp.ClientSession) -> None:
    common = {"id", "name", "status", "type", "created_at", "enabled", "credits_charged", "downloads"}
    common.add("error")
    video = await create(http, emu, "/v1/face-swap", FACE_SWAP)
    image = await create(http, emu, "/v1/ai-image-generator", IMAGE)
    audio = await create(http, emu, "/v1/ai-voice-generator", VOICE)
    _, video_body = await call(http, "GET", f"{emu.url}/v1/video-projects/{video}")
    _, image_body = await call(http, "GET", f"{emu.url}/v1/image-projects/{image}")
    _, audio_body = await call(http, "GET", f"{emu.url}/v1/audio-projects/{audio}")
    video_extra = {"width", "height", "fps", "start_seconds", "end_seconds", "total_frame_cost", "download"}
    assert set(video_body) == common | video_extra
    assert set(image_body) == common | {"image_count", "total_frame_cost"}
    assert set(audio_body) == common
    assert (image_body["type"], audio_body["type"]) == ("AI_IMAGE", "VOICE_GENERATOR")


@pytest.mark.asyncio
async def test_error_outcome_carries_a_realistic_code_and_is_refunded(clock: ManualClock) -> None:
    async with Emulator(clock=clock, seed=3, error_rate=1.0, credits=1000) as emu:
        project_id = emu.create_project("video")  # fixtures are not billed: only API creates are
        assert emu.credits == 1000
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            project_id = await create(http, emu, "/v1/face-swap", FACE_SWAP)
            assert emu.credits == 550
            clock.advance(45)
            _, body = await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
    assert body["status"] == "error"
    assert body["error"]["code"] in (
        "invalid_video_file",
        "processing_timeout",
        "no_source_face",
        "unknown_error",
    )
    assert body["error"]["message"]
    assert body["credits_charged"] == 0 and body["downloads"] == [] and body["download"] is None
    assert emu.credits == 1000


@pytest.mark.asyncio
async def test_failed_renders_end_with_codes_that_fit_the_tool(clock: ManualClock) -> None:
    # A text-to-image render has no input face or file: it never fails with no_source_face (it once could).
    async with Emulator(clock=clock, seed=5, error_rate=1.0) as emu:
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            images = [await create(http, emu, "/v1/ai-image-generator", IMAGE) for _ in range(20)]
            swaps = [await create(http, emu, "/v1/face-swap", FACE_SWAP) for _ in range(20)]
        clock.advance(60)
        image_codes = {emu.project(pid)["error"]["code"] for pid in images}
        swap_codes = {emu.project(pid)["error"]["code"] for pid in swaps}
    assert image_codes <= {"content_policy_violation", "unknown_error"}
    assert "no_source_face" in swap_codes
    assert swap_codes <= {"no_source_face", "invalid_video_file", "processing_timeout", "unknown_error"}


@pytest.mark.asyncio
async def test_video_estimate_is_adjusted_at_completion(emu: Emulator, http: aiohttp.ClientSession) -> None:
    start = emu.credits
    ids = [await create(http, emu, "/v1/face-swap", FACE_SWAP) for _ in range(6)]
    assert emu.credits == start - 6 * 450  # charged the estimate up front
    before = [emu.project(pid) for pid in ids]
    assert {(p["credits_charged"], p["fps"]) for p in before} == {(450, 30)}
    for pid in ids:
        emu.complete(pid)  # forcing completion settles the adjustment too
    after = [emu.project(pid) for pid in ids]
    assert {p["fps"] for p in after} <= {24, 25, 30} and len({p["fps"] for p in after}) > 1
    assert all(p["credits_charged"] == round(450 * p["fps"] / 30) for p in after)
    assert all(p["total_frame_cost"] == p["credits_charged"] for p in after)
    assert emu.credits == start - sum(p["credits_charged"] for p in after)


def test_outcomes_ids_and_bytes_are_reproducible_from_the_seed() -> None:
    def run(seed: int) -> tuple[list[str], list[str], bytes]:
        clock = ManualClock()
        with Emulator(seed=seed, clock=clock, error_rate=0.5, output_size=2048) as emu:
            http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            ids: list[str] = []
            for _ in range(8):
                request = urllib.request.Request(
                    emu.url + "/v1/ai-voice-generator",
                    data=json.dumps(VOICE).encode(),
                    headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
                )
                with http.open(request) as response:
                    ids.append(json.load(response)["id"])
            clock.advance(60)
            statuses = [emu.project(project_id)["status"] for project_id in ids]
            return ids, statuses, emu.output_bytes(ids[0])

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert set(first[1]) == {"complete", "error"}
    assert first[0] != other[0] and first[2] != other[2]
    assert all(len(project_id) == 25 and project_id.startswith("c") for project_id in first[0])


@pytest.mark.asyncio
async def test_control_api_pins_statuses_and_forces_outcomes(emu: Emulator, clock: ManualClock) -> None:
    stuck = emu.create_project("video", status="rendering")
    odd = emu.create_project("audio", status="paused_by_operator")
    failing = emu.create_project("image", duration=10)
    canceled = emu.create_project("image", duration=10)
    clock.advance(1000)
    assert emu.project(stuck)["status"] == "rendering"
    assert emu.project(odd)["status"] == "paused_by_operator"

    emu.complete(stuck)
    emu.fail(failing, code="content_policy_violation")
    emu.cancel(canceled)
    assert emu.project(stuck)["status"] == "complete" and len(emu.project(stuck)["downloads"]) == 1
    assert emu.project(failing)["error"] == {
        "code": "content_policy_violation",
        "message": "The request was rejected by the content policy.",
    }
    assert emu.project(canceled)["status"] == "canceled" and emu.project(canceled)["error"] is None
    assert emu.project_ids == (stuck, odd, failing, canceled)
    with pytest.raises(KeyError):
        emu.complete("no-such-project")


# -- auth, routing and validation --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic bWhrOg==", "Bearer"])
async def test_missing_or_wrong_token_is_401(emu: Emulator, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    project_id = emu.create_project("video")
    async with aiohttp.ClientSession(headers=headers) as http:
        status, body = await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
        create_status, _ = await call(http, "POST", emu.url + "/v1/face-swap", json=FACE_SWAP)
    assert (status, body, create_status) == (401, {"code": "unauthorized", "message": "Unauthorized"}, 401)


@pytest.mark.asyncio
async def test_unknown_ids_other_kinds_and_encoded_slashes_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    video = emu.create_project("video", id="a")
    not_found = {"code": "not_found", "message": "Not Found"}
    assert await call(http, "GET", f"{emu.url}/v1/image-projects/{video}") == (404, not_found)
    assert await call(http, "DELETE", f"{emu.url}/v1/audio-projects/{video}") == (404, not_found)
    assert await call(http, "GET", f"{emu.url}/v1/video-projects/nope") == (404, not_found)
    assert await call(http, "GET", f"{emu.url}/v1/face-detection/nope") == (404, not_found)
    encoded = yarl.URL(f"{emu.url}/v1/video-projects/a%2Fb", encoded=True)
    assert await call(http, "GET", encoded) == (404, not_found)
    assert emu.counters.count("GET /v1/video-projects/{id}", id="a/b") == 1
    assert await call(http, "GET", f"{emu.url}/v1/video-projects/a/b") == (404, not_found)
    assert await call(http, "GET", f"{emu.url}/v1/no-such-endpoint") == (404, not_found)
    assert (await call(http, "PUT", f"{emu.url}/v1/face-swap"))[0] == 405


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Missing request body"),
        (b"{not json", "Invalid JSON in request body"),
        (b"[1, 2]", "Request body must be a JSON object"),
    ],
)
async def test_missing_or_malformed_bodies_are_400(
    emu: Emulator, http: aiohttp.ClientSession, data: bytes, message: str
) -> None:
    headers = {"Content-Type": "application/json"}
    assert await call(http, "POST", emu.url + "/v1/face-swap", data=data, headers=headers) == (
        400,
        {"code": "invalid_request", "message": message},
    )


# Schema violations are 400 invalid_request (the 2026-11 spec: "Fix request syntax or validation errors");
# rules stated only in prose are 422 unprocessable_entity ("Change the request values"). Before the rules
# came from the spec, every rule violation answered 422.
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/ai-image-generator", {"image_count": 1}, 400, "'style' is required"),
        ("/v1/ai-image-generator", {"image_count": 1, "style": {}}, 400, "'style.prompt' is required"),
        ("/v1/ai-image-generator", {"image_count": 1, "style": "x"}, 400, "'style' must be an object"),
        ("/v1/ai-image-generator", {**IMAGE, "image_count": 17}, 400,
         "'image_count' must be less than or equal to 16"),
        ("/v1/ai-image-generator", {**IMAGE, "image_count": "2"}, 400, "'image_count' must be an integer"),
        ("/v1/ai-image-generator", {**IMAGE, "aspect_ratio": "4:3"}, 400,
         "'aspect_ratio' must be one of: 1:1, 16:9, 9:16"),
        ("/v1/ai-image-generator", {**IMAGE, "name": None}, 400, "'name' must not be null"),
        ("/v1/ai-image-generator", {**IMAGE, "style": {"prompt": ""}}, 400,
         "'style.prompt' must not be empty"),
        ("/v1/ai-image-editor", {"style": {"prompt": "x"}, "assets": {}, "image_count": True}, 400,
         "'image_count' must be a number"),
        ("/v1/face-swap", {**FACE_SWAP, "end_seconds": 0}, 400,
         "'end_seconds' must be greater than or equal to 0.1"),
        ("/v1/face-swap", {**FACE_SWAP, "start_seconds": 20}, 422,
         "'end_seconds' must be greater than 'start_seconds'"),
        ("/v1/face-swap", {**FACE_SWAP, "assets": {}}, 400, "'assets.video_source' is required"),
        ("/v1/face-detection", {"assets": {}}, 400, "'assets.target_file_path' is required"),
    ],
)  # fmt: skip
async def test_bodies_breaking_the_rules_are_refused_naming_the_field(
    emu: Emulator, http: aiohttp.ClientSession, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    code = "invalid_request" if status == 400 else "unprocessable_entity"
    assert await call(http, "POST", emu.url + path, json=body) == (status, {"code": code, "message": message})
    assert emu.project_ids == ()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"image_count": NaN, "style": {"prompt": "x"}}', "application/json"),
        (b'{"image_count": 1, "style": {"prompt": "x"}, "x": Infinity}', "application/json"),
        (b'{"image_count": 1e400, "style": {"prompt": "x"}}', "application/json"),
        (b'{"image_count": 1, "style": {"prompt": "x"}}', "text/plain"),
        (b'{"image_count": 1, "style": {"prompt": "x"}}', "application/x-www-form-urlencoded"),
        ('{"image_count": 1, "style": {"prompt": "é"}}'.encode("latin-1"), "application/json"),
    ],
)
async def test_non_strict_json_and_other_content_types_are_400(
    emu: Emulator, http: aiohttp.ClientSession, data: bytes, content_type: str
) -> None:
    status, body = await call(
        http, "POST", emu.url + "/v1/ai-image-generator", data=data, headers={"Content-Type": content_type}
    )
    assert (status, body["code"]) == (400, "invalid_request")
    assert emu.project_ids == ()


@pytest.mark.asyncio
async def test_huge_numbers_are_bounded_not_a_server_error(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Once an OverflowError in the credit arithmetic (500): the billed clip length is capped instead.
    body = {"start_seconds": 0, "end_seconds": 1e308,
            "assets": {"image_file_path": "api-assets/a.png", "audio_file_path": "api-assets/a.mp3"},
            "style": {"generation_mode": "pro"}}  # fmt: skip
    status, created = await call(http, "POST", emu.url + "/v1/ai-talking-photo", json=body)
    assert status == 200
    assert created["credits_charged"] == 3 * 3600 * 30
    big = {**FACE_SWAP, "end_seconds": 10**400}  # a JSON integer no float can hold
    status, created = await call(http, "POST", emu.url + "/v1/face-swap", json=big)
    assert status == 200, created


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        # Values the official SDK documents that the emulator once refused (its rules came from older models).
        ("/v1/image-to-video", {"end_seconds": 5, "model": "ltx-2.5", "resolution": "360p",
                                "assets": {"image_file_path": "api-assets/id/1.png"}}),
        ("/v1/text-to-video", {"end_seconds": 5, "model": "seedance-2.5", "style": {"prompt": "a fox"}}),
        ("/v1/text-to-video", {"end_seconds": 5, "model": "wan-3.0", "style": {"prompt": "a fox"}}),
        ("/v1/ai-image-upscaler", {"scale_factor": 2, "style": {"mode": "balanced"},
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}),
        ("/v1/ai-image-upscaler", {"scale_factor": 2, "style": {"mode": "preserve"},
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}),
        ("/v1/ai-music-generator", {"duration": 30, "style": {"prompt": "lo-fi"}}),
    ],
)  # fmt: skip
async def test_values_the_official_sdk_documents_are_accepted(
    emu: Emulator, http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> None:
    status, answer = await call(http, "POST", emu.url + path, json=body)
    assert status == 200, answer


@pytest.mark.asyncio
async def test_a_handler_failing_on_unexpected_input_answers_400_not_500(
    emu: Emulator,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ArithmeticError("a case no rule foresaw")

    monkeypatch.setattr(emu._state, "start_render", broken)
    status, body = await call(http, "POST", emu.url + "/v1/ai-image-generator", json=IMAGE)
    assert (status, body["code"]) == (400, "invalid_request")
    assert (
        "ArithmeticError: a case no rule foresaw" in caplog.text
    )  # the trace goes to the log, not the client


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "'limit' must be greater than or equal to 1"),
        ("limit=101", "'limit' must be less than or equal to 100"),
        ("limit=2.5", "'limit' must be an integer"),
        ("type=poster", "'type' must be one of: character, reference, voice, moodboard, brand_kit"),
        ("cursor=", "'cursor' must not be empty"),
    ],
)
async def test_query_parameters_follow_the_spec_rules(
    emu: Emulator, http: aiohttp.ClientSession, query: str, message: str
) -> None:
    answer = await call(http, "GET", f"{emu.url}/v1/saved-items?{query}")
    assert answer == (400, {"code": "invalid_request", "message": message})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "credits"),
    [
        # "Each character costs 0.1 credits. The cost is rounded up to the nearest whole number."
        ("/v1/ai-voice-generator", {"style": {"prompt": "x" * 95, "voice_name": "Morgan Freeman"}}, 10),
        ("/v1/ai-voice-cloner", {"style": {"prompt": "x" * 5},
                                 "assets": {"audio_file_path": "api-assets/id/1.mp3"}}, 1),
        # "Each 2x upscale costs 50 credits for balanced/creative modes, and 25 credits for preserve ... 4x
        # upscale costs 200 and 100 credits respectively."
        ("/v1/ai-image-upscaler", {"scale_factor": 2,
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}, 50),
        ("/v1/ai-image-upscaler", {"scale_factor": 2, "style": {"mode": "preserve"},
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}, 25),
        ("/v1/ai-image-upscaler", {"scale_factor": 4, "style": {"mode": "creative"},
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}, 200),
        ("/v1/ai-image-upscaler", {"scale_factor": 4, "style": {"mode": "preserve"},
                                   "assets": {"image_file_path": "api-assets/id/1.png"}}, 100),
    ],
)  # fmt: skip
async def test_prices_the_spec_states_are_charged(
    emu: Emulator, http: aiohttp.ClientSession, path: str, body: dict[str, Any], credits: int
) -> None:
    before = emu.credits
    status, created = await call(http, "POST", emu.url + path, json=body)
    assert (status, created["credits_charged"], before - emu.credits) == (200, credits, credits)


@pytest.mark.asyncio
async def test_creates_answer_402_once_credits_are_spent(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.credits = 12
    # 5 credits per image
    first = await create(http, emu, "/v1/ai-image-generator", {**IMAGE, "image_count": 2})
    assert emu.credits == 2
    assert await call(http, "POST", emu.url + "/v1/ai-image-generator", json=IMAGE) == (
        402,
        {"code": "insufficient_credits", "message": "Not enough credits to create this render"},
    )
    emu.cancel(first)  # a canceled render is refunded
    assert emu.credits == 12
    await create(http, emu, "/v1/ai-image-generator", IMAGE)


@pytest.mark.asyncio
async def test_delete_is_204_and_the_project_stays_readable_but_disabled(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    project_id = emu.create_project("image", status="complete")
    url = f"{emu.url}/v1/image-projects/{project_id}"
    download = emu.download_url(project_id)
    status, body = await call(http, "DELETE", url)
    assert (status, body) == (204, "")
    _, project = await call(http, "GET", url)
    assert project["enabled"] is False and project["downloads"] == []
    assert (await fetch(http, download))[0] == 404  # the files are gone with the project


@pytest.mark.asyncio
async def test_control_route_inserts_projects_with_chosen_durations(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    route = emu.url + "/_emulator/projects"
    status, answer = await call(http, "POST", route, json={"kind": "image", "durations": [1, 3.5, 0]})
    assert status == 200
    ids = answer["ids"]
    assert len(ids) == 3 and ids == list(emu.project_ids)

    async def statuses() -> list[str]:
        return [(await call(http, "GET", f"{emu.url}/v1/image-projects/{i}"))[1]["status"] for i in ids]

    assert await statuses() == ["queued", "queued", "complete"]
    clock.advance(1.0)
    assert await statuses() == ["complete", "rendering", "complete"]
    clock.advance(2.5)
    assert await statuses() == ["complete", "complete", "complete"]

    failed = {"kind": "audio", "durations": [0], "outcome": "error"}
    status, answer = await call(http, "POST", route, json=failed)
    project = emu.project(answer["ids"][0])
    assert (status, project["status"], project["error"]["code"]) == (200, "error", "text_too_long")


@pytest.mark.asyncio
async def test_control_route_needs_the_token_and_a_valid_body(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    route = emu.url + "/_emulator/projects"
    async with aiohttp.ClientSession() as anonymous:
        assert (await call(anonymous, "POST", route, json={"kind": "video", "durations": [1]}))[0] == 401
    for body in (
        {"kind": "gif", "durations": [1]},
        {"kind": "video", "durations": [-1]},
        {"kind": "video", "durations": "1"},
        {"kind": "video", "durations": [1], "outcome": "done"},
    ):
        assert (await call(http, "POST", route, json=body))[0] == 422, body
    assert emu.project_ids == ()


# -- outputs and downloads ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_multi_image_projects_have_one_download_per_image(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    project_id = await create(http, emu, "/v1/ai-image-generator", {**IMAGE, "image_count": 3})
    clock.advance(5)
    _, project = await call(http, "GET", f"{emu.url}/v1/image-projects/{project_id}")
    assert project["image_count"] == 3 and project["credits_charged"] == 15
    bodies = [(await fetch(http, item["url"]))[1] for item in project["downloads"]]
    assert [len(body) for body in bodies] == [emu.output_size] * 3
    assert bodies == [emu.output_bytes(project_id, index) for index in range(3)]
    assert len(set(bodies)) == 3
    assert all(body.startswith(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") for body in bodies)


@pytest.mark.asyncio
async def test_outputs_start_with_real_file_signatures(emu: Emulator, http: aiohttp.ClientSession) -> None:
    video = emu.create_project("video", status="complete", output_size=5000)
    audio = emu.create_project("audio", status="complete", output_size=5000)
    gif = emu.create_project("image", type="AI_GIF", status="complete")
    _, mp4, response = await fetch(http, emu.download_url(video))
    assert mp4[4:12] == b"ftypisom" and response.headers["Content-Type"] == "video/mp4"
    _, wav, response = await fetch(http, emu.download_url(audio))
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt " and wav[36:40] == b"data"
    assert int.from_bytes(wav[4:8], "little") == 5000 - 8
    assert int.from_bytes(wav[40:44], "little") == 5000 - 44
    assert response.headers["Content-Type"] == "audio/wav"
    _, gif_bytes, _ = await fetch(http, emu.download_url(gif))
    assert gif_bytes.startswith(b"GIF89a")
    assert emu.download_url(gif).split("?")[0].endswith(f"/outputs/{gif}/0/output.gif")


@pytest.mark.asyncio
async def test_range_requests_return_exact_slices(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = emu.create_project("video", status="complete", output_size=1_000_000)
    url, expected = emu.download_url(project_id), emu.output_bytes(project_id)

    status, body, response = await fetch(http, url, headers={"Range": "bytes=1000-299999"})
    assert (status, body) == (206, expected[1000:300000])
    assert response.headers["Content-Range"] == "bytes 1000-299999/1000000"
    assert response.headers["Content-Length"] == "299000"
    status, body, response = await fetch(http, url, headers={"Range": "bytes=999990-"})
    assert (status, body, response.headers["Content-Range"]) == (
        206,
        expected[-10:],
        "bytes 999990-999999/1000000",
    )
    status, body, _ = await fetch(http, url, headers={"Range": "bytes=-5"})
    assert (status, body) == (206, expected[-5:])
    status, _, response = await fetch(http, url, headers={"Range": "bytes=1000000-"})
    assert (status, response.headers["Content-Range"]) == (416, "bytes */1000000")

    status, body, response = await fetch(http, url, headers={"Range": "bytes=10-19", "If-Range": '"stale"'})
    assert (status, len(body)) == (200, 1_000_000)
    etag = response.headers["ETag"]
    assert (await fetch(http, url, headers={"Range": "bytes=10-19", "If-Range": etag}))[:2] == (
        206,
        expected[10:20],
    )

    emu.honor_range = False
    status, body, response = await fetch(http, url, headers={"Range": "bytes=10-19"})
    assert (status, body) == (200, expected)
    assert "Accept-Ranges" not in response.headers and "Content-Range" not in response.headers


@pytest.mark.asyncio
async def test_head_reports_the_size_without_a_body(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = emu.create_project("audio", status="complete", output_size=123_456)
    async with http.head(emu.download_url(project_id)) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "123456"
        assert await response.read() == b""


@pytest.mark.asyncio
async def test_download_urls_are_signed_and_expire(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    emu.url_ttl = 60
    project_id = emu.create_project("video", status="complete", output_size=100)
    _, project = await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
    url = project["downloads"][0]["url"]
    assert url.startswith(f"{emu.url}/outputs/{project_id}/0/output.mp4?expires=")
    assert project["downloads"][0]["expires_at"].endswith("Z")

    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    status, body, _ = await fetch(http, forged)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    other_file = url.replace("/0/output.mp4", "/1/output.mp4")
    assert (await fetch(http, other_file))[0] == 403

    clock.advance(59)
    assert (await fetch(http, url))[0] == 200
    clock.advance(2)
    status, body, _ = await fetch(http, url)
    assert status == 403 and b"Request has expired" in body
    _, fresh = await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
    assert fresh["downloads"][0]["url"] != url
    assert (await fetch(http, fresh["downloads"][0]["url"]))[:2] == (200, emu.output_bytes(project_id))


@pytest.mark.asyncio
async def test_face_detection_has_its_own_lifecycle_and_shape(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    body = {"confidence_score": 0.5, "assets": {"target_file_path": "api-assets/id/1234.png"}}
    status, created = await call(http, "POST", emu.url + "/v1/face-detection", json=body)
    assert status == 200 and created == {"id": created["id"], "credits_charged": 0}
    url = f"{emu.url}/v1/face-detection/{created['id']}"
    assert (await call(http, "GET", url))[1] == {
        "id": created["id"],
        "credits_charged": 0,
        "status": "queued",
        "faces": [],
    }
    clock.advance(3)
    _, detection = await call(http, "GET", url)
    assert detection["status"] == "complete" and 1 <= len(detection["faces"]) <= 3
    assert detection["faces"][0]["path"] == f"api-assets/{created['id']}/0-0.png"
    status, image, _ = await fetch(http, detection["faces"][0]["url"])
    assert status == 200 and image.startswith(b"\x89PNG")


# -- uploads -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_uploads_are_streamed_and_kept_byte_exact(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    items = [{"type": "video", "extension": "mp4"}, {"type": "image", "extension": "png"}]
    status, answer = await call(http, "POST", emu.url + "/v1/files/upload-urls", json={"items": items})
    assert status == 200
    paths = [item["file_path"] for item in answer["items"]]
    batch = paths[0].split("/")[1]
    assert paths == [f"api-assets/{batch}/0.mp4", f"api-assets/{batch}/1.png"]
    assert all(set(item) == {"upload_url", "expires_at", "file_path"} for item in answer["items"])

    payload = bytes(range(256)) * 12_289  # ~3 MiB, sent as a chunked stream

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    async with http.put(answer["items"][0]["upload_url"], data=stream()) as response:
        assert response.status == 200
    async with http.put(answer["items"][1]["upload_url"], data=b"\x89PNG tiny") as response:
        assert response.status == 200
    video, image = emu.uploads[paths[0]], emu.uploads[paths[1]]
    assert (video.size, video.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
    assert video.read_bytes() == payload and image.read_bytes() == b"\x89PNG tiny"

    clock.advance(emu.url_ttl + 1)
    async with http.put(answer["items"][1]["upload_url"], data=b"late") as response:
        assert response.status == 403
    assert emu.uploads[paths[1]].read_bytes() == b"\x89PNG tiny"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("items", "status", "message"),
    [
        (
            [{"type": "video", "extension": "mp4"}, {"type": "audio", "extension": "mp4"}],
            422,
            "'mp4' is an invalid audio extension. Possible extensions are "
            "'mp3, wav, aac, flac, webm, weba, m4a, opus, ogg, oga, aiff, amr'",
        ),
        (
            [{"type": "image", "extension": ".png"}],
            400,
            "'items[0].extension' must match the pattern ^[a-z0-9]+$",
        ),
        (
            [{"type": "image", "extension": "png\n"}],
            400,
            "'items[0].extension' must match the pattern ^[a-z0-9]+$",
        ),
        ([{"type": "gif", "extension": "gif"}], 400, "'items[0].type' must be one of: video, audio, image"),
        ([], 400, "'items' must not be empty"),
    ],
)
async def test_upload_urls_reject_bad_items(
    emu: Emulator, http: aiohttp.ClientSession, items: list[dict[str, str]], status: int, message: str
) -> None:
    code = "invalid_request" if status == 400 else "unprocessable_entity"
    assert await call(http, "POST", emu.url + "/v1/files/upload-urls", json={"items": items}) == (
        status,
        {"code": code, "message": message},
    )


# -- faults ------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_with_retry_after_in_seconds_then_recovers(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    project_id = emu.create_project("video")
    url = f"{emu.url}/v1/video-projects/{project_id}"
    fault = emu.faults.add(route="GET /v1/video-projects/{id}", retry_after=3, retry_after_ms=2500)
    async with http.get(url) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3" and response.headers["retry-after-ms"] == "2500"
        assert await response.json() == {"code": "too_many_requests", "message": "Too Many Requests"}
    assert (await call(http, "GET", url))[0] == 200
    assert (fault.hits, fault.remaining) == (1, 0)


@pytest.mark.asyncio
async def test_429_with_retry_after_as_an_http_date(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(route="/v1/*", status=429, retry_after=2, retry_after_format="http-date")
    async with http.get(f"{emu.url}/v1/video-projects/x") as response:
        assert response.status == 429
        when = parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
    assert when == math.ceil(emu.unix_time() + 2)


@pytest.mark.asyncio
async def test_5xx_with_json_or_an_html_gateway_page(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = emu.create_project("video")
    url = f"{emu.url}/v1/video-projects/{project_id}"
    emu.faults.add(route="GET /v1/video-projects/{id}", status=503, times=2)
    emu.faults.add(route="GET /v1/video-projects/{id}", status=502, html=True)
    unavailable = {"code": "service_unavailable", "message": "Service Unavailable"}
    assert await call(http, "GET", url) == (503, unavailable)
    assert await call(http, "GET", url) == (503, unavailable)
    async with http.get(url) as response:
        page = await response.text()
        assert (response.status, response.content_type) == (502, "text/html")
    assert "<title>502 Bad Gateway</title>" in page and "nginx" in page
    assert (await call(http, "GET", url))[0] == 200
    assert emu.counters.count("GET /v1/video-projects/{id}", id=project_id) == 4


@pytest.mark.asyncio
async def test_reset_before_the_request_takes_effect_creates_nothing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(route="POST /v1/*", reset="before")
    credits = emu.credits
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", emu.url + "/v1/face-swap", json=FACE_SWAP)
    assert emu.project_ids == () and emu.credits == credits
    record = emu.counters.requests("POST /v1/face-swap")[0]
    assert record.status is None


@pytest.mark.asyncio
async def test_reset_after_the_request_took_effect_keeps_the_render(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(route="POST /v1/face-swap", reset="after")
    credits = emu.credits
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", emu.url + "/v1/face-swap", json=FACE_SWAP)
    assert len(emu.project_ids) == 1 and emu.credits == credits - 450
    assert emu.counters.count("POST /v1/face-swap") == 1


@pytest.mark.asyncio
async def test_a_slow_response_finishes_after_a_fast_one(emu: Emulator, http: aiohttp.ClientSession) -> None:
    slow, fast = emu.create_project("video"), emu.create_project("video")
    emu.faults.add(route="GET /v1/video-projects/{id}", project_id=slow, delay=0.1)
    finished: list[str] = []

    async def get(project_id: str) -> None:
        await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
        finished.append(project_id)

    slow_task = asyncio.create_task(get(slow))
    await get(fast)
    await slow_task
    assert finished == [fast, slow]


@pytest.mark.asyncio
async def test_truncated_download_sends_full_length_then_closes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    project_id = emu.create_project("video", status="complete", output_size=500_000)
    emu.faults.add(route="GET /outputs/{id}/{index}/{name}", truncate_after=300_001)
    received = bytearray()

    async def read_all(response: aiohttp.ClientResponse) -> None:
        async for chunk in response.content.iter_any():
            received.extend(chunk)

    async with http.get(emu.download_url(project_id)) as response:
        assert response.headers["Content-Length"] == "500000"
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_all(response)
    assert bytes(received) == emu.output_bytes(project_id, end=300_001)
    assert (await fetch(http, emu.download_url(project_id)))[1] == emu.output_bytes(project_id)


@pytest.mark.asyncio
async def test_truncated_json_response_is_a_payload_error(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = emu.create_project("image")
    emu.faults.add(route="GET /v1/image-projects/{id}", truncate_after=10)
    with pytest.raises(aiohttp.ClientPayloadError):
        await call(http, "GET", f"{emu.url}/v1/image-projects/{project_id}")


@pytest.mark.asyncio
async def test_expired_fault_refuses_a_valid_download_url(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = emu.create_project("image", status="complete")
    url = emu.download_url(project_id)
    emu.faults.add(route="GET /outputs/*", project_id=project_id, expired=True)
    status, body, _ = await fetch(http, url)
    assert status == 403 and b"Request has expired" in body
    assert (await fetch(http, url))[0] == 200


@pytest.mark.asyncio
async def test_token_bucket_rate_limit_refills_on_the_clock(
    emu: Emulator, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    url = f"{emu.url}/v1/video-projects/{emu.create_project('video')}"
    emu.faults.rate_limit(rate=2, burst=3)
    statuses = [(await call(http, "GET", url))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    async with http.get(url) as response:
        assert (response.headers["Retry-After"], response.headers["retry-after-ms"]) == ("1", "500")
    clock.advance(0.25)
    async with http.get(url) as response:
        assert (response.status, response.headers["retry-after-ms"]) == (429, "250")
    clock.advance(0.25)
    assert (await call(http, "GET", url))[0] == 200
    emu.faults.clear()
    assert [(await call(http, "GET", url))[0] for _ in range(5)] == [200] * 5


@pytest.mark.asyncio
async def test_faults_target_one_project_and_route_globs(emu: Emulator, http: aiohttp.ClientSession) -> None:
    hit, spared = emu.create_project("audio"), emu.create_project("audio")
    emu.faults.add(route="GET /v1/*", project_id=hit, status=500, times=None)
    assert (await call(http, "GET", f"{emu.url}/v1/audio-projects/{spared}"))[0] == 200
    for _ in range(3):
        assert (await call(http, "GET", f"{emu.url}/v1/audio-projects/{hit}"))[0] == 500
    assert (await call(http, "DELETE", f"{emu.url}/v1/audio-projects/{hit}"))[0] == 204


def test_fault_rules_are_validated() -> None:
    emu = Emulator()
    with pytest.raises(ValueError, match="choose one"):
        emu.faults.add(status=500, reset="before")
    with pytest.raises(ValueError, match="needs an effect"):
        emu.faults.add(route="*")
    with pytest.raises(ValueError, match="times"):
        emu.faults.add(status=500, times=0)
    assert emu.faults.add(retry_after=1).status == 429


# -- counters ----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_counters_and_request_log(emu: Emulator, http: aiohttp.ClientSession) -> None:
    project_id = await create(http, emu, "/v1/face-swap", FACE_SWAP)
    for _ in range(3):
        await call(http, "GET", f"{emu.url}/v1/video-projects/{project_id}")
    await call(http, "GET", f"{emu.url}/v1/video-projects/other")
    assert emu.counters.count("POST /v1/face-swap") == 1
    assert emu.counters.count("GET /v1/video-projects/{id}") == 4
    assert emu.counters.count("GET /v1/video-projects/{id}", id=project_id) == 3
    assert emu.counters.count("/v1/*") == 5 and emu.counters.count() == 5
    post = emu.counters.requests("POST /v1/*")
    assert [(r.method, r.path, r.status) for r in post] == [("POST", "/v1/face-swap", 200)]
    assert post[0].headers["user-agent"] == "emulator-tests/1.0"
    assert post[0].headers["Authorization"] == f"Bearer {emu.token}"
    emu.reset_counters()
    assert (emu.counters.count(), emu.counters.requests(), emu.counters.max_in_flight) == (0, [], 0)


@pytest.mark.asyncio
async def test_held_requests_make_in_flight_counts_exact(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ids = [emu.create_project("video") for _ in range(5)]
    gate = emu.faults.add(route="GET /v1/video-projects/{id}", hold=True, times=None)
    tasks = [asyncio.create_task(call(http, "GET", f"{emu.url}/v1/video-projects/{i}")) for i in ids]
    for _ in range(5000):  # wait for the five requests to arrive (not for an outcome), at most ~5 s
        if gate.held == 5:
            break
        await asyncio.sleep(0.001)
    assert (emu.counters.in_flight, emu.counters.max_in_flight) == (5, 5)
    gate.release()
    assert [status for status, _ in await asyncio.gather(*tasks)] == [200] * 5
    assert (emu.counters.in_flight, emu.counters.max_in_flight) == (0, 5)


# -- serving modes -----------------------------------------------------------------------------------------


def _thread_names() -> set[str]:
    return {thread.name for thread in threading.enumerate()}


def test_thread_mode_serves_blocking_clients_and_leaves_no_thread() -> None:
    before = _thread_names()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with Emulator(speed=0.001, token="mhk_test_thread") as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        project_id = emu.create_project("audio", status="complete")
        request = urllib.request.Request(
            f"{emu.url}/v1/audio-projects/{project_id}", headers={"Authorization": "Bearer mhk_test_thread"}
        )
        with opener.open(request) as response:
            assert json.load(response)["status"] == "complete"
        anonymous = f"{emu.url}/v1/audio-projects/{project_id}"
        with pytest.raises(urllib.error.HTTPError) as unauthorized:
            opener.open(anonymous)
        unauthorized.value.close()
        assert unauthorized.value.code == 401
    assert _thread_names() == before
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url


def test_thread_mode_reports_a_port_in_use() -> None:
    before = _thread_names()
    with (
        Emulator() as first,
        pytest.raises(OSError, match="address already in use"),
        Emulator(port=first.port),
    ):
        pass
    assert _thread_names() == before


@pytest.mark.asyncio
async def test_default_token_and_repr_without_secrets() -> None:
    emulator = Emulator()
    assert emulator.token == "mhk_test_emulator"
    assert repr(emulator) == "<Emulator not running>"
    async with emulator:
        assert repr(emulator) == f"<Emulator {emulator.url}>"
    await emulator.stop()  # stopping twice is harmless


EMULATOR_COMMANDS = {
    "python -m magic_hour_async.testing": [sys.executable, "-m", "magic_hour_async.testing"],
    "magic-hour-async emulator": [sys.executable, "-m", "magic_hour_async", "emulator"],
}


@pytest.fixture(params=sorted(EMULATOR_COMMANDS))
def cli(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    options = ["--host", "127.0.0.1", "--port", "0", "--seed", "3", "--token", "tok", "--error-rate", "0.5",
               "--webhook-url", "http://127.0.0.1:9/hooks", "--webhook-secret", "whsec_cli"]  # fmt: skip
    command = [*EMULATOR_COMMANDS[request.param], *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdout, process.stderr):
        assert stream is not None
        stream.close()


def test_both_emulator_commands_serve_until_interrupted_and_print_exports(cli: subprocess.Popen[str]) -> None:
    # Same options for both (one definition, magic_hour_async/_cli/_emulator.py); stdout is only `export`s.
    assert cli.stdout is not None and cli.stderr is not None
    first = cli.stdout.readline().strip()
    assert first.startswith("export MAGIC_HOUR_BASE_URL=http://127.0.0.1:")
    url = first.split("=", 1)[1]
    assert cli.stdout.readline().strip() == "export MAGIC_HOUR_API_KEY=tok"
    assert cli.stdout.readline().strip() == "export MAGIC_HOUR_WEBHOOK_SECRET=whsec_cli"
    assert cli.stderr.readline().strip() == f"Magic Hour emulator listening on {url}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{url}/v1/video-projects/x", headers={"Authorization": "Bearer tok"})
    with pytest.raises(urllib.error.HTTPError) as missing:
        opener.open(request)
    missing.value.close()
    assert missing.value.code == 404
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=60) == 0  # a guard against a hang, not a speed bound: a loaded machine is slow


def test_sigterm_stops_the_emulator_cleanly() -> None:
    command = [*EMULATOR_COMMANDS["python -m magic_hour_async.testing"], "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("export MAGIC_HOUR_BASE_URL=")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("name", sorted(EMULATOR_COMMANDS))
def test_a_busy_port_is_one_line_and_exit_2(name: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*EMULATOR_COMMANDS[name], "--port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}:"), (
        result.stderr
    )


@pytest.mark.parametrize("name", sorted(EMULATOR_COMMANDS))
def test_an_unknown_webhook_event_is_exit_2(name: str) -> None:
    command = [*EMULATOR_COMMANDS[name], "--port", "0", "--webhook-url", "http://127.0.0.1:9/h",
               "--webhook-events", "video.completed,video.exploded"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "video.exploded" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_both_emulator_commands_have_the_same_options() -> None:
    import argparse

    from magic_hour_async._cli._main import build_parser

    standalone = argparse.ArgumentParser()
    from magic_hour_async._cli._emulator import add_arguments

    add_arguments(standalone)
    argv = ["--host", "0.0.0.0", "--port", "1", "--token", "t", "--seed", "2", "--speed", "0.5",
            "--error-rate", "0.1", "--webhook-url", "http://x", "--webhook-secret", "s",
            "--webhook-events", "image.completed"]  # fmt: skip
    via_cli = vars(build_parser().parse_args(["emulator", *argv]))
    for key in ("command", "token", "base_url", "json"):  # the top-level CLI's own options
        via_cli.pop(key, None)
    parsed = vars(standalone.parse_args(argv))
    parsed.pop("token")
    assert via_cli == parsed


# -- pytest plugin -----------------------------------------------------------------------------------------


@pytest.fixture
def _marked(request: pytest.FixtureRequest) -> None:
    # Same as @pytest.mark.magic_hour_emulator(...) on the test, applied at run time instead: a decorator is
    # evaluated at import, before a plugin loaded through pytest_plugins has registered the marker.
    request.node.add_marker(pytest.mark.magic_hour_emulator(seed=5, token="mhk_test_marker"))


@pytest.mark.usefixtures("_marked")
def test_plugin_fixture_in_a_sync_test(magic_hour_emulator: Emulator) -> None:
    assert magic_hour_emulator.token == "mhk_test_marker"
    assert magic_hour_emulator.speed == 0.01
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    project_id = magic_hour_emulator.create_project("image", status="complete")
    request = urllib.request.Request(
        f"{magic_hour_emulator.url}/v1/image-projects/{project_id}",
        headers={"Authorization": "Bearer mhk_test_marker"},
    )
    with opener.open(request) as response:
        assert json.load(response)["id"] == project_id


@pytest.mark.asyncio
async def test_plugin_fixture_in_an_async_test(magic_hour_env: Emulator) -> None:
    assert os.environ["MAGIC_HOUR_BASE_URL"] == magic_hour_env.url
    headers = {"Authorization": f"Bearer {os.environ['MAGIC_HOUR_API_KEY']}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        project_id = await create(http, magic_hour_env, "/v1/ai-voice-generator", VOICE)
    assert magic_hour_env.counters.count("POST /v1/ai-voice-generator") == 1
    assert magic_hour_env.project(project_id)["type"] == "VOICE_GENERATOR"


def test_plugin_factory_starts_several_emulators(magic_hour_emulator_factory: Any) -> None:
    one, two = magic_hour_emulator_factory(seed=1), magic_hour_emulator_factory(seed=1)
    assert one.url != two.url
    assert one.create_project("video") == two.create_project("video")


def test_every_create_operation_of_the_generated_rules_has_a_tool_row() -> None:
    from magic_hour_async.testing._rules_generated import OPERATIONS
    from magic_hour_async.testing._tools import TOOLS

    creates = {
        op.split(" ", 1)[1] for op, entry in OPERATIONS.items() if op.startswith("POST ") and "kind" in entry
    }
    assert creates == {tool.path for tool in TOOLS}
    assert {tool.kind for tool in TOOLS if f"POST {tool.path}" in OPERATIONS} == {"video", "image", "audio"}


def test_the_emulator_serves_every_create_endpoint_of_the_sdk() -> None:
    from magic_hour_async import _generated as generated
    from magic_hour_async._resources.create import AsyncCreateResource
    from magic_hour_async.testing._tools import TOOLS

    resources = [getattr(generated, name) for name in generated.__all__]
    paths = {r._path for r in resources if isinstance(r, type) and issubclass(r, AsyncCreateResource)}
    assert paths == {tool.path for tool in TOOLS}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Large enums, item and string types come from the spec's rules too (once left to the SDK's models).
        ({"image_count": 1, "style": {"prompt": "x", "tool": "no-such-tool"}}, "'style.tool' must be one of"),
        ({"image_count": 1, "style": {"prompt": 5}}, "'style.prompt' must be a string"),
        ({"image_count": 1, "style": {"prompt": "x"}, "name": ["n"]}, "'name' must be a string"),
    ],
)
async def test_spec_rules_answer_400(body: dict[str, Any], message: str) -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with http.post(f"{emu.url}/v1/ai-image-generator", json=body, headers=headers) as response:
            answer = await response.json()
        assert response.status == 400
        assert answer["code"] == "invalid_request"
        assert answer["message"].startswith(message)
