"""magic_hour_async: the asyncio-first Python SDK for the Magic Hour API.

Example:
    ```python
    from magic_hour_async import AsyncClient

    async with AsyncClient() as client:  # token from MAGIC_HOUR_API_KEY
        project = await client.v1.video_projects.get(id="cuid")
    ```
"""

from ._client import AsyncClient
from ._config import Environment, Timeout
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    DownloadError,
    MagicHourError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RenderError,
    ResponseDecodeError,
    ServerError,
    UnprocessableEntityError,
    WaitTimeoutError,
    WebhookVerificationError,
)
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
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AudioProject",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "CreateResponse",
    "Download",
    "DownloadError",
    "Environment",
    "ImageProject",
    "MagicHourError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "Project",
    "ProjectError",
    "ProjectStatus",
    "RateLimitError",
    "RenderError",
    "ResponseDecodeError",
    "ServerError",
    "Timeout",
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
