"""Fast batch input: folders of XANESNET ``.xyz`` files read straight into packed arrays.

:func:`xanesnet.predict_batch` spends most of its reading time, on the old path, on work per
structure in Python: opening the file, a Numba call per frame, an ``ase.Atoms`` object, ids
in ``atoms.info``, then :func:`~xanesnet.descriptors.packing.pack_structures` gathering the
Atoms back into flat arrays. Here a block of files is read into one buffer and parsed by one
Numba call (:func:`xanesnet.io._kernels.scan_files`, GIL released) into the flat arrays the
descriptor kernels take (:class:`PackedChunk`); ids are the file stems.

The result is the same as the Atoms path, chunk by chunk:

* A file the batch parser does not take as one plain frame (empty, unreadable, several
  frames, element symbols, anything :func:`~xanesnet.io._kernels.scan_frame` refuses) is
  read by the reader of :mod:`xanesnet.io.read`, which gives the same structures or
  records the same error, at the same place in the stream; its structures are packed with
  their cell and periodicity.
* Chunks hold ``chunk_size`` structures in input order, and a read error goes to the chunk
  being filled when it is met, exactly as in ``xanesnet.pipeline.batch._chunks``.
* :func:`compute_chunk_sites` validates with
  :func:`~xanesnet.descriptors.packing.pack_arrays` (the checks of ``pack_structures``) and
  runs the same kernel on the same arrays; if anything fails (no absorber, overlapping atoms,
  ...), the chunk is turned into ``ase.Atoms`` and goes through
  :func:`xanesnet.pipeline.batch.compute_sites`, so failures are recorded with the same ids and
  reasons.

The path is used for inputs that resolve only to ``.xyz`` files, with a wACSF descriptor
without spin/charge features, when :func:`enabled`: by default for inputs of at least
:data:`AUTO_MIN_FILES` files (or when Numba is already imported); ``XANESNET_FAST_XYZ=0`` /
``=1`` (or ``predict_batch(fast_xyz=False / True)``) turns it off / on.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np

from xanesnet.io.sources import locations_and_stems

if TYPE_CHECKING:
    from ase import Atoms

    from xanesnet.descriptors.packing import PackedBatch
    from xanesnet.io.read import _Source

__all__ = [
    "AUTO_MIN_FILES",
    "ENV",
    "MAX_FILE_BYTES",
    "READ_BLOCK",
    "PREFETCH_BLOCKS",
    "READ_THREADS",
    "SLOW_READ_S",
    "PackedChunk",
    "compute_chunk_sites",
    "enabled",
    "iter_chunks",
    "advise_will_need",
    "read_files",
    "usable",
]

#: Environment variable: "0" (also "false", "no", "off") never, "1" (also "true", "yes", "on")
#: always, "auto" or unset: for large inputs (see :func:`enabled`).
ENV = "XANESNET_FAST_XYZ"
#: On "auto", inputs of at least this many files take the fast path (smaller ones too when
#: Numba is already imported).
AUTO_MIN_FILES = 8192
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
_XYZ_KINDS = frozenset({"xyz", "xanesnet"})


def enabled(flag: bool | None, n_files: int) -> bool:
    """Whether the fast path is wanted for an input of ``n_files`` files.

    ``flag`` when given; else the environment variable :data:`ENV`: ``0``/``false``/``no``/
    ``off`` never, ``1``/``true``/``yes``/``on`` always, unset or ``auto``: when Numba is
    already imported or the input has at least :data:`AUTO_MIN_FILES` files (importing Numba
    and loading the cached kernels costs ~0.5 s once, which the Atoms path with its
    pure-Python parser needs about that many files to lose).
    """
    if flag is not None:
        return bool(flag)
    value = os.environ.get(ENV, "auto").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return "numba" in sys.modules or n_files >= AUTO_MIN_FILES


def _kernel() -> Any:
    from xanesnet.io.read import _load_kernel

    return _load_kernel()


@functools.cache
def _compiled_reader() -> Any | None:
    """``xanesnet._core`` where it has the block file reader (C++, no GIL held while reading),
    else None: Python reads the files, with the same bytes."""
    try:
        from xanesnet import _core
    except ImportError:
        return None
    return _core if hasattr(_core, "read_whole_files") else None


def usable(sources: Sequence[_Source], config: Any, flag: bool | None = None) -> bool:
    """True when the fast path is :func:`enabled`, every source is an ``.xyz`` file (or
    forced XANESNET), the descriptor is a plain wACSF (no spin/charge features, which need
    ``atoms.info``) and Numba is importable."""
    from xanesnet.descriptors.wacsf import WACSF

    return (
        type(config) is WACSF
        and not (config.use_spin or config.use_charge)
        and (
            sources.kinds <= _XYZ_KINDS
            if hasattr(sources, "kinds")
            else all(s.kind in _XYZ_KINDS for s in sources)
        )
        and enabled(flag, len(sources))
        and _kernel() is not None
    )


@dataclass(frozen=True)
class PackedChunk:
    """One chunk of structures as flat arrays (the layout of ``PackedBatch``, minus sites).

    Attributes:
        positions: (n_atoms, 3) float64 Å, C-contiguous.
        numbers: (n_atoms,) int32 atomic numbers.
        atom_offsets: (n_structures + 1,) int64; structure s owns atoms
            ``atom_offsets[s]:atom_offsets[s + 1]``.
        cells: (n_structures, 3, 3) float64 Å (zeros for molecules).
        pbc: (n_structures, 3) uint8 periodicity flags.
        ids: (n_structures,) structure ids, as ``atoms.info["id"]`` of the Atoms path.
    """

    positions: np.ndarray
    numbers: np.ndarray
    atom_offsets: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def pack(self, absorber: int | str | Sequence[Sequence[int]]) -> PackedBatch:
        """Validated :class:`~xanesnet.descriptors.packing.PackedBatch` with the absorber sites.

        Raises:
            ValueError: the messages of ``pack_structures`` on the same structures.
        """
        from xanesnet.descriptors.packing import pack_arrays

        return pack_arrays(
            self.positions,
            self.numbers,
            self.atom_offsets,
            self.cells,
            self.pbc,
            absorber,
            _Labels(self.ids),
        )

    def to_atoms(self) -> list[Atoms]:
        """The structures as ``ase.Atoms`` (numbers, positions, cell, pbc, ``info["id"]``)."""
        from ase import Atoms

        offsets = self.atom_offsets.tolist()
        return [
            Atoms(
                numbers=self.numbers[offsets[s] : offsets[s + 1]],
                positions=self.positions[offsets[s] : offsets[s + 1]],
                cell=self.cells[s],
                pbc=self.pbc[s].astype(bool),
                info={"id": structure_id},
            )
            for s, structure_id in enumerate(self.ids)
        ]


class _Labels(Sequence[str]):
    """``"structure <id>"`` for messages, made on demand (as ``structure_label`` of Atoms)."""

    def __init__(self, ids: list[str]) -> None:
        self._ids = ids

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, s: Any) -> Any:
        if isinstance(s, slice):
            return [f"structure {i}" for i in self._ids[s]]
        return f"structure {self._ids[s]}"


def _read_whole_files(paths: Sequence[str]) -> list[bytes]:
    """Each file's bytes (b"" for a file that cannot be read or exceeds MAX_FILE_BYTES)."""
    # The loop of structures._read_bytes (whole file, read until EOF), inlined: per-file
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
    from xanesnet.io.extxyz import _special_words, _symbol_codes

    return _kernel().scan_files(buffer, offsets, _symbol_codes(), _special_words())


