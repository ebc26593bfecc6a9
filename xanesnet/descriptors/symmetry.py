"""Symmetry-unique absorbing sites of crystals (spglib), with their multiplicities.

Symmetry-equivalent atoms of a crystal have the same environment up to a rotation, so the
same rotation-invariant descriptor and the same (orientation-averaged) spectrum: predicting one
representative per orbit and copying it to the others gives the same result as predicting
every site, at a fraction of the cost. The orbits are spglib's ``equivalent_atoms`` of the
space group found within ``symprec``; only positions, cell and atomic numbers are compared
(magnetic moments, charges and spins are not).

Structures that are not periodic in all three directions (molecules, slabs) fall back to
"every site unique": no point-group reduction is attempted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["DEFAULT_SYMPREC", "UniqueSites", "unique_sites", "unique_absorbers"]

#: Default spglib distance tolerance, Å. Tight enough that merged sites differ by far less
#: than any descriptor resolution; see the Cu figures in the report of issue 19.
DEFAULT_SYMPREC = 1e-3


@dataclass(frozen=True)
class UniqueSites:
    """Candidate absorbers of one structure grouped into symmetry orbits.

    Attributes:
        candidates (numpy.ndarray): (n_candidates,) int64 atom indices, in the order given.
        indices (numpy.ndarray): (n_unique,) int64 atom index of each orbit's representative: its
            first candidate.
        multiplicities (numpy.ndarray): (n_unique,) int64 number of candidates in each orbit; sums
            to ``n_candidates``.
        orbit (numpy.ndarray): (n_candidates,) int64 position in ``indices`` of each candidate's
            representative.
        symmetry_used (bool): False when the fallback "every site unique" was taken (not fully
            periodic, or spglib found no symmetry dataset).
        spacegroup (str or None): International symbol found by spglib (e.g. ``"Fm-3m"``), None in
            the fallback.
        symprec (float): The distance tolerance used, Å.
    """

    candidates: np.ndarray
    indices: np.ndarray
    multiplicities: np.ndarray
    orbit: np.ndarray
    symmetry_used: bool
    spacegroup: str | None
    symprec: float

    @property
    def n_unique(self) -> int:
        """Number of orbits (sites to predict)."""
        return int(self.indices.size)

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Per-orbit values ``(n_unique, ...)`` copied to every candidate: ``(n_candidates, ...)``."""
        values = np.asarray(values)
        if values.shape[:1] != (self.n_unique,):
            raise ValueError(f"expected {self.n_unique} rows (one per orbit), got {values.shape}")
        return values[self.orbit]

    def weighted_mean(self, values: np.ndarray) -> np.ndarray:
        """Multiplicity-weighted mean over orbits of ``(n_unique, ...)`` values: ``(...)``.

        Equals the plain mean of :meth:`expand` over all candidates (e.g. the average
        spectrum of all absorbing sites of a crystal).
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape[:1] != (self.n_unique,):
            raise ValueError(f"expected {self.n_unique} rows (one per orbit), got {values.shape}")
        weights = self.multiplicities / self.multiplicities.sum()
        return np.tensordot(weights, values, axes=1)


def _candidate_indices(atoms: Atoms, candidates: Sequence[int] | str | None) -> np.ndarray:
    n_atoms = len(atoms)
    if candidates is None:
        return np.arange(n_atoms, dtype=np.int64)
    if isinstance(candidates, str):
        chosen = np.flatnonzero(np.asarray(atoms.get_chemical_symbols()) == candidates)
        return chosen.astype(np.int64)
    chosen = np.asarray(candidates, dtype=np.int64).reshape(-1)
    # the formula only where a message needs it: it costs as much as the rest of this call
    label = atoms.info["id"] if "id" in atoms.info else atoms.get_chemical_formula()
    if chosen.size and (chosen.min() < -n_atoms or chosen.max() >= n_atoms):
        raise ValueError(f"{label}: candidate indices out of range for {n_atoms} atoms")
    chosen = np.where(chosen < 0, chosen + n_atoms, chosen)
    if np.unique(chosen).size != chosen.size:
        raise ValueError(f"{label}: candidate indices repeat")
    return chosen


def _orbit_labels(
    atoms: Atoms, symprec: float, angle_tolerance: float
) -> tuple[np.ndarray, str] | None:
    """spglib's ``equivalent_atoms`` (n_atoms,) and the space-group symbol, or None."""
    import spglib

    cell = (
        np.asarray(atoms.cell.array, dtype=np.float64),
        np.asarray(atoms.get_scaled_positions(wrap=True), dtype=np.float64),
        np.asarray(atoms.numbers, dtype=np.int64),
    )
    failure = getattr(spglib, "SpglibError", RuntimeError)
    with warnings.catch_warnings():
        # spglib 2.7+ warns on every call until its exception-raising error handling becomes
        # the default; both ways of failing (None, or SpglibError) are handled here.
        warnings.filterwarnings(
            "ignore", message="Set OLD_ERROR_HANDLING", category=DeprecationWarning
        )
        try:
            dataset = spglib.get_symmetry_dataset(
                cell, symprec=symprec, angle_tolerance=angle_tolerance
            )
        except failure:
            return None
    if dataset is None:
        return None
    # spglib >= 2.5 returns an object, older versions a dict.
    if isinstance(dataset, dict):
        return np.asarray(dataset["equivalent_atoms"]), str(dataset["international"])
    return np.asarray(dataset.equivalent_atoms), str(dataset.international)


