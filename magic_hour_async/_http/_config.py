"""Client configuration: where to connect, with which token, and how long to wait.

Everything read from the environment is read here, once, at construction, so a missing token is reported
before the first request (the official SDK only finds out at the first 401).
"""

from __future__ import annotations

import enum
import os
import re

import attrs

from .._exceptions import ConfigurationError

TOKEN_ENV = "MAGIC_HOUR_API_KEY"
BASE_URL_ENV = "MAGIC_HOUR_BASE_URL"


class Environment(enum.Enum):
    """Where the API lives. ``Environment.PRODUCTION`` is https://api.magichour.ai.

    ``ENVIRONMENT`` is the official SDK's name for production (the same member); ``MOCK_SERVER`` is the
    official SDK's hosted mock, which answers every call with a fixed example and renders nothing.
    """

    PRODUCTION = "https://api.magichour.ai"
    ENVIRONMENT = "https://api.magichour.ai"  # an alias of PRODUCTION (same value)
    MOCK_SERVER = "https://api.sideko.dev/v1/mock/magichour/magic-hour/0.90.0"


#: Largest JSON answer read from the API by default (a project is a few KiB); see ``max_response_bytes``.
MAX_RESPONSE_BYTES = 16 << 20


@attrs.frozen(kw_only=True)
class Timeout:
    """Time limits in seconds for each attempt of a request; ``None`` disables one.

    Attributes:
        connect: to get a connection (DNS, TCP, TLS), or a free one from the pool.
        read: the longest silence between two reads of the response. For downloads and uploads it is the
            stall limit: no byte moved for that long fails the attempt.
        total: everything for one attempt of an API call, from connecting to the last byte of the body, so a
            server that trickles a byte a second cannot hold a request open. Retries each get their own.
            Downloads and uploads have no total (a large file may take longer than any API call should);
            the stall limit bounds them instead.

    Example:
        ``AsyncClient(timeout=Timeout(connect=5, read=30, total=120))``; a plain number sets read and total.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = 60.0

    def __attrs_post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise ConfigurationError(f"Timeout.{name} must be a positive number of seconds or None")


def resolve_timeout(value: float | Timeout | None) -> Timeout:
    """Turn the constructor's ``timeout`` argument into a :class:`Timeout`."""
    if value is None:
        return Timeout()
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds or a Timeout, not {value!r}")
    return Timeout(connect=min(float(value), 10.0), read=float(value), total=float(value))


# A token goes into a header verbatim: printable ASCII, no spaces (what API keys are made of).
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


def resolve_token(token: str | None) -> str:
    """The explicit token, else ``MAGIC_HOUR_API_KEY``; raises ConfigurationError naming the variable.

    A token with whitespace, control or non-ASCII characters (a stray newline from a file or a copy and
    paste) is refused here, once, rather than failing every request with an obscure header error. The
    message gives the position, never the token.
    """
    from_env = token is None
    found = os.environ.get(TOKEN_ENV) if from_env else token
    if not isinstance(found, str) or not found.strip():
        if found is not None and not isinstance(found, str):
            raise ConfigurationError(f"token must be a string, not {type(found).__name__}")
        raise ConfigurationError(
            f"No API token: pass token=... or set the {TOKEN_ENV} environment variable "
            "(create a key at https://magichour.ai/developer)."
        )
    if not _TOKEN_CHARS.fullmatch(found):
        position = next(index for index, char in enumerate(found) if not _TOKEN_CHARS.fullmatch(char))
        where = f"the {TOKEN_ENV} environment variable" if from_env else "the token"
        raise ConfigurationError(
            f"{where} contains whitespace, a control character or a non-ASCII character "
            f"(at position {position}); API tokens are printable ASCII with no spaces"
        )
    return found


def resolve_max_response_bytes(value: int) -> int:
    """Check the constructor's ``max_response_bytes``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ConfigurationError(f"max_response_bytes must be an integer of at least 1024, not {value!r}")
    return value


def resolve_base_url(base_url: str | None, environment: Environment) -> str:
    """The explicit base URL, else ``MAGIC_HOUR_BASE_URL``, else the environment's URL."""
    url = base_url or os.environ.get(BASE_URL_ENV) or environment.value
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, not {url!r}")
    return url.rstrip("/")
