"""The JSON bodies the API returns, built from emulator state.

Field for field what the spec's response schemas list, in snake_case. Where the spec *requires* fields it
never defines, the emulator follows the real bodies (``../shared/seeds``, WEBHOOKS.md section 6): video and
image projects carry ``total_frame_cost`` (equal to ``credits_charged``), video carries the deprecated single
``download`` (the first download or ``null``), and create responses carry ``estimated_frame_cost`` (video) or
``frame_cost`` (image). Every call signs fresh download URLs that expire ``url_ttl`` seconds from now.
"""

from __future__ import annotations

from typing import Any

from ._lifecycle import Detection, Project
from ._signing import iso
from ._state import State


def output_path(owner_id: str, index: int, extension: str) -> str:
    """The URL path of one output file (a project's render or a detected face)."""
    return f"/outputs/{owner_id}/{index}/output.{extension}"


def signed_url(state: State, base: str, path: str) -> dict[str, str]:
    """``{"url", "expires_at"}`` for ``path``, valid for ``state.url_ttl`` seconds."""
    expires = state.wall() + state.url_ttl
    return {"url": f"{base}{path}?{state.signer.query(path, expires)}", "expires_at": iso(expires)}


def project_body(state: State, base: str, project: Project) -> dict[str, Any]:
    """The body of ``GET /v1/{kind}-projects/{id}``."""
    status = project.status(state.clock())
    downloads: list[dict[str, str]] = []
    if status == "complete" and project.enabled:
        downloads = [
            signed_url(state, base, output_path(project.id, index, project.extension))
            for index in range(project.outputs)
        ]
    credits = project.credits_charged(status)
    body: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "status": status,
        "type": project.type,
        "created_at": iso(project.created_wall),
        "enabled": project.enabled,
        "credits_charged": credits,
        "downloads": downloads,
        "error": {"code": project.error[0], "message": project.error[1]}
        if status == "error" and project.error
        else None,
    }
    if project.kind == "image":
        body["image_count"] = project.outputs
        body["total_frame_cost"] = credits
    elif project.kind == "video":
        video = project.video
        assert video is not None  # video projects are always built with VideoInfo
        body.update(
            width=video.width,
            height=video.height,
            fps=project.fps(status),
            start_seconds=video.start_seconds,
            end_seconds=video.end_seconds,
            total_frame_cost=credits,
            download=downloads[0] if downloads else None,
        )
    return body


def create_body(project: Project) -> dict[str, Any]:
    """The body of a create endpoint."""
    body: dict[str, Any] = {"id": project.id, "credits_charged": project.credits}
    if project.kind == "video":
        body["estimated_frame_cost"] = project.credits
    elif project.kind == "image":
        body["frame_cost"] = project.credits
    return body


def detection_body(state: State, base: str, detection: Detection) -> dict[str, Any]:
    """The body of ``GET /v1/face-detection/{id}``: faces appear once the task is complete."""
    status = detection.status(state.clock())
    faces: list[dict[str, str]] = []
    if status == "complete":
        for index in range(detection.faces):
            url = signed_url(state, base, output_path(detection.id, index, "png"))["url"]
            faces.append({"path": f"api-assets/{detection.id}/{index}-0.png", "url": url})
    return {"id": detection.id, "credits_charged": 0, "status": status, "faces": faces}
