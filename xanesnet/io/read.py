"""Structure input: streaming readers for XANESNET xyz files, ASE formats and ASE databases.

:func:`read_structures` turns paths, folders, glob patterns and database URLs into a lazy
stream of :class:`ase.Atoms`, one structure at a time, each labelled with a stable id in
``atoms.info["id"]`` (used by :func:`xanesnet.descriptors.packing.structure_label`) and its
origin in ``atoms.info["source"]``. Malformed input raises ``FileNotFoundError`` or
``ValueError`` naming the file and, for line-based text formats, the line.

XANESNET ``.xyz`` files (``Z x y z`` rows with *atomic numbers*, which ``ase.io`` cannot read)
go through a dedicated reader: a Numba kernel (:mod:`xanesnet.io._kernels`, ~3.5x the
structures/s of ``ase.io.read(format="xyz")`` on the equivalent standard xyz file; see
``benchmarks/bench_reader.py``) with a line-by-line Python parser that explains errors and
serves where Numba is not worth importing (:data:`FAST_XYZ`). Everything else goes through
``ase.io.iread`` or ``ase.db``.
"""

from __future__ import annotations

import functools
import glob
import io
import os
import re
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from ase import Atoms

from xanesnet.io.sources import FolderSources, SourceList
from xanesnet.io.xyz_text import (
    _count,
    _diagnose_rows,
    _parse_rows,
    _starts_with_symbol,
)

__all__ = [
    "DB_SCHEMES",
    "DB_PAGE_SIZE",
    "FAST_XYZ",
    "KERNEL_AFTER_FRAMES",
    "FOLDER_NAMES",
    "FOLDER_SUFFIXES",
    "read_structures",
    "write_xanesnet_xyz",
]

#: File suffixes (lower case) picked up when a folder is given. Other files are skipped.
FOLDER_SUFFIXES: tuple[str, ...] = (".xyz", ".extxyz", ".cif", ".vasp", ".pdb", ".traj")
#: Exact file names also picked up in a folder (VASP conventions).
FOLDER_NAMES: tuple[str, ...] = ("POSCAR", "CONTCAR")
#: URL schemes read as ASE databases (server backends need their Python driver installed).
DB_SCHEMES: tuple[str, ...] = ("postgresql", "postgres", "mysql", "mariadb")
#: Rows fetched per database query. ASE's SQLite backend materialises a whole query result,
#: so rows are fetched in pages of this size (keyset pagination on the row id).
DB_PAGE_SIZE = 256
#: Parser for XANESNET xyz files: "numba" (compiled fast path, ~3.5x the throughput of
#: ``ase.io.read``), "python" (no Numba; ~1.5x), or "auto": Python until
#: KERNEL_AFTER_FRAMES frames have been read in this process, then Numba -- importing Numba and
#: loading the cached kernel costs ~0.5 s, which pays off only over about ten thousand
#: structures -- or Numba at once where it is already imported (e.g. by a descriptor backend).
#: Both parsers give identical results and identical error messages.
FAST_XYZ = "auto"
KERNEL_AFTER_FRAMES = 10_000

_MAX_Z = 118
_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")

PathInput = str | os.PathLike
IndexInput = int | slice | str | None


# --------------------------------------------------------------------------------------------
# Input resolution
# --------------------------------------------------------------------------------------------


class _Source(NamedTuple):
    """One thing to read: a file or a database (file or URL)."""

    kind: str  # "xyz" (auto-detected .xyz), "xanesnet", "ase" or "db"
    location: str  # path or URL passed to the reader
    display: str  # shown in info["source"] and in messages (URL password removed)
    stem: str  # base of the ids


