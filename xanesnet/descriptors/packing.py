"""Packing structures into the flat arrays the descriptor kernels take, with input checks.

Every check that decides whether input is valid lives here, shared by both backends, so the
C++ and Numba paths raise the same exception types with the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PackedBatch", "pack_arrays", "pack_structures", "structure_label"]

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
    labels: Sequence[str]

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


def _absorber_list(n_atoms: int, absorber: Any, position: int, label: str) -> np.ndarray:
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
        raise ValueError(f"{label}: absorber index {int(bad[0])} out of range for {n_atoms} atoms")
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
        raise ValueError(
            f"{label}: periodic cell is singular (lattice vectors {periodic.tolist()})"
        )


def _first_structure(offsets: np.ndarray, atom: int) -> int:
    return int(np.searchsorted(offsets, atom, side="right") - 1)


def pack_structures(
    structures: Sequence[Any], absorber: int | str | Sequence[Sequence[int]] = 0
) -> PackedBatch:
    """Validate structures and pack them with their absorber sites.

    Checks run on the concatenated arrays (a few NumPy calls per batch, not per structure);
    only when one fails is the offending structure located for the message.

    Args:
        structures: sequence of ``ase.Atoms``.
        absorber: atom index, element symbol, or one index list per structure.

    Raises:
        ValueError: empty input, unknown element, non-finite coordinates or cell, singular
            periodic cell, absorber out of range or absent. Messages name the structure.
    """
    n_structures = len(structures)
    if n_structures == 0:
        raise ValueError("structures: no structures given (empty input)")
    # ase.Atoms keeps positions and numbers as arrays: read them without copies.
    positions_list = [a.arrays["positions"] for a in structures]
    numbers_list = [a.arrays["numbers"] for a in structures]
    counts = np.fromiter((len(n) for n in numbers_list), dtype=np.int64, count=n_structures)
    offsets = np.zeros(n_structures + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    pbc = np.array([a.pbc for a in structures], dtype=np.uint8).reshape(n_structures, 3)
    cells = np.array([a.cell.array for a in structures], dtype=np.float64)
    return pack_arrays(
        np.ascontiguousarray(np.concatenate(positions_list), dtype=np.float64),
        np.concatenate(numbers_list),
        offsets,
        cells.reshape(n_structures, 3, 3),
        pbc,
        absorber,
        _Labels(structures),
    )


def pack_arrays(
    positions: np.ndarray,
    numbers: np.ndarray,
    atom_offsets: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    absorber: int | str | Sequence[Sequence[int]],
    labels: Sequence[str],
) -> PackedBatch:
    """Validate structures given as flat arrays and select their absorber sites.

    The checks and messages of :func:`pack_structures` (which gathers ``ase.Atoms`` into
    these arrays and calls this), for readers that produce the arrays directly.

    Args:
        positions: (n_atoms_total, 3) float64 Å, C-contiguous.
        numbers: (n_atoms_total,) integer atomic numbers.
        atom_offsets: (n_structures + 1,) int64, starting at 0.
        cells: (n_structures, 3, 3) float64 Å (zeros for molecules).
        pbc: (n_structures, 3) uint8 periodicity flags.
        absorber: atom index, element symbol, or one index list per structure.
        labels: (n_structures,) names for messages (``"structure <id>"``); read only on
            failure.

    Raises:
        ValueError: as :func:`pack_structures`.
    """
    n_structures = len(labels)
    if n_structures == 0:
        raise ValueError("structures: no structures given (empty input)")
    per_structure = not isinstance(absorber, (str, int, np.integer))
    if per_structure and len(absorber) != n_structures:
        raise ValueError(f"absorber: got {len(absorber)} index lists for {n_structures} structures")
    offsets = atom_offsets
    counts = np.diff(offsets)
    if not counts.all():
        raise ValueError(f"{labels[int(np.argmin(counts))]}: structure has no atoms")
    bad = np.nonzero((numbers < 1) | (numbers > 118))[0]
    if bad.size:
        s = _first_structure(offsets, int(bad[0]))
        raise ValueError(
            f"{labels[s]}: unknown element (atomic number {int(numbers[bad[0]])}) "
            f"at atom {int(bad[0] - offsets[s])}"
        )
    nonfinite = np.nonzero(~np.isfinite(positions).all(axis=1))[0]
    if nonfinite.size:
        s = _first_structure(offsets, int(nonfinite[0]))
        raise ValueError(
            f"{labels[s]}: non-finite (NaN or inf) coordinates at atom {int(nonfinite[0] - offsets[s])}"
        )
    for s in np.nonzero(pbc.any(axis=1) | ~np.isfinite(cells).all(axis=(1, 2)))[0]:
        _check_cell(cells[s], pbc[s], labels[int(s)])

    if per_structure:
        sites = [
            _absorber_list(int(counts[s]), absorber, s, labels[s]) for s in range(n_structures)
        ]
        site_atoms = np.concatenate(sites)
        site_structures = np.repeat(
            np.arange(n_structures, dtype=np.int64), [len(x) for x in sites]
        )
    elif isinstance(absorber, str):
        from ase.data import atomic_numbers

        if absorber not in atomic_numbers:
            raise ValueError(f"absorber: unknown element symbol {absorber!r}")
        hits = np.nonzero(numbers == atomic_numbers[absorber])[0]
        site_structures = np.searchsorted(offsets, hits, side="right").astype(np.int64) - 1
        per_count = np.bincount(site_structures, minlength=n_structures)
        if not per_count.all():
            raise ValueError(
                f"{labels[int(np.argmin(per_count))]}: absorber element {absorber} is absent"
            )
        site_atoms = hits - offsets[site_structures]
    else:
        index = int(absorber)
        bad_structures = np.nonzero((index < 0) | (index >= counts))[0]
        if bad_structures.size:
            s = int(bad_structures[0])
            raise ValueError(
                f"{labels[s]}: absorber index {index} out of range for {int(counts[s])} atoms"
            )
        site_atoms = np.full(n_structures, index, dtype=np.int64)
        site_structures = np.arange(n_structures, dtype=np.int64)
    return PackedBatch(
        positions=positions,
        numbers=numbers.astype(np.int32),
        atom_offsets=offsets,
        cells=np.ascontiguousarray(cells),
        pbc=np.ascontiguousarray(pbc),
        site_structures=np.ascontiguousarray(site_structures, dtype=np.int64),
        site_atoms=np.ascontiguousarray(site_atoms, dtype=np.int64),
        labels=labels,
    )


class _Labels(Sequence[str]):
    """Structure labels computed on demand (only error messages need them)."""

    def __init__(self, structures: Sequence[Any]) -> None:
        self._structures = structures

    def __len__(self) -> int:
        return len(self._structures)

    def __getitem__(self, s: Any) -> Any:
        if isinstance(s, slice):
            return [structure_label(self._structures[i], i) for i in range(len(self))[s]]
        return structure_label(self._structures[s], int(s))
