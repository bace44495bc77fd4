"""``magic_hour_async.environment``: where code written for the official SDK imports ``Environment`` from.

``Environment.PRODUCTION`` (also ``Environment.ENVIRONMENT``, the official name) and
``Environment.MOCK_SERVER``; the same class as ``magic_hour_async.Environment``.
"""

from ._http._config import Environment

__all__ = ["Environment"]
