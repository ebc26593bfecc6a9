"""Kernel ridge member: exact formula, blend and spread, export round trip, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import float32_atol

from xanesnet import WACSF
from xanesnet.model import (
    KernelConfig,
    NetworkConfig,
    SpectrumEnsemble,
    TrainConfig,
    fit_kernel_ridge,
    load_model,
    save_model,
    train_ensemble,
)
from xanesnet.model.kernel import l1_distances
from xanesnet.model.network import store_weights_as_float16

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 226)


@pytest.fixture(scope="module")
def data(example_structures):
    config = WACSF()
    features, _ = config.compute(example_structures, n_threads=1)
    rng = np.random.default_rng(1)
    z = (features - features.mean(0)) / (features.std(0) + 1e-12)
    basis = np.exp(-0.5 * ((ENERGIES[None, :] - rng.uniform(7100, 7170, (5, 1))) / 4.0) ** 2)
    spectra = (np.tanh(z @ rng.normal(size=(z.shape[1], 5)) / 5.0) + 1.5) @ basis + 0.1
    return config, features, spectra


def test_kernel_matches_closed_form(data):
    _, x, y = data
    config = KernelConfig(length_scale=0.7, ridge=1e-3)
    model = fit_kernel_ridge(x[:70], y[:70], config)
    # the closed form in float64, from the model's own standardised centres
    z = (x.astype(np.float32) - model.x_mean.numpy()) * model.x_inv_scale.numpy()
    centres = model.centres.double().numpy()
    d_train = l1_distances(centres, centres)
    median = np.median(d_train[~np.eye(70, dtype=bool)])
    gamma = 1.0 / (0.7 * median)
    assert model.gamma == pytest.approx(gamma, rel=1e-12)
    alpha = np.linalg.solve(np.exp(-gamma * d_train) + 1e-3 * np.eye(70), y[:70] - y[:70].mean(0))
    expected = np.exp(-gamma * l1_distances(z[70:], centres)) @ alpha + y[:70].mean(0)
    with torch.no_grad():
        got = model(torch.as_tensor(x[70:], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(y).max())


def test_small_ridge_interpolates_training_data(data):
    _, x, y = data
    model = fit_kernel_ridge(x, y, KernelConfig(ridge=1e-8))
    with torch.no_grad():
        fitted = model(torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert np.abs(fitted - y).max() < 1e-3 * np.abs(y).max()


def test_float16_centres_are_self_consistent(data):
    _, x, y = data
    half = fit_kernel_ridge(x[:80], y[:80], KernelConfig(centre_dtype="float16", ridge=1e-8))
    assert half.centres.dtype == torch.float16
    with torch.no_grad():
        fitted = half(torch.as_tensor(x[:80], dtype=torch.float32)).numpy()
    # α was solved against the rounded centres, so the training points are still reproduced
    # up to the rounding of the inputs themselves
    assert np.abs(fitted - y[:80]).max() < 0.05 * np.abs(y).max()


def test_principal_components_project_the_full_prediction(data):
    _, x, y = data
    full = fit_kernel_ridge(x[:80], y[:80], KernelConfig())
    reduced = fit_kernel_ridge(x[:80], y[:80], KernelConfig(n_components=4))
    assert reduced.coefficients.shape == (80, 4) and reduced.basis.shape == (4, 226)
    xt = torch.as_tensor(x[80:], dtype=torch.float32)
    with torch.no_grad():
        p_full = full(xt).double().numpy()
        p_reduced = reduced(xt).double().numpy()
    basis = reduced.basis.double().numpy()
    mean = full.y_mean.double().numpy()
    projected = (p_full - mean) @ basis.T @ basis + mean
    np.testing.assert_allclose(p_reduced, projected, rtol=0, atol=1e-4 * np.abs(y).max())
    # the synthetic spectra span 5 Gaussians (+ constant): 6 components lose nothing
    six = fit_kernel_ridge(x[:80], y[:80], KernelConfig(n_components=6))
    with torch.no_grad():
        np.testing.assert_allclose(six(xt).numpy(), p_full, rtol=0, atol=1e-4 * np.abs(y).max())


def test_blend_and_spread_formula(data):
    _, x, y = data
    config = TrainConfig(
        network=NetworkConfig(hidden=(16,)),
        epochs=3,
        n_members=2,
        kernel=KernelConfig(weight=0.3),
    )
    ensemble, _ = train_ensemble(x[:80], y[:80], None, None, config)
    xt = torch.as_tensor(x[80:], dtype=torch.float32)
    with torch.no_grad():
        mean, spread = ensemble(xt)
        nets = torch.stack([m(xt) for m in ensemble.members]).double().numpy()
        kern = ensemble.kernel(xt).double().numpy()
    blend = 0.7 * nets.mean(0) + 0.3 * kern
    variance = 0.35 * ((nets - blend) ** 2).sum(0) + 0.3 * (kern - blend) ** 2
    np.testing.assert_allclose(mean.numpy(), blend, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spread.numpy(), np.sqrt(variance), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("suffix", [".pt"])
def test_blended_model_round_trip(data, tmp_path, suffix, example_structures):
    descriptor, x, y = data
    config = TrainConfig(
        network=NetworkConfig(hidden=(16,)),
        epochs=2,
        kernel=KernelConfig(centre_dtype="float16", n_components=8),
    )
    ensemble, _ = train_ensemble(x, y, None, None, config)
    path = tmp_path / f"blend{suffix}"
    save_model(ensemble, path, descriptor=descriptor, energies=ENERGIES, e0=7112.0, element="Fe")
    model = load_model(path)
    assert model.kernel["n_centres"] == len(x) and model.kernel["centre_dtype"] == "float16"
    assert model.kernel["n_components"] == 8
    assert model.has_spread and "kernel ridge" in repr(model)
    with torch.no_grad():
        eager_mean, eager_spread = ensemble(torch.as_tensor(x[:7], dtype=torch.float32))
    prediction = model.predict(example_structures[:7])
    # The file's path (compiled kernel sum, TorchScript) and the eager module sum in other
    # orders: float32 reordering of sums over the centres / features (1.19e-6 seen on an AMD
    # EPYC at |μ| ≈ 6, 2.5 ulp). The spread moves no more than the member values it is made of.
    atol = float32_atol(eager_mean.numpy(), reduction_length=max(len(x), x.shape[1]))
    np.testing.assert_allclose(prediction.spectra, eager_mean.numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(prediction.spread, eager_spread.numpy(), rtol=0, atol=atol)


def test_float16_weights_halve_storage_and_round_only(data, tmp_path):
    descriptor, x, y = data
    config = TrainConfig(network=NetworkConfig(hidden=(32, 32)), epochs=2, n_members=2)
    ensemble, _ = train_ensemble(x, y, None, None, config)
    compact = store_weights_as_float16(ensemble)
    xt = torch.as_tensor(x[:10], dtype=torch.float32)
    with torch.no_grad():
        full, small = ensemble(xt)[0].numpy(), compact(xt)[0].numpy()
    # float16 rounding of the weights only: close to the float32 network, not identical
    assert 0 < np.abs(full - small).max() < 2e-2 * np.abs(full).max()
    sizes = []
    for name, module in (("full", ensemble), ("half", compact)):
        path = tmp_path / f"{name}.pt"
        save_model(module, path, descriptor=descriptor, energies=ENERGIES, e0=7112.0, element="Fe")
        sizes.append(path.stat().st_size)
        loaded = load_model(path).predict_features(x[:10])[0]
        expected = small if name == "half" else full
        # TorchScript file vs eager module: the same float32 products, summed in any order
        atol = float32_atol(expected, reduction_length=max(x.shape[1], 32))
        np.testing.assert_allclose(loaded, expected, rtol=0, atol=atol)
    n_weights = sum(p.numel() for p in ensemble.parameters())
    assert sizes[0] - sizes[1] > 0.9 * 2 * n_weights


def test_training_config_round_trip_with_kernel():
    config = TrainConfig(kernel=KernelConfig(weight=0.4, centre_dtype="float16"))
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and again.kernel.weight == 0.4
    assert TrainConfig.from_dict({"kernel": {"ridge": 1e-3}}).kernel.ridge == 1e-3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight": 1.5}, "kernel.weight"),
        ({"length_scale": 0.0}, "kernel.length_scale"),
        ({"ridge": -1.0}, "kernel.ridge"),
        ({"centre_dtype": "int8"}, "kernel.centre_dtype"),
        ({"n_components": 0}, "kernel.n_components"),
    ],
)
def test_bad_kernel_config(changes, message):
    with pytest.raises(ValueError, match=message):
        KernelConfig(**changes)


def test_bad_kernel_inputs():
    with pytest.raises(ValueError, match="unknown keys"):
        KernelConfig.from_dict({"width": 1.0})
    with pytest.raises(ValueError, match="expected"):
        fit_kernel_ridge(np.zeros((5, 3)), np.zeros((4, 2)), KernelConfig())
    with pytest.raises(ValueError, match="identical"):
        fit_kernel_ridge(np.ones((5, 3)), np.zeros((5, 2)), KernelConfig())
    with pytest.raises(ValueError, match="kernel_weight"):
        SpectrumEnsemble([torch.nn.Linear(2, 2)], torch.nn.Linear(2, 2), 1.0)
