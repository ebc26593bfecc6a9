"""Folders of XANESNET ``.xyz`` files read in blocks: a block of files into one buffer, parsed
by one Numba call (:func:`xanesnet.io._kernels.scan_files`, GIL released) into flat arrays.

Files the block parser does not take as one plain frame (unreadable, larger than
:data:`MAX_FILE_BYTES`, several frames, element symbols, anything the kernel refuses) are left
to the per-file reader by the chunker (:mod:`xanesnet.io.chunks`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from typing import Any

import numpy as np

from xanesnet.io.extxyz import special_words, symbol_codes
from xanesnet.io.fast_path import numba_kernels

__all__ = [
    "MAX_FILE_BYTES",
    "PREFETCH_BLOCKS",
    "READ_BLOCK",
    "READ_THREADS",
    "SLOW_READ_S",
    "AdaptiveReader",
    "advise_will_need",
    "read_files",
]

#: Files read and parsed per Numba call (memory: about 5 kB per file for typical molecules).
READ_BLOCK = 1024
#: Larger files are not read into the block buffer (the per-file reader takes them).
MAX_FILE_BYTES = 8 << 20
#: Reading slower than this per file (seconds; cached files take ~10 µs with parsing) means
#: the files come from disk: from then on the kernel is asked to read the next blocks ahead
#: (``posix_fadvise(WILLNEED)``), or, where that call does not exist, READ_THREADS threads read.
SLOW_READ_S = 30e-6
READ_THREADS = 8
#: Blocks of READ_BLOCK files whose reading is requested ahead of the one being parsed.
PREFETCH_BLOCKS = 4


@functools.cache
def _compiled_reader() -> Any | None:
    """``xanesnet._core`` where it has the block file reader (C++, no GIL held while reading),
    else None: Python reads the files, with the same bytes."""
    try:
        from xanesnet import _core
    except ImportError:
        return None
    return _core if hasattr(_core, "read_whole_files") else None


def _read_whole_files(paths: Sequence[str]) -> list[bytes]:
    """Each file's bytes (b"" for a file that cannot be read or exceeds MAX_FILE_BYTES)."""
    # The loop of xanesnet_xyz.read_bytes (whole file, read until EOF), inlined: per-file
    # Python overhead is a large part of the cost here. Files over MAX_FILE_BYTES (several
    # frames, surely) are left to the per-file reader rather than held in the block buffer.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    read, block = os.read, 1 << 16
    parts: list[bytes] = []
    for path in paths:
        data = b""  # unreadable or too large: not parsed, the per-file reader takes it
        try:
            fd = os.open(path, flags)
            try:
                first = read(fd, block)
                if first:
                    more = read(fd, block)
                    if more:
                        pieces, size = [first, more], len(first) + len(more)
                        while size <= MAX_FILE_BYTES and (more := read(fd, block)):
                            pieces.append(more)
                            size += len(more)
                        first = b"".join(pieces) if size <= MAX_FILE_BYTES else b""
                data = first if len(first) <= MAX_FILE_BYTES else b""
            finally:
                os.close(fd)
        except OSError:
            data = b""
        parts.append(data)
    return parts


def advise_will_need(paths: Sequence[str]) -> None:
    """Ask the kernel to start reading ``paths`` into the page cache, without waiting.

    Asked for many files in a row, the block layer can merge the reads of files that lie next
    to each other on the disk into few large requests: a folder of small files written in order
    read about 4 times faster this way than by 8 threads each waiting for one file (5 instead
    of 23 µs of system time per file on this project's virtual disk). Done by the compiled core
    where it is built, else by Python. Files that cannot be opened are skipped: their reader
    reports them.
    """
    core = _compiled_reader()
    if core is not None and core.advise_will_need(paths):
        return
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    advise, will_need = os.posix_fadvise, os.POSIX_FADV_WILLNEED
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, will_need)
        except OSError:
            pass
        finally:
            os.close(fd)


