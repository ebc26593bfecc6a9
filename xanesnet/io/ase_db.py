"""ASE databases (SQLite files, PostgreSQL/MySQL/MariaDB URLs): rows as structures, fetched in
pages of :data:`DB_PAGE_SIZE` ordered by row id.

SQLite files are opened read-only (``ase.db.connect`` alone would write its schema into an
empty file, or recreate a dropped table); a file without the ASE tables is an error naming it,
while one with the tables and no rows holds 0 structures. Rows of the current layout are
decoded in bulk; a row that cannot be decoded is an error of that row (``<stem>:<row id>``),
and reading goes on with the next one where the caller collects errors.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from xanesnet.errors import InputError
from xanesnet.io.ase_files import validate_atoms
from xanesnet.io.sources import Source

__all__ = ["DB_PAGE_SIZE", "count_db_rows", "iter_db", "sqlite_pages"]

#: Rows fetched per database query. ASE's SQLite backend materialises a whole query result,
#: so rows are fetched in pages of this size (keyset pagination on the row id).
DB_PAGE_SIZE = 256
#: The oldest ASE SQLite layout decoded in bulk (older files are read through ``ase.db``).
_BULK_VERSION = 6
_COLUMNS = "id, unique_id, numbers, positions, cell, pbc, key_value_pairs"

RowErrorHandler = Callable[[str, Exception], None]


def _connect_read_only(path: str) -> sqlite3.Connection:
    """A read-only connection (SQLite URI ``mode=ro``: nothing can be written, not even by
    ase.db); usable from any thread, one at a time (a reader generator may be closed by
    another thread than the one that opened it)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=20, check_same_thread=False)


def _ase_layout_version(source: Source) -> int:
    """The ASE layout version of an SQLite file; an InputError if it is not an ASE database."""
    display = source.display
    try:
        connection = _connect_read_only(source.location)
        try:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            if "systems" not in tables:
                found = ", ".join(sorted(tables)) if tables else "no tables at all"
                raise InputError(
                    f"{display}: not an ASE database: expected its 'systems' table, found {found}",
                    source=display,
                )
            if "information" not in tables:
                return 2  # as ase.db: layouts before version 3 had no information table
            row = connection.execute(
                "SELECT value FROM information WHERE name = 'version'"
            ).fetchone()
            return int(row[0]) if row is not None else 2
        finally:
            connection.close()
    except (sqlite3.Error, ValueError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"{display}: cannot read as an ASE SQLite database: {type(exc).__name__}: {exc}",
            source=display,
        ) from exc


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


def _open_ase(source: Source) -> Any:
    """``ase.db`` on a source; an SQLite file through a read-only connection."""
    import ase.db

    try:
        backend = "extract_from_name" if "://" in source.location else "db"
        db = ase.db.connect(source.location, type=backend)
    except Exception as exc:  # noqa: BLE001 - any failure to open is this input's error
        raise InputError(
            f"{source.display}: cannot open ASE database: {type(exc).__name__}: {exc}",
            source=source.display,
        ) from exc
    if "://" not in source.location:
        location = source.location
        db._connect = lambda: _connect_read_only(location)  # ase.db's hook for connections
    return db


def _ase_pages(db: Any, source: Source, select: str | int | None, **options: Any) -> Iterator:
    """Pages of ``db.select`` rows (keyset pagination on the id); a failing query is an
    InputError naming the database and the selection."""
    last_id = 0
    while True:
        try:
            page = list(
                db.select(
                    _page_selection(select, last_id),
                    sort="id",
                    limit=DB_PAGE_SIZE,
                    include_data=False,
                    **options,
                )
            )
        except Exception as exc:  # noqa: BLE001 - a bad selection or an unreadable page
            raise InputError(
                f"{source.display}: cannot select rows (selection {select!r}): "
                f"{type(exc).__name__}: {exc}",
                source=source.display,
            ) from exc
        if page:
            yield page
        if len(page) < DB_PAGE_SIZE:
            return
        last_id = int(page[-1].id)


