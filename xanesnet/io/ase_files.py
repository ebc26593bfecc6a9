"""Files in the formats of ``ase.io`` (standard and extended xyz, CIF, POSCAR, PDB, traj, ...):
frames validated, ASE's errors re-raised as :class:`~xanesnet.errors.InputError` naming the file
(and for xyz files the first malformed line). Plain extended XYZ goes through the faster reader
of :mod:`xanesnet.io.extxyz` (same result).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from itertools import islice

import numpy as np
from ase import Atoms

from xanesnet.errors import InputError
from xanesnet.frames import MAX_ATOMIC_NUMBER
from xanesnet.io.extxyz import NotPlain, iter_plain_extxyz
from xanesnet.io.xanesnet_xyz import count_line, diagnose_rows

__all__ = [
    "check_xyz_counts",
    "iter_ase",
    "iter_ase_from",
    "locate_xyz_error",
    "validate_atoms",
    "xyz_like",
]


def locate_xyz_error(path: str) -> str | None:
    """Scan a standard xyz/extxyz file for the first malformed line; message or None."""
    lineno = 0
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            while True:
                line = fh.readline()
                lineno += 1
                if not line:
                    return None
                if not line.strip():
                    continue
                n = count_line(line, path, lineno)
                comment = fh.readline()
                lineno += 1
                if not comment:
                    raise InputError(
                        f"{path}: line {lineno}: truncated file: expected a comment line and "
                        f"{n} atom rows after the count on line {lineno - 1}, file ends",
                        source=path,
                        line=lineno,
                    )
                props = re.search(rb"Properties=(\S+)", comment)
                rows = list(islice(fh, min(n, size - fh.tell())))  # not more than bytes
                first_row = lineno + 1
                lineno += len(rows)
                if props and not props.group(1).lower().startswith(b"species:s:1:pos:r:3"):
                    if len(rows) < n:
                        diagnose_rows([], n, path, first_row, symbols=True)
                    continue  # columns in another order: only the row count is checked
                diagnose_rows(rows, n, path, first_row, symbols=True)
    except ValueError as exc:
        return str(exc)
    except OSError:
        return None


def check_xyz_counts(path: str) -> None:
    """Raise an :class:`~xanesnet.errors.InputError` naming the line of the first count line
    that is not a positive integer or claims more atom rows than the rest of the file has
    bytes. Run before ``ase.io`` reads an xyz file: it trusts each count (a count of 10^14
    after a valid frame makes it loop that many times)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        lineno = 0
        while line := fh.readline():
            lineno += 1
            if not line.strip():
                continue
            n = count_line(line, path, lineno)
            if n > size - fh.tell():  # more rows than bytes left: say where the file ends
                raise InputError(
                    locate_xyz_error(path)
                    or f"{path}: line {lineno}: atom count {n} is larger than the rest of "
                    f"the file could hold",
                    source=path,
                    line=lineno,
                )
            lineno += sum(1 for _ in islice(fh, n + 1))  # the comment line and the rows


def xyz_like(path: str, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt in ("xyz", "extxyz")
    return os.path.splitext(path)[1].lower() in (".xyz", ".extxyz")


def iter_ase(path: str, fmt: str | None) -> Iterator[Atoms]:
    """Frames from ``ase.io.iread``, validated; ASE errors re-raised as InputError. Plain
    extended XYZ goes through the fast reader of :mod:`xanesnet.io.extxyz` (same result)."""
    frame = 0
    if fmt in (None, "extxyz") and str(path).lower().endswith((".xyz", ".extxyz")):
        try:
            for atoms in iter_plain_extxyz(str(path)):
                validate_atoms(atoms, f"{path}: frame {frame}", path, path)
                yield atoms
                frame += 1
            return
        except NotPlain as exc:
            frame = exc.frame  # the rest through ase.io
    yield from iter_ase_from(path, fmt, frame)


def iter_ase_from(path: str, fmt: str | None, frame: int) -> Iterator[Atoms]:
    """Frames ``frame:`` of a file through ``ase.io.iread``, validated (see :func:`iter_ase`)."""
    import ase.io

    if xyz_like(path, fmt):
        check_xyz_counts(path)
    frames = ase.io.iread(str(path), index=f"{frame}:", format=fmt)
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
            located = locate_xyz_error(path) if xyz_like(path, fmt) else None
            if located is not None:
                raise InputError(located, source=path) from exc
            raise InputError(
                f"{path}: cannot read frame {frame} with ase.io "
                f"(format {fmt or 'auto-detected'}): {type(exc).__name__}: {exc}",
                source=path,
            ) from exc
        validate_atoms(atoms, f"{path}: frame {frame}", path if xyz_like(path, fmt) else None, path)
        yield atoms
        frame += 1


def validate_atoms(
    atoms: Atoms, label: str, xyz_path: str | None, source: str | None = None
) -> None:
    """Raise an :class:`~xanesnet.errors.InputError` for a structure with no atoms, an unknown
    element or non-finite coordinates; for xyz files (``xyz_path``) the message names the
    first malformed line where one is found, else it starts with ``label``."""
    numbers = atoms.numbers
    problem = None
    if numbers.size == 0:
        problem = "structure has no atoms"
    else:
        bad = np.nonzero((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER))[0]
        nonfinite = np.nonzero(~np.all(np.isfinite(atoms.positions), axis=1))[0]
        if bad.size:
            problem = f"unknown element (atomic number {int(numbers[bad[0]])}) at atom {bad[0]}"
        elif nonfinite.size:
            problem = f"non-finite (NaN or inf) coordinates at atom {nonfinite[0]}"
    if problem is None:
        return
    located = locate_xyz_error(xyz_path) if xyz_path is not None else None
    raise InputError(located or f"{label}: {problem}", source=source)