def unique_sites(
    atoms: Atoms,
    candidates: Sequence[int] | str | None = None,
    *,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = -1.0,
) -> UniqueSites:
    """Group candidate absorbers of a crystal into symmetry orbits.

    Args:
        atoms (ase.Atoms): The structure; symmetry is used only when ``atoms.pbc`` is True in all
            three directions and the cell has full rank.
        candidates (sequence of int, str or None): Atom indices (negative allowed), an element
            symbol (every atom of it), or None (every atom).
        symprec (float): spglib's distance tolerance, Å.
        angle_tolerance (float): spglib's angle tolerance, degrees; -1 lets spglib choose.

    Returns:
        UniqueSites: Orbits in order of their first candidate.

    Raises:
        ValueError: Naming the structure (``atoms.info["id"]`` or its formula): candidate indices
            out of range or repeated, or a non-positive ``symprec``.
    """
    from xanesnet.io.pymatgen import as_atoms  # a pymatgen Structure/Molecule too

    atoms = as_atoms(atoms)
    if not symprec > 0:
        raise ValueError(f"symprec must be positive, got {symprec}")
    chosen = _candidate_indices(atoms, candidates)
    periodic = bool(np.all(atoms.pbc)) and abs(float(np.linalg.det(atoms.cell.array))) > 1e-9
    found = _orbit_labels(atoms, symprec, angle_tolerance) if periodic and chosen.size else None
    if found is None:
        labels = chosen
        spacegroup = None
    else:
        labels = found[0][chosen]
        spacegroup = found[1]
    # Orbits in order of first appearance among the candidates.
    _, first, orbit_of_label = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    orbit = rank[orbit_of_label].astype(np.int64)
    return UniqueSites(
        candidates=chosen,
        indices=chosen[np.sort(first)].astype(np.int64),
        multiplicities=np.bincount(orbit, minlength=order.size).astype(np.int64),
        orbit=orbit,
        symmetry_used=found is not None,
        spacegroup=spacegroup,
        symprec=float(symprec),
    )


def unique_absorbers(
    structures: Sequence[Atoms],
    candidates: Sequence[int] | str | None = None,
    *,
    symprec: float = DEFAULT_SYMPREC,
    angle_tolerance: float = -1.0,
) -> tuple[list[list[int]], list[UniqueSites]]:
    """:func:`unique_sites` of every structure, and the representatives as absorber lists.

    The lists go straight to ``WACSF.compute`` / ``XanesModel.predict`` as ``absorber``;
    ``UniqueSites.expand`` (or ``weighted_mean``) of each structure's rows then gives every
    candidate site (or the structure's average spectrum).

    Returns:
        ``(absorbers, sites)``: one list of atom indices and one :class:`UniqueSites` per
        structure.
    """
    sites = [
        unique_sites(a, candidates, symprec=symprec, angle_tolerance=angle_tolerance)
        for a in structures
    ]
    return [s.indices.tolist() for s in sites], sites
