from __future__ import annotations

import email.utils

import pytest

from magic_hour_async._http._retry import Backoff, parse_retry_after


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
    assert Backoff().delay(attempt, rand) == pytest.approx(expected)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "next tuesday"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected
