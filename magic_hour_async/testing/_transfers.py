"""Storage endpoints: signed downloads of outputs and signed PUT uploads of inputs.

These stand in for the storage bucket behind ``downloads[].url`` and ``upload_url``, so they answer like one:
403 with an XML ``AccessDenied`` body for a bad or expired signature, 404 ``NoSuchKey`` for a missing object.

Downloads stream the deterministic bytes of :mod:`._media` in chunks with a ``Content-Length``, honour a
single ``Range`` (206 + ``Content-Range``, 416 when unsatisfiable, ``If-Range`` against the ``ETag``) unless
``honor_range`` is off, and apply a matched ``truncate_after`` fault by closing the connection early. Uploads
stream the request body to a temporary file while hashing it: memory stays flat for any size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Literal

from aiohttp import web

from ._faults import current_fault, drop_connection
from ._media import CHUNK, CONTENT_TYPES, etag, parse_range
from ._state import STATE_KEY, State, UploadedFile

_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>\n'
)
FACE_IMAGE_SIZE = 4096


def storage_error(status: int, code: str, message: str) -> web.Response:
    """An S3-style XML error."""
    return web.Response(
        status=status, text=_XML.format(code=code, message=message), content_type="application/xml"
    )


def _authorise(request: web.Request, state: State) -> web.Response | None:
    fault = current_fault(request)
    reason = "Request has expired" if fault is not None and fault.expired else None
    reason = reason or state.signer.check(request.path, request.query, state.wall())
    return None if reason is None else storage_error(403, "AccessDenied", reason)


def _locate(state: State, owner: str, index: int, name: str) -> tuple[str, int] | None:
    """``(extension, size)`` of a downloadable output, if it exists now."""
    with state.lock:
        project = state.projects.get(owner)
        if project is not None:
            ready = project.enabled and project.status(state.clock()) == "complete"
            if ready and index < project.outputs and name == f"output.{project.extension}":
                return project.extension, project.output_size
            return None
        detection = state.detections.get(owner)
        complete = detection is not None and detection.status(state.clock()) == "complete"
        if complete and detection is not None and index < detection.faces and name == "output.png":
            return "png", FACE_IMAGE_SIZE
    return None


async def download(request: web.Request) -> web.StreamResponse:
    """``GET /outputs/{id}/{index}/{name}`` (and HEAD)."""
    state = request.app[STATE_KEY]
    denied = _authorise(request, state)
    if denied is not None:
        return denied
    owner, index = request.match_info["id"], int(request.match_info["index"])
    found = _locate(state, owner, index, request.match_info["name"])
    if found is None:
        return storage_error(404, "NoSuchKey", "The specified key does not exist.")
    extension, size = found
    key, tag = f"{owner}/{index}", etag(f"{owner}/{index}", size)
    headers = {"Content-Type": CONTENT_TYPES.get(extension, "application/octet-stream"), "ETag": tag}
    window: tuple[int, int] | Literal["unsatisfiable"] | None = None
    if state.honor_range:
        headers["Accept-Ranges"] = "bytes"
        if request.headers.get("If-Range", tag) == tag:
            window = parse_range(request.headers.get("Range"), size)
    if window == "unsatisfiable":
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    start, end = window if isinstance(window, tuple) else (0, size)
    status = 200
    if isinstance(window, tuple):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    fault = current_fault(request)
    budget = fault.truncate_after if fault is not None and fault.truncate_after is not None else None
    for chunk in state.media.chunks(key, extension, size, start, end):
        if budget is not None and len(chunk) >= budget:
            await response.write(chunk[:budget])
            drop_connection(request, reset=False)
            return response
        await response.write(chunk)
        if budget is not None:
            budget -= len(chunk)
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.StreamResponse:
    """``PUT /uploads/{file_path}``: store the body, streamed to disk, under its ``file_path``."""
    state = request.app[STATE_KEY]
    denied = _authorise(request, state)
    if denied is not None:
        return denied
    file_path = request.match_info["file_path"]
    directory = state.upload_dir()
    target = directory / hashlib.sha256(file_path.encode()).hexdigest()
    partial = target.with_suffix(".part")
    digest, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with partial.open("wb") as sink:
            async for chunk in request.content.iter_chunked(CHUNK):
                sink.write(chunk)
                digest.update(chunk)
                md5.update(chunk)
                size += len(chunk)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    stored = UploadedFile(
        file_path=file_path,
        size=size,
        sha256=digest.hexdigest(),
        path=target,
        content_type=request.headers.get("Content-Type"),
    )
    with state.lock:
        state.uploads[file_path] = stored
    return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})


def add_routes(app: web.Application) -> None:
    """Register the storage endpoints."""
    app.router.add_get(r"/outputs/{id}/{index:\d+}/{name}", download)
    app.router.add_put("/uploads/{file_path:api-assets/.+}", upload)
