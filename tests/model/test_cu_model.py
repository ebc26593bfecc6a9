"""The shipped Cu K-edge model (Materials Project crystals, FEFF spectra).

Without ../shared: the model loads as ``default_model("Cu", "K")`` and predicts physical spectra
for two Cu oxides built with ase from their published cells, cuprite Cu2O (Cu(I), linear O–Cu–O)
and tenorite CuO (Cu(II), square planar): finite, μ ≥ 0 within float32 rounding, the edge rise
where the training spectra rise, and the same spectrum for symmetry-equivalent sites.
With ../shared (``shared_data``): η on OmniXAS's validation sites, recomputed from the data.

Tolerance for equivalent sites: their descriptors agree to float64 rounding (~1e-13 relative,
neighbours summed in another order); the networks run in float32, where a 1-ulp input change
(6e-8 relative) passes through sums of ≤ 1024 terms, so outputs may move by ~1024 · 6e-8 ≈
6e-5 of their scale: 1e-4 · max μ.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ase.spacegroup import crystal
from helpers import SHARED_DATA

from xanesnet.model.pretrained import default_model

FLOAT32_OUTPUT_RTOL = 1e-4  # of max μ, see the module docstring
#: The steepest rise of the training spectra (absolute FEFF photon energy) lies between these
#: energies for 99 % of the 4347 training sites (0.5th and 99.5th percentiles: 8987.2 and
#: 9004.4 eV; median 8996.7 eV). Below 8985 eV every training spectrum stays under 8 % of its
#: maximum; its mean above 9040 eV lies between 0.76 and 1.01.
EDGE_WINDOW_EV = (8985.0, 9005.0)
#: OmniXAS's Cu window (141 points, 0.25 eV steps), the first points of the model grid.
OMNIXAS_WINDOW = 8983.173 + 0.25 * np.arange(141)
BOHR_ANGSTROM = 0.529177210903


def cuprite():
    """Cu2O, Pn-3m, a = 4.2696 Å: O on a bcc lattice, Cu between O pairs (Cu–O 1.85 Å)."""
    return crystal(
        ["O", "Cu"],
        basis=[(0.25, 0.25, 0.25), (0.0, 0.0, 0.0)],  # origin choice 2: O on 2a, Cu on 4b
        spacegroup=224,
        setting=2,
        cellpar=[4.2696, 4.2696, 4.2696, 90, 90, 90],
    )


def tenorite():
    """CuO, C2/c, a 4.6837, b 3.4226, c 5.1288 Å, β 99.54°; Cu on 4c, O on 4e (y 0.4184)."""
    return crystal(
        ["Cu", "O"],
        basis=[(0.25, 0.25, 0.0), (0.0, 0.4184, 0.25)],
        spacegroup=15,
        cellpar=[4.6837, 3.4226, 5.1288, 90, 99.54, 90],
    )


@pytest.fixture(scope="module")
def model():
    return default_model("Cu", "K")


def test_metadata_describes_a_crystal_feff_model(model):
    assert (model.element, model.edge) == ("Cu", "K")
    assert model.energies[0] <= 8983.2 and model.energies[-1] >= 9018.1
    np.testing.assert_allclose(model.energies[:141], OMNIXAS_WINDOW, atol=1e-9)
    assert model.metadata["training_data"]["kind"] == "crystals"
    assert model.metadata["validation_metrics"]["omnixas_window"]["eta"] >= 5.0
    assert model.path.stat().st_size < 8e6


@pytest.mark.parametrize("build", [cuprite, tenorite], ids=["Cu2O", "CuO"])
def test_oxides_give_physical_spectra_with_the_edge_in_place(model, build):
    atoms = build()
    n_cu = atoms.get_chemical_symbols().count("Cu")
    assert n_cu == 4
    prediction = model.predict(atoms, "Cu", n_threads=1)
    mu = prediction.spectra
    assert mu.shape == (n_cu, len(model.energies))
    assert np.all(np.isfinite(mu))
    scale = np.abs(mu).max()
    assert mu.min() >= -0.02 * scale
    # the four Cu sites of either cell are symmetry-equivalent
    np.testing.assert_allclose(
        mu, np.repeat(mu[:1], n_cu, axis=0), atol=FLOAT32_OUTPUT_RTOL * scale
    )
    spectrum = mu[0]
    energies = prediction.energies
    rise = energies[np.argmax(np.gradient(spectrum, energies))]
    assert EDGE_WINDOW_EV[0] <= rise <= EDGE_WINDOW_EV[1]
    # small below the edge, above it about the training spectra's level (see above)
    assert spectrum[energies < 8985.0].max() < 0.2 * spectrum.max()
    assert 0.6 < spectrum[energies > 9040.0].mean() < 1.2


@pytest.mark.shared_data
def test_eta_on_omnixas_validation_sites_reaches_5(model):
    """η = MSE(mean training spectrum) / MSE(model) on OmniXAS's val sites, OmniXAS's target
    (1000 · μ · xsedge / a0², μ > 0 rows, linear in omega) on its 141-point window."""
    from ase.io import read

    from xanesnet.io.feff import read_xmu

    folder = SHARED_DATA / "cu_k_edge_feff_omnixas"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    with open(folder / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def target(row: dict) -> np.ndarray:
        spectrum = read_xmu(folder / row["xmu_path"])
        keep = spectrum.mu > 0
        y = 1000.0 * spectrum.mu[keep] * spectrum.xsedge / BOHR_ANGSTROM**2
        return np.interp(OMNIXAS_WINDOW, spectrum.omega[keep], y)

    val = [r for r in rows if r["omnixas_split"] == "val"]
    val_materials = {r["material"] for r in val}
    train_mean = np.mean([target(r) for r in rows if r["material"] not in val_materials], axis=0)
    cells, absorbers = {}, {}
    for r in val:
        if r["material"] not in cells:
            cells[r["material"]] = read(folder / "Cu" / r["material"] / "POSCAR", format="vasp")
            absorbers[r["material"]] = []
        absorbers[r["material"]].append(int(r["site"]))
    materials = list(cells)
    prediction = model.predict(
        [cells[m] for m in materials], [absorbers[m] for m in materials], n_threads=1
    )
    row_of = {(materials[s], int(a)): i for i, (s, a) in enumerate(prediction.index)}
    pred = prediction.spectra[[row_of[(r["material"], int(r["site"]))] for r in val], :141]
    y = np.array([target(r) for r in val])
    mse = np.mean((pred - y) ** 2)
    baseline = np.mean((train_mean - y) ** 2)
    assert len(val) == 416
    assert baseline == pytest.approx(0.01423, rel=0.01)  # OmniXAS: 0.01422 (their train sites)
    assert baseline / mse >= 5.0