def sqlite_pages(
    path: str, ids: Iterator[list[int]] | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of (id, unique_id, numbers, positions, cell, pbc, key_value_pairs) read straight
    from an ASE SQLite file (read-only): every row in id order, or the rows of each page of
    ``ids``."""
    connection = _connect_read_only(path)
    try:
        if ids is not None:
            for page_ids in ids:
                marks = ", ".join("?" * len(page_ids))
                yield connection.execute(
                    f"SELECT {_COLUMNS} FROM systems WHERE id IN ({marks}) ORDER BY id",
                    page_ids,
                ).fetchall()
            return
        last_id = 0
        while True:
            page = connection.execute(
                f"SELECT {_COLUMNS} FROM systems WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, DB_PAGE_SIZE),
            ).fetchall()
            if page:
                yield page
            if len(page) < DB_PAGE_SIZE:
                return
            last_id = int(page[-1][0])
    finally:
        connection.close()


def _blob(value: Any, dtype: type, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """A row's array column: ``shape`` with -1 for the free length (an absent value: empty)."""
    if value is None:
        return np.zeros([0 if n == -1 else n for n in shape], dtype=dtype)
    if not isinstance(value, bytes):
        raise ValueError(f"{what}: expected a blob, got {type(value).__name__}")
    item = np.dtype(dtype).itemsize * int(np.prod([n for n in shape if n != -1]))
    if len(value) % item or (-1 not in shape and len(value) != item):
        expected = f"a multiple of {item}" if -1 in shape else str(item)
        raise ValueError(f"{what}: expected {expected} bytes, got {len(value)}")
    return np.frombuffer(value, dtype).reshape(shape)


def _decode_row(source: Source, row: tuple[Any, ...]) -> Atoms:
    """One row of :func:`sqlite_pages` as ``ase.Atoms`` (equal to ase.db's, tested)."""
    row_id, unique_id, numbers, positions, cell, pbc, pairs = row
    z = _blob(numbers, np.int32, "numbers", (-1,)).astype(np.int64)
    r = _blob(positions, np.float64, "positions", (-1, 3))
    if len(r) != len(z):
        raise ValueError(f"positions: expected {len(z)} atoms as in numbers, got {len(r)}")
    atoms = Atoms(
        numbers=z,
        positions=r,
        cell=_blob(cell, np.float64, "cell", (3, 3)) if cell else np.zeros((3, 3)),
        pbc=(int(pbc or 0) & np.array([1, 2, 4])).astype(bool),
    )
    if pairs and pairs != "{}":
        info = json.loads(pairs)
        if not isinstance(info, dict):
            raise ValueError(f"key_value_pairs: expected a JSON object, got {pairs[:40]!r}")
        atoms.info.update(info)
    atoms.info["id"] = f"{source.stem}:{row_id}"
    atoms.info["source"] = source.display
    atoms.info["row_id"] = int(row_id)
    atoms.info["unique_id"] = unique_id
    return atoms


def _ase_row_atoms(source: Source, row: Any) -> Atoms:
    """One ``ase.db`` row as ``ase.Atoms`` with the ids of :func:`_decode_row`."""
    atoms = row.toatoms()
    atoms.info.update(_key_value_pairs(row))
    atoms.info["id"] = f"{source.stem}:{row.id}"
    atoms.info["source"] = source.display
    atoms.info["row_id"] = int(row.id)
    atoms.info["unique_id"] = row.unique_id
    return atoms


def _rows(
    source: Source,
    pages: Iterator[list[Any]],
    decode: Callable[[Source, Any], Atoms],
    row_id: Callable[[Any], Any],
    on_row_error: RowErrorHandler | None,
) -> Iterator[Atoms]:
    """Decode and validate rows one by one: the one place where a row's failure, of any
    kind, becomes an InputError naming the database and the row, reported per row (or
    raised without ``on_row_error``)."""
    for page in pages:
        for row in page:
            label = f"{source.display}: row {row_id(row)}"
            try:
                atoms = decode(source, row)
                validate_atoms(atoms, label, None, source.display)
            except Exception as exc:  # noqa: BLE001 - any bad row is that row's error
                structure_id = f"{source.stem}:{row_id(row)}"
                error = (
                    exc
                    if isinstance(exc, InputError)
                    else InputError(
                        f"{label} (structure {structure_id}): cannot decode the row: "
                        f"{type(exc).__name__}: {exc}",
                        source=source.display,
                        structure_id=structure_id,
                    )
                )
                if on_row_error is None:
                    raise error from exc
                on_row_error(structure_id, error)
                continue
            yield atoms


def iter_db(
    source: Source, select: str | int | None, on_row_error: RowErrorHandler | None = None
) -> Iterator[Atoms]:
    """Rows of an ASE database, fetched in pages of DB_PAGE_SIZE ordered by id.

    Args:
        source: the database (SQLite file or URL).
        select: ASE selection (None: every row).
        on_row_error: when given, a row that cannot be decoded or is not a valid structure is
            reported as ``on_row_error("<stem>:<row id>", error)`` and reading goes on;
            without it the first such row raises.

    Raises:
        FileNotFoundError: no such database file (nothing is created).
        InputError: the file is not an ASE database, the selection fails, or (without
            ``on_row_error``) a bad row.
    """
    if "://" in source.location:
        pages = _ase_pages(_open_ase(source), source, select)
        yield from _rows(source, pages, _ase_row_atoms, lambda row: row.id, on_row_error)
        return
    if not os.path.isfile(source.location):
        raise FileNotFoundError(f"{source.location}: no such database file")
    if _ase_layout_version(source) < _BULK_VERSION:
        pages = _ase_pages(_open_ase(source), source, select)
        yield from _rows(source, pages, _ase_row_atoms, lambda row: row.id, on_row_error)
        return
    ids = None
    if select not in (None, ""):  # ase.db parses the selection; the rows are decoded here
        id_pages = _ase_pages(_open_ase(source), source, select, columns=["id"])
        ids = ([int(row.id) for row in page] for page in id_pages)
    pages = sqlite_pages(source.location) if ids is None else sqlite_pages(source.location, ids)
    yield from _rows(source, pages, _decode_row, lambda row: row[0], on_row_error)


def count_db_rows(source: Source, select: str | int | None = None) -> int:
    """The number of rows a database source holds (those of ``select``), read-only.

    Raises:
        InputError: not an ASE database, or the count fails.
    """
    if "://" not in source.location:
        _ase_layout_version(source)
    db = _open_ase(source)
    try:
        return int(db.count(select) if select not in (None, "") else db.count())
    except Exception as exc:  # noqa: BLE001 - any failure is this input's error
        raise InputError(
            f"{source.display}: cannot count rows (selection {select!r}): "
            f"{type(exc).__name__}: {exc}",
            source=source.display,
        ) from exc
