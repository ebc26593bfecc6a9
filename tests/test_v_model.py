"""The shipped V K-edge model on V complexes built from known geometries.

Three first-row coordination shapes, built with ase from typical bond lengths: a vanadyl
bis(acetylacetonate)-like square pyramid (V=O 1.59 Å, V–O 1.97 Å, V 0.55 Å above the basal
plane), the hexaaqua ion [V(H2O)6]3+ (V–O 1.99 Å) and tetrahedral VCl4 (V–Cl 2.14 Å). Checked:
the spectra are physical (μ ≥ 0 within float32 rounding), the edge rises where the training
spectra's edges rise, and the prediction does not depend on atom order, orientation or position.

Invariance tolerance: the descriptor is invariant to float64 rounding (~1e-13 relative); the
model then runs in float32, where a 1-ulp change of an input (6e-8 relative) passes through
sums of ≤ 1152 terms (512-wide layers, kernel sum over the training centres), so outputs may
move by up to ~1152 · 6e-8 ≈ 7e-5 of their scale: 1e-4 · max μ.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from test_v_descriptor import V_MODEL_CONFIG

from xanesnet.model.pretrained import default_model

FLOAT32_OUTPUT_RTOL = 1e-4  # of max μ, see the module docstring
#: The training spectra are edge-step normalised (step 1); their half-step point μ = 0.5 lies
#: between E0 − 1.7 eV and E0 + 13.3 eV for 98 % of the 1439 complexes (1st–99th percentile).
HALF_STEP_WINDOW_EV = (-3.0, 13.5)


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


@pytest.fixture(scope="module")
def model():
    return default_model("V", "K")


def test_geometries_are_what_they_say():
    for build in COMPLEXES.values():
        atoms = build()
        distances = atoms.get_all_distances()
        np.fill_diagonal(distances, np.inf)
        assert distances.min() > 0.95  # no two atoms on top of each other (O–H is 0.97 Å)
        assert atoms.get_chemical_symbols().count("V") == 1
    vo = vanadyl_acac2()
    r = np.linalg.norm(vo.positions[1:] - vo.positions[0], axis=1)
    oxygens = np.array(vo.get_chemical_symbols()[1:]) == "O"
    np.testing.assert_allclose(np.sort(r[oxygens]), [1.59, 1.97, 1.97, 1.97, 1.97], atol=1e-9)
    assert vo.get_chemical_formula() == "C10H14O5V"


def test_model_is_the_v_k_edge_model(model):
    assert (model.element, model.edge) == ("V", "K")
    # the descriptor its training features were made with (tests/test_v_descriptor.py)
    assert model.descriptor == V_MODEL_CONFIG
    # the data's grid, -15...+60 eV in 1/3 eV steps, around the tabulated V K-edge
    assert model.e0 == 5465.0
    np.testing.assert_allclose(model.energies, 5465.0 + np.linspace(-15.0, 60.0, 226))
    metrics = model.metadata["validation_metrics"]
    assert metrics["n_spectra"] == model.metadata["validation_size"] == 287
    assert 0 < metrics["delta_mu_avg"] < 10


@pytest.mark.parametrize("name", sorted(COMPLEXES))
def test_prediction_is_physical_with_the_edge_in_place(model, name):
    prediction = model.predict(COMPLEXES[name](), absorber="V", backend="numba")
    mu = prediction.spectra[0]
    assert prediction.spectra.shape == (1, len(model.energies))
    assert np.all(np.isfinite(mu))
    assert mu.min() >= -FLOAT32_OUTPUT_RTOL * np.abs(mu).max()
    relative = model.energies - model.e0
    post_edge = mu[relative >= 40.0].mean()
    assert post_edge > 0.5  # an edge-step normalised spectrum has a jump of about 1
    assert mu[relative <= -10.0].max() < 0.3 * post_edge  # pre-edge well below the edge
    half_step = relative[np.argmax(mu >= 0.5)]
    assert HALF_STEP_WINDOW_EV[0] <= half_step <= HALF_STEP_WINDOW_EV[1]


@pytest.mark.parametrize("name", sorted(COMPLEXES))
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_prediction_invariant_to_atom_order_rotation_and_translation(model, name, backend):
    atoms = COMPLEXES[name]()
    reference = model.predict(atoms, absorber="V", backend=backend).spectra
    rng = np.random.default_rng(11)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    order = rng.permutation(len(atoms))
    if order[0] == 0:  # the builders put V first: move it elsewhere
        order = np.roll(order, 1)
    moved = atoms[order]
    moved.positions = moved.positions @ rotation.T + rng.normal(size=3) * 5.0
    assert moved.get_chemical_symbols()[0] != "V"
    spectra = model.predict(moved, absorber="V", backend=backend).spectra
    scale = np.abs(reference).max()
    np.testing.assert_allclose(spectra, reference, rtol=0, atol=FLOAT32_OUTPUT_RTOL * scale)