def _block_bytes(
    paths: Sequence[str], pool: ThreadPoolExecutor | None, core: Any | None
) -> tuple[np.ndarray, np.ndarray]:
    """(bytes (n_bytes,) uint8, offsets (n_files + 1,) int64) of whole files end to end; a file
    that cannot be read or is over MAX_FILE_BYTES gives no bytes. With ``pool``, contiguous
    slices of ``paths`` are read at once, one per thread, and joined."""

    def read(part: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if core is not None:
            return core.read_whole_files(part, MAX_FILE_BYTES)
        parts = _read_whole_files(part)
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        offsets[1:] = np.fromiter(accumulate(map(len, parts)), dtype=np.int64, count=len(parts))
        return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets

    if pool is None or len(paths) < 2:
        return read(paths)
    step = -(-len(paths) // READ_THREADS)
    blocks = list(pool.map(read, [paths[i : i + step] for i in range(0, len(paths), step)]))
    starts = np.cumsum([0] + [len(b) for b, _ in blocks])
    offsets = np.concatenate(
        [np.zeros(1, np.int64)] + [o[1:] + a for (_, o), a in zip(blocks, starts)]
    )
    return np.concatenate([b for b, _ in blocks]), offsets


def read_files(
    paths: Sequence[str], pool: ThreadPoolExecutor | None = None, *, compiled: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and parse files that each hold one XANESNET xyz frame.

    Args:
        paths: (n_files,) file paths.
        pool: an executor of READ_THREADS threads that read slices of ``paths`` at once
            (files not in the page cache: the disk serves several requests in parallel);
            None reads them in this thread.
        compiled: read the bytes with the compiled core (True), with Python (False), or the
            core where it is built (None, the default). Same bytes either way.

    Returns:
        ``(parsed (n_files,) bool, counts (n_files,) int64, numbers (n_atoms,) int32,
        positions (n_atoms, 3) float64 Å)``: atoms of the parsed files end to end in file
        order (``counts`` 0 for the others). A file that cannot be opened or read, is larger
        than :data:`MAX_FILE_BYTES` or is not one plain frame, is not parsed; the caller
        reads it with the per-file reader.
    """
    core = _compiled_reader() if compiled is not False else None
    if compiled and core is None:
        raise ValueError("compiled=True: xanesnet._core with the block file reader is not built")
    buffer, offsets = _block_bytes(paths, pool, core)
    return numba_kernels().scan_files(buffer, offsets, symbol_codes(), special_words())


class AdaptiveReader:
    """:func:`read_files` block after block, reading ahead once files come from disk.

    Files served from disk rather than the page cache take ~100 µs each, one request at a
    time. After a block read slower than SLOW_READ_S per file, every later block is requested
    from the kernel PREFETCH_BLOCKS blocks before it is read (:func:`advise_will_need`; a
    read-ahead block is then read fast, so this mode stays on: on cached files it costs
    ~2 µs per file). Without ``posix_fadvise`` (not Linux/BSD), slow blocks are read by
    READ_THREADS threads instead, and a fast block switches back to one.
    """

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.slow = False
        self.prefetching = False
        self.advised = 0  # blocks advised, counted from the one to be read next

    def __enter__(self) -> AdaptiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def read(
        self, paths: list[str], upcoming: Sequence[list[str]] = ()
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Read and parse ``paths`` (see :func:`read_files`); ``upcoming``: the paths of the
        next blocks, in order, for reading ahead."""
        if self.prefetching:
            if self.advised == 0:  # the first block of this mode: asked for at once too
                advise_will_need(paths)
                self.advised = 1
            for block in upcoming[self.advised - 1 : PREFETCH_BLOCKS]:
                advise_will_need(block)
                self.advised += 1
        elif self.slow and self.pool is None:
            self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="xanesnet-read")
        started = time.perf_counter()
        result = read_files(paths, self.pool if self.slow and not self.prefetching else None)
        self.slow = time.perf_counter() - started > SLOW_READ_S * len(paths)
        if self.prefetching:
            self.advised -= 1  # counted from the current block: this one is read
        if self.slow and not self.prefetching and hasattr(os, "posix_fadvise"):
            self.prefetching = True
        return result
