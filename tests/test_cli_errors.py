"""The one error line: subject, class, the library's message in flag names, the URL without its query."""

from __future__ import annotations

import pytest

from magic_hour_async import (
    APIConnectionError,
    ConfigurationError,
    DownloadError,
    ImageProject,
    NotFoundError,
    WaitTimeoutError,
)
from magic_hour_async._cli._errors import describe, exit_code, in_flag_names, worst


def test_an_api_error_names_subject_message_and_route_without_query() -> None:
    error = NotFoundError("Not Found", status_code=404)
    line = describe(
        error, "image project x", request="GET https://api.example/v1/image-projects/x?sig=secret"
    )
    assert (
        line
        == "error: image project x: NotFoundError: HTTP 404: Not Found [GET https://api.example/v1/image-projects/x]"
    )


def test_a_wait_that_gave_up_with_the_connection_error_is_printed_as_that_error() -> None:
    # What a wait raises once `PollPolicy.give_up_after` passes with every poll failing.
    error = APIConnectionError("connection failed: Cannot connect to host 127.0.0.1:9")
    line = describe(error, "image project a", request="GET http://127.0.0.1:9/v1/image-projects/a")
    assert line == (
        "error: image project a: APIConnectionError: connection failed: Cannot connect to host 127.0.0.1:9"
        " [GET http://127.0.0.1:9/v1/image-projects/a]"
    )
    assert exit_code(error) == 1


def test_a_timed_out_wait_shows_the_last_status_and_the_last_poll_error() -> None:
    project = ImageProject(id="a", status="queued")
    error = WaitTimeoutError("image project 'a' did not finish within 5 s", project=project)
    seen = APIConnectionError("refused")
    assert describe(error, "image project a", last_poll_error=seen) == (
        "error: image project a: WaitTimeoutError: image project 'a' did not finish within 5 s"
        " (last status: queued); last poll error: APIConnectionError: refused"
    )
    # A library that records the error on the exception (`.last_error`) is preferred to what the CLI saw.
    recorded = APIConnectionError("reset by peer")
    error.last_error = recorded  # type: ignore[attr-defined]
    assert describe(error, "image project a", last_poll_error=seen).endswith(
        "last poll error: APIConnectionError: reset by peer"
    )
    assert exit_code(error) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "No API token: pass token=... or set MAGIC_HOUR_API_KEY",
            "No API token: pass --token or set MAGIC_HOUR_API_KEY",
        ),
        ("no webhook secret: pass secret=... or set S", "no webhook secret: pass --secret or set S"),
        ("x differs; pass overwrite=True to replace it", "x differs; remove it or choose another --dir"),
        ("pass other=... stays", "pass other=... stays"),
    ],
)
def test_python_keywords_become_flag_names(text: str, expected: str) -> None:
    assert in_flag_names(text) == expected


def test_usage_errors_read_as_sentences_and_exit_2() -> None:
    error = ConfigurationError("--dir out: not a directory")
    assert describe(error) == "error: --dir out: not a directory"
    assert exit_code(error) == 2
    download = DownloadError(
        "could not download output 0 (https://cdn.example/o.png) to out/p-o.png: HTTP 500"
    )
    assert describe(download, "image project p", request="GET https://api.example/v1/image-projects/p") == (
        "error: image project p: DownloadError: could not download output 0 (https://cdn.example/o.png)"
        " to out/p-o.png: HTTP 500"
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([], 0), ([0, 0], 0), ([0, 5], 5), ([5, 1], 1), ([1, 4], 4), ([4, 3], 3), ([3, 2, 0], 2)],
)
def test_the_worst_outcome_wins(codes: list[int], expected: int) -> None:
    assert worst(codes) == expected
