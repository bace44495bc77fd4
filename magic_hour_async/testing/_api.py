"""Handlers for the JSON API under ``/v1``: every operation of the spec the rules were generated from.

Every create endpoint is served by one handler parameterised by its :class:`~._tools.Tool` row. Checks run in
the API's order: 400 ``invalid_request`` for a missing, non-JSON or schema-breaking body (the generated rules
of ``_rules_generated``, applied by ``_validation``), 422 ``unprocessable_entity`` for a body that breaks a
rule the spec states only in prose (``_extras``), 402 ``insufficient_credits`` when the balance cannot cover
the render. Auth (401 ``unauthorized``) is checked earlier, in a middleware. Unknown ids, and ids of another
kind (a video id under ``/v1/image-projects/``), are 404 ``not_found``. Every error body is the newest
spec's ``{"code": ..., "message": ...}``; the message names the field at fault.

One route is not the API's: ``POST /_emulator/projects`` inserts fixture projects with chosen render
durations, the HTTP twin of ``Emulator.create_project`` for an emulator in another process (the SDK's
benchmarks use it). It lives outside ``/v1``, is in no spec, and needs the emulator's bearer token all
the same.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from aiohttp import web

from ._bodies import create_body, detection_body, project_body
from ._extras import check_prose
from ._lifecycle import VideoInfo, job_error
from ._signing import iso
from ._state import STATE_KEY
from ._tools import KINDS, TOOLS, Kind, Tool
from ._validation import Problem, check_operation, read_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The ``code`` of each error status (the newest spec's enums; 405 and 429 are not in the spec).
ERROR_CODES: Mapping[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "unprocessable_entity",
    429: "too_many_requests",
}


def message(status: int, text: str, code: str | None = None) -> web.Response:
    """The API's error shape: ``{"code": ..., "message": text}``."""
    body = {"code": code or ERROR_CODES.get(status, "invalid_request"), "message": text}
    return web.json_response(body, status=status)


def refuse(problem: Problem) -> web.Response:
    """The error response for a :class:`Problem`."""
    return message(problem.status, problem.message, problem.code)


def base_url(request: web.Request) -> str:
    """Where the client reached us; download and upload URLs point back here."""
    return f"{request.scheme}://{request.host}"


async def read_object(request: web.Request) -> Mapping[str, Any] | web.Response:
    """The JSON object body, or the 400 response for a missing, non-JSON or non-object body."""
    body = read_json(await request.read(), request.headers.get("Content-Type"))
    if isinstance(body, Problem):
        return refuse(body)
    if not isinstance(body, dict):
        return message(400, "Request body must be a JSON object")
    return cast("dict[str, Any]", body)


async def read_valid(request: web.Request, path: str) -> Mapping[str, Any] | web.Response:
    """The body of ``POST path`` once it passes the generated rules and the prose rules; else the refusal."""
    body = await read_object(request)
    if isinstance(body, web.Response):
        return body
    problem = check_operation(f"POST {path}", body)
    if problem is None:
        prose = check_prose(path, body)
        problem = prose[1] if prose is not None else None
    return body if problem is None else refuse(problem)


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
        body = await read_valid(request, tool.path)
        if isinstance(body, web.Response):
            return body
        project = request.app[STATE_KEY].start_render(tool, body)
        if project is None:
            return message(402, "Not enough credits to create this render")
        return web.json_response(create_body(project))

    return create


async def create_face_detection(request: web.Request) -> web.StreamResponse:
    """``POST /v1/face-detection``."""
    body = await read_valid(request, "/v1/face-detection")
    if isinstance(body, web.Response):
        return body
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


async def create_upload_urls(request: web.Request) -> web.StreamResponse:
    """``POST /v1/files/upload-urls``: one signed PUT URL per item, in request order."""
    body = await read_valid(request, "/v1/files/upload-urls")
    if isinstance(body, web.Response):
        return body
    items = cast("list[dict[str, str]]", body["items"])
    state, base = request.app[STATE_KEY], base_url(request)
    with state.lock:
        batch = state.new_id()
        expires = state.wall() + state.url_ttl
    answer: list[dict[str, str]] = []
    for number, item in enumerate(items):
        file_path = f"api-assets/{batch}/{number}.{item['extension']}"
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