def _redact_url(url: str) -> str:
    """Drop the password from ``scheme://user:password@host/...``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _url_stem(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return tail.split("?", 1)[0] or "db"


def _file_source(path: str, fmt: str | None) -> _Source:
    stem, suffix = os.path.splitext(os.path.basename(path))
    suffix = suffix.lower()
    if fmt is None:
        kind = {".db": "db", ".xyz": "xyz"}.get(suffix, "ase")
    else:
        kind = fmt if fmt in ("db", "xanesnet") else "ase"
    return _Source(kind, path, path, stem)


def _folder_sources(folder: str, fmt: str | None) -> FolderSources:
    """Sources of a folder's structure files, sorted by name; hidden files and subfolders are
    skipped. Item i equals ``_file_source(os.path.join(folder, name_i), fmt)``; records are made
    on demand from the sorted names (a million files cost ~70 MB, not several hundred)."""
    names: list[str] = []
    suffixes: set[str] = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            head, dot, tail = name.rpartition(".")
            suffix = dot + tail.lower() if dot else ""
            if (suffix in FOLDER_SUFFIXES or name in FOLDER_NAMES) and entry.is_file():
                names.append(name)
                suffixes.add(suffix)
    names.sort()
    return FolderSources(folder, names, fmt, _Source, suffixes)


def _resolve_one(item: Any, fmt: str | None, out: list[Any]) -> None:
    """Append ``item``'s sources to ``out``: ``_Source`` records, or a lazy
    :class:`~xanesnet.io.sources.FolderSources` per folder."""
    if isinstance(item, (list, tuple)):
        for sub in item:
            _resolve_one(sub, fmt, out)
        return
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(
            f"read_structures: expected a path, glob pattern, database URL or a list of them, "
            f"got {type(item).__name__}"
        )
    text = os.fsdecode(os.fspath(item))
    match = _URL.match(text) if isinstance(item, str) else None
    if match and match.group("scheme").lower() in DB_SCHEMES:
        out.append(_Source("db", text, _redact_url(text), _url_stem(text)))
        return
    path = os.path.expanduser(text)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        files = _folder_sources(path, fmt)
        if not files:
            raise ValueError(
                f"{path}: folder holds no structure files (empty input); looked for "
                f"{', '.join('*' + s for s in FOLDER_SUFFIXES)}, {', '.join(FOLDER_NAMES)}"
            )
        out.append(files)  # kept lazy (see xanesnet.io.sources)
        return
    if mode:
        out.append(_file_source(path, fmt))
        return
    if isinstance(item, str) and _GLOB_CHARS.search(text):
        matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise FileNotFoundError(f"{text}: glob pattern matches no files")
        for m in matches:
            _resolve_one(Path(m), fmt, out)
        return
    raise FileNotFoundError(f"{path}: no such file or folder")


def _parse_index(index: IndexInput) -> int | slice | None:
    if index is None or isinstance(index, (int, slice)):
        return index
    if isinstance(index, str):
        from ase.io.formats import string2index

        try:
            parsed = string2index(index)
        except ValueError:
            parsed = None
        if not isinstance(parsed, (int, slice)):
            raise ValueError(f"index: cannot parse {index!r} as an int or slice")
        return parsed
    raise TypeError(f"index: expected int, slice, str or None, got {type(index).__name__}")


def read_structures(
    path_or_paths: PathInput | Iterable[Any],
    *,
    format: str | None = None,
    select: str | int | None = None,
    index: IndexInput = None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterator[Atoms]:
    """Stream structures from files, folders, glob patterns or ASE databases.

    Inputs are resolved (and checked to exist) when this function is called; structures are
    then read one at a time as the returned iterator is consumed: never more than one file
    (or one page of :data:`DB_PAGE_SIZE` database rows) is held in memory.

    Args:
        path_or_paths: one input or a list/tuple of inputs (nested lists are flattened), each
            one of

            * a file path (``str`` or ``os.PathLike``);
            * a folder: its files with a suffix in :data:`FOLDER_SUFFIXES` (``.xyz``,
              ``.extxyz``, ``.cif``, ``.vasp``, ``.pdb``, ``.traj``) or named ``POSCAR`` /
              ``CONTCAR``, sorted by name; hidden files and subfolders are skipped;
            * a glob pattern string (``"data/*.xyz"``, ``"**"`` recursive), matches sorted;
            * an ASE database: a ``.db`` file (SQLite) or a ``postgresql://`` (also
              ``mysql://``, ``mariadb://``) URL.
        format: ``None`` to detect the format per file (see below); ``"xanesnet"`` to force the
            XANESNET xyz reader; ``"db"`` to read files as ASE databases; anything else is an
            ``ase.io`` format name passed to ``ase.io.iread``.
        select: ASE database selection (e.g. ``"Fe,natoms<60"`` or a row id), applied to the
            database inputs only.
        index: frames to take from each multi-frame file, as an int, a slice or an ASE index
            string (``"-1"``, ``"::2"``). Negative indices hold that file's selected frames in
            memory. Not allowed with database inputs (use ``select``).
        on_error: when given, an input that fails while being read (a malformed file, a bad
            database row) is reported as ``on_error(item, error)`` and reading goes on with the
            next file (structures already yielded from it stand); ``item`` names the file or
            row. Without it, the first error is raised.

    Returns:
        An iterator of ``ase.Atoms`` (positions in Å). Each has in ``atoms.info``:

        * ``"id"``: ``<stem>`` for a file holding exactly one structure (e.g.
          ``"ACNCFE_C16H8FeO4"``); ``<stem>:<frame>`` (0-based frame number in the file) for
          a multi-frame file; ``<stem>:<row id>`` for a database row (stem of the ``.db``
          file or last component of the URL), e.g. ``"train:42"``.
        * ``"source"``: the file path (or the URL without password).
        * ``"frame"`` (files) or ``"row_id"`` and ``"unique_id"`` (databases).
        * ``"comment"``: the comment line (XANESNET xyz).
        * metadata the format carries: extxyz comment-line keys, database key-value pairs,
          so ``"charge"`` / ``"spin"`` are there when the input provides them. ``"id"`` and
          ``"source"`` from the input are overwritten. A database key-value pair ``charge``
          is returned as stored (ASE's ``AtomsRow.charge`` is the total of the initial
          charges instead); in ``select`` strings ASE matches ``charge`` against that total
          too, so filter on another key.

    Format detection for ``format=None``: ``.db`` files are databases; a ``.xyz`` file whose
    first atom row starts with an integer is XANESNET xyz (``Z x y z``, tab or space
    separated, several frames may follow each other), one starting with an element symbol is
    standard xyz / extxyz read by ASE; every other file is left to ``ase.io`` to recognise.

    Raises:
        FileNotFoundError: a path, folder or database file does not exist, or a glob pattern
            matches nothing (raised on call).
        ValueError: empty input (no inputs, a folder without structure files), ``index``
            with database inputs, ``select`` without any; while iterating: an empty file, a
            malformed XANESNET xyz file (count line not an integer, fewer atom rows than the
            count, non-numeric field, wrong column count, unknown element, NaN/inf
            coordinate; the message names file and line), any error from ``ase.io`` or
            ``ase.db`` (wrapped, naming the file; for xyz files the offending line is located
            where possible), and structures read through ASE with no atoms, unknown elements
            (atomic number outside 1..118) or non-finite coordinates.
    """
    sources, frames = _resolve_inputs(path_or_paths, format, select, index)
    return _iter_sources(sources, format, select, frames, on_error)


def _resolve_inputs(
    path_or_paths: PathInput | Iterable[Any],
    fmt: str | None,
    select: str | int | None,
    index: IndexInput,
) -> tuple[SourceList, int | slice | None]:
    """The sources :func:`read_structures` reads and its parsed ``index``, with its checks."""
    items: list[Any] = []
    _resolve_one(path_or_paths, fmt, items)
    sources = SourceList(items)
    if not sources:
        raise ValueError("read_structures: no inputs given (empty input)")
    frames = _parse_index(index)
    has_db = "db" in sources.kinds
    if has_db and frames is not None:
        raise ValueError("index: not supported for database inputs; use select= instead")
    if select is not None and not has_db:
        raise ValueError("select: applies to database inputs only, and none were given")
    return sources, frames


def _iter_sources(
    sources: Sequence[_Source],
    fmt: str | None,
    select: str | int | None,
    index: int | slice | None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterator[Atoms]:
    for source in sources:
        stream = _iter_db(source, select) if source.kind == "db" else _iter_file(source, fmt, index)
        if on_error is None:
            yield from stream
            continue
        try:
            yield from stream
        except (ValueError, OSError) as exc:
            on_error(source.display, exc)


# --------------------------------------------------------------------------------------------
# Files: frame selection and ids
# --------------------------------------------------------------------------------------------


def _select_frames(
    frames: Iterator[Atoms], index: int | slice | None
) -> Iterator[tuple[int, Atoms]]:
    """Apply an ASE-style index to a frame stream, keeping each frame's number in the file."""
    numbered = enumerate(frames)
    if index is None:
        yield from numbered
        return
    if isinstance(index, int):
        if index >= 0:
            yield from islice(numbered, index, index + 1)
        else:
            last = deque(numbered, maxlen=-index)
            if len(last) == -index:
                yield last[0]
        return
    start, stop, step = index.start, index.stop, index.step
    if step is None or step > 0:
        if (start is None or start >= 0) and (stop is None or stop >= 0):
            yield from islice(numbered, start, stop, step)
            return
    yield from list(numbered)[index]


