"""Worst-case credit costs of create requests, from the prices the API documents.

Only rules the API states are encoded here (the endpoint descriptions of the 2026-11 spec): a fixed price
per output for most image tools, a price per character for the voice tools, and the upscaler's table. Tools
whose price depends on the model, the plan or on frames actually rendered (every video tool, the image
generator and editor) return ``None``: the caller gives ``estimate=`` to ``add()``, or ``default_estimate=``
to :class:`Batch`, and a job with no worst case is never sent under ``max_credits``.

A worst case may only over-estimate: the budget invariant (settled + reserved <= max_credits) is only as good
as the numbers reserved before each POST.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

__all__ = ["worst_case_credits"]

Rule = Callable[[Mapping[str, Any]], int]


def _count(body: Mapping[str, Any], field: str) -> int:
    value = body.get(field, 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _per_output(price: int) -> Rule:
    return lambda body: price * _count(body, "image_count")


def _per_character(body: Mapping[str, Any]) -> int:
    # "Each character costs 0.1 credits. The cost is rounded up to the nearest whole number."
    style = body.get("style")
    prompt = cast("Mapping[str, object]", style).get("prompt") if isinstance(style, Mapping) else None
    text = prompt if isinstance(prompt, str) else ""
    return math.ceil(len(text) / 10)


def _upscaler(body: Mapping[str, Any]) -> int:
    # "Each 2x upscale costs 50 credits for balanced/creative modes, and 25 for preserve. 4x upscale costs
    # 200 and 100 credits respectively." Anything above 2x is priced as 4x, the dearest documented case.
    factor = body.get("scale_factor", 2)
    return 50 if isinstance(factor, (int, float)) and factor <= 2 else 200


RULES: Mapping[str, Rule] = {
    "ai-clothes-changer": _per_output(25),
    "ai-face-editor": _per_output(1),
    "ai-gif-generator": _per_output(50),
    "ai-headshot-generator": _per_output(50),
    "ai-meme-generator": _per_output(10),
    "ai-qr-code-generator": _per_output(0),
    "ai-image-upscaler": _upscaler,
    "face-swap-photo": _per_output(10),
    "head-swap": _per_output(10),
    "image-background-remover": _per_output(5),
    "photo-colorizer": _per_output(10),
    "ai-voice-generator": _per_character,
    "ai-voice-cloner": _per_character,
}


def worst_case_credits(tool: str, body: Mapping[str, Any]) -> int | None:
    """The most a create request can cost by the API's stated prices; ``None`` when no rule is known.

    Example:
        >>> worst_case_credits("photo-colorizer", {"assets": {"image_file_path": "a.png"}})
        10
        >>> worst_case_credits("ai-voice-generator", {"style": {"prompt": "Hello there"}})
        2
    """
    rule = RULES.get(tool)
    return None if rule is None else rule(body)
