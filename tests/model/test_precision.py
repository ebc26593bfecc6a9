"""precision="bfloat16": the networks rebuilt in bfloat16 from a model file's own weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import untrained_ensemble

import xanesnet
from xanesnet import WACSF
from xanesnet.analysis.metrics import delta_mu
from xanesnet.cli import batch as batch_cli
from xanesnet.cli import evaluate as evaluate_cli
from xanesnet.cli import predict as predict_cli
from xanesnet.model import (
    KernelConfig,
    SpectrumEnsemble,
    XanesModel,
    fit_kernel_ridge,
    load_model,
    save_model,
)
from xanesnet.model import precision as precision_module
from xanesnet.model.network import store_weights_as_float16

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 226)


@pytest.fixture(scope="module")
def features(example_structures):
    return WACSF().compute(example_structures, n_threads=1)[0]


def _ensemble(x: np.ndarray, activation: str, n_members: int, seed: int = 0) -> SpectrumEnsemble:
    """Untrained networks with the data's standardisation and a non-trivial output scaling."""
    return untrained_ensemble(
        x, len(ENERGIES), activation=activation, n_members=n_members, seed=seed
    )


def _save(ensemble: SpectrumEnsemble, path) -> xanesnet.XanesModel:
    save_model(ensemble, path, descriptor=WACSF(), energies=ENERGIES, e0=7112.0, element="Fe")
    return load_model(path)


@pytest.mark.parametrize("activation", ["relu", "silu", "gelu", "tanh", "elu"])
@pytest.mark.parametrize("n_members", [1, 3])
def test_bfloat16_equals_eager_autocast(features, tmp_path, activation, n_members):
    """The rebuilt networks compute what torch's own bfloat16 autocast computes with the
    eager ensemble, and stay close to float32."""
    ensemble = _ensemble(features, activation, n_members)
    model = _save(ensemble, tmp_path / "m.pt")
    mean32, spread32 = model.predict_features(features)
    mean16, spread16 = model.predict_features(features, precision="bfloat16")
    x = torch.as_tensor(features, dtype=torch.float32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        members = [m(x).float() for m in ensemble.members]
    np.testing.assert_allclose(mean16, (sum(members) / n_members).numpy(), rtol=0, atol=1e-6)
    scale = np.abs(mean32).max()
    assert 0 < np.abs(mean16 - mean32).max() < 2e-2 * scale
    if n_members > 1:
        assert np.abs(spread16 - spread32).max() < 2e-2 * scale
    else:
        assert not spread16.any()
    # deterministic, and predict() from structures takes the same path
    np.testing.assert_array_equal(model.predict_features(features, precision="bfloat16")[0], mean16)


def test_bfloat16_with_float16_weights_and_kernel_blend(features, tmp_path, example_structures):
    """Half-stored weights (the shipped models) and a kernel ridge member blended in, by the
    compiled and the torch kernel path alike."""
    rng = np.random.default_rng(3)
    y = 1.0 + 0.1 * rng.random((len(features), len(ENERGIES)))
    kernel = fit_kernel_ridge(features, y, KernelConfig())
    ensemble = SpectrumEnsemble(
        list(store_weights_as_float16(_ensemble(features, "silu", 2)).members),
        kernel=kernel,
        kernel_weight=0.4,
    ).eval()
    model = _save(ensemble, tmp_path / "blend.pt")
    mean32, _ = model.predict_features(features)
    results = [
        model.predict_features(features, precision="bfloat16", kernel_backend=backend)
        for backend in ("cpp", "torch")
    ]
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0, atol=1e-5)
    assert 0 < np.abs(results[0][0] - mean32).max() < 2e-2 * np.abs(mean32).max()
    prediction = model.predict(example_structures, absorber=0, precision="bfloat16")
    np.testing.assert_allclose(prediction.spectra, results[0][0], rtol=0, atol=1e-6)


def test_shipped_model_bfloat16_is_within_a_tiny_fraction_of_its_error(example_structures):
    model = xanesnet.default_model("Fe", "K")
    full = model.predict(example_structures, absorber=0).spectra
    half = model.predict(example_structures, absorber=0, precision="bfloat16").spectra
    difference = delta_mu(half, full)
    # the model's own error is ~4.5 % Δμ; bfloat16 moves spectra by ~0.03 %
    assert 0 < difference.mean() < 0.1 and difference.max() < 0.3


def test_bad_precision_and_unsupported_files(features, tmp_path):
    model = _save(_ensemble(features, "silu", 1), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="precision: expected one of"):
        model.predict_features(features, precision="float16")
    with pytest.raises(ValueError, match="precision: expected one of"):
        xanesnet.predict_batch([], tmp_path / "out", precision="fp8")
    eager = XanesModel(_ensemble(features, "silu", 2).eval(), model.metadata, model.path)
    with pytest.raises(ValueError, match=r"TorchScript.*m\.pt"):
        eager.predict_features(features, precision="bfloat16")


def test_warns_where_the_cpu_emulates_bfloat16(features, tmp_path, monkeypatch):
    model = _save(_ensemble(features, "silu", 1), tmp_path / "m.pt")
    monkeypatch.setattr(
        xanesnet.model.runtime, "cpu_has_native_bfloat16", lambda: False, raising=True
    )
    with pytest.warns(RuntimeWarning, match="no bfloat16 matrix instructions"):
        model.predict_features(features[:3], precision="bfloat16")


def test_cpu_flag_reading_gives_a_bool_or_none():
    assert precision_module.cpu_has_native_bfloat16() in (True, False, None)


@pytest.mark.parametrize("command", [batch_cli, evaluate_cli, predict_cli])
def test_command_line_choices_are_the_precisions(command):
    action = next(a for a in command.build_parser()._actions if a.dest == "precision")
    assert tuple(action.choices) == precision_module.PRECISIONS
    assert action.default == "float32"
