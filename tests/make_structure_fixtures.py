"""Generate the small committed structure fixtures in ``tests/data/structures/``.

    python tests/make_structure_fixtures.py  (or tests/make_fixtures.py, which runs every generator)

The structures are synthetic (made-up geometries), so the fixtures carry no third-party data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from xanesnet.io.read import write_xanesnet_xyz  # noqa: E402

OUT = ROOT / "data" / "structures"


def octahedron(ligand: int, distance: float) -> Atoms:
    """Fe at the origin with six ligands on the axes (Å)."""
    axes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    positions = np.vstack([np.zeros(3), distance * axes.astype(float)])
    return Atoms(numbers=[26] + [ligand] * 6, positions=positions)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    fe_o6 = octahedron(8, 2.05)
    fe_o6.positions[1:] += rng.normal(scale=0.02, size=(6, 3)).round(6)
    write_xanesnet_xyz(fe_o6, OUT / "FEO6_FeO6.xyz")
    write_xanesnet_xyz(octahedron(7, 1.98), OUT / "FEN6_FeN6.xyz")
    # Standard extxyz, two frames with charge / spin metadata.
    frames = []
    for k, (charge, spin) in enumerate([(2, 4), (3, 5)]):
        atoms = octahedron(17, 2.30 + 0.05 * k)
        atoms.info.update(charge=charge, spin=spin)
        frames.append(atoms)
    from ase.io import write

    write(OUT / "FECL6_two_frames.extxyz", frames, format="extxyz")
    print(f"wrote fixtures to {OUT}")


if __name__ == "__main__":
    main()
