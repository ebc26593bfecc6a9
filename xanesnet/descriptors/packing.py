"""Packing structures into the flat arrays the descriptor kernels take, with input checks.

Every check that decides whether input is valid lives here, shared by both backends, so the
C++ and Numba paths raise the same exception types with the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xanesnet.frames import MAX_ATOMIC_NUMBER

__all__ = [
    "PackedBatch",
    "StructureChecks",
    "StructureLabels",
    "check_structures",
    "id_labels",
    "pack_arrays",
    "pack_structures",
    "structure_label",
]


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
    # Lattice vectors of the periodic axes must be independent (Gram determinant > 0), judged
    # on the vectors scaled to a largest entry of 1 (no overflow for cells of 1e300 Å).
    unit = periodic / max(float(np.max(np.abs(periodic))), 1e-300)
    if not np.linalg.det(unit @ unit.T) > 1e-12:
        raise ValueError(
            f"{label}: periodic cell is singular (lattice vectors {periodic.tolist()})"
        )


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
        StructureLabels(n_structures, lambda s: structure_label(structures[s], s)),
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
    these arrays and calls this), for readers that produce the arrays directly. The error
    raised is that of the first check (in the order of :class:`StructureChecks`' codes) that
    any structure fails, for the first such structure.

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
    checks = check_structures(positions, numbers, atom_offsets, cells, pbc, absorber, labels)
    if checks.reasons:
        first = min(checks.reasons, key=lambda s: (int(checks.status[s]), s))
        raise ValueError(checks.reasons[first])
    return PackedBatch(
        positions=positions,
        numbers=numbers.astype(np.int32),
        atom_offsets=atom_offsets,
        cells=np.ascontiguousarray(cells),
        pbc=np.ascontiguousarray(pbc),
        site_structures=checks.site_structures,
        site_atoms=checks.site_atoms,
        labels=labels,
    )


@dataclass(frozen=True)
class StructureChecks:
    """Per-structure result of the input checks, as the kernels report a status per site.

    Attributes:
        status: (n_structures,) int8: :data:`OK`, or the first check the structure fails:
            :data:`NO_ATOMS`, :data:`UNKNOWN_ELEMENT`, :data:`NON_FINITE`, :data:`BAD_CELL`,
            :data:`BAD_ABSORBER` (the order in which the checks run).
        reasons: structure index -> message (naming the structure) for every failed one.
        site_structures: (n_sites,) int64 structure of each absorber site of the valid
            structures, in order.
        site_atoms: (n_sites,) int64 atom index of each site within its structure.
    """

    status: np.ndarray
    reasons: dict[int, str]
    site_structures: np.ndarray
    site_atoms: np.ndarray


OK, NO_ATOMS, UNKNOWN_ELEMENT, NON_FINITE, BAD_CELL, BAD_ABSORBER = range(6)


def _first_per_structure(offsets: np.ndarray, atoms: np.ndarray) -> list[tuple[int, int]]:
    """(structure, first of ``atoms`` in it) for each structure holding any of ``atoms``."""
    owners = np.searchsorted(offsets, atoms, side="right") - 1
    structures, first = np.unique(owners, return_index=True)
    return list(zip(structures.tolist(), atoms[first].tolist(), strict=True))


def check_structures(
    positions: np.ndarray,
    numbers: np.ndarray,
    atom_offsets: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    absorber: int | str | Sequence[Sequence[int]],
    labels: Sequence[str],
) -> StructureChecks:
    """Check every structure of flat arrays and select the absorber sites of the valid ones.

    Checks run on the concatenated arrays (a few NumPy calls per batch); a structure that
    fails is reported in the result, not raised, so the others go on.

    Args:
        positions, numbers, atom_offsets, cells, pbc, absorber, labels: as
            :func:`pack_arrays`.

    Raises:
        ValueError: for the batch as a whole: no structures, or per-structure absorber lists
            of another length than the structures.
    """
    n_structures = len(labels)
    if n_structures == 0:
        raise ValueError("structures: no structures given (empty input)")
    per_structure = not isinstance(absorber, (str, int, np.integer))
    if per_structure and len(absorber) != n_structures:
        raise ValueError(f"absorber: got {len(absorber)} index lists for {n_structures} structures")
    offsets = atom_offsets
    counts = np.diff(offsets)
    status = np.zeros(n_structures, dtype=np.int8)
    reasons: dict[int, str] = {}

    def fail(s: int, code: int, message: str) -> None:
        if not status[s]:
            status[s] = code
            reasons[s] = message

    for s in np.nonzero(counts == 0)[0].tolist():
        fail(s, NO_ATOMS, f"{labels[s]}: structure has no atoms")
    bad = np.nonzero((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER))[0]
    for s, atom in _first_per_structure(offsets, bad):
        fail(
            s,
            UNKNOWN_ELEMENT,
            f"{labels[s]}: unknown element (atomic number {int(numbers[atom])}) "
            f"at atom {atom - int(offsets[s])}",
        )
    # one reduction over the whole array first: per-atom .all(axis=1) over a 3-wide axis is
    # slow, and almost every batch is all finite
    finite = bool(np.isfinite(positions).all())
    nonfinite = (
        np.zeros(0, np.int64) if finite else np.nonzero(~np.isfinite(positions).all(axis=1))[0]
    )
    for s, atom in _first_per_structure(offsets, nonfinite):
        fail(
            s,
            NON_FINITE,
            f"{labels[s]}: non-finite (NaN or inf) coordinates at atom {atom - int(offsets[s])}",
        )
    if pbc.any() or not np.isfinite(cells).all():
        to_check = np.nonzero(pbc.any(axis=1) | ~np.isfinite(cells).all(axis=(1, 2)))[0].tolist()
    else:
        to_check = []
    for s in to_check:
        try:
            _check_cell(cells[s], pbc[s], labels[s])
        except ValueError as exc:
            fail(s, BAD_CELL, str(exc))
        except (ArithmeticError, np.linalg.LinAlgError) as exc:  # this cell only
            fail(s, BAD_CELL, f"{labels[s]}: cannot check the cell: {type(exc).__name__}: {exc}")

    if per_structure:
        sites = []
        for s in range(n_structures):
            if status[s]:
                continue
            try:
                sites.append((s, _absorber_list(int(counts[s]), absorber, s, labels[s])))
            except ValueError as exc:
                fail(s, BAD_ABSORBER, str(exc))
        sites = [(s, atoms) for s, atoms in sites if not status[s]]
        site_atoms = np.concatenate([atoms for _, atoms in sites]) if sites else np.zeros(0)
        site_structures = np.repeat(
            np.array([s for s, _ in sites], dtype=np.int64), [len(a) for _, a in sites]
        )
    elif isinstance(absorber, str):
        from ase.data import atomic_numbers

        if absorber not in atomic_numbers:
            for s in range(n_structures):
                fail(s, BAD_ABSORBER, f"absorber: unknown element symbol {absorber!r}")
            hits = np.zeros(0, dtype=np.int64)
        else:
            hits = np.nonzero(numbers == atomic_numbers[absorber])[0]
        site_structures = np.searchsorted(offsets, hits, side="right").astype(np.int64) - 1
        per_count = np.bincount(site_structures, minlength=n_structures)
        for s in np.nonzero(per_count == 0)[0].tolist():
            fail(s, BAD_ABSORBER, f"{labels[s]}: absorber element {absorber} is absent")
        site_atoms = hits - offsets[site_structures]
    else:
        index = int(absorber)
        for s in np.nonzero((index < 0) | (index >= counts))[0].tolist():
            fail(
                s,
                BAD_ABSORBER,
                f"{labels[s]}: absorber index {index} out of range for {int(counts[s])} atoms",
            )
        site_atoms = np.full(n_structures, index, dtype=np.int64)
        site_structures = np.arange(n_structures, dtype=np.int64)
    if reasons:
        keep = status[site_structures] == OK
        site_structures, site_atoms = site_structures[keep], site_atoms[keep]
    return StructureChecks(
        status=status,
        reasons=reasons,
        site_structures=np.ascontiguousarray(site_structures, dtype=np.int64),
        site_atoms=np.ascontiguousarray(site_atoms, dtype=np.int64),
    )


class StructureLabels(Sequence[str]):
    """Structure names for messages, made on demand (only error messages need them).

    Args:
        n: number of structures.
        label: structure index -> its name.
    """

    def __init__(self, n: int, label: Callable[[int], str]) -> None:
        self._n = n
        self._label = label

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, s: Any) -> Any:
        if isinstance(s, slice):
            return [self._label(i) for i in range(self._n)[s]]
        return self._label(int(s))


def id_labels(ids: Sequence[str]) -> StructureLabels:
    """``"structure <id>"`` of each of ``ids``."""
    return StructureLabels(len(ids), lambda s: f"structure {ids[s]}")
