"""How the CLI reports a failure: one line naming its subject, and an exit status a script can branch on.

====  =================================================================
0     success
1     a render that failed or was canceled; any other error (API, connection, download)
2     usage or configuration (bad arguments, no token, an unwritable directory)
3     authentication (401) or permission (403)
4     not found (404)
5     timeout (a wait's deadline, a request timeout)
130   interrupted (Ctrl-C)
141   stdout was closed early (``| head``); nothing more is printed
====  =================================================================

With several projects in one command, the status is that of the most severe outcome, in the order
2, 3, 4, 1, 5, 0: a definite failure outranks a wait that merely ran out of time.

A line reads ``error: <subject>: <ErrorClass>: <message> [<METHOD> <URL>]``. The subject names what failed (a
project's kind and id, a tool, a file), the message is the library's (so the API's own words for an HTTP
error), and the request's URL is shown without its query string, which may carry a signature. The library
speaks Python (``pass token=...``); the CLI says which flag to use instead.
"""

from __future__ import annotations

import re

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ResponseDecodeError,
    WaitTimeoutError,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "describe",
    "exit_code",
    "in_flag_names",
    "worst",
]

EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130
_SEVERITY = (EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_ERROR, EXIT_TIMEOUT, 0)

# The library's Python-facing advice, and what a CLI user does instead.
_FLAGS = {"token": "--token", "secret": "--secret", "base_url": "--base-url", "timeout": "--timeout"}
_PASS = re.compile(r"pass (\w+)=\.\.\.")
_OVERWRITE = "pass overwrite=True to replace it"


def in_flag_names(text: str) -> str:
    """``"pass token=... or set X"`` becomes ``"pass --token or set X"``."""

    def flag(found: re.Match[str]) -> str:
        name = found[1]
        return f"pass {_FLAGS[name]}" if name in _FLAGS else found[0]

    return _PASS.sub(flag, text).replace(_OVERWRITE, "remove it or choose another --dir")


def exit_code(error: BaseException) -> int:
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, TimeoutError):
        return EXIT_TIMEOUT
    return EXIT_ERROR


def worst(codes: list[int]) -> int:
    """The most severe of several exit statuses (see the module docstring); 0 for none."""
    return min(codes, key=_SEVERITY.index, default=0)


def last_error(error: WaitTimeoutError) -> BaseException | None:
    """The poll error a timed-out wait carries, on libraries that record it."""
    found: object = getattr(error, "last_error", None)
    return found if isinstance(found, BaseException) else None


def describe(
    error: BaseException,
    subject: str | None = None,
    *,
    request: str | None = None,
    last_poll_error: BaseException | None = None,
) -> str:
    """The one line for ``error``: ``subject`` is what failed, ``request`` the method and URL (no query)."""
    text = in_flag_names(str(error)) or "(no message)"
    # A usage mistake reads as the sentence it is; anything else says what kind of failure it was.
    line = text if isinstance(error, ConfigurationError) else f"{type(error).__name__}: {text}"
    if isinstance(error, WaitTimeoutError):
        project = error.project
        status = getattr(project, "status", None)
        if status is not None:
            line += f" (last status: {status})"
        cause = last_error(error) or last_poll_error
        if cause is not None:
            line += f"; last poll error: {type(cause).__name__}: {in_flag_names(str(cause))}"
    elif request is not None and isinstance(error, (APIStatusError, APIConnectionError, ResponseDecodeError)):
        # Errors of the request itself; a DownloadError names its own (redacted) output URL and file.
        line += f" [{request.partition('?')[0]}]"
    return f"error: {subject}: {line}" if subject else f"error: {line}"
