"""magic_hour_async: the asyncio-first Python SDK for the Magic Hour API.

Example:
    ```python
    from magic_hour_async import AsyncClient

    async with AsyncClient() as client:  # token from MAGIC_HOUR_API_KEY
        project = await client.v1.video_projects.get(id="cuid")
    ```
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._client import AsyncClient
from ._exceptions import (
    APIConnectionError,
    ApiError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    DownloadError,
    InsufficientCreditsError,
    MagicHourError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PlanUpgradeRequiredError,
    RateLimitError,
    RenderError,
    ResponseDecodeError,
    ServerError,
    SubscriptionRequiredError,
    UnprocessableEntityError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from ._http._config import Environment, Timeout
from ._polling._policy import PollPolicy
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "ApiError",
    "AsyncClient",
    "AudioProject",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "CreateResponse",
    "Download",
    "DownloadError",
    "Environment",
    "ImageProject",
    "InsufficientCreditsError",
    "MagicHourError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PlanUpgradeRequiredError",
    "PollEvent",
    "PollPolicy",
    "Project",
    "ProjectError",
    "ProjectStatus",
    "RateLimitError",
    "RenderError",
    "ResponseDecodeError",
    "SchedulerStats",
    "ServerError",
    "SubscriptionRequiredError",
    "Timeout",
    "TransferProgress",
    "UnprocessableEntityError",
    "VideoProject",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
]


#: Public names loaded on first access (PEP 562): the blocking facade starts no thread and costs nothing
#: until ``Client`` is used, and ``import magic_hour_async`` stays as cheap as the async client needs.
_LAZY = {
    "Client": "._sync",
    "TransferProgress": "._transfers._parts",
    **dict.fromkeys(
        [
            "AudioProject",
            "CreateResponse",
            "Download",
            "ImageProject",
            "Project",
            "ProjectError",
            "ProjectStatus",
            "VideoProject",
        ],
        "._models",
    ),
    "PollEvent": "._polling._scheduler",  # with the scheduler, made by a client's first wait
    "SchedulerStats": "._polling._scheduler",
}

if TYPE_CHECKING:
    from ._models import (
        AudioProject,
        CreateResponse,
        Download,
        ImageProject,
        Project,
        ProjectError,
        ProjectStatus,
        VideoProject,
    )
    from ._polling._scheduler import PollEvent, SchedulerStats
    from ._sync import Client
    from ._transfers._parts import TransferProgress


def _rehome(obj: object) -> None:
    """Public classes report the package as their home, so reprs, docs and pickles say magic_hour_async.X."""
    if isinstance(obj, type):
        obj.__module__ = __name__


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    _rehome(value)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


for _name in __all__:
    if _name not in _LAZY:
        _rehome(globals()[_name])
