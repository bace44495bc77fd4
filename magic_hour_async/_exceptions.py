"""The exception tree. Every error the SDK raises derives from :class:`MagicHourError`.

```
MagicHourError
├── ConfigurationError (also ValueError)
├── APIStatusError (also ApiError)   .status_code .code .message .body .headers
│   ├── BadRequestError 400   ├── AuthenticationError 401   ├── PaymentRequiredError 402
│   │     (InsufficientCreditsError, SubscriptionRequiredError, PlanUpgradeRequiredError by ``code``)
│   ├── PermissionDeniedError 403   ├── NotFoundError 404   ├── UnprocessableEntityError 422
│   ├── RateLimitError 429 (.retry_after seconds or None)   └── ServerError 5xx
├── APIConnectionError        no HTTP response was received
│   └── APITimeoutError (also TimeoutError)
├── ResponseDecodeError       the body was not the JSON shape the API promises
├── WaitTimeoutError (also TimeoutError)   .project .last_error
├── RenderError               .project .code .message
├── DownloadError
└── WebhookVerificationError
```

Every exception pickles: constructors take their fields as keyword arguments and ``__reduce__`` replays them.
Nothing here ever holds a secret: :func:`status_error` scrubs the token and signed URL query strings from the
message, the body and the headers before it builds the exception (a server may echo them), and the transport
raises what it maps from aiohttp with no ``__cause__`` or ``__context__`` (aiohttp's exceptions quote URLs and
request headers).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, cast

from ._http._redact import scrub, scrub_value

_EXCERPT = 200


class MagicHourError(Exception):
    """Base class of every error raised by magic_hour_async."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._fields()))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[MagicHourError], fields: dict[str, Any]) -> MagicHourError:
    return cls(**fields)


class ConfigurationError(MagicHourError, ValueError):
    """The client was configured wrongly (no token, a bad base URL, an invalid option)."""


class ClientClosedError(MagicHourError, RuntimeError):
    """The client was used after ``close()`` (create a new one), or the aiohttp session it was given is
    closed."""


class APIStatusError(MagicHourError):
    """The API answered with a non-success HTTP status.

    ``code`` is the machine-readable ``code`` of the API's ``{"code": ..., "message": ...}`` error body
    (``"insufficient_credits"``, ``"not_found"``, ...), or ``None`` when the body had none.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})
        self.code = code

    def _fields(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status_code": self.status_code,
            "body": self.body,
            "headers": self.headers,
            "code": self.code,
        }

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"


class BadRequestError(APIStatusError):
    """HTTP 400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API token is missing, wrong or revoked."""


#: The official SDK's single error class: ``except ApiError`` catches every error status here too.
ApiError = APIStatusError


class PaymentRequiredError(APIStatusError):
    """HTTP 402: the request needs credits or a plan the account lacks; subclasses tell which by ``code``."""


class InsufficientCreditsError(PaymentRequiredError):
    """HTTP 402 ``insufficient_credits``: buy credits before retrying."""


class SubscriptionRequiredError(PaymentRequiredError):
    """HTTP 402 ``subscription_required``: the operation needs a subscription."""


class PlanUpgradeRequiredError(PaymentRequiredError):
    """HTTP 402 ``plan_upgrade_required``: the operation needs a higher plan."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the plan or token does not allow this operation."""


class NotFoundError(APIStatusError):
    """HTTP 404: no such resource (or it belongs to another kind)."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request body broke a rule of the API."""


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, headers=headers, code=code)
        self.retry_after = retry_after

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "retry_after": self.retry_after}


class ServerError(APIStatusError):
    """HTTP 5xx: the API failed to handle the request."""


