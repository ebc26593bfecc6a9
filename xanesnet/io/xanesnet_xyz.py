"""XANESNET xyz files: frames of an atom count, a comment line and ``Z x y z`` rows (atomic
numbers, which ``ase.io`` cannot read), read and written.

Frames go through a Numba kernel (:mod:`xanesnet.io._kernels`, ~3.5x the structures/s of
``ase.io.read(format="xyz")`` on the equivalent standard xyz file; see
``benchmarks/bench_reader.py``) where :func:`xanesnet.io.fast_path.use_compiled` says so, and
through the line-by-line Python parser here otherwise, or from the first frame the kernel
refuses; the Python parser explains errors, naming the file and line. Both give identical
results and identical error messages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers as _SYMBOL_TO_Z

from xanesnet.errors import InputError
from xanesnet.frames import MAX_ATOMIC_NUMBER
from xanesnet.io.fast_path import numba_kernels, use_compiled

__all__ = [
    "SymbolRows",
    "count_line",
    "diagnose_rows",
    "iter_xanesnet",
    "parse_rows",
    "read_bytes",
    "starts_with_symbol",
    "write_xanesnet_xyz",
]


class SymbolRows(Exception):
    """The first atom row starts with an element symbol: a standard xyz file, for ``ase.io``
    (raised by :func:`iter_xanesnet` with ``detect``, before any frame)."""


def _bad_line(path: str, lineno: int, text: str) -> InputError:
    return InputError(f"{path}: line {lineno}: {text}", source=path, line=lineno)


_python_frames = 0  # frames parsed by the Python parser in this process (the rule's count)


def _kernel():  # noqa: ANN202 - the Numba module or None
    """The Numba kernel where the rule of :func:`use_compiled` asks for it, else None."""
    return numba_kernels() if use_compiled(_python_frames) else None


def count_line(line: bytes, path: str, lineno: int) -> int:
    try:
        n = int(line)
    except ValueError:
        raise _bad_line(
            path, lineno, f"atom count is not an integer: {line.decode(errors='replace').strip()!r}"
        ) from None
    if n < 1:
        raise _bad_line(path, lineno, f"atom count must be positive, got {n}")
    return n


def starts_with_symbol(row: bytes) -> bool:
    fields = row.split(maxsplit=1)
    return bool(fields) and fields[0][:1].isalpha()


def parse_rows(
    rows: list[bytes], n: int, path: str, first_row: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fast path: one NumPy conversion; on any problem, a row-by-row pass finds the line."""
    if len(rows) == n:
        try:
            table = np.array([r.split() for r in rows], dtype=np.float64)
        except ValueError:
            table = None
        if table is not None and table.shape == (n, 4):
            z = table[:, 0]
            numbers = z.astype(np.int64)
            # One pass each: Z integral and in 1..118; coordinates finite (NaN fails >=).
            if (
                (numbers == z) & (numbers >= 1) & (numbers <= MAX_ATOMIC_NUMBER)
            ).all() and np.isfinite(table[:, 1:]).all():
                return numbers, table[:, 1:]
    diagnose_rows(rows, n, path, first_row, symbols=False)
    raise AssertionError(f"{path}: rows rejected without a diagnosis")  # pragma: no cover


def diagnose_rows(rows: list[bytes], n: int, path: str, first_row: int, *, symbols: bool) -> None:
    """Raise an :class:`~xanesnet.errors.InputError` naming the first bad row (XANESNET rows, or xyz rows if symbols)."""
    for k, raw in enumerate(rows):
        lineno = first_row + k
        fields = raw.split()
        text = raw.decode(errors="replace").rstrip("\r\n")
        if not fields:
            raise _bad_line(
                path, lineno, f"truncated file: blank line where atom {k} of {n} was expected"
            )
        if symbols:
            if len(fields) < 4:
                raise _bad_line(path, lineno, f"expected element and x y z, got {text!r}")
        elif len(fields) != 4:
            raise _bad_line(
                path, lineno, f"expected 4 columns (Z x y z), got {len(fields)}: {text!r}"
            )
        _check_element(fields[0], path, lineno, k, symbols=symbols)
        for axis, field in zip("xyz", fields[1:4], strict=True):
            try:
                value = float(field)
            except ValueError:
                raise _bad_line(
                    path,
                    lineno,
                    f"non-numeric {axis} coordinate of atom {k}: "
                    f"{field.decode(errors='replace')!r}",
                ) from None
            if not np.isfinite(value):
                raise _bad_line(
                    path,
                    lineno,
                    f"non-finite (NaN or inf) {axis} coordinate of "
                    f"atom {k}: {field.decode(errors='replace')!r}",
                )
    if len(rows) < n:
        end = first_row + len(rows) - 1
        raise _bad_line(
            path,
            end + 1,
            f"truncated file: the count says {n} atoms but only "
            f"{len(rows)} atom rows follow (file ends after line {end})",
        )


def _check_element(field: bytes, path: str, lineno: int, atom: int, *, symbols: bool) -> None:
    token = field.decode(errors="replace")
    if symbols and token[:1].isalpha():
        if token not in _SYMBOL_TO_Z or _SYMBOL_TO_Z[token] < 1:
            raise _bad_line(path, lineno, f"unknown element symbol {token!r} (atom {atom})")
        return
    try:
        z = int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            raise _bad_line(
                path, lineno, f"non-numeric atomic number of atom {atom}: {token!r}"
            ) from None
        if not value.is_integer():
            raise _bad_line(
                path, lineno, f"atomic number of atom {atom} is not an integer: {token!r}"
            ) from None
        z = int(value)
    if not 1 <= z <= MAX_ATOMIC_NUMBER:
        raise _bad_line(
            path,
            lineno,
            f"unknown element: atomic number {z} of atom {atom} is outside 1..{MAX_ATOMIC_NUMBER}",
        )


def read_bytes(path: str) -> bytes:
    """Whole file contents (``os.read`` in 64 KiB chunks: cheaper than ``open().read()``)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def iter_xanesnet(path: str, *, detect: bool) -> Iterator[Atoms]:
    """Parse XANESNET xyz frames (``count``, ``comment``, ``count`` rows ``Z x y z``).

    The file is read whole (one file holds one or a few structures). Frames go through the
    Numba kernel; from the first frame it refuses on, the line-by-line parser takes over and
    either reads it or raises an error naming the line. With ``detect``, a file whose first
    atom row starts with an element symbol raises :class:`SymbolRows` (standard xyz / extxyz:
    the caller reads it with ``ase.io``).
    """
    data = read_bytes(path)
    if not data:
        raise _bad_line(path, 1, "empty file")
    kernel = _kernel()
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
        n = count_line(line, path, lineno)
        comment = fh.readline()
        lineno += 1
        if not comment:
            raise _bad_line(
                path,
                lineno,
                f"truncated file: expected a comment line and "
                f"{n} atom rows after the count on line {lineno - 1}, file ends",
            )
        # no more rows than bytes left: an absurd count is diagnosed as a truncated file
        rows = list(islice(fh, min(n, len(data) - fh.tell())))
        if detect:
            detect = False
            if rows and starts_with_symbol(rows[0]):
                raise SymbolRows(path)
        first_row = lineno + 1
        lineno += len(rows)
        numbers, positions = parse_rows(rows, n, path, first_row)
        _python_frames += 1
        yield Atoms(
            numbers=numbers,
            positions=positions,
            info={"comment": comment.decode(errors="replace").strip()},
        )


def write_xanesnet_xyz(
    atoms: Atoms | Iterable[Atoms], path: str | os.PathLike, comment: str | None = None
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