class _Builder:
    """Collects structures for one chunk: parsed runs and single ``ase.Atoms``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._numbers: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._ids: list[str] = []
        self._periodic: list[tuple[int, np.ndarray, np.ndarray]] = []  # (s, cell, pbc)

    @property
    def room(self) -> int:
        return self.size - self.n

    def add_parsed(
        self, numbers: np.ndarray, positions: np.ndarray, counts: np.ndarray, ids: list[str]
    ) -> None:
        """Molecules parsed in bulk: (n_atoms,), (n_atoms, 3), (k,) atoms each, (k,) ids."""
        self._numbers.append(numbers)
        self._positions.append(positions)
        self._counts.append(counts)
        self._ids.extend(ids)
        self.n += len(ids)

    def add_atoms(self, atoms: Atoms) -> None:
        """One structure from the per-file reader (cell and pbc kept)."""
        numbers = atoms.arrays["numbers"]
        self._numbers.append(numbers)
        self._positions.append(atoms.arrays["positions"])
        self._counts.append(np.array([len(numbers)], dtype=np.int64))
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        pbc = np.asarray(atoms.pbc, dtype=np.uint8)
        if pbc.any() or cell.any():
            self._periodic.append((self.n, cell, pbc))
        self._ids.append(str(atoms.info.get("id", "")))
        self.n += 1

    def add_frame(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        cell: np.ndarray,
        pbc: np.ndarray,
        structure_id: str,
    ) -> None:
        """One structure from raw values (as :meth:`add_atoms` of the same ``ase.Atoms``)."""
        self._numbers.append(numbers)
        self._positions.append(positions)
        self._counts.append(np.array([len(numbers)], dtype=np.int64))
        if pbc.any() or cell.any():
            self._periodic.append((self.n, cell.copy(), pbc.astype(np.uint8)))
        self._ids.append(structure_id)
        self.n += 1

    def take(self) -> PackedChunk:
        """The chunk collected so far; the builder starts a new one."""
        n = self.n
        offsets = np.zeros(n + 1, dtype=np.int64)
        if self._counts:
            np.cumsum(np.concatenate(self._counts), out=offsets[1:])
        cells = np.zeros((n, 3, 3), dtype=np.float64)
        pbc = np.zeros((n, 3), dtype=np.uint8)
        for s, cell, flags in self._periodic:
            cells[s] = cell
            pbc[s] = flags
        chunk = PackedChunk(
            positions=_join(self._positions, (0, 3), np.float64),
            numbers=_join(self._numbers, (0,), np.int32),
            atom_offsets=offsets,
            cells=cells,
            pbc=pbc,
            ids=self._ids,
        )
        self._reset()
        return chunk


def _join(parts: list[np.ndarray], empty: tuple[int, ...], dtype: Any) -> np.ndarray:
    if not parts:
        return np.zeros(empty, dtype=dtype)
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


def iter_chunks(
    sources: Sequence[_Source], chunk_size: int
) -> Iterator[tuple[int, PackedChunk, list[tuple[str, str]]]]:
    """(chunk index, structures, read errors met while collecting them), in input order.

    The chunks and errors of ``xanesnet.pipeline.batch._chunks`` on the same sources (``.xyz``
    files; see :func:`usable`), with the structures packed instead of as ``ase.Atoms``.
    Errors are ``(source path, message)`` as the ``on_error`` of ``read_structures``.
    """

    builder = _Builder(chunk_size)
    errors: list[tuple[str, str]] = []
    index = 0
    starts = range(0, len(sources), READ_BLOCK)
    # (locations, stems) of the blocks from the current one on, listed ahead for prefetching
    blocks: deque[tuple[list[str], list[str]]] = deque()
    listed = 0
    with _AdaptiveReader() as reader:  # closed with the generator, however it ends
        for start in starts:
            while listed < len(starts) and len(blocks) <= PREFETCH_BLOCKS:
                first = starts[listed]
                blocks.append(locations_and_stems(sources, first, first + READ_BLOCK))
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
                        )
                        f += k
                        if builder.room == 0:
                            yield index, builder.take(), errors[:]
                            errors.clear()
                            index += 1
                    continue
                source = sources[start + f]
                f += 1
                for _ in _add_source(builder, source, errors):
                    yield index, builder.take(), errors[:]
                    errors.clear()
                    index += 1
    if builder.n or errors:
        yield index, builder.take(), errors[:]
        errors.clear()


class _AdaptiveReader:
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

    def __enter__(self) -> _AdaptiveReader:
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


def compute_chunk_sites(
    config: Any,
    chunk: PackedChunk,
    absorber: Any,
    *,
    backend: str | None = None,
    n_threads: int = 0,
) -> tuple[np.ndarray, list[str], np.ndarray, list[tuple[str, str]]]:
    """:func:`xanesnet.pipeline.batch.compute_sites` for a packed chunk (same results).

    One descriptor call on the packed arrays; if it raises (any structure invalid), the
    chunk goes through ``compute_sites`` as ``ase.Atoms``, which finds the culprits.

    Returns:
        features (n_sites, n_features) float64, ids (n_sites,), sites (n_sites,) int64 and
        the (id, reason) of each structure that failed.
    """
    from xanesnet.descriptors.dispatch import compute_packed
    from xanesnet.descriptors.wacsf import WACSF
    from xanesnet.pipeline.batch import compute_sites

    if type(config) is WACSF and not (config.use_spin or config.use_charge):
        try:
            features, index = compute_packed(
                config, chunk.pack(absorber), backend=backend, n_threads=n_threads
            )
        except ValueError:
            pass
        else:
            ids = chunk.ids
            return features, [ids[s] for s in index[:, 0].tolist()], index[:, 1], []
    return compute_sites(config, chunk.to_atoms(), absorber, backend=backend, n_threads=n_threads)


# --------------------------------------------------------------------------------------------
# Plain extended XYZ files: frames packed without ase.Atoms
# --------------------------------------------------------------------------------------------


def _plain_extxyz_candidate(source: _Source) -> bool:
    return source.kind == "ase" and source.location.lower().endswith((".xyz", ".extxyz"))


def extxyz_usable(sources: Sequence[_Source], config: Any) -> bool:
    """True when every source is a file (no database), at least one may be plain extended
    XYZ, and the descriptor is a plain wACSF (spin/charge features need ``atoms.info``)."""
    from xanesnet.descriptors.wacsf import WACSF

    kinds = getattr(sources, "kinds", None)
    if kinds is None:
        kinds = {s.kind for s in sources}
    return (
        type(config) is WACSF
        and not (config.use_spin or config.use_charge)
        and "db" not in kinds
        and any(_plain_extxyz_candidate(s) for s in sources)
    )


def _file_items(source: _Source) -> Iterator[tuple[Any, ...]]:
    """The structures ``_iter_file(source, None, None)`` yields, as ``("frame", numbers,
    positions, cell, pbc, id)`` for plain extended XYZ frames and ``("atoms", atoms)`` for the
    rest: same ids, same order, same errors (a frame that fails validation is handed to
    ``_validate_atoms`` itself, so the message is the Atoms path's)."""
    from ase import Atoms

    from xanesnet.io.extxyz import NotPlain, iter_plain_frames
    from xanesnet.io.read import _MAX_Z, _iter_ase_from, _look_ahead, _validate_atoms

    path = source.location
    if os.stat(path).st_size == 0:
        raise ValueError(f"{path}: line 1: empty file")

    def raw() -> Iterator[tuple[Any, ...]]:
        frame = 0
        try:
            for numbers, positions, cell, pbc, _ in iter_plain_frames(path):
                if (
                    numbers.size == 0
                    or numbers.min() < 1
                    or numbers.max() > _MAX_Z
                    or not np.isfinite(positions).all()
                ):
                    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
                    _validate_atoms(atoms, f"{path}: frame {frame}", path)  # raises
                yield ("frame", numbers, positions, cell, pbc)
                frame += 1
            return
        except NotPlain as exc:
            frame = exc.frame
        for atoms in _iter_ase_from(path, None, frame):
            yield ("atoms", atoms)

    single, stream = _look_ahead(raw(), path)
    for frame, item in enumerate(stream):  # streamed: never the whole file
        structure_id = source.stem if single else f"{source.stem}:{frame}"
        if item[0] == "frame":
            yield (*item, structure_id)
        else:
            atoms = item[1]
            atoms.info["id"] = structure_id
            atoms.info["source"] = source.display
            atoms.info["frame"] = frame
            yield item


def _add_source(
    builder: _Builder, source: _Source, errors: list[tuple[str, str]]
) -> Iterator[None]:
    """Add one file's structures to ``builder`` (plain extended XYZ frames raw, the rest as
    ``ase.Atoms``), yielding whenever it is full; a read error is appended to ``errors`` as
    ``read_structures(on_error=...)`` records it, and ends the file."""
    from xanesnet.io.read import _iter_file

    if _plain_extxyz_candidate(source):
        stream: Iterator[Any] = _file_items(source)
    else:
        stream = (("atoms", atoms) for atoms in _iter_file(source, None, None))
    while True:
        try:
            item = next(stream)
        except StopIteration:
            return
        except (ValueError, OSError) as exc:
            errors.append((source.display, str(exc)))
            return
        if item[0] == "frame":
            builder.add_frame(*item[1:])
        else:
            builder.add_atoms(item[1])
        if builder.room == 0:
            yield


def iter_file_chunks(
    sources: Sequence[_Source], chunk_size: int
) -> Iterator[tuple[int, PackedChunk, list[tuple[str, str]]]]:
    """The chunks and errors of ``xanesnet.pipeline.batch._chunks`` on file sources, packed: plain
    extended XYZ frames go straight into the arrays (no ``ase.Atoms``), anything else through
    the per-file Atoms reader."""
    builder = _Builder(chunk_size)
    errors: list[tuple[str, str]] = []
    index = 0
    for source in sources:
        for _ in _add_source(builder, source, errors):
            yield index, builder.take(), errors[:]
            errors.clear()
            index += 1
    if builder.n or errors:
        yield index, builder.take(), errors[:]
        errors.clear()
