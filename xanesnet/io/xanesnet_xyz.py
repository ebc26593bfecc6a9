"""Python parsing of XANESNET xyz text: the atom count and atom rows, with errors that name the
file, the line and what was expected there (the readers' slow path and their diagnosis)."""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers as _SYMBOL_TO_Z

_MAX_Z = 118


def _count(line: bytes, path: str, lineno: int) -> int:
    try:
        n = int(line)
    except ValueError:
        raise ValueError(
            f"{path}: line {lineno}: atom count is not an integer: "
            f"{line.decode(errors='replace').strip()!r}"
        ) from None
    if n < 1:
        raise ValueError(f"{path}: line {lineno}: atom count must be positive, got {n}")
    return n


def _starts_with_symbol(row: bytes) -> bool:
    fields = row.split(maxsplit=1)
    return bool(fields) and fields[0][:1].isalpha()


def _parse_rows(
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
            if ((numbers == z) & (numbers >= 1) & (numbers <= _MAX_Z)).all() and np.isfinite(
                table[:, 1:]
            ).all():
                return numbers, table[:, 1:]
    _diagnose_rows(rows, n, path, first_row, symbols=False)
    raise AssertionError(f"{path}: rows rejected without a diagnosis")  # pragma: no cover


def _diagnose_rows(rows: list[bytes], n: int, path: str, first_row: int, *, symbols: bool) -> None:
    """Raise a ValueError naming the first bad row (XANESNET rows, or xyz rows if symbols)."""
    for k, raw in enumerate(rows):
        lineno = first_row + k
        fields = raw.split()
        text = raw.decode(errors="replace").rstrip("\r\n")
        if not fields:
            raise ValueError(
                f"{path}: line {lineno}: truncated file: blank line where atom {k} of {n} "
                f"was expected"
            )
        if symbols:
            if len(fields) < 4:
                raise ValueError(f"{path}: line {lineno}: expected element and x y z, got {text!r}")
        elif len(fields) != 4:
            raise ValueError(
                f"{path}: line {lineno}: expected 4 columns (Z x y z), got {len(fields)}: {text!r}"
            )
        _check_element(fields[0], path, lineno, k, symbols=symbols)
        for axis, field in zip("xyz", fields[1:4], strict=True):
            try:
                value = float(field)
            except ValueError:
                raise ValueError(
                    f"{path}: line {lineno}: non-numeric {axis} coordinate of atom {k}: "
                    f"{field.decode(errors='replace')!r}"
                ) from None
            if not np.isfinite(value):
                raise ValueError(
                    f"{path}: line {lineno}: non-finite (NaN or inf) {axis} coordinate of "
                    f"atom {k}: {field.decode(errors='replace')!r}"
                )
    if len(rows) < n:
        end = first_row + len(rows) - 1
        raise ValueError(
            f"{path}: line {end + 1}: truncated file: the count says {n} atoms but only "
            f"{len(rows)} atom rows follow (file ends after line {end})"
        )


def _check_element(field: bytes, path: str, lineno: int, atom: int, *, symbols: bool) -> None:
    token = field.decode(errors="replace")
    if symbols and token[:1].isalpha():
        if token not in _SYMBOL_TO_Z or _SYMBOL_TO_Z[token] < 1:
            raise ValueError(
                f"{path}: line {lineno}: unknown element symbol {token!r} (atom {atom})"
            )
        return
    try:
        z = int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            raise ValueError(
                f"{path}: line {lineno}: non-numeric atomic number of atom {atom}: {token!r}"
            ) from None
        if not value.is_integer():
            raise ValueError(
                f"{path}: line {lineno}: atomic number of atom {atom} is not an integer: {token!r}"
            ) from None
        z = int(value)
    if not 1 <= z <= _MAX_Z:
        raise ValueError(
            f"{path}: line {lineno}: unknown element: atomic number {z} of atom {atom} is "
            f"outside 1..{_MAX_Z}"
        )
