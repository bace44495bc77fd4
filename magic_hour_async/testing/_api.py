"""Handlers for the JSON API under ``/v1``: every operation of the spec.

Every create endpoint is served by one handler parameterised by its :class:`~._tools.Tool` row. Checks run in
the API's order: 400 for a missing or non-JSON body, 422 for a body that breaks the endpoint's rules, 402 when
the credit balance cannot cover the render. Auth (401) is checked earlier, in a middleware. Unknown ids, and
ids of another kind (a video id under ``/v1/image-projects/``), are 404 ``{"message": "Not Found"}``.

One route is not the API's: ``POST /_emulator/projects`` inserts fixture projects with chosen render
durations, the HTTP twin of ``Emulator.create_project`` for an emulator in another process (the SDK's
benchmarks use it). It lives outside ``/v1``, is in no spec, and needs the emulator's bearer token all
the same.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from aiohttp import web

from .._generated.face_detection import FaceDetectionBody
from ._bodies import create_body, detection_body, project_body
from ._lifecycle import VideoInfo, job_error
from ._signing import iso
from ._state import STATE_KEY
from ._tools import KINDS, TOOLS, UPLOAD_EXTENSIONS, Kind, Tool, validate
from ._validation import body_models, check_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EXTENSION = re.compile(r"^[a-z0-9]+$")


def message(status: int, text: str) -> web.Response:
    """The API's error shape: ``{"message": text}``."""
    return web.json_response({"message": text}, status=status)


def base_url(request: web.Request) -> str:
    """Where the client reached us; download and upload URLs point back here."""
    return f"{request.scheme}://{request.host}"


async def read_object(request: web.Request) -> Mapping[str, Any] | web.Response:
    """The JSON object body, or the 400 response for a missing, non-JSON or non-object body."""
    raw = await request.read()
    if not raw.strip():
        return message(400, "Missing request body")
    try:
        body: object = json.loads(raw)
    except ValueError:
        return message(400, "Invalid JSON in request body")
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    return cast("dict[str, Any]", body)


