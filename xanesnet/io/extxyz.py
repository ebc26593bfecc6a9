"""A fast reader for the plain form of extended XYZ: ``Properties=species:S:1:pos:R:3`` (or no
``Properties`` key at all, as in standard XYZ files), an optional ``Lattice``/``pbc`` and scalar
info keys. Anything else (extra per-atom columns,
calculator results such as energy or forces) is left to ``ase.io``, which this reader matches
exactly on the files it accepts (tested)."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import all_properties
from ase.data import atomic_numbers

from xanesnet.io.fast_path import numba_kernels, use_compiled

__all__ = [
    "NotPlain",
    "iter_plain_extxyz",
    "iter_plain_frames",
    "special_words",
    "symbol_codes",
]

_PROPERTIES = "species:S:1:pos:R:3"
# keys that ase.io turns into calculator results or per-structure arrays, not atoms.info
_NOT_INFO = {
    "energy",
    "free_energy",
    "stress",
    "virial",
    "forces",
    "magmom",
    "magmoms",
    "dipole",
    "charges",
    "energies",
    "stresses",
    "calculator",
    *all_properties,
}


class NotPlain(Exception):
    """Frame ``frame`` is not in the plain form: read it (and the rest) with ase.io."""

    def __init__(self, frame: int) -> None:
        super().__init__(frame)
        self.frame = frame


def iter_plain_extxyz(path: str) -> Iterator[Atoms]:
    """Frames of an extended XYZ file in the plain form, streamed frame by frame; raises
    :class:`NotPlain` at the first frame that is not (nothing of that frame has been yielded)."""
    for numbers, positions, cell, pbc, info in iter_plain_frames(path):
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
        if info:
            atoms.info.update(copy.deepcopy(info))
        yield atoms


#: Bytes per frame assumed when a file's size stands for its frame count in the rule of
#: :func:`xanesnet.io.fast_path.use_compiled` (so files from 4 MiB take the Numba row kernel).
BYTES_PER_FRAME = 512


def _parse_rows(rows: list[str], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(numbers (n,) int64, positions (n, 3) float64) of ``Sym x y z`` rows, as ase.io reads
    them (whitespace-separated, 4 n fields); None if they are not in that form."""
    tokens = " ".join(rows).split()
    if len(tokens) != 4 * n:
        return None
    table = np.array(tokens, dtype=object).reshape(n, 4)
    try:
        numbers = np.array([atomic_numbers[s] for s in table[:, 0]], dtype=np.int64)
        positions = table[:, 1:].astype(np.float64)
    except (KeyError, ValueError):
        return None
    return numbers, positions


@functools.cache
def special_words() -> np.ndarray:
    """(n_words, 24) uint8: lowercase comment words that ase.io gives a meaning (cell,
    periodicity, properties, calculator results), zero-padded (read-only)."""
    words = sorted({"pbc", "lattice", "properties"} | {w.lower() for w in _NOT_INFO})
    table = np.zeros((len(words), 24), dtype=np.uint8)
    for i, word in enumerate(words):
        table[i, : len(word)] = np.frombuffer(word.encode("ascii"), dtype=np.uint8)
    table.flags.writeable = False
    return table


@functools.cache
def symbol_codes() -> np.ndarray:
    """(65536,) int64 lookup of :func:`xanesnet.io._kernels.scan_symbol_rows` (read-only)."""
    codes = np.full(1 << 16, -1, dtype=np.int64)
    for symbol, z in atomic_numbers.items():
        raw = symbol.encode("ascii")
        codes[raw[0] << 8 | (raw[1] if len(raw) == 2 else 0)] = z
    codes.flags.writeable = False
    return codes


def _row_kernel(path: str) -> Any:
    """A parser of one frame's rows through the Numba kernel (None: use :func:`_parse_rows`
    alone), where :func:`~xanesnet.io.fast_path.use_compiled` says so for the file's size. It returns None for rows it
    does not take, which :func:`_parse_rows` then reads (same values where both accept)."""
    try:
        frames = os.path.getsize(path) // BYTES_PER_FRAME
    except OSError:
        frames = 0
    kernel = numba_kernels() if use_compiled(frames) else None
    if kernel is None:  # small file, or Numba unavailable: the Python parser alone
        return None
    codes = symbol_codes()
    scan = kernel.scan_symbol_rows

    def parse(rows: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            data = "".join(rows).encode("ascii")
        except UnicodeEncodeError:
            return None
        ok, numbers, positions = scan(np.frombuffer(data, dtype=np.uint8), len(rows), codes)
        return (numbers, positions) if ok else None

    return parse


def iter_plain_frames(
    path: str,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]]:
    """The frames of :func:`iter_plain_extxyz` as raw values, without ``ase.Atoms``:
    (numbers (n,) int64, positions (n, 3) float64 Å, cell (3, 3) float64 Å, pbc (3,) bool,
    other info). ``cell``, ``pbc`` and ``info`` are shared between frames with the same comment
    line: copy before changing them."""
    from ase.io.extxyz import key_val_str_to_dict

    # Files written in one go repeat the same comment line (e.g. the Properties and pbc of
    # molecules): parse each distinct line once into (cell, pbc, other info).
    parsed: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {}

    def comment_info(line: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
        entry = parsed.get(line)
        if entry is None:
            stripped = line.strip()  # as ase.io: an empty comment gives no info
            info = key_val_str_to_dict(stripped) if stripped else {}
            # no Properties key (standard xyz): ase.io assumes species and positions
            if info.get("Properties", _PROPERTIES) != _PROPERTIES or _NOT_INFO & set(info):
                return None
            lattice = info.pop("Lattice", None)
            pbc = info.pop("pbc", None)
            info.pop("Properties", None)
            if lattice is not None:
                lattice = np.asarray(lattice, dtype=np.float64)
                if lattice.shape != (3, 3):  # malformed: ase.io reports it
                    return None
                # as ase.io: the parsed Lattice holds the lattice vectors as columns
                cell = np.ascontiguousarray(lattice.T)
                pbc = np.array([True] * 3) if pbc is None else np.asarray(pbc, dtype=bool)
            else:
                cell = np.zeros((3, 3))
                pbc = np.array([False] * 3) if pbc is None else np.asarray(pbc, dtype=bool)
            entry = (cell, pbc, info)
            if len(parsed) < 1024:
                parsed[line] = entry
        return entry

    kernel = _row_kernel(path)
    most_rows = os.path.getsize(path)  # a count above the file's bytes is absurd
    frame = 0
    with open(path, encoding="utf-8") as handle:
        while True:
            count = handle.readline()
            if not count:
                return
            if not count.strip():
                if all(not line.strip() for line in handle):
                    return
                raise NotPlain(frame)
            try:
                n = int(count)
                entry = comment_info(handle.readline())
            except (ValueError, KeyError):
                raise NotPlain(frame) from None
            if entry is None or not 0 <= n <= most_rows:  # ase.io's reader names the line
                raise NotPlain(frame)
            cell, pbc, info = entry
            rows = list(islice(handle, n))
            if len(rows) != n:
                raise NotPlain(frame)
            parsed_rows = kernel(rows) if kernel is not None else None
            if parsed_rows is None:
                parsed_rows = _parse_rows(rows, n)
                if parsed_rows is None:
                    raise NotPlain(frame)
            yield parsed_rows[0], parsed_rows[1], cell, pbc, info
            frame += 1
