"""Neighbour lists from the compiled cell-list search.

The result is the same as ``ase.neighborlist.neighbor_list("ijdDS", atoms, cutoff)`` (as a set
of pairs; the order within a centre may differ), computed in C++ with OpenMP threads. The work is
bounded before anything is allocated, by the limits of :mod:`xanesnet.descriptors.limits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xanesnet import _core
from xanesnet.descriptors.limits import MAX_LENGTH, densest_neighbours, max_images

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["neighbour_list"]


def neighbour_list(
    atoms: Atoms,
    cutoff: float,
    *,
    centres: Sequence[int] | np.ndarray | None = None,
    n_threads: int = 0,
    max_neighbours: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of atoms closer than ``cutoff``, periodic images included.

    Args:
        atoms: The structure: ``atoms.positions`` (Å, used as given, not wrapped into the cell),
            ``atoms.cell`` (rows are lattice vectors; rows of non-periodic axes may be zero) and
            ``atoms.pbc``.
        cutoff: Radius in Å; pairs with ``0 < d < cutoff`` are returned (an atom is its own
            neighbour through a periodic image when the cutoff exceeds the cell).
        centres: Indices of the centre atoms ``i`` to list neighbours of (default: every atom); the
            result is grouped by centre in this order.
        n_threads: Threads for the search; 0 uses all available (or ``OMP_NUM_THREADS``).
        max_neighbours: Most neighbours accepted per centre (default: what matter can hold within
            the cutoff, :func:`xanesnet.descriptors.limits.densest_neighbours`); found before the
            result is allocated.

    Returns:
        i, j: ``(n_pairs,)`` int64 indices of the centre and of its neighbour.
        d: ``(n_pairs,)`` float64 distances, Å.
        D: ``(n_pairs, 3)`` float64 vectors ``r_j + S @ cell - r_i``, Å.
        S: ``(n_pairs, 3)`` int32 integer cell shifts of the neighbour's image (zero along
            non-periodic axes).

    Raises:
        ValueError: For a cutoff that is not positive and finite, singular periodic lattice vectors,
            non-finite positions, centre indices out of range, and beyond the limits: a centre
            with more than ``max_neighbours`` neighbours, a cell too small or skewed for the cutoff
            (too many periodic images), coordinates or lattice vectors beyond 1e6 Å.
    """
    positions = np.ascontiguousarray(atoms.get_positions(), dtype=np.float64)
    cell = np.ascontiguousarray(np.asarray(atoms.get_cell()), dtype=np.float64)
    pbc = np.ascontiguousarray(atoms.get_pbc(), dtype=bool)
    centre_array = None
    if centres is not None:
        centre_array = np.ascontiguousarray(centres, dtype=np.int64).reshape(-1)
    cutoff = float(cutoff)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError("cutoff must be positive and finite")
    limit = densest_neighbours(cutoff) if max_neighbours is None else int(max_neighbours)
    return _core.neighbour_list(
        positions,
        cell,
        pbc,
        cutoff,
        centre_array,
        int(n_threads),
        max_neighbours=limit,
        max_images=max_images(cutoff),
        max_length=MAX_LENGTH,
    )
