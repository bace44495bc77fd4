"""Argument checks that run before any request: a bad value is a usage error (exit 2), never a paid mistake.

argparse ``type=`` functions raise ``ArgumentTypeError``, so argparse prints ``--flag: why`` and exits 2.
The checks that need the file system (a directory to save into, files to upload) raise
:class:`ConfigurationError` naming the flag or file, which the CLI also maps to exit 2.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .._exceptions import ConfigurationError

__all__ = ["base_url", "local_files", "port", "positive_number", "writable_directory"]


def positive_number(text: str) -> float:
    """A finite number greater than zero (``nan`` would wait forever, ``0`` never at all)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def base_url(text: str, source: str = "--base-url") -> str:
    """An ``http(s)://host[:port]`` URL; ``source`` names where it came from in the message."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise ConfigurationError(f"{source} {text!r} is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{source} must be an http:// or https:// URL with a host, not {text!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{source} must not have a query or fragment")
    return text


def base_url_arg(text: str) -> str:
    """:func:`base_url` for argparse."""
    try:
        return base_url(text)
    except ConfigurationError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--base-url ")) from None


def writable_directory(directory: Path, flag: str) -> Path:
    """Create ``directory`` if needed and prove a file can be written in it, before anything is paid for.

    A probe file, not ``os.access``: permissions are not the only reason a write fails (read-only mounts,
    ``/sys``, a file in the way), and a process running as root passes every access check.
    """
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(f"{flag} {directory}: not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".magic-hour-write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigurationError(f"{flag} {directory}: cannot write there ({reason})") from None
    return directory


def local_files(sources: list[str]) -> None:
    """Every local file named for upload exists and is a regular file (URLs and api-assets/ paths pass)."""
    for source in sources:
        if source.startswith(("http://", "https://", "api-assets/")):
            continue
        path = Path(source)
        if path.is_dir():
            raise ConfigurationError(f"upload {source}: is a directory, not a file")
        if not path.is_file():
            reason = "no such file" if not path.exists() else "not a regular file"
            raise ConfigurationError(f"upload {source}: {reason}")
        if not os.access(path, os.R_OK):
            raise ConfigurationError(f"upload {source}: not readable")
