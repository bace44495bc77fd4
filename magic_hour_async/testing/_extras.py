"""Rules the spec states only in prose, hand-written: each cites the description it comes from.

The generated table (``_rules_generated``) holds what the spec's schemas say. Some rules live only in field
descriptions ("Must be greater than start_seconds", "Required if `video_source` is `file`"); a schema-driven
fuzzer sees a body breaking one of them as valid, and the API refuses it. They run after the schema checks,
so every value they read already has its documented type, and answer 422 ``unprocessable_entity`` (the
newest spec: "Change the request values before retrying"), naming the field.

:data:`PROSE_RULES` lists them by name; the schemathesis session (``tests/test_schemathesis.py``) accepts a
refusal of a schema-valid body only when one of these names explains it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs

from ._validation import UNPROCESSABLE, Problem

__all__ = ["PROSE_RULES", "UPLOAD_EXTENSIONS", "ProseRule", "check_prose"]

Body = Mapping[str, Any]


@attrs.frozen(kw_only=True)
class ProseRule:
    """A rule stated in a description: where it applies, what it cites, the check (field and message)."""

    name: str
    paths: frozenset[str]
    cites: str
    check: Callable[[Body], tuple[str, str] | None]  # (field, message)


def _get(body: Body, dotted: str) -> Any:
    node: object = body
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = cast("Mapping[str, object]", node)[part]
    return node


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def _end_after_start(body: Body) -> tuple[str, str] | None:
    start, end = _get(body, "start_seconds"), _get(body, "end_seconds")
    if isinstance(end, (int, float)) and end <= (start if isinstance(start, (int, float)) else 0):
        return "end_seconds", "'end_seconds' must be greater than 'start_seconds'"
    return None


def _clip_between(low: float, high: float) -> Callable[[Body], tuple[str, str] | None]:
    def check(body: Body) -> tuple[str, str] | None:
        start, end = _get(body, "start_seconds") or 0, _get(body, "end_seconds")
        if isinstance(end, (int, float)) and not low <= end - start <= high:
            return (
                "end_seconds",
                f"the clip must be {low:g}-{high:g} seconds long (end_seconds - start_seconds)",
            )
        return None

    return check


_TALKING_PHOTO_LIMITS = {"realistic": 300.0, "prompted": 45.0}


def _talking_photo_length(body: Body) -> tuple[str, str] | None:
    mode = _get(body, "style.generation_mode") or "realistic"  # the spec's default
    limit = _TALKING_PHOTO_LIMITS.get(mode)
    start, end = _get(body, "start_seconds"), _get(body, "end_seconds")
    numbers = isinstance(start, (int, float)) and isinstance(end, (int, float))
    if limit is not None and numbers and end - start > limit:
        return "end_seconds", f"the clip may be at most {limit:g} seconds long in {mode} mode"
    return None


def _required_when(
    switch: str, default: str | None, needs: Mapping[str, tuple[str, ...]]
) -> Callable[[Body], tuple[str, str] | None]:
    """``needs[value of switch]`` fields must be present (``default``: the switch's value when absent)."""

    def check(body: Body) -> tuple[str, str] | None:
        value = _get(body, switch)
        value = default if value is None else value
        for field in needs.get(value, ()) if isinstance(value, str) else ():
            if _missing(_get(body, field)):
                return field, f"'{field}' is required when '{switch}' is '{value}'"
        return None

    return check


def _subtitle_style(body: Body) -> tuple[str, str] | None:
    if _get(body, "style.template") is None and _get(body, "style.custom_config") is None:
        return "style", "at least one of 'style.template' or 'style.custom_config' must be provided"
    return None


def _lyrics_need_audio(body: Body) -> tuple[str, str] | None:
    prompt_type, source = _get(body, "style.prompt_type"), _get(body, "assets.audio_source")
    if prompt_type in ("use_lyrics", "ai_choose") and source not in ("file", "youtube"):
        return "assets.audio_source", (
            f"'assets.audio_source' must be 'file' or 'youtube' when 'style.prompt_type' is '{prompt_type}'"
        )
    return None


# Upload extensions by type: the spec's lists (upload-urls description, as the current docs). The "gif" list
# (gif, webp, webm) is accepted under "video": gifs are only allowed as face-swap's video_file_path, and the
# request's type enum has no "gif".
UPLOAD_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "video": ("mp4", "m4v", "mov", "webm", "gif", "webp"),
    "audio": ("mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"),
    "image": ("png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"),
}


def _upload_extensions(body: Body) -> tuple[str, str] | None:
    for index, item in enumerate(body.get("items") or ()):
        kind, extension = item.get("type"), item.get("extension")
        allowed = UPLOAD_EXTENSIONS.get(kind, ())
        if extension not in allowed:
            return f"items[{index}].extension", (
                f"'{extension}' is an invalid {kind} extension. "
                f"Possible extensions are '{', '.join(allowed)}'"
            )
    return None


_CLIP_PATHS = frozenset({
    "/v1/ai-talking-photo", "/v1/ai-video-editor", "/v1/ai-video-translator", "/v1/animation",
    "/v1/audio-to-video", "/v1/auto-subtitle-generator", "/v1/character-replace", "/v1/face-swap",
    "/v1/image-to-video", "/v1/lip-sync", "/v1/text-to-video", "/v1/video-to-video", "/v1/ai-video-upscaler",
    "/v1/ai-ugc-ad",
})  # fmt: skip
_SOURCE_NEEDS = {"file": ("assets.video_file_path",), "youtube": ("assets.youtube_url",)}