def _look_ahead(frames: Iterator[Any], path: str) -> tuple[bool, Iterator[Any]]:
    """(whether the file holds a single structure, the same frames): one frame of look-ahead,
    because a structure's id is the bare file stem only when it is alone in its file."""
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: file holds no structures (empty input)")
    second = next(frames, None)
    single = second is None
    return single, chain([first], [] if single else [second], frames)


def _iter_file(source: _Source, fmt: str | None, index: int | slice | None) -> Iterator[Atoms]:
    path = source.location
    if source.kind == "xanesnet":
        raw = _iter_xanesnet(path, detect=False)
    elif source.kind == "xyz":
        raw = _iter_xanesnet(path, detect=True)
    else:
        if os.stat(path).st_size == 0:
            raise ValueError(f"{path}: line 1: empty file")
        raw = _iter_ase(path, fmt)
    single, stream = _look_ahead(raw, path)
    for frame, atoms in _select_frames(stream, index):
        atoms.info["id"] = source.stem if single else f"{source.stem}:{frame}"
        atoms.info["source"] = source.display
        atoms.info["frame"] = frame
        yield atoms


# --------------------------------------------------------------------------------------------
# XANESNET xyz
# --------------------------------------------------------------------------------------------


@functools.cache
def _load_kernel() -> Any:
    """The Numba frame parser (:mod:`xanesnet.io._kernels`), or None without Numba."""
    try:
        from xanesnet.io import _kernels as _xyz_kernel
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return _xyz_kernel


