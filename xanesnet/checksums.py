"""The one file-hash helper: SHA-256 of a file's bytes, read in blocks."""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits (read 1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
