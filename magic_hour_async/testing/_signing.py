"""Signed, expiring URLs for downloads and uploads, and the API's timestamp format.

Download and upload URLs point at the emulator itself and carry ``expires`` (Unix time in milliseconds) and
``sig`` (HMAC-SHA256 of the path and expiry under an emulator secret derived from the seed), like a storage
bucket's presigned URLs. A changed path, a forged signature or a passed expiry is answered with 403, which is
what the SDK's download code must recover from by fetching fresh URLs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone


def iso(unix: float) -> str:
    """Format Unix time as the API does: ISO 8601, milliseconds, ``Z``."""
    stamp = datetime.fromtimestamp(unix, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class Signer:
    """Signs and checks ``?expires=...&sig=...`` query strings."""

    def __init__(self, seed: int) -> None:
        self._secret = hashlib.sha256(f"magic-hour-emulator:{seed}".encode()).digest()

    def _mac(self, path: str, expires_ms: int) -> str:
        message = f"{path}\n{expires_ms}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:40]

    def query(self, path: str, expires: float) -> str:
        """The query string authorising ``path`` until Unix time ``expires``."""
        expires_ms = int(expires * 1000)
        return f"expires={expires_ms}&sig={self._mac(path, expires_ms)}"

    def check(self, path: str, query: Mapping[str, str], now: float) -> str | None:
        """Why the signed URL is refused (a short reason), or ``None`` if it is valid at Unix time ``now``."""
        expires, sig = query.get("expires", ""), query.get("sig", "")
        if not expires.isdigit() or not hmac.compare_digest(sig, self._mac(path, int(expires))):
            return "SignatureDoesNotMatch"
        if now * 1000 > int(expires):
            return "Request has expired"
        return None