_python_frames = 0  # frames parsed by _iter_xanesnet_lines in this process


def _fast_kernel() -> Any:
    """The Numba kernel where FAST_XYZ asks for it (or, on "auto", once worth it), else None."""
    if FAST_XYZ == "python":
        return None
    if FAST_XYZ == "auto" and _python_frames < KERNEL_AFTER_FRAMES:
        if "numba" not in sys.modules:
            return None
    return _load_kernel()


def _read_bytes(path: str) -> bytes:
    """Whole file contents (``os.read`` in 64 KiB chunks: cheaper than ``open().read()``)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _iter_xanesnet(path: str, *, detect: bool) -> Iterator[Atoms]:
    """Parse XANESNET xyz frames (``count``, ``comment``, ``count`` rows ``Z x y z``).

    The file is read whole (one file holds one or a few structures). Frames go through the
    Numba kernel; from the first frame it refuses on, the line-by-line parser takes over and
    either reads it or raises an error naming the line. With ``detect``, a file whose first
    atom row starts with an element symbol is handed to ASE (standard xyz / extxyz).
    """
    data = _read_bytes(path)
    if not data:
        raise ValueError(f"{path}: line 1: empty file")
    kernel = _fast_kernel()
    offset, line = 0, 1
    if kernel is not None:
        buf = np.frombuffer(data, dtype=np.uint8)
        while True:
            status, numbers, positions, offset, line, c0, c1, _ = kernel.scan_frame(
                buf, offset, line
            )
            if status == kernel.END:
                return
            if status != kernel.OK:
                break  # BAD or SYMBOL: the line parser below decides
            detect = False
            comment = data[c0:c1].decode(errors="replace").strip()
            yield Atoms(numbers=numbers, positions=positions, info={"comment": comment})
            if offset >= len(data):
                return
    yield from _iter_xanesnet_lines(path, data, offset, line, detect=detect)


def _iter_xanesnet_lines(
    path: str, data: bytes, offset: int, first_line: int, *, detect: bool
) -> Iterator[Atoms]:
    """Line-by-line XANESNET xyz parser from byte ``offset`` (line ``first_line``)."""
    global _python_frames
    fh = io.BytesIO(data)
    fh.seek(offset)
    lineno = first_line - 1  # number of the last line read (1-based)
    while True:
        line = fh.readline()
        lineno += 1
        if not line:
            return
        if not line.strip():
            continue  # blank lines between or after frames
        n = _count(line, path, lineno)
        comment = fh.readline()
        lineno += 1
        if not comment:
            raise ValueError(
                f"{path}: line {lineno}: truncated file: expected a comment line and "
                f"{n} atom rows after the count on line {lineno - 1}, file ends"
            )
        rows = list(islice(fh, n))
        if detect:
            detect = False
            if rows and _starts_with_symbol(rows[0]):
                yield from _iter_ase(path, None)
                return
        first_row = lineno + 1
        lineno += len(rows)
        numbers, positions = _parse_rows(rows, n, path, first_row)
        _python_frames += 1
        yield Atoms(
            numbers=numbers,
            positions=positions,
            info={"comment": comment.decode(errors="replace").strip()},
        )


# --------------------------------------------------------------------------------------------
# ASE formats
# --------------------------------------------------------------------------------------------


def _locate_xyz_error(path: str) -> str | None:
    """Scan a standard xyz/extxyz file for the first malformed line; message or None."""
    lineno = 0
    try:
        with open(path, "rb") as fh:
            while True:
                line = fh.readline()
                lineno += 1
                if not line:
                    return None
                if not line.strip():
                    continue
                n = _count(line, path, lineno)
                comment = fh.readline()
                lineno += 1
                if not comment:
                    raise ValueError(
                        f"{path}: line {lineno}: truncated file: expected a comment line and "
                        f"{n} atom rows after the count on line {lineno - 1}, file ends"
                    )
                props = re.search(rb"Properties=(\S+)", comment)
                rows = list(islice(fh, n))
                first_row = lineno + 1
                lineno += len(rows)
                if props and not props.group(1).lower().startswith(b"species:s:1:pos:r:3"):
                    if len(rows) < n:
                        _diagnose_rows([], n, path, first_row, symbols=True)
                    continue  # columns in another order: only the row count is checked
                _diagnose_rows(rows, n, path, first_row, symbols=True)
    except ValueError as exc:
        return str(exc)


def _xyz_like(path: str, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt in ("xyz", "extxyz")
    return os.path.splitext(path)[1].lower() in (".xyz", ".extxyz")


def _iter_ase(path: str, fmt: str | None) -> Iterator[Atoms]:
    """Frames from ``ase.io.iread``, validated; ASE errors re-raised as ValueError. Plain
    extended XYZ goes through the fast reader of :mod:`xanesnet.io.extxyz` (same result)."""
    frame = 0
    if fmt in (None, "extxyz") and str(path).lower().endswith((".xyz", ".extxyz")):
        from xanesnet.io.extxyz import NotPlain, iter_plain_extxyz

        try:
            for atoms in iter_plain_extxyz(str(path)):
                _validate_atoms(atoms, f"{path}: frame {frame}", path)
                yield atoms
                frame += 1
            return
        except NotPlain as exc:
            frame = exc.frame  # the rest through ase.io
    yield from _iter_ase_from(path, fmt, frame)


def _iter_ase_from(path: str, fmt: str | None, frame: int) -> Iterator[Atoms]:
    """Frames ``frame:`` of a file through ``ase.io.iread``, validated (see :func:`_iter_ase`)."""
    import ase.io

    frames = ase.io.iread(str(path), index=f"{frame}:", format=fmt)
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
            located = _locate_xyz_error(path) if _xyz_like(path, fmt) else None
            if located is not None:
                raise ValueError(located) from exc
            raise ValueError(
                f"{path}: cannot read frame {frame} with ase.io "
                f"(format {fmt or 'auto-detected'}): {type(exc).__name__}: {exc}"
            ) from exc
        _validate_atoms(atoms, f"{path}: frame {frame}", path if _xyz_like(path, fmt) else None)
        yield atoms
        frame += 1


def _validate_atoms(atoms: Atoms, label: str, xyz_path: str | None) -> None:
    numbers = atoms.numbers
    problem = None
    if numbers.size == 0:
        problem = "structure has no atoms"
    else:
        bad = np.nonzero((numbers < 1) | (numbers > _MAX_Z))[0]
        nonfinite = np.nonzero(~np.all(np.isfinite(atoms.positions), axis=1))[0]
        if bad.size:
            problem = f"unknown element (atomic number {int(numbers[bad[0]])}) at atom {bad[0]}"
        elif nonfinite.size:
            problem = f"non-finite (NaN or inf) coordinates at atom {nonfinite[0]}"
    if problem is None:
        return
    located = _locate_xyz_error(xyz_path) if xyz_path is not None else None
    raise ValueError(located or f"{label}: {problem}")


# --------------------------------------------------------------------------------------------
# ASE databases
# --------------------------------------------------------------------------------------------


def _page_selection(select: str | int | None, last_id: int) -> str | list[Any]:
    if select is None or select == "":
        return f"id>{last_id}"
    if isinstance(select, str):
        return f"{select},id>{last_id}"
    if isinstance(select, int):
        return [("id", "=", select), ("id", ">", last_id)]
    raise TypeError(f"select: expected a selection string or a row id, got {type(select)}")


def _key_value_pairs(row: Any) -> dict[str, Any]:
    """A row's key-value pairs as stored.

    ``AtomsRow.key_value_pairs`` looks keys up as attributes, so a pair named like an
    ``AtomsRow`` property (``charge``: total of the initial charges) comes back as the
    property's value; the stored value is in the row's instance dict.
    """
    pairs = dict(row.key_value_pairs)
    stored = vars(row)
    for key in pairs:
        if key in stored:
            pairs[key] = stored[key]
    return pairs


def _sqlite_pages(path: str) -> Iterator[list[tuple[Any, ...]]] | None:
    """Pages of (id, unique_id, numbers, positions, cell, pbc, key_value_pairs) read straight
    from an ASE SQLite file, or None when its layout is not the one this reader knows."""
    import sqlite3

    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        version = connection.execute(
            "SELECT value FROM information WHERE name = 'version'"
        ).fetchone()
        if version is None or int(version[0]) < 6:
            connection.close()
            return None
    except (sqlite3.Error, ValueError):
        return None

    def pages() -> Iterator[list[tuple[Any, ...]]]:
        last_id = 0
        try:
            while True:
                page = connection.execute(
                    "SELECT id, unique_id, numbers, positions, cell, pbc, key_value_pairs "
                    "FROM systems WHERE id > ? ORDER BY id LIMIT ?",
                    (last_id, DB_PAGE_SIZE),
                ).fetchall()
                if page:
                    yield page
                if len(page) < DB_PAGE_SIZE:
                    return
                last_id = int(page[-1][0])
        finally:
            connection.close()

    return pages()


def _iter_sqlite_bulk(source: _Source, pages: Iterator[list[tuple[Any, ...]]]) -> Iterator[Atoms]:
    """Rows of an ASE SQLite file decoded in bulk (geometry and key-value pairs; the per-row
    path of ase.db is several times slower). Equal to ase.db's rows (tested)."""
    import json

    pbc_bits = np.array([1, 2, 4])
    for page in pages:
        for row_id, unique_id, numbers, positions, cell, pbc, pairs in page:
            z = np.frombuffer(numbers, np.int32).astype(np.int64) if numbers else np.zeros(0, int)
            r = (
                np.frombuffer(positions, np.float64).reshape(-1, 3)
                if positions
                else np.zeros((0, 3))
            )
            atoms = Atoms(
                numbers=z,
                positions=r,
                cell=np.frombuffer(cell, np.float64).reshape(3, 3) if cell else np.zeros((3, 3)),
                pbc=(int(pbc or 0) & pbc_bits).astype(bool),
            )
            if pairs and pairs != "{}":
                atoms.info.update(json.loads(pairs))
            atoms.info["id"] = f"{source.stem}:{row_id}"
            atoms.info["source"] = source.display
            atoms.info["row_id"] = int(row_id)
            atoms.info["unique_id"] = unique_id
            _validate_atoms(atoms, f"{source.display}: row {row_id}", None)
            yield atoms


