"""magic_hour_async: the asyncio-first Python SDK for the Magic Hour API.

Example:
    ```python
    from magic_hour_async import AsyncClient

    async with AsyncClient() as client:  # token from MAGIC_HOUR_API_KEY
        project = await client.v1.video_projects.get(id="cuid")
    ```
"""

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
from ._polling._policy import PollPolicy
from ._polling._scheduler import PollEvent, SchedulerStats
from ._sync import Client
from ._transfers._parts import TransferProgress
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


def _rehome() -> None:
    """Public classes report the package as their home, so reprs, docs and pickles say magic_hour_async.X."""
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type):
            obj.__module__ = __name__


_rehome()
