"""The spec the emulator serves: the pinned spec plus the official SDK's overlay (tools/spec_overlay.json).

The overlay's three endpoints (ai-music-generator, ai-ugc-ad, ai-video-upscaler) document only their 200
answer and leave their request body optional (OpenAPI's default). They sit behind the same API as every other
create endpoint, so the emulator treats them alike: the body is required (as it is for every create operation
of the spec; their schemas have required fields anyway), and for response checks they get the error responses
the spec documents for the other create operations (400, 401, 402, 404, 422, 500), copied from one of them.
"""

from __future__ import annotations

import copy
from typing import Any

from tests import _spec
from tests._spec import load_spec

_TEMPLATE = "/v1/face-swap"  # any create operation of the spec: they all document the same errors


def emulator_spec() -> dict[str, Any]:
    """The pinned spec with the overlay merged in and the overlay's error responses filled in."""
    pin = _spec.spec_pin
    base = load_spec()  # skips the calling module here, fails it under CI=true when the spec is missing
    merged = pin.merge_overlay(base, pin.overlay())
    errors = {
        status: answer
        for status, answer in base["paths"][_TEMPLATE]["post"]["responses"].items()
        if not status.startswith("2")
    }
    for path in pin.overlay().get("paths", {}):
        for operation in merged["paths"][path].values():
            if "requestBody" in operation:
                operation["requestBody"].setdefault("required", True)
            responses = operation.setdefault("responses", {})
            for status, answer in errors.items():
                responses.setdefault(status, copy.deepcopy(answer))
    return merged
