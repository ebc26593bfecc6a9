"""The one frame type of the pipeline: many structures as packed arrays.

Readers (:mod:`xanesnet.io`) produce :class:`Frames`; site selection and descriptors
(:mod:`xanesnet.descriptors.sites`) take them as they are, without ``ase.Atoms`` in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["MAX_ATOMIC_NUMBER", "Frames"]

#: Largest atomic number of a known element (oganesson); 1..MAX_ATOMIC_NUMBER are valid.
MAX_ATOMIC_NUMBER = 118


@dataclass(frozen=True)
class Frames:
    """Structures packed end to end.

    Attributes:
        positions: (n_atoms_total, 3) float64 Å, C-contiguous.
        numbers: (n_atoms_total,) int32 atomic numbers.
        offsets: (n_structures + 1,) int64, from 0; structure s owns atoms
            ``offsets[s]:offsets[s + 1]``.
        cells: (n_structures, 3, 3) float64 Å, rows are lattice vectors (zeros for molecules).
        pbc: (n_structures, 3) uint8 periodicity flags.
        ids: (n_structures,) structure ids (``atoms.info["id"]`` of the reader).
        info: (n_structures,) each structure's metadata (``atoms.info``: comment-line keys,
            database key-value pairs such as charge and spin), or None where a reader kept
            none. Read only: entries may be shared between structures.
    """

    positions: np.ndarray
    numbers: np.ndarray
    offsets: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    ids: list[str]
    info: Sequence[dict[str, Any] | None]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def counts(self) -> np.ndarray:
        """(n_structures,) int64 atoms per structure."""
        return np.diff(self.offsets)

    @classmethod
    def empty(cls) -> Frames:
        """No structures."""
        return cls(
            positions=np.zeros((0, 3)),
            numbers=np.zeros(0, dtype=np.int32),
            offsets=np.zeros(1, dtype=np.int64),
            cells=np.zeros((0, 3, 3)),
            pbc=np.zeros((0, 3), dtype=np.uint8),
            ids=[],
            info=[],
        )

    @classmethod
    def from_atoms(cls, structures: Sequence[Atoms]) -> Frames:
        """Pack ``ase.Atoms`` (ids from ``info["id"]``, "" where absent; ``info`` kept)."""
        n = len(structures)
        if n == 0:
            return cls.empty()
        counts = np.fromiter((len(a) for a in structures), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(
            positions=np.ascontiguousarray(
                np.concatenate([a.arrays["positions"] for a in structures]), dtype=np.float64
            ),
            numbers=np.concatenate([a.arrays["numbers"] for a in structures]).astype(np.int32),
            offsets=offsets,
            cells=np.array([a.cell.array for a in structures], dtype=np.float64).reshape(n, 3, 3),
            pbc=np.array([a.pbc for a in structures], dtype=np.uint8).reshape(n, 3),
            ids=[str(a.info.get("id", "")) for a in structures],
            info=[a.info for a in structures],
        )

    def to_atoms(self) -> list[Atoms]:
        """The structures as ``ase.Atoms`` (numbers, positions, cell, pbc; ``info`` is the
        structure's metadata with its ``"id"``)."""
        from ase import Atoms

        offsets = self.offsets.tolist()
        out = []
        for s, structure_id in enumerate(self.ids):
            a, b = offsets[s], offsets[s + 1]
            out.append(
                Atoms(
                    numbers=self.numbers[a:b],
                    positions=self.positions[a:b],
                    cell=self.cells[s],
                    pbc=self.pbc[s].astype(bool),
                    info={**(self.info[s] or {}), "id": structure_id},
                )
            )
        return out

    def take(self, keep: np.ndarray) -> Frames:
        """The structures where ``keep`` ((n_structures,) bool) is True, in order."""
        counts = self.counts
        atoms = np.repeat(keep, counts)
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[keep], out=offsets[1:])
        chosen = np.nonzero(keep)[0].tolist()
        return Frames(
            positions=np.ascontiguousarray(self.positions[atoms]),
            numbers=self.numbers[atoms],
            offsets=offsets,
            cells=self.cells[keep],
            pbc=self.pbc[keep],
            ids=[self.ids[s] for s in chosen],
            info=[self.info[s] for s in chosen],
        )
