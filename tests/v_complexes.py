"""V complexes built from known geometries, and the descriptor the shipped V model uses
(shared by the descriptor, model and routing tests)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from xanesnet import WACSF

#: The descriptor the V model ships: the issue's 97-feature variant with the raw r_jk cutoff.
V_MODEL_CONFIG = WACSF(
    r_min=0.0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0, rjk_cutoff="raw"
)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _methyl_hydrogens(carbon: np.ndarray, bonded: np.ndarray) -> list[np.ndarray]:
    """Three H at 1.09 Å, tetrahedral around ``carbon``, opposite its bond to ``bonded``."""
    axis = (carbon - bonded) / np.linalg.norm(carbon - bonded)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    if np.linalg.norm(side) < 1e-6:
        side = np.cross(axis, [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    tilt = np.radians(180.0 - 109.5)
    first = np.cos(tilt) * axis + np.sin(tilt) * side
    return [carbon + 1.09 * _rotation(axis, a) @ first for a in (0.0, 2.1, 4.2)]


def vanadyl_acac2() -> Atoms:
    """VO(acac)2-like square pyramid: V=O apical; two planar acetylacetonate rings, each
    chelating two cis basal O atoms (bite angle about 88°)."""
    symbols, positions = ["V", "O"], [np.zeros(3), np.array([0.0, 0.0, 1.59])]
    lift = 0.55  # V above the basal O4 plane
    radius = np.sqrt(1.97**2 - lift**2)
    for centre in (0.0, np.pi):  # the two ligands face each other across V
        # ring frame in the basal plane: u towards the ring's middle CH, v along O...O
        u = np.array([np.cos(centre), np.sin(centre), 0.0])
        v = np.array([-np.sin(centre), np.cos(centre), 0.0])
        base = np.array([0.0, 0.0, -lift])
        half = np.radians(44.0)
        o = [base + radius * (np.cos(half) * u + s * np.sin(half) * v) for s in (1, -1)]
        c_mid = base + 3.35 * u
        ring = []
        for s, oxygen in zip((1, -1), o):
            # carbonyl C: 1.28 Å from O and 1.40 Å from the middle C, away from the axis u
            d = np.linalg.norm(c_mid - oxygen)
            along = (d**2 + 1.28**2 - 1.40**2) / (2 * d)
            across = np.sqrt(1.28**2 - along**2)
            e1 = (c_mid - oxygen) / d
            e2 = s * v - np.dot(s * v, e1) * e1
            e2 /= np.linalg.norm(e2)
            carbon = oxygen + along * e1 + across * e2
            methyl = carbon + 1.50 * (s * v + 0.6 * u) / np.linalg.norm(s * v + 0.6 * u)
            ring += [("O", oxygen), ("C", carbon), ("C", methyl)]
            ring += [("H", h) for h in _methyl_hydrogens(methyl, carbon)]
        ring += [("C", c_mid), ("H", c_mid + 1.08 * u)]
        symbols += [s for s, _ in ring]
        positions += [p for _, p in ring]
    return Atoms(symbols, positions=np.array(positions))


def hexaaqua_vanadium() -> Atoms:
    """[V(H2O)6]3+: octahedron, V–O 1.99 Å, O–H 0.97 Å, H–O–H 105°, each water plane holding
    its V–O axis."""
    symbols, positions = ["V"], [np.zeros(3)]
    axes = np.vstack([np.eye(3), -np.eye(3)])
    for axis in axes:
        oxygen = 1.99 * axis
        side = np.roll(axis, 1)  # perpendicular to this axis
        half = np.radians(105.0 / 2)
        symbols += ["O", "H", "H"]
        positions += [
            oxygen,
            oxygen + 0.97 * (np.cos(half) * axis + np.sin(half) * side),
            oxygen + 0.97 * (np.cos(half) * axis - np.sin(half) * side),
        ]
    return Atoms(symbols, positions=np.array(positions))


def vanadium_tetrachloride() -> Atoms:
    """VCl4: regular tetrahedron, V–Cl 2.14 Å."""
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)
    return Atoms(["V"] + ["Cl"] * 4, positions=np.vstack([np.zeros(3), 2.14 * corners]))


COMPLEXES = {
    "VO(acac)2": vanadyl_acac2,
    "[V(H2O)6]3+": hexaaqua_vanadium,
    "VCl4": vanadium_tetrachloride,
}