class APIConnectionError(MagicHourError):
    """No HTTP response was received (refused, reset, DNS failure, TLS error).

    ``request_sent`` is False when the connection failed before any byte of the request went out (refused,
    DNS, TLS, connect timeout): the server cannot have acted on it, so even a paid create is safe to retry.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "request_sent": self.request_sent}


class APITimeoutError(APIConnectionError, TimeoutError):
    """The request timed out before a complete response arrived."""


class ResponseDecodeError(MagicHourError):
    """The response body was not the JSON shape the API promises."""


class WaitTimeoutError(MagicHourError, TimeoutError):
    """A wait passed its deadline; ``project`` is the last state seen (None if none was).

    ``last_error`` is the error of the last poll if polls had been failing since the last successful one (else
    None); it is also the ``__cause__``, so a traceback shows why the render was not seen to finish.
    """

    def __init__(self, message: str, *, project: Any = None, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.project = project
        self.last_error = last_error
        # Set here, not by ``raise ... from``: the cause survives a pickle round trip with the other fields.
        self.__cause__ = last_error

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "project": self.project, "last_error": self.last_error}


class RenderError(MagicHourError):
    """A render ended in ``error`` or ``canceled``; raised by ``project.raise_for_status()``."""

    def __init__(self, message: str, *, project: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.project = project
        self.code = code

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "project": self.project, "code": self.code}


class DownloadError(MagicHourError):
    """An output could not be downloaded; nothing was left under the final file name."""


class WebhookVerificationError(MagicHourError):
    """A webhook delivery failed verification (missing header, bad signature, stale timestamp)."""


def raise_detached(error: MagicHourError, *, cause: MagicHourError | None = None) -> NoReturn:
    """Raise ``error`` with ``cause`` (an SDK error, already scrubbed) as its only link to other exceptions.

    ``raise error from None`` only hides the context from tracebacks, and on Python 3.10 a coroutine may
    chain an exception it handled earlier (aiohttp's, quoting URLs) to whatever it raises next. Clearing the
    context after the raise and re-raising as is chains nothing new.
    """
    try:
        raise error
    except MagicHourError:
        error.__context__ = None
        error.__cause__ = cause
        error.__suppress_context__ = True
        raise


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_PAYMENT_BY_CODE: dict[str, type[PaymentRequiredError]] = {
    "insufficient_credits": InsufficientCreditsError,
    "subscription_required": SubscriptionRequiredError,
    "plan_upgrade_required": PlanUpgradeRequiredError,
}


def _excerpt(text: str) -> str:
    """A short, single-line, readable excerpt of a non-JSON body (an HTML error page, say)."""
    if "<" in text:
        # Prefer the page's <title>, which proxies fill with the status line.
        lower = text.lower()
        start, end = lower.find("<title>"), lower.find("</title>")
        if 0 <= start < end:
            text = text[start + len("<title>") : end]
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 3] + "..."


def status_error(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    reason: str = "",
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
) -> APIStatusError:
    """Build the exception for an error response. The one place that maps statuses to classes.

    ``secrets`` (the token, a signed URL's query) are scrubbed from the message, body and headers, as is the
    query of any URL in them.
    """
    hidden = tuple(secrets)
    text = scrub(raw.decode("utf-8", "replace"), hidden)
    body: Any = text
    with contextlib.suppress(ValueError, RecursionError):  # not JSON, or nested too deep: keep the text
        body = scrub_value(json.loads(text), hidden)
    headers = {scrub(name, hidden): scrub(value, hidden) for name, value in headers.items()}
    reason = scrub(reason, hidden)
    fields = cast("dict[str, object]", body) if isinstance(body, dict) else {}
    found, found_code = fields.get("message"), fields.get("code")
    message = (found if isinstance(found, str) else _excerpt(text)) or reason or "no message"
    code = found_code if isinstance(found_code, str) else None
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIStatusError)
    if cls is PaymentRequiredError and code is not None:
        cls = _PAYMENT_BY_CODE.get(code, PaymentRequiredError)
    if cls is RateLimitError:
        return RateLimitError(
            message, status_code=status, body=body, headers=headers, code=code, retry_after=retry_after
        )
    return cls(message, status_code=status, body=body, headers=headers, code=code)
