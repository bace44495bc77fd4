"""``AsyncClient``: configuration, the shared transport, and the ``v1`` resource tree."""

from __future__ import annotations

import types

import aiohttp

from ._config import Environment, Timeout, resolve_base_url, resolve_timeout, resolve_token
from ._exceptions import ConfigurationError
from ._resources.projects import AsyncAudioProjects, AsyncImageProjects, AsyncVideoProjects
from ._transport import Transport


class AsyncV1:
    """The ``/v1`` API: ``client.v1.video_projects``, ``client.v1.image_projects``, ..."""

    def __init__(self, client: AsyncClient) -> None:
        self.video_projects = AsyncVideoProjects(client)
        self.image_projects = AsyncImageProjects(client)
        self.audio_projects = AsyncAudioProjects(client)

    def __repr__(self) -> str:
        return "<AsyncV1>"


class AsyncClient:
    """The asyncio client for the Magic Hour API.

    Example:
        ```python
        async with AsyncClient() as client:  # token from MAGIC_HOUR_API_KEY
            project = await client.v1.video_projects.get(id="cuid")
        ```

    Args:
        token: the API key; ``None`` reads ``MAGIC_HOUR_API_KEY``.
        base_url: the API's URL; ``None`` reads ``MAGIC_HOUR_BASE_URL``, else ``environment``.
        environment: which deployment to use when no base URL is given.
        timeout: seconds for the whole request, or a :class:`Timeout` (default: connect 10 s, read 60 s).
        max_retries: extra attempts for failed requests (see the README's retry rules).
        session: an ``aiohttp.ClientSession`` you own; the client uses it and never closes it.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        environment: Environment = Environment.PRODUCTION,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a non-negative integer, not {max_retries!r}")
        self._transport = Transport(
            base_url=resolve_base_url(base_url, environment),
            token=resolve_token(token),
            timeout=resolve_timeout(timeout),
            max_retries=max_retries,
            session=session,
        )
        self.v1 = AsyncV1(self)

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._transport.base_url

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._transport.closed

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def close(self) -> None:
        """Close the client's session (not a caller-owned one). Closing twice is harmless."""
        await self._transport.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()
