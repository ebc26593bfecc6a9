"""Structure input as ``ase.Atoms``: :func:`read_structures` over every reader of
:mod:`xanesnet.io` (XANESNET xyz, ``ase.io`` formats, ASE databases).

Paths, folders, glob patterns and database URLs (:mod:`xanesnet.io.sources`) become a lazy
stream of :class:`ase.Atoms`, one structure at a time, each labelled with a stable id in
``atoms.info["id"]`` and its origin in ``atoms.info["source"]``. Malformed input raises
``FileNotFoundError`` or :class:`~xanesnet.errors.InputError` (a ``ValueError``) naming the file
and, for line-based text formats, the line.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, TypeVar

from ase import Atoms

from xanesnet.errors import InputError
from xanesnet.io.ase_db import iter_db
from xanesnet.io.ase_files import iter_ase
from xanesnet.io.pymatgen import holds_pymatgen_structure, iter_mp_json
from xanesnet.io.sources import IndexInput, PathInput, Source, resolve_sources
from xanesnet.io.xanesnet_xyz import SymbolRows, iter_xanesnet, write_xanesnet_xyz

__all__ = [
    "first_non_utf8",
    "iter_file",
    "iter_sources",
    "look_ahead",
    "named_errors",
    "reading_error",
    "read_structures",
    "write_xanesnet_xyz",
]

T = TypeVar("T")


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
    (or one page of :data:`~xanesnet.io.ase_db.DB_PAGE_SIZE` database rows) is held in memory.

    Args:
        path_or_paths: one input or a list/tuple of inputs (nested lists are flattened), each
            one of

            * a file path (``str`` or ``os.PathLike``);
            * a folder: its files with a suffix in :data:`~xanesnet.io.sources.FOLDER_SUFFIXES` (``.xyz``,
              ``.extxyz``, ``.cif``, ``.vasp``, ``.pdb``, ``.traj``) or named ``POSCAR`` /
              ``CONTCAR``, sorted by name; hidden files and subfolders are skipped, other
              files too, named in one :class:`~xanesnet.io.sources.SkippedFilesWarning`;
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
        on_error: when given, an input that fails while being read is reported as
            ``on_error(item, error)`` and reading goes on: a malformed file (``item``: the
            file; structures already yielded from it stand) with the next file, a bad
            database row (``item``: ``"<stem>:<row id>"``) with the next row. Without it,
            the first error is raised.

    Returns:
        An iterator of ``ase.Atoms`` (positions in Å). Each has in ``atoms.info``:

        * ``"id"``: where several inputs share a file stem, the stem is their path relative
          to their common folder instead (``run1/CONTCAR``), with the suffix where only it
          differs (``hem.traj``, ``hem.json``; :func:`~xanesnet.io.sources.unique_stems`).
          ``<stem>`` for a file holding exactly one structure (e.g.
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
            where possible), bytes that are not UTF-8 text in a text format (file and line),
            an xyz count line larger than the rest of the file (refused before ``ase.io``
            reads it), a ``.db`` file without the ASE tables (databases are opened read-only:
            nothing is ever written to an input), a database row that cannot be decoded
            (file and row id), and structures read through ASE with no atoms, unknown
            elements (atomic number outside 1..118) or non-finite coordinates. Every such
            error is an :class:`~xanesnet.errors.InputError`.
    """
    sources, frames = resolve_sources(path_or_paths, format, select, index)
    return iter_sources(sources, format, select, frames, on_error)


def iter_sources(
    sources: Sequence[Source],
    fmt: str | None,
    select: str | int | None,
    index: int | slice | None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterator[Atoms]:
    """The structures of resolved sources (see :func:`read_structures`)."""
    for source in sources:
        if source.kind == "db":
            stream = iter_db(source, select, on_error)  # bad rows reported one by one
        else:
            stream = named_errors(iter_file(source, fmt, index), source.display)
        if on_error is None:
            yield from stream
            continue
        try:
            yield from stream
        except (ValueError, OSError) as exc:
            on_error(source.display, exc)


def named_errors(stream: Iterator[T], path: str) -> Iterator[T]:
    """The items of a file reader's ``stream``; the one place where a reader's failure of any
    kind (a ``UnicodeDecodeError``, a ``TypeError`` inside ``ase.io``, ...) becomes an
    :class:`~xanesnet.errors.InputError` naming the file (``OSError`` is left as it is: it
    names the file already). Items already yielded stand."""
    frame = 0
    try:
        for item in stream:
            yield item
            frame += 1
    except (InputError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure while reading is this file's
        raise reading_error(path, exc, frame) from exc


def reading_error(path: str, exc: Exception, frame: int) -> InputError:
    """An InputError naming ``path`` (and the line, for bytes that are not UTF-8 text) for a
    failure while reading its frame ``frame`` (0-based, in file order)."""
    if isinstance(exc, UnicodeDecodeError):
        found = first_non_utf8(path)
        if found is not None:
            line, column, byte = found
            return InputError(
                f"{path}: line {line}: expected UTF-8 text, found byte 0x{byte:02x} at column "
                f"{column}",
                source=path,
                line=line,
            )
    return InputError(
        f"{path}: cannot read frame {frame}: {type(exc).__name__}: {exc}", source=path
    )


def first_non_utf8(path: str) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte of ``path`` that is not UTF-8 text (1-based
    line and column), or None."""
    try:
        with open(path, "rb") as handle:
            for line, raw in enumerate(handle, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return line, exc.start + 1, raw[exc.start]
    except OSError:
        return None
    return None


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


def look_ahead(frames: Iterator[Any], path: str) -> tuple[bool, Iterator[Any]]:
    """(whether the file holds a single structure, the same frames): one frame of look-ahead,
    because a structure's id is the bare file stem only when it is alone in its file."""
    first = next(frames, None)
    if first is None:
        raise InputError(f"{path}: file holds no structures (empty input)", source=path)
    second = next(frames, None)
    single = second is None
    return single, chain([first], [] if single else [second], frames)


def _iter_detected_xyz(path: str) -> Iterator[Atoms]:
    """A ``.xyz`` file: XANESNET xyz, or standard xyz / extxyz (rows with element symbols)."""
    frames = iter_xanesnet(path, detect=True)
    try:
        first = next(frames)
    except StopIteration:
        return
    except SymbolRows:
        yield from iter_ase(path, None)
        return
    yield first
    yield from frames


def iter_file(source: Source, fmt: str | None, index: int | slice | None) -> Iterator[Atoms]:
    """The structures of one file source with their ids, ``index`` applied."""
    path = source.location
    if source.kind == "xanesnet":
        raw = iter_xanesnet(path, detect=False)
    elif source.kind == "xyz":
        raw = _iter_detected_xyz(path)
    else:
        if os.stat(path).st_size == 0:
            raise InputError(f"{path}: line 1: empty file", source=path, line=1)
        mp_json = fmt is None and path.lower().endswith(".json") and holds_pymatgen_structure(path)
        raw = iter_mp_json(path) if mp_json else iter_ase(path, fmt)
    single, stream = look_ahead(raw, path)
    for frame, atoms in _select_frames(stream, index):
        atoms.info["id"] = source.stem if single else f"{source.stem}:{frame}"
        atoms.info["source"] = source.display
        atoms.info["frame"] = frame
        yield atoms
