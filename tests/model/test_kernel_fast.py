"""Compiled kernel ridge path: agreement with TorchScript, backend selection, binding errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import float32_atol

from xanesnet import WACSF
from xanesnet.model import (
    KernelConfig,
    NetworkConfig,
    TrainConfig,
    XanesModel,
    load_model,
    save_model,
    train_ensemble,
)
from xanesnet.model import runtime as runtime_module
from xanesnet.model.files import quiet_torchscript
from xanesnet.model.network import blend_members, store_weights_as_float16

_core = pytest.importorskip("xanesnet._core")
if not hasattr(_core, "laplacian_predict"):
    pytest.skip("compiled core without laplacian_predict (rebuild it)", allow_module_level=True)

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 226)
RTOL = 1e-5


@pytest.fixture(scope="module")
def data(example_structures: list[Any]) -> tuple[WACSF, np.ndarray, np.ndarray, np.ndarray]:
    config = WACSF()
    features, _ = config.compute(example_structures, n_threads=1)
    rng = np.random.default_rng(3)
    z = (features - features.mean(0)) / (features.std(0) + 1e-12)
    basis = np.exp(-0.5 * ((ENERGIES[None, :] - rng.uniform(7100, 7170, (5, 1))) / 4.0) ** 2)
    spectra = (np.tanh(z @ rng.normal(size=(z.shape[1], 5)) / 5.0) + 1.5) @ basis + 0.1
    # sites to predict: the training descriptors and noisy copies (not on the centres), 300 rows
    # so that several tasks of the C++ kernel (32 sites each) and a partial one are used
    scale = features.std(0)
    noisy = [features + rng.normal(size=features.shape) * 0.3 * scale for _ in range(2)]
    sites = np.concatenate([features, *noisy])
    return config, features, spectra, sites


def _blended_model(data: Any, tmp_path: Path, centre_dtype: str, suffix: str = ".pt") -> XanesModel:
    """``centre_dtype`` "float16-compact": float16 centres, 4 spectral components and float16
    network weights, as the shipped model is stored."""
    descriptor, x, y, _ = data
    compact = centre_dtype == "float16-compact"
    config = TrainConfig(
        network=NetworkConfig(hidden=(16,)),
        epochs=2,
        n_members=2,
        kernel=KernelConfig(
            weight=0.4,
            centre_dtype="float16" if compact else centre_dtype,
            n_components=4 if compact else None,
        ),
    )
    ensemble, _ = train_ensemble(x, y, None, None, config)
    if compact:
        ensemble = store_weights_as_float16(ensemble)
    path = tmp_path / f"blend_{centre_dtype}{suffix}"
    save_model(ensemble, path, descriptor=descriptor, energies=ENERGIES, e0=7112.0, element="Fe")
    return load_model(path)


@pytest.fixture(scope="module", params=["float32", "float16", "float16-compact"])
def model(request: Any, data: Any, tmp_path_factory: Any) -> XanesModel:
    return _blended_model(data, tmp_path_factory.mktemp("fast"), request.param)


def _scripted(model: XanesModel, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        mean, spread = model.module(torch.as_tensor(sites, dtype=torch.float32))
    return mean.numpy().astype(np.float64), spread.numpy().astype(np.float64)


def _assert_close(got: np.ndarray, want: np.ndarray, scale: float) -> None:
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)


def test_fast_path_matches_torchscript(model: XanesModel, data: Any) -> None:
    sites = data[3]
    assert model.resolve_kernel_backend() == "cpp"
    want_mean, want_spread = _scripted(model, sites)
    mean, spread = model.predict_features(sites)
    scale = float(np.abs(want_mean).max())
    _assert_close(mean, want_mean, scale)
    _assert_close(spread, want_spread, scale)
    # the kernel member alone, through the binding, against the scripted KernelRidge
    kernel = model.module.kernel
    x = torch.as_tensor(sites, dtype=torch.float32)
    with torch.inference_mode():
        want = kernel(x).numpy()
        z = ((x - kernel.x_mean) * kernel.x_inv_scale).numpy()
    n_components = kernel.coefficients.shape[1]
    got = _core.laplacian_predict(
        z,
        kernel.centres.float().numpy(),
        kernel.gamma,
        kernel.coefficients.numpy(),
        np.zeros(n_components, dtype=np.float32),
        0,
    )
    if kernel.n_components > 0:
        got = got @ kernel.basis.numpy()
    got = got + kernel.y_mean.numpy()
    _assert_close(got, want, float(np.abs(want).max()))


def test_forced_torch_path_is_the_scripted_forward(
    model: XanesModel, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = data[3][:50]
    want = _scripted(model, sites)
    got = model.predict_features(sites, kernel_backend="torch")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    monkeypatch.setenv("XANESNET_KERNEL_BACKEND", "torch")
    assert model.resolve_kernel_backend() == "torch"
    np.testing.assert_array_equal(model.predict_features(sites)[0], want[0])
    # an explicit argument wins over the environment
    assert model.resolve_kernel_backend("cpp") == "cpp"


def test_thread_count_does_not_change_results(model: XanesModel, data: Any) -> None:
    sites = data[3]
    one = model.predict_features(sites, n_threads=1)
    # threads split the float32 sums differently; the longest is the kernel sum over the
    # centres (the training rows) or a distance over the features
    longest_sum = max(data[1].shape)
    for threads in (2, 3):
        other = model.predict_features(sites, n_threads=threads, batch_size=77)
        for a, b in zip(one, other):
            np.testing.assert_allclose(b, a, rtol=0, atol=float32_atol(one[0], longest_sum))


def test_blend_members_single_formula() -> None:
    rng = np.random.default_rng(0)
    outputs = torch.as_tensor(rng.normal(size=(3, 4, 5)), dtype=torch.float32)
    kernel = torch.as_tensor(rng.normal(size=(4, 5)), dtype=torch.float32)
    mean, spread = blend_members(outputs, kernel, 0.25)
    nets = outputs.double().numpy()
    blend = 0.75 * nets.mean(0) + 0.25 * kernel.double().numpy()
    variance = 0.25 * ((nets - blend) ** 2).sum(0) + 0.25 * (kernel.double().numpy() - blend) ** 2
    np.testing.assert_allclose(mean.numpy(), blend, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(spread.numpy(), np.sqrt(variance), rtol=1e-5, atol=1e-6)
    mean, spread = blend_members(outputs, None, 0.25)
    np.testing.assert_allclose(mean.numpy(), nets.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(spread.numpy(), nets.std(0), rtol=1e-5, atol=1e-6)
    mean, spread = blend_members(outputs[:1], None, 0.0)
    assert torch.equal(spread, torch.zeros_like(mean))
    with quiet_torchscript():
        scripted = torch.jit.script(blend_members)
    assert torch.equal(scripted(outputs, kernel, 0.25)[1], blend_members(outputs, kernel, 0.25)[1])


def test_backend_selection(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: XanesModel
) -> None:
    with pytest.raises(ValueError, match="kernel_backend: expected one of"):
        model.resolve_kernel_backend("fortran")
    monkeypatch.setenv("XANESNET_KERNEL_BACKEND", "gpu")
    with pytest.raises(ValueError, match="XANESNET_KERNEL_BACKEND: expected one of"):
        model.predict_features(data[3][:2])
    monkeypatch.delenv("XANESNET_KERNEL_BACKEND")
    # no compiled core: the torch path, and an error when "cpp" is demanded
    monkeypatch.setattr(runtime_module, "_compiled_kernel_available", lambda: False)
    assert model.resolve_kernel_backend() == "torch"
    with pytest.raises(ValueError, match="compiled core"):
        model.predict_features(data[3][:2], kernel_backend="cpp")
    monkeypatch.undo()
    # a kernel of another kind than the compiled one
    monkeypatch.setattr(model, "kernel", {**model.kernel, "kind": "gaussian"})
    assert model.resolve_kernel_backend() == "torch"
    monkeypatch.undo()
    # another device than the CPU: the torch path (the rule only; no GPU needed)
    monkeypatch.setattr(model, "device", "cuda:0")
    assert model.resolve_kernel_backend() == "torch"
    with pytest.raises(ValueError, match="cuda"):
        model.resolve_kernel_backend("cpp")


def test_eager_module_uses_torch(data: Any, tmp_path: Path, model: XanesModel) -> None:
    """A runtime model around a plain (not TorchScript) module takes the torch path."""
    descriptor, x, y, _ = data
    config = TrainConfig(
        network=NetworkConfig(hidden=(16,)), epochs=1, kernel=KernelConfig(weight=0.4)
    )
    ensemble, _ = train_ensemble(x, y, None, None, config)
    eager = XanesModel(ensemble.eval(), model.metadata, model.path)
    assert eager.resolve_kernel_backend() == "torch"
    with pytest.raises(ValueError, match="not TorchScript"):
        eager.resolve_kernel_backend("cpp")
    mean, _ = eager.predict_features(data[3][:5])
    assert mean.shape == (5, len(ENERGIES))


def test_model_without_kernel_has_no_kernel_backend(data: Any, tmp_path: Path) -> None:
    descriptor, x, y, _ = data
    config = TrainConfig(network=NetworkConfig(hidden=(8,)), epochs=1, n_members=2)
    ensemble, _ = train_ensemble(x, y, None, None, config)
    path = tmp_path / "plain.pt"
    save_model(ensemble, path, descriptor=descriptor, energies=ENERGIES, e0=7112.0, element="Fe")
    plain = load_model(path)
    assert plain.resolve_kernel_backend() is None
    assert plain.resolve_kernel_backend("cpp") is None
    mean, spread = plain.predict_features(x[:4], n_threads=1)
    want_mean, want_spread = _scripted(plain, x[:4])
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(spread, want_spread)


def test_bad_n_threads(model: XanesModel, data: Any) -> None:
    with pytest.raises(ValueError, match="n_threads"):
        model.predict_features(data[3][:2], n_threads=-1)


# -- the binding ----------------------------------------------------------------------------------
def _problem(
    n: int = 40, m: int = 70, f: int = 513, e: int = 226, seed: int = 5
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, f)).astype(np.float32)
    centres = rng.normal(size=(m, f)).astype(np.float32)
    coefficients = rng.normal(size=(m, e)).astype(np.float32)
    y_mean = rng.normal(size=e).astype(np.float32)
    return z, centres, 1.0 / (1.13 * f), coefficients, y_mean


def test_binding_matches_float64_and_torch() -> None:
    z, c, gamma, a, y = _problem()
    distances = np.abs(z.astype(np.float64)[:, None, :] - c.astype(np.float64)[None]).sum(-1)
    exact = np.exp(-gamma * distances) @ a.astype(np.float64) + y
    torch_out = (
        torch.exp(torch.cdist(torch.from_numpy(z), torch.from_numpy(c), p=1.0) * -gamma)
        @ torch.from_numpy(a)
        + torch.from_numpy(y)
    ).numpy()
    got = _core.laplacian_predict(z, c, gamma, a, y, 2)
    assert got.dtype == np.float32 and got.shape == (40, 226)
    scale = float(np.abs(exact).max())
    np.testing.assert_allclose(got, exact, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(got, torch_out, rtol=RTOL, atol=RTOL * scale)
    # other dtypes and layouts are converted
    again = _core.laplacian_predict(z.astype(np.float64), np.asfortranarray(c), gamma, a, y, 1)
    np.testing.assert_array_equal(again, got)


def test_binding_threads_and_empty_inputs() -> None:
    z, c, gamma, a, y = _problem(n=100)
    one = _core.laplacian_predict(z, c, gamma, a, y, 1)
    # the longest float32 sum: a distance over the features (or the sum over the centres)
    atol = float32_atol(one, max(z.shape[1], c.shape[0]))
    for threads in (2, 4, 0):
        np.testing.assert_allclose(
            _core.laplacian_predict(z, c, gamma, a, y, threads), one, rtol=0, atol=atol
        )
    assert _core.laplacian_predict(z[:0], c, gamma, a, y, 1).shape == (0, 226)
    np.testing.assert_array_equal(
        _core.laplacian_predict(z[:3], c[:0], gamma, a[:0], y, 1), np.broadcast_to(y, (3, 226))
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"z": np.zeros(513, np.float32)},
            r"z: expected shape \(n_sites, n_features\), got \(513,\)",
        ),
        ({"centres": np.zeros((70, 512), np.float32)}, "centres: expected 513 features"),
        ({"centres": np.zeros((1, 70, 513), np.float32)}, "centres: expected shape"),
        ({"coefficients": np.zeros((69, 226), np.float32)}, "coefficients: expected 70 rows"),
        ({"coefficients": np.zeros(70, np.float32)}, "coefficients: expected shape"),
        ({"y_mean": np.zeros(225, np.float32)}, "y_mean: expected 226 values"),
        ({"y_mean": np.zeros((1, 226), np.float32)}, "y_mean: expected shape"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"n_threads": -2}, "n_threads"),
    ],
)
def test_binding_shape_errors(change: dict[str, Any], message: str) -> None:
    z, c, gamma, a, y = _problem(n=4)
    args = {"z": z, "centres": c, "gamma": gamma, "coefficients": a, "y_mean": y, "n_threads": 1}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        _core.laplacian_predict(**args)