def _project_handlers(kind: Kind) -> tuple[Handler, Handler]:
    async def get(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        with state.lock:
            project = state.find(kind, request.match_info["id"])
            if project is None:
                return message(404, "Not Found")
            body = project_body(state, base_url(request), project)
        return web.json_response(body)

    async def delete(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        with state.lock:
            project = state.find(kind, request.match_info["id"])
            if project is None:
                return message(404, "Not Found")
            project.enabled = False
        return web.Response(status=204)

    return get, delete


def _create_handler(tool: Tool) -> Handler:
    async def create(request: web.Request) -> web.StreamResponse:
        body = await read_object(request)
        if isinstance(body, web.Response):
            return body
        # The generated request model first (required fields, types, enums), then the table's numeric ranges.
        problem = check_body(body_models()[tool.path], body) or validate(tool, body)
        if problem is not None:
            return message(422, problem)
        project = request.app[STATE_KEY].start_render(tool, body)
        if project is None:
            return message(402, "Not enough credits to create this render")
        return web.json_response(create_body(project))

    return create


async def create_face_detection(request: web.Request) -> web.StreamResponse:
    """``POST /v1/face-detection``."""
    body = await read_object(request)
    if isinstance(body, web.Response):
        return body
    problem = check_body(FaceDetectionBody, body)
    if problem is not None:
        return message(422, problem)
    score: object = body.get("confidence_score", 0.5)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        return message(422, "'confidence_score' must be a number between 0 and 1")
    detection = request.app[STATE_KEY].start_detection()
    return web.json_response({"id": detection.id, "credits_charged": 0})


async def get_face_detection(request: web.Request) -> web.StreamResponse:
    """``GET /v1/face-detection/{id}``."""
    state = request.app[STATE_KEY]
    with state.lock:
        detection = state.detections.get(request.match_info["id"])
        if detection is None:
            return message(404, "Not Found")
        body = detection_body(state, base_url(request), detection)
    return web.json_response(body)


def _check_upload_item(item: object) -> tuple[str, str] | str:
    """``(type, extension)`` of a valid upload item, else the 422 message."""
    if not isinstance(item, dict):
        return "each item must be an object with 'type' and 'extension'"
    fields = cast("dict[str, object]", item)
    kind, extension = fields.get("type"), fields.get("extension")
    if not isinstance(kind, str) or kind not in UPLOAD_EXTENSIONS:
        return "'type' must be one of: video, audio, image"
    if not isinstance(extension, str) or not _EXTENSION.match(extension):
        return "'extension' must be lower-case letters and digits, without a dot"
    allowed = UPLOAD_EXTENSIONS[kind]
    if extension not in allowed:
        return f"'{extension}' is an invalid {kind} extension. Possible extensions are '{', '.join(allowed)}'"
    return kind, extension


async def create_upload_urls(request: web.Request) -> web.StreamResponse:
    """``POST /v1/files/upload-urls``: one signed PUT URL per item, in request order."""
    body = await read_object(request)
    if isinstance(body, web.Response):
        return body
    items: object = body.get("items")
    if not isinstance(items, list) or not items:
        return message(422, "'items' must be a non-empty array")
    checked = [_check_upload_item(item) for item in cast("list[object]", items)]
    for entry in checked:
        if isinstance(entry, str):
            return message(422, entry)
    state, base = request.app[STATE_KEY], base_url(request)
    with state.lock:
        batch = state.new_id()
        expires = state.wall() + state.url_ttl
    answer: list[dict[str, str]] = []
    for number, entry in enumerate(checked):
        assert not isinstance(entry, str)  # rejected above
        file_path = f"api-assets/{batch}/{number}.{entry[1]}"
        path = f"/uploads/{file_path}"
        answer.append(
            {
                "upload_url": f"{base}{path}?{state.signer.query(path, expires)}",
                "expires_at": iso(expires),
                "file_path": file_path,
            }
        )
    return web.json_response({"items": answer})


_FIXTURE_TYPES: Mapping[str, Tool] = {
    kind: next(t for t in TOOLS if t.kind == kind and t.type == default)
    for kind, default in (("video", "FACE_SWAP"), ("image", "AI_IMAGE"), ("audio", "VOICE_GENERATOR"))
}
_OUTCOMES = ("complete", "error", "canceled")


async def insert_projects(request: web.Request) -> web.StreamResponse:
    """``POST /_emulator/projects`` (test-only): insert fixture projects with explicit render durations.

    Body: ``{"kind": "video", "durations": [2.0, 2.0], "outcome": "complete"}``; each duration is in clock
    seconds (not scaled by ``speed``), as ``Emulator.create_project(duration=...)``. Answers
    ``{"ids": [...]}`` in the order of ``durations``. The projects are fixtures: no credits are charged.
    """
    state = request.app[STATE_KEY]
    supplied = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(supplied, f"Bearer {state.token}".encode()):
        return message(401, "Unauthorized")
    body = await read_object(request)
    if isinstance(body, web.Response):
        return body
    kind, durations, outcome = body.get("kind"), body.get("durations"), body.get("outcome", "complete")
    tool = _FIXTURE_TYPES.get(kind) if isinstance(kind, str) else None
    if tool is None:
        return message(422, "'kind' must be one of: video, image, audio")
    if not isinstance(durations, list) or not all(
        isinstance(d, (int, float)) and not isinstance(d, bool) and 0 <= d < math.inf
        for d in cast("list[object]", durations)
    ):
        return message(422, "'durations' must be an array of non-negative numbers of seconds")
    if outcome not in _OUTCOMES:
        return message(422, "'outcome' must be one of: complete, error, canceled")
    ids = [
        state.insert(
            tool.kind,
            tool.type,
            name=None,
            duration=float(duration),
            outcome=outcome,
            error=job_error(tool.kind) if outcome == "error" else None,
            credits=tool.credits * (5 if tool.kind == "video" else 1),
            outputs=1,
            output_size=state.output_size,
            extension=tool.output_extension,
            video=VideoInfo() if tool.kind == "video" else None,
        ).id
        for duration in cast("list[float]", durations)
    ]
    return web.json_response({"ids": ids})


def add_routes(app: web.Application) -> None:
    """Register every ``/v1`` operation on ``app``."""
    for kind in KINDS:
        get, delete = _project_handlers(kind)
        app.router.add_get(f"/v1/{kind}-projects/{{id}}", get, allow_head=False)
        app.router.add_delete(f"/v1/{kind}-projects/{{id}}", delete)
    for tool in TOOLS:
        app.router.add_post(tool.path, _create_handler(tool))
    app.router.add_post("/v1/face-detection", create_face_detection)
    app.router.add_get("/v1/face-detection/{id}", get_face_detection, allow_head=False)
    app.router.add_post("/v1/files/upload-urls", create_upload_urls)
    app.router.add_post("/_emulator/projects", insert_projects)