def _iter_db(source: _Source, select: str | int | None) -> Iterator[Atoms]:
    """Rows of an ASE database, fetched in pages of DB_PAGE_SIZE ordered by id."""
    import ase.db

    if "://" not in source.location and not os.path.isfile(source.location):
        # ase.db.connect would silently create an empty database.
        raise FileNotFoundError(f"{source.location}: no such database file")
    if "://" not in source.location and select in (None, ""):
        pages = _sqlite_pages(source.location)
        if pages is not None:
            yield from _iter_sqlite_bulk(source, pages)
            return
    try:
        backend = "extract_from_name" if "://" in source.location else "db"
        db = ase.db.connect(source.location, type=backend)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{source.display}: cannot open ASE database: {exc}") from exc
    last_id = 0
    while True:
        try:
            page = list(
                db.select(
                    _page_selection(select, last_id),
                    sort="id",
                    limit=DB_PAGE_SIZE,
                    include_data=False,
                )
            )
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"{source.display}: cannot select rows (selection {select!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for row in page:
            atoms = row.toatoms()
            atoms.info.update(_key_value_pairs(row))
            atoms.info["id"] = f"{source.stem}:{row.id}"
            atoms.info["source"] = source.display
            atoms.info["row_id"] = int(row.id)
            atoms.info["unique_id"] = row.unique_id
            _validate_atoms(atoms, f"{source.display}: row {row.id}", None)
            yield atoms
        if len(page) < DB_PAGE_SIZE:
            return
        last_id = int(page[-1].id)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_xanesnet_xyz(
    atoms: Atoms | Iterable[Atoms], path: PathInput, comment: str | None = None
) -> None:
    """Write structures in the XANESNET xyz format of the shared data.

    Each frame is the atom count, a comment line, then one ``Z\\tx\\ty\\tz`` row per atom
    (atomic number, Cartesian coordinates in Å with 10 decimals). Several structures are
    written as consecutive frames.

    Args:
        atoms: one ``ase.Atoms`` or an iterable of them.
        path: output file, overwritten.
        comment: comment line; default ``<NAME>_bav`` with NAME the file stem of ``path``.
    """
    path = Path(path)
    frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
    line2 = f"{path.stem}_bav" if comment is None else comment
    if "\n" in line2 or "\r" in line2:
        raise ValueError("comment: must be a single line")
    parts: list[str] = []
    for frame in frames:
        numbers = frame.get_atomic_numbers()
        positions = frame.get_positions()
        parts.append(f"{len(frame)}\n{line2}\n")
        parts.extend(
            f"{z:d}\t{x:.10f}\t{y:.10f}\t{w:.10f}\n"
            for z, (x, y, w) in zip(numbers.tolist(), positions.tolist(), strict=True)
        )
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write("".join(parts))
