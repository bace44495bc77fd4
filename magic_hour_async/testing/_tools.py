"""The per-endpoint table: one row per POST endpoint that starts a render.

What a render *is* lives here, by hand: the project kind and ``type`` string an endpoint creates, its price,
how long a render takes at ``speed=1``, the output file extension and the job error codes the tool can end
with. What a request *may contain* does not: those rules are generated from the spec
(``_rules_generated``, applied by ``_validation``) plus the few prose rules of ``_extras``.
``tests/test_emulator_conformance.py`` checks that every create operation of the spec has a row.

Pricing (the spec's descriptions, where they give one): ``credits`` is per second of output for video (an
estimate at 30 fps, adjusted at completion), per image for images and per render for audio; :func:`price`
applies the rules the descriptions state for a few tools (speech by the character, the upscaler by factor and
mode). Where the spec states no price the row's figure is a plausible one, like its neighbours'. Error codes
(WEBHOOKS.md section 12) fit the tool: only tools that need a face in their input fail with
``no_source_face``, only tools that read an input file with ``invalid_file_format``/``invalid_video_file``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, cast

import attrs

from ._rules_generated import OPERATIONS

Kind = Literal["video", "image", "audio"]
KINDS: tuple[Kind, ...] = ("video", "image", "audio")


@attrs.frozen(kw_only=True)
class Tool:
    """One create endpoint: what it renders, what it costs, how long it takes and how it can fail."""

    path: str
    kind: Kind
    type: str
    credits: int
    duration: float
    errors: tuple[str, ...]
    extension: str = ""

    @property
    def output_extension(self) -> str:
        """The extension of rendered files (``mp4``/``png``/``wav`` unless the row says otherwise)."""
        return self.extension or {"video": "mp4", "image": "png", "audio": "wav"}[self.kind]


# Job error codes by what a tool reads (WEBHOOKS.md section 12: "common" codes, not a complete list).
_VIDEO_IN = ("invalid_video_file", "processing_timeout", "unknown_error")
_GENERATED_VIDEO = ("content_policy_violation", "processing_timeout", "unknown_error")
_FACE = ("no_source_face",)
_FILE_IN = ("invalid_file_format",)
_IMAGE_IN = ("invalid_file_format", "content_policy_violation", "unknown_error")
_GENERATED_IMAGE = ("content_policy_violation", "unknown_error")
_SPEECH = ("text_too_long", "invalid_voice", "processing_timeout")


def _tool(path: str, kind: Kind, type_: str, credits: int, duration: float, errors: tuple[str, ...],
          extension: str = "") -> Tool:  # fmt: skip
    return Tool(path=path, kind=kind, type=type_, credits=credits, duration=duration, errors=errors,
                extension=extension)  # fmt: skip


# fmt: off
_ROWS: tuple[Tool, ...] = (
    # -- video: credits per second of output, renders take tens of seconds
    _tool("/v1/ai-talking-photo", "video", "TALKING_PHOTO", 30, 40.0, (*_FACE, *_IMAGE_IN)),
    _tool("/v1/ai-video-editor", "video", "VIDEO_EDITOR", 60, 60.0, (*_VIDEO_IN, "content_policy_violation")),
    _tool("/v1/ai-video-translator", "video", "VIDEO_TRANSLATOR", 30, 60.0, _VIDEO_IN),
    _tool("/v1/ai-video-upscaler", "video", "VIDEO_UPSCALER", 30, 60.0, _VIDEO_IN),
    _tool("/v1/ai-ugc-ad", "video", "UGC_AD", 60, 60.0, _GENERATED_VIDEO),
    _tool("/v1/animation", "video", "ANIMATION", 30, 60.0, _GENERATED_VIDEO),
    _tool("/v1/audio-to-video", "video", "AUDIO_TO_VIDEO", 30, 45.0, (*_FILE_IN, *_GENERATED_VIDEO)),
    _tool("/v1/auto-subtitle-generator", "video", "AUTO_SUBTITLE", 15, 30.0, _VIDEO_IN),
    _tool("/v1/character-replace", "video", "CHARACTER_REPLACE", 60, 60.0, (*_FACE, *_VIDEO_IN)),
    _tool("/v1/face-swap", "video", "FACE_SWAP", 30, 45.0, (*_FACE, *_VIDEO_IN)),
    _tool("/v1/image-to-video", "video", "IMAGE_TO_VIDEO", 60, 50.0, (*_FILE_IN, *_GENERATED_VIDEO)),
    _tool("/v1/lip-sync", "video", "LIP_SYNC", 30, 40.0, (*_FACE, *_VIDEO_IN)),
    _tool("/v1/video-to-video", "video", "VIDEO_TO_VIDEO", 30, 60.0, _VIDEO_IN),
    _tool("/v1/text-to-video", "video", "TEXT_TO_VIDEO", 60, 50.0, _GENERATED_VIDEO),
    # -- image: credits per image, renders take seconds
    _tool("/v1/ai-clothes-changer", "image", "CLOTHES_CHANGER", 25, 8.0, _IMAGE_IN),
    _tool("/v1/ai-face-editor", "image", "FACE_EDITOR", 1, 4.0, (*_FACE, *_IMAGE_IN)),
    _tool("/v1/ai-gif-generator", "image", "AI_GIF", 50, 10.0, _GENERATED_IMAGE, extension="gif"),
    _tool("/v1/ai-image-editor", "image", "AI_IMAGE_EDITOR", 50, 6.0, _IMAGE_IN),
    _tool("/v1/ai-headshot-generator", "image", "AI_HEADSHOT", 50, 8.0, (*_FACE, *_IMAGE_IN)),
    _tool("/v1/ai-image-generator", "image", "AI_IMAGE", 5, 5.0, _GENERATED_IMAGE),
    _tool("/v1/ai-image-upscaler", "image", "IMAGE_UPSCALER", 50, 10.0, _IMAGE_IN),
    _tool("/v1/ai-meme-generator", "image", "AI_MEME", 10, 6.0, _GENERATED_IMAGE),
    _tool("/v1/ai-qr-code-generator", "image", "QR_CODE", 0, 4.0, _GENERATED_IMAGE),
    _tool("/v1/body-swap", "image", "BODY_SWAP", 100, 10.0, _IMAGE_IN),
    _tool("/v1/face-swap-photo", "image", "FACE_SWAP", 10, 5.0, (*_FACE, *_IMAGE_IN)),
    _tool("/v1/head-swap", "image", "HEAD_SWAP", 10, 6.0, (*_FACE, *_IMAGE_IN)),
    _tool("/v1/image-background-remover", "image", "BACKGROUND_REMOVER", 5, 3.0, _IMAGE_IN),
    _tool("/v1/photo-colorizer", "image", "PHOTO_COLORIZER", 10, 5.0, _IMAGE_IN),
    # -- audio: credits per render, renders take a few seconds
    _tool("/v1/ai-voice-generator", "audio", "VOICE_GENERATOR", 2, 3.0, _SPEECH),
    _tool("/v1/ai-voice-cloner", "audio", "VOICE_CLONER", 2, 5.0, (*_FILE_IN, "processing_timeout")),
    _tool("/v1/ai-music-generator", "audio", "MUSIC_GENERATOR", 10, 20.0, _GENERATED_IMAGE,
          extension="mp3"),
)
# fmt: on

#: The rows of the create operations the spec the emulator was generated from has (an overlay row, or one of
#: an older spec, is not served until its operation's rules are generated).
TOOLS: tuple[Tool, ...] = tuple(tool for tool in _ROWS if f"POST {tool.path}" in OPERATIONS)
TOOLS_BY_PATH: Mapping[str, Tool] = {tool.path: tool for tool in TOOLS}
TOOLS_BY_TYPE: Mapping[tuple[Kind, str], Tool] = {(tool.kind, tool.type): tool for tool in TOOLS}


def _style(body: Mapping[str, Any], field: str) -> object:
    style: object = body.get("style")
    return cast("Mapping[str, object]", style).get(field) if isinstance(style, Mapping) else None


def _speech(body: Mapping[str, Any]) -> int | None:
    # ai-voice-generator / ai-voice-cloner: "Each character costs 0.1 credits. The cost is rounded up".
    prompt = _style(body, "prompt")
    return max(1, math.ceil(len(prompt) / 10)) if isinstance(prompt, str) else None


def _upscale(body: Mapping[str, Any]) -> int | None:
    # ai-image-upscaler: "Each 2x upscale costs 50 credits for balanced/creative modes, and 25 credits for
    # preserve ... 4x upscale costs 200 and 100 credits respectively".
    factor, mode = body.get("scale_factor"), _style(body, "mode")
    base = 200 if isinstance(factor, (int, float)) and factor > 2 else 50
    return base // 2 if mode == "preserve" else base


_PRICES = {"VOICE_GENERATOR": _speech, "VOICE_CLONER": _speech, "IMAGE_UPSCALER": _upscale}


def price(tool: Tool, body: Mapping[str, Any]) -> int:
    """The credits of one render (per second for video, per image for images) for a valid ``body``."""
    rule = _PRICES.get(tool.type) if tool.kind != "video" else None
    found = rule(body) if rule is not None else None
    return tool.credits if found is None else found
