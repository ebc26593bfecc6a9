"""A fast reader for the plain form of extended XYZ: ``Properties=species:S:1:pos:R:3``, an
optional ``Lattice``/``pbc`` and scalar info keys. Anything else (extra per-atom columns,
calculator results such as energy or forces) is left to ``ase.io``, which this reader matches
exactly on the files it accepts (tested)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

__all__ = ["NotPlain", "iter_plain_extxyz", "iter_plain_frames"]

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
            info = key_val_str_to_dict(line)
            if info.get("Properties") != _PROPERTIES or _NOT_INFO & set(info):
                return None
            lattice = info.pop("Lattice", None)
            pbc = info.pop("pbc", None)
            info.pop("Properties")
            if lattice is not None:
                cell = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
                pbc = np.array([True] * 3) if pbc is None else np.asarray(pbc, dtype=bool)
            else:
                cell = np.zeros((3, 3))
                pbc = np.array([False] * 3) if pbc is None else np.asarray(pbc, dtype=bool)
            entry = (cell, pbc, info)
            if len(parsed) < 1024:
                parsed[line] = entry
        return entry

    frame = 0
    with open(path) as handle:
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
            if entry is None:
                raise NotPlain(frame)
            cell, pbc, info = entry
            rows = list(islice(handle, n))
            tokens = " ".join(rows).split()
            if len(rows) != n or len(tokens) != 4 * n:
                raise NotPlain(frame)
            table = np.array(tokens, dtype=object).reshape(n, 4)
            try:
                numbers = np.array([atomic_numbers[s] for s in table[:, 0]], dtype=np.int64)
                positions = table[:, 1:].astype(np.float64)
            except (KeyError, ValueError):
                raise NotPlain(frame) from None
            yield numbers, positions, cell, pbc, info
            frame += 1
