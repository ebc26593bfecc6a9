"""Spectrum files: XANESNET's processed format (read and write) and raw FDMNES output.

Processed files hold 2 header lines, then ``energy mu`` rows (energies printed with 2
decimals); raw FDMNES files start with the edge energy E0 on line 1. Errors name the file and,
where there is one, the 1-based line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = [
    "read_processed_spectrum",
    "read_fdmnes_spectrum",
    "format_processed_spectrum",
    "write_processed_spectrum",
]


def _read_lines(path: str | Path) -> tuple[Path, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such spectrum file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"{path}: empty file")
    return path, lines


def _parse_rows(
    path: Path, lines: list[str], first: int, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``energy mu`` rows from ``lines[first:]`` (blank lines ignored).

    Returns ``(energies, mu)`` as float64 arrays; errors name the file and the 1-based line.
    """
    numbers: list[tuple[int, str, str]] = []
    for index in range(first, len(lines)):
        fields = lines[index].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(
                f"{path}, line {index + 1}: expected 'energy mu', got {lines[index]!r}"
            )
        numbers.append((index + 1, fields[0], fields[1]))
    if len(numbers) < min_rows:
        raise ValueError(
            f"{path}: too few rows ({len(numbers)} 'energy mu' rows, at least {min_rows} needed)"
        )
    data = np.empty((len(numbers), 2))
    for k, (lineno, e_text, mu_text) in enumerate(numbers):
        try:
            data[k, 0] = float(e_text)
            data[k, 1] = float(mu_text)
        except ValueError:
            raise ValueError(
                f"{path}, line {lineno}: non-numeric value in {lines[lineno - 1].strip()!r}"
            ) from None
    if not np.all(np.isfinite(data)):
        k = int(np.argmax(~np.all(np.isfinite(data), axis=1)))
        raise ValueError(f"{path}, line {numbers[k][0]}: non-finite value")
    steps = np.diff(data[:, 0])
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"{path}, line {numbers[k][0]}: energies not strictly increasing "
            f"({data[k - 1, 0]} then {data[k, 0]})"
        )
    return data[:, 0], data[:, 1]


def read_processed_spectrum(path: str | Path, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Read a processed spectrum (2 header lines, then ``energy mu`` rows).

    Returns ``(energies, mu)``, each shape ``(n,)`` float64, energies in eV exactly as printed
    (2 decimals; see :func:`snap_to_grid` to recover the exact grid).

    Raises ``FileNotFoundError``, or ``ValueError`` naming the file (and line) for an empty
    file, non-numeric values, fewer than ``min_rows`` rows or non-increasing energies.
    """
    path, lines = _read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: missing the 2 header lines")
    return _parse_rows(path, lines, 2, min_rows)


def read_fdmnes_spectrum(
    path: str | Path, min_rows: int = 2
) -> tuple[float, np.ndarray, np.ndarray]:
    """Read raw FDMNES output: line 1 starts with E0, line 2 is a header, then ``energy mu``.

    Returns ``(e0, energies, mu)``: E0 in eV and arrays of shape ``(n,)`` (absolute eV, μ).
    Extra columns after the first two are ignored. Errors as :func:`read_processed_spectrum`.
    """
    path, lines = _read_lines(path)
    first = lines[0].split()
    try:
        e0 = float(first[0])
    except (ValueError, IndexError):
        raise ValueError(
            f"{path}, line 1: expected the edge energy first, got {lines[0][:60]!r}"
        ) from None
    if not math.isfinite(e0):
        raise ValueError(f"{path}, line 1: non-finite edge energy")
    if len(lines) < 2:
        raise ValueError(f"{path}: too few rows (no header line 2, no data)")
    energies, mu = _parse_rows(path, lines, 2, min_rows)
    return e0, energies, mu


def format_processed_spectrum(energies: np.ndarray, mu: np.ndarray) -> str:
    """Text of a processed spectrum file (see :func:`write_processed_spectrum`)."""
    energies = np.asarray(energies, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if energies.ndim != 1 or mu.shape != energies.shape:
        raise ValueError(f"energies {energies.shape} and mu {mu.shape} must be equal 1-D shapes")
    rows = [f"{e:10.2f}{m:15.7E}" for e, m in zip(energies.tolist(), mu.tolist())]
    return "\n".join(["    FDMNES", "    energy     <xanes>", *rows]) + "\n"


def write_processed_spectrum(path: str | Path, energies: np.ndarray, mu: np.ndarray) -> None:
    """Write ``energies`` (eV, shape ``(n,)``) and ``mu`` (shape ``(n,)``) in XANESNET's format.

    Layout (byte-compatible with the published files): ``    FDMNES``, ``    energy     <xanes>``,
    then one row per point: energy as ``%10.2f`` and μ as ``%15.7E``.
    """
    Path(path).write_text(format_processed_spectrum(energies, mu))
