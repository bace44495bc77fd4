"""Webhook verification and parsing; the vector is the one in ../shared/api/WEBHOOKS.md §4."""

from __future__ import annotations

import json

import pytest

from magic_hour_async import ImageProject, VideoProject, WebhookVerificationError, webhooks

SECRET = "whsec_test_secret"
TS = "1729314984"
BODY = (
    b'{"type":"video.completed","payload":{"id":"clx123","status":"complete",'
    b'"downloads":[{"url":"https://videos.magichour.ai/output.mp4"}]}}'
)
SIGNATURE = "b8294b3b5a1f78b5f5bae8bde66065c056d6e4a73b8a73bcbd564fb041862a2f"
NOW = 1729314984 + 10


def headers(signature: str = SIGNATURE, ts: str = TS) -> dict[str, str]:
    return {"Magic-Hour-Event-Signature": signature, "magic-hour-event-timestamp": ts}


def test_known_good_vector_verifies_and_parses() -> None:
    assert webhooks.sign(BODY, SECRET, TS) == SIGNATURE
    event = webhooks.verify(BODY, headers(), SECRET, now=NOW)
    assert event.type == "video.completed"
    assert event.kind == "video"
    assert event.action == "completed"
    assert isinstance(event.payload, VideoProject)
    assert event.payload.id == "clx123"
    assert event.payload.status == "complete"
    assert event.payload.downloads[0].url == "https://videos.magichour.ai/output.mp4"
    assert event.dedupe_key == "clx123:video.completed"


def test_upper_case_signature_is_accepted() -> None:
    assert webhooks.verify(BODY, headers(SIGNATURE.upper()), SECRET, now=NOW).type == "video.completed"


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGIC_HOUR_WEBHOOK_SECRET", SECRET)
    assert webhooks.verify(BODY, headers(), now=NOW).kind == "video"


@pytest.mark.parametrize(
    ("body", "hdrs", "secret", "now", "reason"),
    [
        (BODY.replace(b"clx123", b"clx124"), headers(), SECRET, NOW, "bad signature"),
        (BODY, headers(), "whsec_other", NOW, "bad signature"),
        (BODY, headers(), SECRET, NOW + 301, "stale timestamp"),
        (BODY, headers(), SECRET, int(TS) - 301, "in the future"),
        (BODY, {"magic-hour-event-timestamp": TS}, SECRET, NOW, "missing header magic-hour-event-signature"),
        (
            BODY,
            {"magic-hour-event-signature": SIGNATURE},
            SECRET,
            NOW,
            "missing header magic-hour-event-timestamp",
        ),
        (BODY, headers(ts="1729314984.5"), SECRET, NOW, "malformed timestamp"),
        (BODY, headers(ts="soon"), SECRET, NOW, "malformed timestamp"),
        (BODY, headers(signature="v1=" + SIGNATURE), SECRET, NOW, "malformed signature"),
        (BODY, headers(signature="zz" * 32), SECRET, NOW, "malformed signature"),
    ],
)
def test_rejections_name_the_reason(
    body: bytes, hdrs: dict[str, str], secret: str, now: float, reason: str
) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        webhooks.verify(body, hdrs, secret, now=now)


def test_missing_secret_is_an_error() -> None:
    with pytest.raises(WebhookVerificationError, match="MAGIC_HOUR_WEBHOOK_SECRET"):
        webhooks.verify(BODY, headers(), now=NOW)


def test_tolerance_none_skips_the_clock_check() -> None:
    assert webhooks.verify(BODY, headers(), SECRET, tolerance=None, now=NOW + 10**6).type == "video.completed"


def test_legacy_object_key_and_unknown_types() -> None:
    legacy = webhooks.parse(
        {
            "type": "image.errored",
            "object": {"id": "i", "status": "error", "error": {"code": "x", "message": "y"}},
        }
    )
    assert isinstance(legacy.payload, ImageProject)
    assert legacy.payload.error is not None and legacy.payload.error.code == "x"
    unknown = webhooks.parse(json.dumps({"type": "test.event", "payload": {"id": "t"}}))
    assert unknown.kind is None
    assert unknown.payload == {"id": "t"}
    assert unknown.dedupe_key == "t:test.event"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type": "video.completed"}',
        b'{"payload": {}}',
        b'{"type": "video.completed", "payload": {"status": "complete"}}',
    ],
)
def test_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        webhooks.parse(body)
