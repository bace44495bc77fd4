"""The one retry policy, table-tested: what is transient for each kind of request, and how long to wait."""

from __future__ import annotations

import email.utils

import pytest

from magic_hour_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    WaitTimeoutError,
)
from magic_hour_async._exceptions import status_error
from magic_hour_async._http._retry import TRANSIENT_STATUSES, RequestKind, RetryPolicy, parse_retry_after
from magic_hour_async._test_mode import set_testing

READ, CREATE, UPLOAD, DOWNLOAD, POLL = (
    RequestKind.READ,
    RequestKind.CREATE,
    RequestKind.UPLOAD,
    RequestKind.DOWNLOAD,
    RequestKind.POLL,
)
IDEMPOTENT = (READ, UPLOAD, DOWNLOAD, POLL)


def status(code: int, **headers: str) -> APIStatusError:
    return status_error(code, b'{"message": "x"}', headers)


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (408, True),
        (409, False),
        (410, False),
        (422, False),
        (429, True),
        (500, True),
        (501, False),  # not implemented: the request itself is wrong
        (502, True),
        (503, True),
        (504, True),
        (505, False),
    ],
)
@pytest.mark.parametrize("kind", IDEMPOTENT)
def test_statuses_are_transient_for_idempotent_kinds(kind: RequestKind, code: int, transient: bool) -> None:
    assert RetryPolicy().transient(kind, status(code)) is transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (status(429), True),
        (status(408), False),
        (status(500), False),
        (status(502), False),
        (status(503), False),
        (status(504), False),
        (APIConnectionError("refused", request_sent=False), True),
        (APITimeoutError("connect timeout", request_sent=False), True),
        (APIConnectionError("reset after sending"), False),
        (APITimeoutError("read timeout"), False),
        (ResponseDecodeError("garbage"), False),
    ],
)
def test_a_paid_create_retries_only_when_the_server_cannot_have_acted(
    error: BaseException, transient: bool
) -> None:
    assert RetryPolicy().transient(CREATE, error) is transient


@pytest.mark.parametrize(
    ("kind", "error", "transient"),
    [
        *((kind, APIConnectionError("reset"), True) for kind in IDEMPOTENT),
        *((kind, APITimeoutError("slow"), True) for kind in IDEMPOTENT),
        (POLL, ResponseDecodeError("garbage"), True),  # the next poll may be fine; give_up_after bounds it
        (READ, ResponseDecodeError("garbage"), False),
        (DOWNLOAD, ResponseDecodeError("garbage"), False),
        (POLL, WaitTimeoutError("late"), False),
        (READ, ValueError("not ours"), False),
        (POLL, NotFoundError("gone", status_code=404), False),
    ],
)
def test_other_errors(kind: RequestKind, error: BaseException, transient: bool) -> None:
    assert RetryPolicy().transient(kind, error) is transient


def test_the_transient_status_set_is_the_same_everywhere() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504}) == TRANSIENT_STATUSES


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.0),
        (0, 0.999, 0.4995),
        (0, 0.5, 0.25),
        (1, 0.5, 0.5),
        (2, 0.5, 1.0),
        (3, 0.5, 2.0),
        (4, 0.5, 4.0),
        (5, 0.5, 4.0),  # capped at 8 s before jitter
        (60, 1.0, 8.0),  # huge attempt numbers neither overflow nor exceed the cap
    ],
)
def test_backoff_is_exponential_full_jitter_capped(attempt: int, rand: float, expected: float) -> None:
    assert RetryPolicy().backoff(attempt, rand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kind", "error", "attempt", "expected"),
    [
        (READ, status(503), 0, 0.25),
        (READ, status(503), 1, 0.5),
        (READ, status(503), 2, None),  # max_retries=2: the third retry is not made
        (READ, status(404), 0, None),
        (READ, RateLimitError("slow", retry_after=3.0), 0, 3.0),  # the server's hint, not the backoff
        (READ, RateLimitError("slow", retry_after=60.0), 0, 60.0),  # up to the cap
        (READ, RateLimitError("later", retry_after=61.0), 0, None),  # beyond: raised for the caller
        (READ, RateLimitError("slow"), 1, 0.5),  # no hint: backoff
        (READ, status(503, **{"Retry-After": "7"}), 0, 7.0),  # a 503 may say when, too
        (READ, status(500, **{"retry-after-ms": "250"}), 0, 0.25),
        (CREATE, status(503), 0, None),
        (CREATE, RateLimitError("slow", retry_after=2.0), 0, 2.0),
        (CREATE, APIConnectionError("refused", request_sent=False), 1, 0.5),
        (CREATE, APIConnectionError("lost"), 0, None),
        (UPLOAD, APITimeoutError("stalled"), 0, 0.25),
        (DOWNLOAD, status(502), 1, 0.5),
    ],
)
def test_next_delay(kind: RequestKind, error: BaseException, attempt: int, expected: float | None) -> None:
    assert RetryPolicy().next_delay(kind, error, attempt=attempt, rand=0.5) == expected


def test_max_retries_can_be_overridden_per_call() -> None:
    policy = RetryPolicy(max_retries=5)
    assert policy.next_delay(POLL, status(503), attempt=0, rand=0.5, max_retries=0) is None
    assert policy.next_delay(POLL, status(503), attempt=4, rand=0.5) == 4.0


def test_test_mode_makes_every_wait_zero_but_keeps_the_rules() -> None:
    with set_testing(True):
        assert RetryPolicy().next_delay(READ, status(503), attempt=1, rand=0.9) == 0.0
        hinted = RateLimitError("slow", retry_after=30.0)
        assert RetryPolicy().next_delay(READ, hinted, attempt=0, rand=0.5) == 0
        assert RetryPolicy().next_delay(CREATE, status(503), attempt=0, rand=0.5) is None
        assert RetryPolicy().next_delay(READ, status(503), attempt=2, rand=0.5) is None
    assert RetryPolicy().next_delay(READ, status(503), attempt=1, rand=0.5) == 0.5


@pytest.mark.parametrize(
    "settings",
    [{"base": 0}, {"base": 9, "cap": 8}, {"max_retry_after": -1}, {"max_retries": -1}, {"max_retries": True}],
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


def test_a_server_error_is_a_status_error() -> None:
    assert isinstance(status(502), ServerError)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "3"}, 3.0),  # any case, also in a plain dict
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "next tuesday"}, None),
        ({"retry-after": "Tue, 01 Dec 99999 00:00:00 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected
