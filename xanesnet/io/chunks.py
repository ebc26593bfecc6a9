"""The one chunker: resolved sources into chunks of :class:`~xanesnet.frames.Frames`, in input
order, with the read errors met while filling each chunk.

Every reader feeds the same chunk builder: folders of XANESNET ``.xyz`` files in blocks of
files parsed by one Numba call (:mod:`xanesnet.io.xyz_blocks`, where
:func:`~xanesnet.io.fast_path.use_compiled` says so for the input's size), plain extended XYZ
frames as raw arrays, and everything else (other ``ase.io`` formats, ASE database rows, files
the block parser refuses) as the ``ase.Atoms`` of the per-file readers, metadata kept. The
chunks, ids and errors are the same whichever way a structure is read.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from ase import Atoms

from xanesnet.errors import InputError
from xanesnet.frames import MAX_ATOMIC_NUMBER, Frames
from xanesnet.io import xyz_blocks
from xanesnet.io.ase_db import iter_db
from xanesnet.io.ase_files import iter_ase_from, validate_atoms
from xanesnet.io.extxyz import NotPlain, iter_plain_frames
from xanesnet.io.fast_path import numba_kernels, requested, use_compiled
from xanesnet.io.read import iter_file, look_ahead, named_errors
from xanesnet.io.sources import Source, locations_and_stems

__all__ = ["Chunk", "FrameBuilder", "iter_chunks", "uses_blocks"]

_XYZ_KINDS = frozenset({"xyz", "xanesnet"})


class Chunk(NamedTuple):
    """One chunk of the input: its index (from 0, in input order), its structures, the
    read errors met while collecting them, as ``(source, message)``, and the source (file
    path, database, ``<memory>``) of each structure."""

    index: int
    frames: Frames
    errors: list[tuple[str, str]]
    sources: list[str] = []


class FrameBuilder:
    """Collects structures for one chunk: runs parsed in bulk, single frames, ``ase.Atoms``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._numbers: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._info: list[dict[str, Any] | None] = []
        self._periodic: list[tuple[int, np.ndarray, np.ndarray]] = []  # (s, cell, pbc)

    @property
    def room(self) -> int:
        """Structures that still fit in the chunk."""
        return self.size - self.n

    def add_parsed(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        counts: np.ndarray,
        ids: list[str],
        sources: list[str],
    ) -> None:
        """Molecules parsed in bulk: (n_atoms,), (n_atoms, 3), (k,) atoms each, (k,) ids,
        (k,) source files."""
        self._numbers.append(numbers)
        self._positions.append(positions)
        self._counts.append(counts)
        self._ids.extend(ids)
        self._sources.extend(sources)
        self._info.extend([None] * len(ids))
        self.n += len(ids)

    def add_frame(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        cell: np.ndarray,
        pbc: np.ndarray,
        structure_id: str,
        info: dict[str, Any] | None = None,
        source: str = "",
    ) -> None:
        """One structure from raw values: (n,), (n, 3) Å, (3, 3) Å, (3,) flags; ``source``
        names where it was read."""
        self._numbers.append(numbers)
        self._positions.append(positions)
        self._counts.append(np.array([len(numbers)], dtype=np.int64))
        if pbc.any() or cell.any():
            self._periodic.append((self.n, np.array(cell, dtype=np.float64), pbc.astype(np.uint8)))
        self._ids.append(structure_id)
        self._sources.append(source)
        self._info.append(info)
        self.n += 1

    def add_atoms(self, atoms: Atoms) -> None:
        """One structure from a per-file reader (cell, pbc and ``info`` kept)."""
        self.add_frame(
            atoms.arrays["numbers"],
            atoms.arrays["positions"],
            atoms.cell.array,
            np.asarray(atoms.pbc),
            str(atoms.info.get("id", "")),
            atoms.info,
            str(atoms.info.get("source", "")),
        )

    def take(self) -> Frames:
        """The chunk collected so far; the builder starts a new one."""
        return self.take_with_sources()[0]

    def take_chunk(self, index: int, errors: list[tuple[str, str]]) -> Chunk:
        """The chunk collected so far as chunk ``index`` with the read ``errors`` met while
        collecting it (the list is emptied); the builder starts a new one."""
        frames, sources = self.take_with_sources()
        taken = errors[:]
        errors.clear()
        return Chunk(index, frames, taken, sources)

    def take_with_sources(self) -> tuple[Frames, list[str]]:
        """The chunk collected so far and the source of each structure; the builder starts
        a new one."""
        n = self.n
        sources = self._sources
        offsets = np.zeros(n + 1, dtype=np.int64)
        if self._counts:
            np.cumsum(np.concatenate(self._counts), out=offsets[1:])
        cells = np.zeros((n, 3, 3), dtype=np.float64)
        pbc = np.zeros((n, 3), dtype=np.uint8)
        for s, cell, flags in self._periodic:
            cells[s] = cell
            pbc[s] = flags
        frames = Frames(
            positions=_join(self._positions, (0, 3), np.float64),
            numbers=_join(self._numbers, (0,), np.int32),
            offsets=offsets,
            cells=cells,
            pbc=pbc,
            ids=self._ids,
            info=self._info,
        )
        self._reset()
        return frames, sources


def _join(parts: list[np.ndarray], empty: tuple[int, ...], dtype: Any) -> np.ndarray:
    if not parts:
        return np.zeros(empty, dtype=dtype)
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


def uses_blocks(sources: Sequence[Source], fast_xyz: bool | None = None) -> bool:
    """Whether :func:`iter_chunks` reads ``sources`` in blocks: every source is an ``.xyz``
    file (or forced XANESNET), the rule of :func:`~xanesnet.io.fast_path.use_compiled` for
    their number (or ``fast_xyz``) says so, and Numba is importable."""
    kinds = getattr(sources, "kinds", None)
    if kinds is None:
        kinds = {s.kind for s in sources}
    return (
        kinds <= _XYZ_KINDS and use_compiled(len(sources), fast_xyz) and numba_kernels() is not None
    )


def iter_chunks(
    sources: Sequence[Source],
    chunk_size: int,
    *,
    select: str | int | None = None,
    fast_xyz: bool | None = None,
) -> Iterator[Chunk]:
    """Chunks of ``chunk_size`` structures of the sources, in input order.

    A source that fails while being read (a malformed file, a bad database row) ends there;
    its error goes to the chunk being filled when it is met, as ``read_structures(...,
    on_error=...)`` records it (structures already read from it stand). The last chunk may be
    short, or hold only errors.

    Args:
        sources: resolved sources (:func:`xanesnet.io.sources.resolve_sources`).
        chunk_size: structures per chunk.
        select: ASE database selection, for database sources.
        fast_xyz: the compiled block reader for folders of ``.xyz`` files and raw plain extended
            XYZ frames: True always, False never (every structure through the per-file
            readers), None by the rule of :mod:`xanesnet.io.fast_path`. Same chunks either way.
    """
    builder = FrameBuilder(chunk_size)
    errors: list[tuple[str, str]] = []
    index = 0
    if uses_blocks(sources, fast_xyz):
        filled = _fill_from_blocks(builder, sources, errors)
    else:
        filled = _fill_per_source(
            builder, sources, errors, select, requested(fast_xyz) is not False
        )
    for _ in filled:
        yield builder.take_chunk(index, errors)
        index += 1
    if builder.n or errors:
        yield builder.take_chunk(index, errors)


def _fill_per_source(
    builder: FrameBuilder,
    sources: Sequence[Source],
    errors: list[tuple[str, str]],
    select: str | int | None,
    raw_frames: bool,
) -> Iterator[None]:
    """Fill ``builder`` source by source, yielding whenever it is full."""
    for source in sources:
        yield from _add_source(builder, source, errors, select, raw_frames)


