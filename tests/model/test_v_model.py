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
from v_complexes import COMPLEXES, V_MODEL_CONFIG, vanadyl_acac2

from xanesnet.model.pretrained import default_model

FLOAT32_OUTPUT_RTOL = 1e-4  # of max μ, see the module docstring
#: The training spectra are edge-step normalised (step 1); their half-step point μ = 0.5 lies
#: between E0 − 1.7 eV and E0 + 13.3 eV for 98 % of the 1439 complexes (1st–99th percentile).
HALF_STEP_WINDOW_EV = (-3.0, 13.5)


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
    # the descriptor its training features were made with (tests/descriptors/test_v_descriptor.py)
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
