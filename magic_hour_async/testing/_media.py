"""Deterministic output files, generated on the fly in chunks.

An output's bytes are a real file signature (PNG, MP4 ``ftyp``, RIFF/WAVE with correct sizes, GIF, WebM, MP3)
followed by pseudo-random filler. The filler is one 1 MiB block drawn from the seeded generator, read
circularly at an offset derived from the output's key, so every output differs, any byte range is computed in
O(range) without touching earlier bytes, and a 1 GiB body never exists in memory: it is served as slices of
that block. :func:`read` returns the same bytes for tests that assert byte-exact downloads.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import Iterator
from typing import Literal

BLOCK = 1 << 20
CHUNK = 256 * 1024

CONTENT_TYPES = {
    "mp4": "video/mp4",
    "png": "image/png",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "gif": "image/gif",
    "webm": "video/webm",
    "jpg": "image/jpeg",
}


def _png(width: int = 1024, height: int = 1024) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _mp4() -> bytes:
    brands = b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands


def _wav(size: int) -> bytes:
    # 44-byte canonical header; the RIFF and data sizes match the whole output (capped at 4 GiB as WAV is).
    riff, data = min(max(size - 8, 0), 0xFFFFFFFF), min(max(size - 44, 0), 0xFFFFFFFF)
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data)
    )


def header(extension: str, size: int) -> bytes:
    """The file signature an output of this type starts with (cut to ``size`` for tiny outputs)."""
    if extension == "png":
        head = _png()
    elif extension == "mp4":
        head = _mp4()
    elif extension == "wav":
        head = _wav(size)
    elif extension == "gif":
        head = b"GIF89a" + struct.pack("<HHBBB", 512, 512, 0, 0, 0)
    elif extension == "webm":
        head = bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\x82\x84webm"
    elif extension == "mp3":
        head = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    else:
        head = b""
    return head[:size]


class Media:
    """The emulator's source of output bytes; one shared filler block, many rotated views of it."""

    def __init__(self, seed: int) -> None:
        block = random.Random(f"{seed}:media").randbytes(BLOCK)
        # Doubled so any window of up to BLOCK bytes starting inside the block is one contiguous slice.
        self._doubled = memoryview(block + block)

    def chunks(
        self, key: str, extension: str, size: int, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` of the output named ``key`` in chunks of at most ``CHUNK`` bytes."""
        stop = size if end is None else min(end, size)
        head = header(extension, size)
        position = start
        if position < len(head):
            yield head[position:stop]
            position = len(head)
        shift = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % BLOCK
        while position < stop:
            offset = (position + shift) % BLOCK
            count = min(CHUNK, stop - position)
            yield bytes(self._doubled[offset : offset + count])
            position += count

    def read(self, key: str, extension: str, size: int, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of an output, in one piece (for tests; prefer :meth:`chunks`)."""
        return b"".join(self.chunks(key, extension, size, start, end))


def etag(key: str, size: int) -> str:
    """A strong validator for an output, so clients can resume with ``If-Range``."""
    return '"' + hashlib.sha256(f"{key}:{size}".encode()).hexdigest()[:32] + '"'


def parse_range(value: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Interpret a ``Range`` header against a body of ``size`` bytes.

    Returns ``(start, end)`` (end exclusive) for one satisfiable range, ``None`` when the header is absent,
    malformed or asks for several ranges (the full body is then sent, as RFC 9110 allows), and
    ``"unsatisfiable"`` when no byte of the body is in the range (416).
    """
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, dash, last = value[len("bytes=") :].strip().partition("-")
    if not dash:
        return None
    if first == "":
        if not last.isdigit():
            return None
        length = int(last)
        return (max(size - length, 0), size) if length > 0 and size > 0 else "unsatisfiable"
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, size if not last else min(int(last) + 1, size)