def _fill_from_blocks(
    builder: FrameBuilder, sources: Sequence[Source], errors: list[tuple[str, str]]
) -> Iterator[None]:
    """Fill ``builder`` from blocks of READ_BLOCK ``.xyz`` files parsed at once (files the
    block parser refuses through the per-file reader), yielding whenever it is full."""
    block_size = xyz_blocks.READ_BLOCK
    starts = range(0, len(sources), block_size)
    # (locations, stems) of the blocks from the current one on, listed ahead for prefetching
    blocks: deque[tuple[list[str], list[str]]] = deque()
    listed = 0
    with xyz_blocks.AdaptiveReader() as reader:  # closed with the generator, however it ends
        for start in starts:
            while listed < len(starts) and len(blocks) <= xyz_blocks.PREFETCH_BLOCKS:
                first = starts[listed]
                blocks.append(locations_and_stems(sources, first, first + block_size))
                listed += 1
            locations, stems = blocks.popleft()
            parsed, counts, numbers, positions = reader.read(
                locations, [block[0] for block in blocks]
            )
            atom_ends = np.cumsum(counts).tolist()
            parsed_list = parsed.tolist()
            f = 0
            while f < len(locations):
                if parsed_list[f]:
                    end = f + 1
                    while end < len(locations) and parsed_list[end]:
                        end += 1
                    while f < end:  # the run f..end-1, split where chunks end
                        k = min(end - f, builder.room)
                        a = atom_ends[f - 1] if f else 0
                        b = atom_ends[f + k - 1]
                        builder.add_parsed(
                            numbers[a:b],
                            positions[a:b],
                            counts[f : f + k],
                            stems[f : f + k],
                            locations[f : f + k],
                        )
                        f += k
                        if builder.room == 0:
                            yield
                    continue
                source = sources[start + f]
                f += 1
                yield from _add_source(builder, source, errors, None, True)


def _plain_extxyz_candidate(source: Source) -> bool:
    return source.kind == "ase" and source.location.lower().endswith((".xyz", ".extxyz"))


def _file_items(source: Source) -> Iterator[tuple[Any, ...]]:
    """The structures ``iter_file(source, None, None)`` yields, as ``("frame", numbers,
    positions, cell, pbc, id, info)`` for plain extended XYZ frames and ``("atoms", atoms)``
    for the rest: same ids, same order, same errors (a frame that fails validation is handed
    to ``validate_atoms`` itself, so the message is the Atoms path's)."""
    path = source.location
    if os.stat(path).st_size == 0:
        raise InputError(f"{path}: line 1: empty file", source=path, line=1)

    def raw() -> Iterator[tuple[Any, ...]]:
        frame = 0
        try:
            for numbers, positions, cell, pbc, info in iter_plain_frames(path):
                if (
                    numbers.size == 0
                    or numbers.min() < 1
                    or numbers.max() > MAX_ATOMIC_NUMBER
                    or not np.isfinite(positions).all()
                ):
                    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
                    validate_atoms(atoms, f"{path}: frame {frame}", path, path)  # raises
                yield ("frame", numbers, positions, cell, pbc, info)
                frame += 1
            return
        except NotPlain as exc:
            frame = exc.frame
        for atoms in iter_ase_from(path, None, frame):
            yield ("atoms", atoms)

    single, stream = look_ahead(raw(), path)
    for frame, item in enumerate(stream):  # streamed: never the whole file
        structure_id = source.stem if single else f"{source.stem}:{frame}"
        if item[0] == "frame":
            kind, numbers, positions, cell, pbc, info = item
            yield (kind, numbers, positions, cell, pbc, structure_id, info)
        else:
            atoms = item[1]
            atoms.info["id"] = structure_id
            atoms.info["source"] = source.display
            atoms.info["frame"] = frame
            yield item


def _add_source(
    builder: FrameBuilder,
    source: Source,
    errors: list[tuple[str, str]],
    select: str | int | None,
    raw_frames: bool,
) -> Iterator[None]:
    """Add one source's structures to ``builder`` (plain extended XYZ frames raw where
    ``raw_frames``, the rest as ``ase.Atoms``), yielding whenever it is full; a read error is
    appended to ``errors`` and ends the source."""
    if source.kind == "db":  # a bad row is that row's error; the next rows are read
        rows = iter_db(source, select, lambda item, exc: errors.append((item, str(exc))))
        stream: Iterator[Any] = (("atoms", atoms) for atoms in rows)
    elif raw_frames and _plain_extxyz_candidate(source):
        stream = named_errors(_file_items(source), source.display)
    else:
        atoms_stream = named_errors(iter_file(source, None, None), source.display)
        stream = (("atoms", atoms) for atoms in atoms_stream)
    while True:
        try:
            item = next(stream)
        except StopIteration:
            return
        except (ValueError, OSError) as exc:
            errors.append((source.display, str(exc)))
            return
        if item[0] == "frame":
            builder.add_frame(*item[1:], source=source.display)
        else:
            builder.add_atoms(item[1])
        if builder.room == 0:
            yield
