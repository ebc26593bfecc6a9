"""Checks on the full reference data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ROOT, shared_data_dir

from xanesnet import WACSF, read_structures

pytestmark = pytest.mark.shared_data


def test_backends_agree_on_all_4079_fe_structures():
    folder = shared_data_dir() / "fe_k_edge" / "xanesnet_2022_preconv" / "xyz_train"
    structures = list(read_structures(folder))
    assert len(structures) == 4079
    config = WACSF()
    cpp, _ = config.compute(structures, backend="cpp")
    numba, _ = config.compute(structures, backend="numba")
    np.testing.assert_allclose(numba, cpp, rtol=1e-12, atol=1e-300)


def test_reference_json_fixture_is_current():
    shared = shared_data_dir() / "fe_k_edge" / "wacsf_reference_values.json"
    fixture = ROOT / "tests" / "data" / "wacsf" / "wacsf_reference_values.json"
    assert json.loads(shared.read_text()) == json.loads(fixture.read_text())


@pytest.mark.parametrize("variant", ["default", "ensemble", "fast"])
def test_shipped_model_reproduces_its_validation_metrics(variant):
    """Each shipped model, evaluated on the committed validation split, gives the figures
    stored in its metadata (and reported in the README)."""
    from xanesnet.analysis import evaluate_spectra
    from xanesnet.datasets import load_dataset
    from xanesnet.model.pretrained import default_model

    data = shared_data_dir() / "fe_k_edge" / "xanesnet_2022_preconv"
    model = default_model("Fe", "K", variant)
    split = json.loads((ROOT / "scripts" / "fe_k_edge" / "split.json").read_text())
    dataset = load_dataset(
        data / "xyz_train",
        data / "xanes_train",
        model.descriptor,
        names=split["validation"],
        energies=model.energies,
    )
    prediction, spread = model.predict_features(dataset.features)
    metrics = evaluate_spectra(model.energies, prediction, dataset.spectra)
    stored = model.metadata["validation_metrics"]
    assert metrics.n_spectra == stored["n_spectra"] == 815
    assert metrics.delta_mu_avg == pytest.approx(stored["delta_mu_avg"], rel=1e-4)
    assert metrics.delta_e_avg == pytest.approx(stored["delta_e_avg"], rel=1e-3)
    assert spread.shape == prediction.shape
    assert (spread.mean() > 0) == model.has_spread == (variant != "fast")