PROSE_RULES: tuple[ProseRule, ...] = (
    ProseRule(
        name="end_after_start",
        paths=_CLIP_PATHS,
        cites="end_seconds: 'Must be greater than start_seconds.'",
        check=_end_after_start,
    ),
    ProseRule(
        name="translator_clip_length",
        paths=frozenset({"/v1/ai-video-translator"}),
        cites="ai-video-translator end_seconds: 'The clip must be 1-30 seconds long.'",
        check=_clip_between(1.0, 30.0),
    ),
    ProseRule(
        name="talking_photo_clip_length",
        paths=frozenset({"/v1/ai-talking-photo"}),
        cites="ai-talking-photo start/end_seconds: 'Maximum clip length depends on style.generation_mode: "
        "realistic 300s, prompted 45s.'",
        check=_talking_photo_length,
    ),
    ProseRule(
        name="video_source_inputs",
        paths=frozenset({"/v1/face-swap", "/v1/lip-sync", "/v1/video-to-video"}),
        cites="assets.video_file_path: 'Required if `video_source` is `file`'; assets.youtube_url: "
        "'required if `video_source` is `youtube`'",
        check=_required_when("assets.video_source", None, _SOURCE_NEEDS),
    ),
    ProseRule(
        name="face_swap_mode_inputs",
        paths=frozenset({"/v1/face-swap"}),
        cites="assets.image_file_path: 'required if `face_swap_mode` is `all-faces`'; assets.face_mappings: "
        "'required if `face_swap_mode` is `individual-faces`' (face_swap_mode defaults to all-faces)",
        check=_required_when(
            "assets.face_swap_mode",
            "all-faces",
            {"all-faces": ("assets.image_file_path",), "individual-faces": ("assets.face_mappings",)},
        ),
    ),
    ProseRule(
        name="face_swap_photo_mode_inputs",
        paths=frozenset({"/v1/face-swap-photo"}),
        cites="assets.source_file_path: 'required if `face_swap_mode` is `all-faces`'; assets.face_mappings: "
        "'required if `face_swap_mode` is `individual-faces`' (face_swap_mode defaults to all-faces)",
        check=_required_when(
            "assets.face_swap_mode",
            "all-faces",
            {"all-faces": ("assets.source_file_path",), "individual-faces": ("assets.face_mappings",)},
        ),
    ),
    ProseRule(
        name="animation_audio_inputs",
        paths=frozenset({"/v1/animation"}),
        cites="assets.audio_file_path: 'required if `audio_source` is `file`'; assets.youtube_url: "
        "'required if `audio_source` is `youtube`'",
        check=_required_when(
            "assets.audio_source",
            None,
            {"file": ("assets.audio_file_path",), "youtube": ("assets.youtube_url",)},
        ),
    ),
    ProseRule(
        name="animation_prompt_inputs",
        paths=frozenset({"/v1/animation"}),
        cites="style.prompt: 'Prompt is required if `prompt_type` is `custom`'; style.art_style_custom: "
        "'required if `art_style` is `Custom`'",
        check=lambda body: (
            _required_when("style.prompt_type", None, {"custom": ("style.prompt",)})(body)
            or _required_when("style.art_style", None, {"Custom": ("style.art_style_custom",)})(body)
        ),
    ),
    ProseRule(
        name="animation_lyrics_need_audio",
        paths=frozenset({"/v1/animation"}),
        cites="style.prompt_type: 'use_lyrics' / 'ai_choose': 'then `assets.audio_source` must be `file` or "
        "`youtube`'",
        check=_lyrics_need_audio,
    ),
    ProseRule(
        name="video_to_video_prompt",
        paths=frozenset({"/v1/video-to-video"}),
        cites="style.prompt: 'Prompt is required if `prompt_type` is `custom` or `append_default`'",
        check=_required_when(
            "style.prompt_type", None, {"custom": ("style.prompt",), "append_default": ("style.prompt",)}
        ),
    ),
    ProseRule(
        name="subtitle_style_source",
        paths=frozenset({"/v1/auto-subtitle-generator"}),
        cites="style: 'At least one of `.style.template` or `.style.custom_config` must be provided.'",
        check=_subtitle_style,
    ),
    ProseRule(
        name="character_replace_points",
        paths=frozenset({"/v1/character-replace"}),
        cites="style.points: 'Required when `selection_mode` is `point`.'",
        check=_required_when("style.selection_mode", None, {"point": ("style.points",)}),
    ),
    ProseRule(
        name="upload_extension_for_type",
        paths=frozenset({"/v1/files/upload-urls"}),
        cites="upload-urls description: the allowed extensions of each type; 422 example "
        "\"'mp4' is an invalid audio extension. Possible extensions are ...\"",
        check=_upload_extensions,
    ),
)


def check_prose(path: str, body: Body) -> tuple[ProseRule, Problem] | None:
    """The first prose rule a schema-valid body breaks on ``path``, with its 422 :class:`Problem`."""
    for rule in PROSE_RULES:
        if path in rule.paths:
            found = rule.check(body)
            if found is not None:
                field, message = found
                status, code = UNPROCESSABLE
                return rule, Problem(message=message, field=field, status=status, code=code)
    return None
