"""Webhook verification and parsing; the vector is the one in ../shared/api/WEBHOOKS.md §4."""

from __future__ import annotations

import json
import random
from typing import Any

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


# Hostile headers: unauthenticated input of any length and alphabet must end in WebhookVerificationError,
# never OverflowError/ValueError (which the receiver would turn into a 500 with a traceback).
@pytest.mark.parametrize(
    "ts",
    [
        "9" * 400,  # once OverflowError: int minus float
        "9" * 5000,  # past int()'s default digit limit: once ValueError
        "",
        "   ",
        "-1729314984",
        "+1729314984",
        "1_729_314_984",
        "\uff11\uff17\uff12\uff19",  # full-width digits: str.isdigit() says yes, int() would accept them
        "\u0661\u0667\u0662\u0669",  # Arabic-Indic digits
        "\x00",
        "\udcff\udcfe",  # undecodable bytes as aiohttp surfaces them (surrogateescape)
        "1e9",
        "0x66",
        "inf",
        "nan",
    ],
)
def test_any_malformed_timestamp_is_a_verification_error(ts: str) -> None:
    with pytest.raises(WebhookVerificationError, match="malformed timestamp") as caught:
        webhooks.verify(BODY, headers(ts=ts), SECRET, now=NOW)
    assert len(str(caught.value)) < 100  # a hostile header is quoted, not echoed whole


def test_a_long_timestamp_is_malformed_even_without_the_clock_check() -> None:
    with pytest.raises(WebhookVerificationError, match="malformed timestamp"):
        webhooks.verify(BODY, headers(ts="9" * 400), SECRET, tolerance=None)


def test_a_far_future_timestamp_within_the_digit_limit_is_judged_by_the_clock() -> None:
    with pytest.raises(WebhookVerificationError, match="in the future"):
        webhooks.verify(BODY, headers(ts="9" * 15), SECRET, now=NOW)


@pytest.mark.parametrize(
    "signature",
    ["", " ", "a" * 63, "a" * 65, "a" * 6400, "é" * 64, "\udcff" * 64, "\x00" * 64, SIGNATURE[:-1] + "g"],
)
def test_any_malformed_signature_is_a_verification_error(signature: str) -> None:
    with pytest.raises(WebhookVerificationError, match="malformed signature"):
        webhooks.verify(BODY, headers(signature=signature), SECRET, now=NOW)


def test_random_header_values_only_ever_raise_verification_errors() -> None:
    alphabet = "0123456789abcdef \t.-+e\u00e9\u0661\x00\udcff"
    rng = random.Random(12)  # seeded: the same thousand cases every run
    for _ in range(1000):
        ts = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        sig = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 63, 64, 64, 65, 200])))
        try:
            webhooks.verify(BODY, headers(signature=sig, ts=ts), SECRET, now=NOW)
        except WebhookVerificationError:
            continue
        raise AssertionError(f"accepted {ts!r} {sig!r}")


def test_a_signed_body_nested_too_deep_to_parse_is_a_verification_error() -> None:
    body = b'{"type": "video.completed", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(WebhookVerificationError, match="nested too deeply"):
        webhooks.verify(body, headers(signature=webhooks.sign(body, SECRET, TS)), SECRET, now=NOW)


def test_a_deep_payload_handed_to_parse_is_a_verification_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    payload = {"id": "p", "status": "complete", "downloads": [], "name": deep}
    with pytest.raises(WebhookVerificationError):
        webhooks.parse({"type": "video.completed", "payload": payload})
