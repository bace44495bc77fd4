"""Signature verification and event parsing for webhook deliveries (re-exported by the package)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import Any, cast

import attrs

from .._converter import decode
from .._exceptions import ResponseDecodeError, WebhookVerificationError
from .._models import AudioProject, ImageProject, VideoProject
from ._receiver import (
    HANDLER_KEY,
    WebhookCallback,
    WebhookHandler,
    WebhookReceiverStats,
    create_app,
    handler,
)

__all__ = [
    "HANDLER_KEY",
    "SECRET_ENV",
    "WebhookCallback",
    "WebhookEvent",
    "WebhookHandler",
    "WebhookReceiverStats",
    "create_app",
    "handler",
    "parse",
    "sign",
    "verify",
]

SECRET_ENV = "MAGIC_HOUR_WEBHOOK_SECRET"
SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"

_MODELS: dict[str, type[VideoProject | ImageProject | AudioProject]] = {
    "video": VideoProject,
    "image": ImageProject,
    "audio": AudioProject,
}
_HEX = frozenset("0123456789abcdefABCDEF")
# Unix seconds have 10 digits until the year 2286; 15 leaves room and keeps every stamp exact in a float.
_MAX_TIMESTAMP_DIGITS = 15


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """One verified delivery: ``type`` such as ``"video.completed"`` and the project as ``payload``.

    ``kind`` is ``"video"``, ``"image"`` or ``"audio"`` (None for unknown prefixes, whose ``payload`` stays a
    dict); ``dedupe_key`` is ``"{payload id}:{type}"``, the key the docs suggest for idempotent handling.
    """

    type: str
    kind: str | None
    payload: VideoProject | ImageProject | AudioProject | dict[str, Any]

    @property
    def action(self) -> str:
        """The part after the dot: ``started``, ``completed``, ``errored`` (or a future action)."""
        return self.type.partition(".")[2]

    @property
    def project_id(self) -> str | None:
        if isinstance(self.payload, dict):
            found = self.payload.get("id")
            return found if isinstance(found, str) else None
        return self.payload.id

    @property
    def dedupe_key(self) -> str:
        return f"{self.project_id}:{self.type}"


def sign(body: bytes, secret: str, timestamp: int | str) -> str:
    """The hex signature Magic Hour sends for ``body`` at ``timestamp`` (used by the emulator and tests)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | None = None,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> WebhookEvent:
    """Check a delivery's signature and timestamp, then parse it.

    Args:
        body: the raw request body, exactly as received.
        headers: the request headers (any mapping; names are matched case-insensitively).
        secret: the webhook secret; ``None`` reads ``MAGIC_HOUR_WEBHOOK_SECRET``.
        tolerance: how far the timestamp may be from ``now``, in seconds, in either direction; ``None``
            skips the check (not recommended: it is what limits replays).
        now: the current Unix time, for tests.

    Raises:
        WebhookVerificationError: with the precise reason (missing header, malformed or stale timestamp,
            bad signature, body not the event shape).
    """
    key = secret if secret is not None else os.environ.get(SECRET_ENV)
    if not key:
        raise WebhookVerificationError(f"no webhook secret: pass secret=... or set {SECRET_ENV}")
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    if signature is None:
        raise WebhookVerificationError(f"missing header {SIGNATURE_HEADER}")
    if stamp is None:
        raise WebhookVerificationError(f"missing header {TIMESTAMP_HEADER}")
    stamp = stamp.strip()
    # Unauthenticated input of any length and alphabet: only ASCII digits, and few enough of them that
    # int() and the float arithmetic below cannot fail (a 400-digit stamp used to raise OverflowError).
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS):
        raise WebhookVerificationError(f"malformed timestamp {stamp[:32]!r}: expected Unix seconds")
    if tolerance is not None:
        skew = (time.time() if now is None else now) - int(stamp)
        if skew > tolerance:
            raise WebhookVerificationError(f"stale timestamp: {skew:.0f} s old (tolerance {tolerance:g} s)")
        if -skew > tolerance:
            raise WebhookVerificationError(
                f"timestamp in the future by {-skew:.0f} s (tolerance {tolerance:g} s)"
            )
    signature = signature.strip()
    if len(signature) != 64 or not _HEX.issuperset(signature):
        raise WebhookVerificationError("malformed signature: expected 64 hex characters")
    if not hmac.compare_digest(sign(body, key, stamp), signature.lower()):
        raise WebhookVerificationError("bad signature: body, timestamp or secret do not match")
    return parse(body)


def parse(body: bytes | str | Mapping[str, Any]) -> WebhookEvent:
    """Parse a delivery body WITHOUT verifying it (use :func:`verify` for anything from the network).

    Accepts the legacy ``object`` key where ``payload`` is missing.
    """
    data: Any = body
    if isinstance(body, (bytes, str)):
        try:
            data = json.loads(body)
        except ValueError:  # also invalid UTF-8 (UnicodeDecodeError) and over-long integers
            raise WebhookVerificationError("body is not JSON") from None
        except RecursionError:  # the C decoder's answer to nesting deeper than the recursion limit
            raise WebhookVerificationError("body is not JSON: nested too deeply") from None
    if not isinstance(data, Mapping):
        raise WebhookVerificationError("body is not a JSON object")
    envelope = cast("Mapping[str, Any]", data)
    event_type = envelope.get("type")
    payload = envelope.get("payload", envelope.get("object"))
    if not isinstance(event_type, str) or not isinstance(payload, dict):
        raise WebhookVerificationError("body lacks a string 'type' and an object 'payload'")
    fields = cast("dict[str, Any]", payload)
    kind = event_type.partition(".")[0]
    model = _MODELS.get(kind)
    if model is None:
        return WebhookEvent(type=event_type, kind=None, payload=fields)
    try:
        project = decode(fields, model)
    except ResponseDecodeError as exc:
        raise WebhookVerificationError(f"payload of {event_type!r} is not a project: {exc}") from None
    except RecursionError:  # a mapping handed in directly may nest deeper than the decoder can walk
        raise WebhookVerificationError(f"payload of {event_type!r} is nested too deeply") from None
    return WebhookEvent(type=event_type, kind=kind, payload=project)


# The receiver's public names live here for users: reprs, docs and pickles say magic_hour_async.webhooks.X.
for _exported in (WebhookHandler, WebhookReceiverStats, create_app, handler):
    _exported.__module__ = __name__
del _exported
