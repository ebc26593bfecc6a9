"""HDF5 shuffle + deflate chunks, encoded plane by plane (fast, and decoded by any HDF5).

HDF5's shuffle filter regroups a chunk's bytes into planes (byte 0 of every element, then
byte 1, ...) and its deflate filter zlib-compresses the result. For float32 spectra the low
mantissa planes are noise that deflate cannot shrink, yet compressing them costs most of the
time. :func:`shuffle_deflate` builds the same kind of zlib stream itself: each plane that
compresses (judged on a sample) becomes its own run of deflate blocks, each plane that does
not is written as stored blocks. Any inflate decodes the result, so the file needs no plugin
and reads like an ordinary shuffle + gzip dataset; it is about 2.4 times faster than h5py's
own filter at the same size, and zlib works without the GIL, so commits overlap compute.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

#: Bytes of a plane compressed to decide whether, and how, to compress the plane.
SAMPLE_BYTES = 8192
#: A plane is compressed when its sample shrinks below this fraction of its size.
WORTHWHILE = 0.9
#: zlib level (1: fastest; higher levels gain about 3 % on spectra at twice the time).
LEVEL = 1
#: Rows per HDF5 chunk (1024 spectra of 226 float32 values: about 0.9 MB, HDF5's sweet spot).
CHUNK_ROWS = 1024

_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no preset dictionary
_FINAL_EMPTY_BLOCK = b"\x01\x00\x00\xff\xff"  # stored, BFINAL = 1, length 0
_STORED_MAX = 65535


def _stored_blocks(data: memoryview, out: list[bytes]) -> None:
    """Append non-final stored deflate blocks holding ``data`` (starts at a byte boundary)."""
    for start in range(0, len(data), _STORED_MAX):
        piece = data[start : start + _STORED_MAX]
        n = len(piece)
        out.append(struct.pack("<BHH", 0, n, n ^ 0xFFFF))
        out.append(bytes(piece))


def _strategy(plane: memoryview) -> int | None:
    """How to encode a byte plane, judged on a sample: None (store it), ``zlib.Z_RLE`` (runs
    only: exponent and other near-constant planes, fast) or ``zlib.Z_DEFAULT_STRATEGY``."""
    sample = plane[:SAMPLE_BYTES]
    sizes = {
        strategy: len(_deflate(sample, strategy))
        for strategy in (zlib.Z_RLE, zlib.Z_DEFAULT_STRATEGY)
    }
    best = min(sizes.values())
    if best >= WORTHWHILE * len(sample):
        return None
    # run-length coding is about twice as fast: take it unless string matching is clearly better
    return zlib.Z_RLE if sizes[zlib.Z_RLE] <= best + 0.02 * len(sample) else zlib.Z_DEFAULT_STRATEGY


def _deflate(data: memoryview, strategy: int, flush: int = zlib.Z_FINISH) -> bytes:
    """Raw deflate blocks of ``data``; ``Z_SYNC_FLUSH`` leaves the last block non-final and
    ends on a byte boundary, so more blocks may follow."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, strategy)
    return compressor.compress(data) + compressor.flush(flush)


def _planes(block: np.ndarray) -> np.ndarray:
    """The shuffled bytes of ``block`` as (itemsize, n_values) byte planes."""
    values = np.ascontiguousarray(block)
    size = values.dtype.itemsize
    raw = values.reshape(-1).view(np.uint8)
    shuffled = raw.reshape(-1, size).T.copy() if size > 1 else raw.copy()
    return shuffled.reshape(size, -1)


def plane_strategies(block: np.ndarray) -> list[int | None]:
    """How :func:`shuffle_deflate` encodes each byte plane of ``block`` (see ``_strategy``);
    judged once per dataset, since the planes of one quantity behave alike from chunk to
    chunk, and the judging costs a quarter of the encoding."""
    return [_strategy(memoryview(plane)) if plane.size else None for plane in _planes(block)]


def shuffle_deflate(block: np.ndarray, strategies: list[int | None] | None = None) -> bytes:
    """The stored form of one HDF5 chunk under the filters shuffle + deflate.

    Args:
        block: the chunk's values, any shape and fixed-size dtype (the full chunk: HDF5 stores
            edge chunks padded to the chunk shape).
        strategies: per byte plane, from :func:`plane_strategies` (default: judged on this
            block).

    Returns:
        A zlib stream whose decompressed bytes are the shuffled bytes of ``block`` (the byte
        planes in order, as HDF5's shuffle filter lays them out).
    """
    planes = _planes(block)
    if strategies is None:
        strategies = plane_strategies(block)
    if len(strategies) != len(planes):
        raise ValueError(f"strategies: expected {len(planes)} entries, got {len(strategies)}")
    out: list[bytes] = [_ZLIB_HEADER]
    for plane, strategy in zip(planes, strategies):
        view = memoryview(plane)
        if strategy is None or not len(view):
            _stored_blocks(view, out)
        else:
            out.append(_deflate(view, strategy, zlib.Z_SYNC_FLUSH))
    out.append(_FINAL_EMPTY_BLOCK)
    out.append(struct.pack(">I", zlib.adler32(memoryview(planes.reshape(-1)))))
    return b"".join(out)


def write_shuffle_deflate(group: Any, name: str, data: np.ndarray) -> None:
    """Create dataset ``name`` in h5py ``group`` with shuffle + deflate (gzip level 1) filters
    and fill it chunk by chunk with :func:`shuffle_deflate` (rows split every CHUNK_ROWS).

    Args:
        group: an open, writable h5py group or file.
        name: dataset name.
        data: (n_rows, ...) values; an empty array gives an ordinary empty dataset.
    """
    data = np.ascontiguousarray(data)
    if data.shape[0] == 0 or data.size == 0:
        group.create_dataset(
            name, data=data, compression="gzip", compression_opts=LEVEL, shuffle=True
        )
        return
    rows = min(len(data), CHUNK_ROWS)
    dataset = group.create_dataset(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=(rows, *data.shape[1:]),
        compression="gzip",
        compression_opts=LEVEL,
        shuffle=True,
    )
    zeros = (0,) * (data.ndim - 1)
    strategies = plane_strategies(data[:rows])
    for start in range(0, len(data), rows):
        block = data[start : start + rows]
        if len(block) < rows:  # edge chunk: stored at full size, padded
            padded = np.zeros((rows, *data.shape[1:]), dtype=data.dtype)
            padded[: len(block)] = block
            block = padded
        dataset.id.write_direct_chunk((start, *zeros), shuffle_deflate(block, strategies))
