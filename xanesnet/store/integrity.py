"""What keeps an output folder trustworthy: chunk checksums, the writer's lock, write errors.

A chunk's checksum is taken over its *data* (ids, sites, spectra, spread, errors, and the trust
columns and no-site ids where the output has them), not over the
bytes of its files: the bytes of an HDF5 or zarr file depend on the library version, the data do
not, so one job gives the same checksums whatever wrote it (a resumed, a Dask and a single run
stay identical, manifests included), and a damaged chunk is one whose data no longer read back.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store._common import TRUST_FIELDS, ChunkData

LOCK_NAME = ".lock"


class OutputWriteError(OSError):
    """The output folder cannot be written (disk full, read-only, permissions): the job stops
    with what was committed so far intact; run it again once the cause is fixed."""


class OutputLockedError(ValueError):
    """Another process is writing the same output folder."""


def chunk_checksum(chunk: ChunkData) -> str:
    """SHA-256 (hex) of a chunk's data, independent of the file format that holds it."""
    digest = hashlib.sha256()
    ids = "\0".join(str(i) for i in chunk.ids).encode()
    digest.update(len(ids).to_bytes(8, "little") + ids)
    # the arrays' buffers are hashed in place (no .tobytes() copy; the same bytes)
    digest.update(np.ascontiguousarray(chunk.sites, dtype="<i8").data)
    digest.update(np.ascontiguousarray(chunk.spectra, dtype="<f4").data)
    if chunk.spread is not None:
        digest.update(b"spread")
        digest.update(np.ascontiguousarray(chunk.spread, dtype="<f4").data)
    for structure_id, reason in chunk.errors:
        digest.update(f"\0{structure_id}\0{reason}".encode())
    # the trust columns and no-site ids, where the output has them (older outputs' chunks
    # have neither: their checksums stay those written)
    if chunk.trust is not None:
        for name, dtype in TRUST_FIELDS:
            values = np.asarray(chunk.trust[name])
            if dtype is np.float32:  # one NaN bit pattern (text formats do not keep others)
                values = np.where(np.isnan(values), np.float32("nan"), values).astype("<f4")
            else:
                values = values.astype("u1")
            digest.update(f"\0{name}".encode())
            digest.update(np.ascontiguousarray(values).tobytes())
    if chunk.no_sites:
        no_sites = "\0".join(chunk.no_sites).encode()
        digest.update(b"\0no_sites" + len(no_sites).to_bytes(8, "little") + no_sites)
    if chunk.multiplicity is not None:  # unique-sites outputs only
        digest.update(b"\0multiplicity")
        digest.update(np.ascontiguousarray(chunk.multiplicity, dtype="<i8").tobytes())
        mean_ids = "\0".join(str(i) for i in chunk.mean_ids).encode()
        digest.update(b"\0structure_mean" + len(mean_ids).to_bytes(8, "little") + mean_ids)
        digest.update(np.ascontiguousarray(chunk.mean_spectra, dtype="<f4").tobytes())
    for name, values in (chunk.columns or {}).items():  # per-site text columns, where kept
        text = "\0".join(str(v) for v in values).encode("utf-8", "surrogateescape")
        digest.update(f"\0column {name}\0".encode() + len(text).to_bytes(8, "little") + text)
    return digest.hexdigest()


def damage(read_chunk: Any, entry: dict[str, Any]) -> str | None:
    """Why a committed chunk cannot be trusted, or None when it reads back as written.

    Args:
        read_chunk: a callable returning the chunk's :class:`ChunkData` (the backend's reader
            bound to the output and chunk index).
        entry: the chunk's manifest entry (``sites``; ``sha256`` for outputs written since
            checksums exist — older ones are checked for readability and size only).
    """
    try:
        chunk = read_chunk()
    except Exception as exc:  # noqa: BLE001 - any failure to read back means damage
        return f"unreadable ({type(exc).__name__}: {exc})"
    if len(chunk.ids) != int(entry.get("sites", len(chunk.ids))):
        return f"holds {len(chunk.ids)} sites, the manifest says {entry.get('sites')}"
    expected = entry.get("sha256")
    if expected is not None and chunk_checksum(chunk) != expected:
        return "checksum mismatch"
    return None


class OutputLock:
    """An exclusive advisory lock (``fcntl.flock``) on ``OUT/.lock`` that keeps a second
    process from writing the same output; released when closed or when the process ends,
    however it ends. Within one process the lock is shared (re-entrant): a job that failed
    and is run again from the same Python session is not locked out by its own leftovers."""

    _held: dict[str, list[int]] = {}  # resolved lock path -> [fd, users]
    _guard = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._key = str(self.path.resolve())
        self._open = False
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        with self._guard:
            held = self._held.get(self._key)
            if held is not None:
                held[1] += 1
                self._open = True
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputLockedError(
                        f"{folder}: another process is writing this output (lock {self.path} "
                        "is held); wait for it to finish, or choose another output"
                    ) from None
                raise
            self._held[self._key] = [fd, 1]
            self._open = True

    def close(self) -> None:
        with self._guard:
            if not self._open:
                return
            self._open = False
            held = self._held[self._key]
            held[1] -= 1
            if held[1] == 0:
                del self._held[self._key]
                os.close(held[0])  # closing the descriptor releases the flock


def write_error(path: Path, exc: OSError) -> OutputWriteError:
    """A clear error for a failed write into an output folder."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    where = exc.filename or path
    return OutputWriteError(
        exc.errno,
        f"cannot write the output {path} ({reason}: {where}); what was committed before is "
        "kept: free space or fix the permissions, then run the same command again to resume",
    )
