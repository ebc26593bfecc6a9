"""Networks clamp their standardised input to the training range: training rows unchanged bit
for bit, a descriptor beyond the range predicted as the nearest training value, the same in
the file's TorchScript forward and in every path of ``predict_features``; files without
bounds predict as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import untrained_ensemble

from xanesnet import WACSF
from xanesnet.model import NetworkConfig, SpectrumEnsemble, load_model, save_model
from xanesnet.model.files import quiet_torchscript
from xanesnet.model.network import (
    set_input_bounds,
    standardised_range,
    store_weights_as_float16,
)
from xanesnet.model.precision import MemberNetwork
from xanesnet.model.train import TrainConfig, train_member

ENERGIES = 7112.0 + np.linspace(-15.0, 60.0, 30)


@pytest.fixture(scope="module")
def features(example_structures) -> np.ndarray:
    return WACSF().compute(example_structures, n_threads=1)[0]


def _ensemble(x: np.ndarray, n_members: int = 2) -> SpectrumEnsemble:
    return untrained_ensemble(
        x, len(ENERGIES), n_members=n_members, seed=3, hidden=(24, 16), dropout=0.0
    )


def _beyond(x: np.ndarray) -> np.ndarray:
    """Rows far outside the range of ``x`` in every varying feature, both directions."""
    span = x.max(0) - x.min(0)
    return np.concatenate([x.max(0) + 50.0 * span, x.min(0) - 50.0 * span])[None].reshape(2, -1)


def _clamped_raw(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(rows, x.min(0), x.max(0))


def test_standardised_range_keeps_training_rows(features):
    member = _ensemble(features, 1).members[0]
    z_min, z_max = standardised_range(features, member.x_mean.numpy(), member.x_inv_scale.numpy())
    assert z_min.dtype == np.float32 and z_min.shape == (features.shape[1],)
    xt = torch.as_tensor(features, dtype=torch.float32)
    with torch.inference_mode():
        free = member.normalised(xt)
        member.z_min.copy_(torch.from_numpy(z_min))
        member.z_max.copy_(torch.from_numpy(z_max))
        bounded = member.normalised(xt)
    torch.testing.assert_close(bounded, free, rtol=0, atol=0)
    with pytest.raises(ValueError, match="features: expected a non-empty"):
        standardised_range(features[:0], member.x_mean.numpy(), member.x_inv_scale.numpy())


def test_unbounded_member_extrapolates_bounded_one_does_not(features):
    ensemble = _ensemble(features, 1)
    far = torch.as_tensor(_beyond(features), dtype=torch.float32)
    nearest = torch.as_tensor(_clamped_raw(_beyond(features), features), dtype=torch.float32)
    with torch.inference_mode():
        free_far, free_nearest = ensemble(far)[0], ensemble(nearest)[0]
        set_input_bounds(ensemble, features)
        bounded_far, bounded_nearest = ensemble(far)[0], ensemble(nearest)[0]
    assert not torch.equal(free_far, free_nearest)
    # clamping z equals standardising the clamped raw descriptor: the same floats
    torch.testing.assert_close(bounded_far, bounded_nearest, rtol=0, atol=0)
    torch.testing.assert_close(bounded_nearest, free_nearest, rtol=0, atol=0)


@pytest.mark.parametrize("half", [False, True])
def test_file_forward_and_predict_features_clamp_alike(features, tmp_path, half):
    ensemble = set_input_bounds(_ensemble(features, 2), features)
    if half:
        ensemble = store_weights_as_float16(ensemble)
    path = tmp_path / "bounded.pt"
    save_model(ensemble, path, descriptor=WACSF(), energies=ENERGIES, e0=7112.0, element="Fe")
    model = load_model(path)
    rows = np.concatenate([features, _beyond(features)])
    nearest = np.concatenate([features, _clamped_raw(_beyond(features), features)])
    # one batch: the file forward multiplies the same rows in one matrix product
    mean, spread = model.predict_features(rows, batch_size=len(rows))
    with torch.inference_mode():
        file_mean, file_spread = model.module(torch.as_tensor(rows, dtype=torch.float32))
    np.testing.assert_array_equal(mean, file_mean.numpy().astype(np.float64))
    np.testing.assert_array_equal(spread, file_spread.numpy().astype(np.float64))
    np.testing.assert_array_equal(mean, model.predict_features(nearest, batch_size=len(rows))[0])
    # bfloat16 clamps in float32 before rounding: the far rows read as the nearest ones
    far16 = model.predict_features(rows, precision="bfloat16", batch_size=7)[0]
    near16 = model.predict_features(nearest, precision="bfloat16", batch_size=7)[0]
    np.testing.assert_array_equal(far16[-2:], near16[-2:])


def test_member_network_reads_bounds_only_where_finite(features):
    free, bounded = _ensemble(features, 2).members
    set_input_bounds(SpectrumEnsemble([bounded]), features)
    with quiet_torchscript():
        scripted = torch.jit.script(free)
        scripted_bounded = torch.jit.script(bounded)
    rebuilt_free = MemberNetwork.from_member(scripted, dtype=torch.float32)
    rebuilt_bounded = MemberNetwork.from_member(scripted_bounded, dtype=torch.float32)
    assert rebuilt_free.z_min is None and rebuilt_free.z_max is None
    assert rebuilt_bounded.z_min is not None
    assert not rebuilt_free.same_input(rebuilt_bounded)
    far = torch.as_tensor(_beyond(features), dtype=torch.float32)
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt_free(far), scripted(far), rtol=0, atol=0)


def test_trained_member_is_bounded_by_its_training_rows(features):
    rng = np.random.default_rng(0)
    spectra = rng.normal(1.0, 0.1, size=(len(features), len(ENERGIES)))
    config = TrainConfig(
        network=NetworkConfig(hidden=(16,), activation="silu", dropout=0.0),
        epochs=2,
        batch_size=4,
    )
    member, _ = train_member(features, spectra, None, None, config, seed=0)
    z = (torch.as_tensor(features, dtype=torch.float32) - member.x_mean) * member.x_inv_scale
    torch.testing.assert_close(member.z_min, z.min(0).values, rtol=0, atol=0)
    torch.testing.assert_close(member.z_max, z.max(0).values, rtol=0, atol=0)
