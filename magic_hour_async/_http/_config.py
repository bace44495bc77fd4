"""Client configuration: where to connect, with which token, and how long to wait.

Everything read from the environment is read here, once, at construction, so a missing token is reported
before the first request (the official SDK only finds out at the first 401).
"""

from __future__ import annotations

import enum
import os
import platform

import aiohttp
import attrs

from .._exceptions import ConfigurationError
from .._version import __version__

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


@attrs.frozen(kw_only=True)
class Timeout:
    """Per-request time limits in seconds; ``None`` disables one.

    Example:
        ``AsyncClient(timeout=Timeout(connect=5, read=120))``; a plain number sets the total.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = None

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, sock_connect=self.connect, sock_read=self.read)


def resolve_timeout(value: float | Timeout | None) -> Timeout:
    """Turn the constructor's ``timeout`` argument into a :class:`Timeout`."""
    if value is None:
        return Timeout()
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds or a Timeout, not {value!r}")
    return Timeout(connect=min(float(value), 10.0), read=float(value), total=float(value))


def resolve_token(token: str | None) -> str:
    """The explicit token, else ``MAGIC_HOUR_API_KEY``; raises ConfigurationError naming the variable."""
    found = token if token is not None else os.environ.get(TOKEN_ENV)
    if not found or not found.strip():
        raise ConfigurationError(
            f"No API token: pass token=... or set the {TOKEN_ENV} environment variable "
            "(create a key at https://magichour.ai/developer)."
        )
    return found.strip()


def resolve_base_url(base_url: str | None, environment: Environment) -> str:
    """The explicit base URL, else ``MAGIC_HOUR_BASE_URL``, else the environment's URL."""
    url = base_url or os.environ.get(BASE_URL_ENV) or environment.value
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, not {url!r}")
    return url.rstrip("/")


def user_agent() -> str:
    return (
        f"magic-hour-async/{__version__} (python {platform.python_version()}; aiohttp {aiohttp.__version__})"
    )
