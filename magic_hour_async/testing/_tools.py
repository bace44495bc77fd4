"""The per-endpoint table: one row per POST endpoint that starts a render.

The emulator never reads the OpenAPI file at run time. This compact, hand-written table holds what it needs
to behave like each endpoint: the project kind and ``type`` string it creates, its price, how long a render
takes at ``speed=1``, the output file extension, and the few body rules used to answer 422 (required fields as
dotted paths, small enums, numeric bounds). Very large enums (voice names, art styles, camera effects, image
"tool" names) are deliberately left out: they change often and checking them adds nothing to an emulator.
``tests/test_emulator_conformance.py`` compares this table with the spec so drift is caught.

Pricing: ``credits`` is per second of output for video, per image for images and per render for audio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, cast

import attrs

Kind = Literal["video", "image", "audio"]
KINDS: tuple[Kind, ...] = ("video", "image", "audio")

_EMPTY_ENUMS: Mapping[str, tuple[object, ...]] = {}
_EMPTY_BOUNDS: Mapping[str, tuple[float | None, float | None]] = {}


@attrs.frozen(kw_only=True)
class Tool:
    """One create endpoint: what it renders and the body rules it enforces."""

    path: str
    kind: Kind
    type: str
    credits: int
    duration: float
    required: tuple[str, ...]
    enums: Mapping[str, tuple[object, ...]] = _EMPTY_ENUMS
    bounds: Mapping[str, tuple[float | None, float | None]] = _EMPTY_BOUNDS
    extension: str = ""

    @property
    def output_extension(self) -> str:
        """The extension of rendered files (``mp4``/``png``/``wav`` unless the row says otherwise)."""
        return self.extension or {"video": "mp4", "image": "png", "audio": "wav"}[self.kind]


_SOURCE = ("file", "youtube")
_VERSION = ("v1", "v2", "default")
_FACE_SWAP_MODE = ("all-faces", "individual-faces")
_RES_VIDEO = ("480p", "720p", "1080p", "4k")
_RES_IMAGE = ("auto", "640px", "1k", "2k", "4k")
_VIDEO_MODELS = (
    "default", "ltx-2", "ltx-2.3", "wan-2.2", "seedance", "seedance-2.0", "kling-2.5", "kling-3.0",
    "veo3.1", "veo3.1-lite", "sora-2", "kling-1.6", "kling-2.5-audio", "veo3.1-audio",
)  # fmt: skip
_CLIP = {"start_seconds": (0.0, None), "end_seconds": (0.1, None)}
_SHORT_CLIP = {"end_seconds": (1.0, 60.0)}
_CLIP_REQUIRED = ("start_seconds", "end_seconds", "assets")


def _tool(
    path: str, kind: Kind, type_: str, credits: int, duration: float, required: str, **rules: Any
) -> Tool:
    return Tool(path=path, kind=kind, type=type_, credits=credits, duration=duration,
                required=tuple(required.split()), **rules)  # fmt: skip


# fmt: off
TOOLS: tuple[Tool, ...] = (
    # -- video: credits per second of output, renders take tens of seconds
    _tool("/v1/ai-talking-photo", "video", "TALKING_PHOTO", 30, 40.0,
          "start_seconds end_seconds assets assets.image_file_path assets.audio_file_path", bounds=_CLIP,
          enums={"style.generation_mode":
                 ("realistic", "prompted", "pro", "standard", "stable", "expressive")}),
    _tool("/v1/animation", "video", "ANIMATION", 30, 60.0,
          "fps end_seconds height width style style.art_style style.camera_effect style.prompt_type "
          "style.transition_speed assets assets.audio_source",
          bounds={"fps": (1.0, None), "end_seconds": (0.1, None), "height": (64.0, None),
                  "width": (64.0, None), "style.transition_speed": (1.0, 10.0)},
          enums={"style.prompt_type": ("custom", "use_lyrics", "ai_choose"),
                 "assets.audio_source": ("none", "file", "youtube")}),
    _tool("/v1/audio-to-video", "video", "AUDIO_TO_VIDEO", 30, 45.0,
          "end_seconds assets assets.audio_file_path", bounds=_CLIP,
          enums={"resolution": ("480p", "720p", "1080p")}),
    _tool("/v1/auto-subtitle-generator", "video", "AUTO_SUBTITLE", 15, 30.0,
          "start_seconds end_seconds assets assets.video_file_path style", bounds=_CLIP,
          enums={"style.template": ("karaoke", "cinematic", "minimalist", "highlight")}),
    _tool("/v1/face-swap", "video", "FACE_SWAP", 30, 45.0,
          "start_seconds end_seconds assets assets.video_source", bounds=_CLIP,
          enums={"style.version": _VERSION, "assets.face_swap_mode": _FACE_SWAP_MODE,
                 "assets.video_source": _SOURCE}),
    _tool("/v1/image-to-video", "video", "IMAGE_TO_VIDEO", 60, 50.0,
          "end_seconds assets assets.image_file_path", bounds=_SHORT_CLIP,
          enums={"model": _VIDEO_MODELS, "resolution": _RES_VIDEO}),
    _tool("/v1/lip-sync", "video", "LIP_SYNC", 30, 40.0,
          "start_seconds end_seconds assets assets.audio_file_path assets.video_source",
          bounds={**_CLIP, "max_fps_limit": (1.0, None)},
          enums={"assets.video_source": _SOURCE, "style.generation_mode": ("lite", "standard", "pro")}),
    _tool("/v1/video-to-video", "video", "VIDEO_TO_VIDEO", 30, 60.0,
          "start_seconds end_seconds style style.art_style assets assets.video_source", bounds=_CLIP,
          enums={"fps_resolution": ("FULL", "HALF"), "style.version": _VERSION,
                 "style.prompt_type": ("default", "custom", "append_default"),
                 "style.model": ("Dreamshaper", "Absolute Reality", "Flat 2D Anime", "Soft Anime", "Kaywaii",
                                 "Western Anime", "3D Anime", "default"),
                 "assets.video_source": _SOURCE}),
    _tool("/v1/text-to-video", "video", "TEXT_TO_VIDEO", 60, 50.0, "end_seconds style style.prompt",
          bounds=_SHORT_CLIP,
          enums={"aspect_ratio": ("16:9", "9:16", "1:1"), "resolution": _RES_VIDEO, "model": _VIDEO_MODELS}),
    # -- image: credits per image, renders take seconds
    _tool("/v1/ai-clothes-changer", "image", "CLOTHES_CHANGER", 25, 8.0,
          "assets assets.person_file_path assets.garment_file_path",
          enums={"assets.garment_type": ("entire_outfit", "upper_body", "lower_body", "dresses")}),
    _tool("/v1/ai-face-editor", "image", "FACE_EDITOR", 1, 4.0, "assets assets.image_file_path style"),
    _tool("/v1/ai-gif-generator", "image", "AI_GIF", 50, 10.0, "style style.prompt", extension="gif",
          enums={"output_format": ("gif", "mp4", "webm")}),
    _tool("/v1/ai-image-editor", "image", "AI_IMAGE_EDITOR", 50, 6.0, "style style.prompt assets",
          enums={"image_count": (1, 4, 9, 16),
                 "model": ("default", "qwen-edit", "flux-2-klein", "nano-banana", "nano-banana-2",
                           "seedream-v4", "nano-banana-pro", "seedream-v4.5", "gpt-image-2"),
                 "aspect_ratio": ("auto", "16:9", "9:16", "4:3", "3:2", "1:1", "4:5", "2:3"),
                 "resolution": _RES_IMAGE}),
    _tool("/v1/ai-headshot-generator", "image", "AI_HEADSHOT", 50, 8.0, "assets assets.image_file_path"),
    _tool("/v1/ai-image-generator", "image", "AI_IMAGE", 5, 5.0, "image_count style style.prompt",
          bounds={"image_count": (1.0, 16.0)},
          enums={"model": ("default", "flux-schnell", "flux-2-klein", "z-image-turbo", "seedream-v4",
                           "nano-banana", "nano-banana-2", "nano-banana-pro", "gpt-image-2", "seedream"),
                 "aspect_ratio": ("1:1", "16:9", "9:16"), "resolution": _RES_IMAGE}),
    _tool("/v1/ai-image-upscaler", "image", "IMAGE_UPSCALER", 50, 10.0,
          "scale_factor style assets assets.image_file_path", bounds={"scale_factor": (None, None)},
          enums={"style.mode": ("pro", "creative"),
                 "style.enhancement": ("Resemblance", "Balanced", "Creative")}),
    _tool("/v1/ai-meme-generator", "image", "AI_MEME", 10, 6.0, "style style.topic style.template",
          enums={"style.template": ("Random", "Drake Hotline Bling", "Galaxy Brain", "Two Buttons",
                                    "Gru's Plan", "Tuxedo Winnie The Pooh", "Is This a Pigeon",
                                    "Panik Kalm Panik", "Disappointed Guy", "Waiting Skeleton", "Bike Fall",
                                    "Change My Mind", "Side Eyeing Chloe")}),
    _tool("/v1/ai-qr-code-generator", "image", "QR_CODE", 0, 4.0, "content style style.art_style"),
    _tool("/v1/body-swap", "image", "BODY_SWAP", 100, 10.0,
          "resolution assets assets.person_file_path assets.scene_file_path",
          enums={"resolution": ("640px", "1k", "2k", "4k")}),
    _tool("/v1/face-swap-photo", "image", "FACE_SWAP", 10, 5.0, "assets assets.target_file_path",
          enums={"assets.face_swap_mode": _FACE_SWAP_MODE}),
    _tool("/v1/head-swap", "image", "HEAD_SWAP", 10, 6.0,
          "assets assets.body_file_path assets.head_file_path"),
    _tool("/v1/image-background-remover", "image", "BACKGROUND_REMOVER", 5, 3.0,
          "assets assets.image_file_path"),
    _tool("/v1/photo-colorizer", "image", "PHOTO_COLORIZER", 10, 5.0, "assets assets.image_file_path"),
    # -- audio: credits per render, renders take a few seconds
    _tool("/v1/ai-voice-generator", "audio", "VOICE_GENERATOR", 2, 3.0,
          "style style.prompt style.voice_name"),
    _tool("/v1/ai-voice-cloner", "audio", "VOICE_CLONER", 2, 5.0,
          "assets assets.audio_file_path style style.prompt"),
)
# fmt: on

TOOLS_BY_PATH: Mapping[str, Tool] = {tool.path: tool for tool in TOOLS}
TOOLS_BY_TYPE: Mapping[tuple[Kind, str], Tool] = {(tool.kind, tool.type): tool for tool in TOOLS}

UPLOAD_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    # The spec's lists. Its "gif" list (gif, webp, webm) is accepted under "video": gifs are only allowed as
    # face-swap's video_file_path, and the request's type enum has no "gif".
    "video": ("mp4", "m4v", "mov", "webm", "gif", "webp"),
    # The current docs add weba/oga (audio) and jfif/tif (image) to the spec's older lists.
    "audio": ("mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"),
    "image": ("png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"),
}

_MISSING = object()


def _lookup(body: Mapping[str, Any], dotted: str) -> object:
    """Value at a dotted path; ``_MISSING`` when any parent is absent (the parent's own rule reports that)."""
    node: object = body
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = cast("Mapping[str, object]", node)[part]
    return node


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(tool: Tool, body: Mapping[str, Any]) -> str | None:
    """Check a create body against the tool's rules; the 422 message, or ``None`` when the body is valid."""
    for dotted in tool.required:
        value = _lookup(body, dotted)
        parent = dotted.rpartition(".")[0]
        if parent and not isinstance(_lookup(body, parent), Mapping):
            return f"'{parent}' must be an object"
        if value is _MISSING or value is None:
            return f"'{dotted}' is required"
    for dotted, allowed in tool.enums.items():
        value = _lookup(body, dotted)
        if value is not _MISSING and (isinstance(value, bool) or value not in allowed):
            choices = ", ".join(str(choice) for choice in allowed)
            return f"'{dotted}' must be one of: {choices}"
    for dotted, (low, high) in tool.bounds.items():
        value = _lookup(body, dotted)
        if value is _MISSING:
            continue
        if not _is_number(value):
            return f"'{dotted}' must be a number"
        number = float(value)  # type: ignore[arg-type]  # checked by _is_number
        if low is not None and number < low:
            return f"'{dotted}' must be greater than or equal to {low:g}"
        if high is not None and number > high:
            return f"'{dotted}' must be less than or equal to {high:g}"
    start, end = body.get("start_seconds", 0), body.get("end_seconds")
    if _is_number(start) and _is_number(end) and end <= start:
        return "'end_seconds' must be greater than 'start_seconds'"
    return None
