"""Packing structures into the flat arrays the descriptor kernels take, with input checks.

Every check that decides whether input is valid lives here, shared by both backends, so the
C++ and Numba paths raise the same exception types with the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PackedBatch", "pack_structures", "structure_label"]

#: Atoms closer than this (Å) within a site's cutoff sphere make the structure invalid.
MIN_DISTANCE = 0.1


@dataclass(frozen=True)
class PackedBatch:
    """Structures packed end to end (the layout both backends take).

    Attributes:
        positions: (n_atoms_total, 3) float64, Å.
        numbers: (n_atoms_total,) int32 atomic numbers.
        atom_offsets: (n_structures + 1,) int64; structure s owns atoms
            ``atom_offsets[s]:atom_offsets[s + 1]``.
        cells: (n_structures, 3, 3) float64, rows are lattice vectors, Å.
        pbc: (n_structures, 3) uint8 periodicity flags.
        site_structures: (n_sites,) int64 structure of each site.
        site_atoms: (n_sites,) int64 atom index of each site within its structure.
        labels: (n_structures,) names used in error messages.
    """

    positions: np.ndarray
    numbers: np.ndarray
    atom_offsets: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    site_structures: np.ndarray
    site_atoms: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_structures(self) -> int:
        return len(self.labels)

    @property
    def n_sites(self) -> int:
        return int(self.site_atoms.shape[0])


def structure_label(atoms: Any, position: int) -> str:
    """Name of a structure for messages: its id/source in ``atoms.info``, else its position."""
    info = getattr(atoms, "info", {}) or {}
    for key in ("id", "name", "source"):
        if key in info:
            return f"structure {info[key]!s}"
    return f"structure #{position}"


def _absorber_indices(
    atoms: Any, numbers: np.ndarray, absorber: Any, position: int, label: str
) -> np.ndarray:
    n_atoms = numbers.shape[0]
    if isinstance(absorber, str):
        from ase.data import atomic_numbers

        if absorber not in atomic_numbers:
            raise ValueError(f"absorber: unknown element symbol {absorber!r}")
        found = np.nonzero(numbers == atomic_numbers[absorber])[0]
        if found.size == 0:
            raise ValueError(f"{label}: absorber element {absorber} is absent")
        return found.astype(np.int64)
    if isinstance(absorber, (int, np.integer)):
        indices = np.array([int(absorber)], dtype=np.int64)
    else:
        try:
            indices = np.asarray(absorber[position], dtype=np.int64).reshape(-1)
        except (IndexError, TypeError, ValueError) as exc:
            raise ValueError(
                f"absorber: expected an index, an element symbol or one index list per "
                f"structure; no valid entry for {label}"
            ) from exc
    if indices.size == 0:
        raise ValueError(f"{label}: absorber list is empty")
    bad = indices[(indices < 0) | (indices >= n_atoms)]
    if bad.size:
        raise ValueError(
            f"{label}: absorber index {int(bad[0])} out of range for {n_atoms} atoms"
        )
    return indices


def _check_cell(cell: np.ndarray, pbc: np.ndarray, label: str) -> None:
    if not np.all(np.isfinite(cell)):
        raise ValueError(f"{label}: cell contains NaN or inf")
    if not pbc.any():
        return
    periodic = cell[pbc.astype(bool)]
    # Lattice vectors of the periodic axes must be independent (Gram determinant > 0).
    gram = periodic @ periodic.T
    scale = max(float(np.max(np.abs(periodic))), 1e-300) ** (2 * periodic.shape[0])
    if not np.linalg.det(gram) > 1e-12 * scale:
        raise ValueError(f"{label}: periodic cell is singular (lattice vectors {periodic.tolist()})")
    if pbc.sum() == 3 and abs(np.linalg.det(cell)) < 1e-6:
        raise ValueError(f"{label}: periodic cell is singular (volume {np.linalg.det(cell):.3g} Å³)")


def pack_structures(
    structures: Sequence[Any], absorber: int | str | Sequence[Sequence[int]] = 0
) -> PackedBatch:
    """Validate structures and pack them with their absorber sites.

    Args:
        structures: sequence of ``ase.Atoms``.
        absorber: atom index, element symbol, or one index list per structure.

    Raises:
        ValueError: empty input, unknown element, non-finite coordinates or cell, singular
            periodic cell, absorber out of range or absent. Messages name the structure.
    """
    if len(structures) == 0:
        raise ValueError("structures: no structures given (empty input)")
    if not isinstance(absorber, (str, int, np.integer)) and len(absorber) != len(structures):
        raise ValueError(
            f"absorber: got {len(absorber)} index lists for {len(structures)} structures"
        )
    positions, numbers, cells, pbcs, labels = [], [], [], [], []
    site_structures, site_atoms = [], []
    offsets = [0]
    for s, atoms in enumerate(structures):
        label = structure_label(atoms, s)
        pos = np.asarray(atoms.get_positions(), dtype=np.float64)
        num = np.asarray(atoms.get_atomic_numbers())
        if num.size == 0:
            raise ValueError(f"{label}: structure has no atoms")
        bad = np.nonzero((num < 1) | (num > 118))[0]
        if bad.size:
            raise ValueError(f"{label}: unknown element (atomic number {int(num[bad[0]])}) at atom {int(bad[0])}")
        nonfinite = np.nonzero(~np.all(np.isfinite(pos), axis=1))[0]
        if nonfinite.size:
            raise ValueError(f"{label}: non-finite (NaN or inf) coordinates at atom {int(nonfinite[0])}")
        cell = np.asarray(atoms.get_cell(), dtype=np.float64).reshape(3, 3)
        pbc = np.asarray(atoms.get_pbc(), dtype=bool).reshape(3)
        _check_cell(cell, pbc, label)
        sites = _absorber_indices(atoms, num, absorber, s, label)
        positions.append(pos)
        numbers.append(num.astype(np.int32))
        cells.append(cell)
        pbcs.append(pbc)
        labels.append(label)
        offsets.append(offsets[-1] + pos.shape[0])
        site_structures.append(np.full(sites.shape[0], s, dtype=np.int64))
        site_atoms.append(sites)
    return PackedBatch(
        positions=np.ascontiguousarray(np.concatenate(positions)),
        numbers=np.ascontiguousarray(np.concatenate(numbers)),
        atom_offsets=np.asarray(offsets, dtype=np.int64),
        cells=np.ascontiguousarray(np.stack(cells)),
        pbc=np.ascontiguousarray(np.stack(pbcs).astype(np.uint8)),
        site_structures=np.concatenate(site_structures),
        site_atoms=np.concatenate(site_atoms),
        labels=tuple(labels),
    )
