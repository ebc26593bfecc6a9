"""The latent distance (nearest training structure in a member network's last hidden layer) and
the predicted Δμ that carries it: fitting, the metadata entry, the networks' own activations
against a recomputation, and files whose entries do not fit together."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import EXAMPLES, read_xanesnet_xyz

import xanesnet
from xanesnet.model.calibration import CalibratedUncertainty
from xanesnet.model.calibration_fit import fit_calibration
from xanesnet.model.entries import encode_array
from xanesnet.model.latent import LatentDistance, fit_latent_distance
from xanesnet.model.network import NetworkConfig, SpectrumMLP
from xanesnet.model.precision import MemberNetwork
from xanesnet.model.runtime import XanesModel

#: predicted Δμ of one site computed through different row blockings (see the test below)
RTOL = 2e-5


@pytest.fixture(scope="module")
def model() -> XanesModel:
    return xanesnet.default_model("Fe", "K")


@pytest.fixture(scope="module")
def features(model) -> np.ndarray:
    complexes = [read_xanesnet_xyz(p) for p in sorted(EXAMPLES.glob("*.xyz"))[:16]]
    x, _ = model.descriptor.compute(complexes, "Fe", n_threads=1)
    return x


def clustered(n: int = 400, dim: int = 24, seed: int = 0) -> np.ndarray:
    """Points around 20 fixed centres (``seed`` draws the points, not the centres): training
    structures have close neighbours."""
    centres = np.random.default_rng(12345).normal(size=(20, dim)) * 5
    rng = np.random.default_rng(seed)
    return centres[rng.integers(0, 20, n)] + rng.normal(size=(n, dim))


# --- the entry --------------------------------------------------------------------------------


def test_training_structures_score_zero_and_new_ones_by_distance() -> None:
    train = clustered()
    entry = fit_latent_distance(train, n_components=24)
    # each training structure is its own nearest neighbour (float16-stored projections)
    assert np.all(entry.distance(train) < 1e-2)
    near = clustered(n=200, seed=1)  # same centres, new points
    far = near + 40.0
    assert 0.5 < np.median(entry.distance(near)) < 2.0  # about as close as training pairs
    assert np.all(entry.distance(far) > 5 * np.median(entry.distance(near)))
    assert entry.fit_figures["n_components"] == 24


def test_components_are_capped_by_the_data() -> None:
    entry = fit_latent_distance(clustered(n=10, dim=6), n_components=128)
    assert entry.axes.shape == (6, 6) and entry.training.shape == (10, 6)


def test_entry_round_trips_through_json() -> None:
    train, new = clustered(), clustered(n=50, seed=2)
    entry = fit_latent_distance(train, member=1, n_components=8, source="synthetic")
    again = LatentDistance.from_metadata(json.loads(json.dumps(entry.to_metadata())))
    np.testing.assert_array_equal(again.distance(new), entry.distance(new))
    assert again.member == 1 and again.source == "synthetic"


def test_entry_refuses_inconsistent_contents() -> None:
    data = fit_latent_distance(clustered(), n_components=8).to_metadata()
    with pytest.raises(ValueError, match="schema"):
        LatentDistance.from_metadata({**data, "schema": "xanesnet.latent_distance/999"})
    good = LatentDistance.from_metadata(data)
    with pytest.raises(ValueError, match="do not agree"):
        LatentDistance.from_metadata({**data, "axes": encoded(good.axes[:-1])})
    with pytest.raises(ValueError, match="normaliser > 0"):
        LatentDistance.from_metadata({**data, "normaliser": 0.0})
    centre = good.centre.copy()
    centre[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        LatentDistance.from_metadata({**data, "centre": encoded(centre)})
    with pytest.raises(ValueError, match="missing key"):
        LatentDistance.from_metadata({k: v for k, v in data.items() if k != "training"})
    with pytest.raises(ValueError, match="n_sites, 24"):
        LatentDistance.from_metadata(data).distance(np.zeros((3, 5)))


def encoded(values: np.ndarray) -> dict:
    """An array as a metadata entry stores it (float32)."""
    return encode_array(values, "float32")


def test_all_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        fit_latent_distance(np.ones((5, 4)))


# --- the activations --------------------------------------------------------------------------


def test_captured_activations_equal_last_hidden() -> None:
    torch.manual_seed(0)
    net = SpectrumMLP(7, 5, NetworkConfig(hidden=(16, 12), activation="silu", dropout=0.0))
    member = MemberNetwork.from_member(net, "test", torch.float32)
    x = torch.randn(9, 7)
    kept: list[torch.Tensor] = []
    out = member.from_standardised(member.standardise(x), kept)
    torch.testing.assert_close(out, member(x), rtol=0, atol=0)
    assert member.ends_linear and kept[0].shape == (9, 12)
    torch.testing.assert_close(kept[0], member.last_hidden(x), rtol=0, atol=0)
    half = MemberNetwork.from_member(net, "test", torch.bfloat16)
    kept_half: list[torch.Tensor] = []
    half.from_standardised(half.standardise(x), kept_half)
    assert kept_half[0].dtype == torch.bfloat16  # as that path computes them


# --- the predicted Δμ with the distance term -------------------------------------------------


def synthetic_with_distance(n: int = 3000, n_e: int = 16, seed: int = 0):
    """Errors from the spread and, independently, from a per-spectrum distance."""
    rng = np.random.default_rng(seed)
    y_true = 1.0 + rng.random((n, n_e))
    spread = 0.01 * rng.lognormal(0.0, 0.5, (n, 1)) * np.ones((1, n_e))
    distance = rng.lognormal(0.0, 0.6, n)
    scale = np.hypot(2 * spread, 0.02 * distance[:, None])
    y_pred = y_true + rng.normal(size=(n, n_e)) * scale
    return y_true, y_pred, spread, distance


def test_fit_with_distance_ranks_better_and_round_trips() -> None:
    y_true, y_pred, spread, distance = synthetic_with_distance()
    plain = fit_calibration(y_true, y_pred, spread)
    with_distance = fit_calibration(y_true, y_pred, spread, distance=distance)
    assert not plain.needs_distance and with_distance.needs_distance
    spread_weight, distance_weight = with_distance.distance_weights
    assert spread_weight > 0 and distance_weight > 0
    figures = with_distance.fit_figures
    assert figures["spearman_predicted_delta_mu"] > figures["spearman_spread_only"] + 0.1
    # σ is the spread's either way; only the per-spectrum Δμ takes the distance
    np.testing.assert_array_equal(with_distance.sigma(spread), plain.sigma(spread))
    data = json.loads(json.dumps(with_distance.to_metadata()))
    assert data["schema"].endswith("/2") and plain.to_metadata()["schema"].endswith("/1")
    again = CalibratedUncertainty.from_metadata(data)
    np.testing.assert_array_equal(
        again.predicted_delta_mu(spread, y_pred, distance),
        with_distance.predicted_delta_mu(spread, y_pred, distance),
    )
    with pytest.raises(ValueError, match="needs the latent distance"):
        again.predicted_delta_mu(spread, y_pred)
    with pytest.raises(ValueError, match="one per site"):
        again.predicted_delta_mu(spread, y_pred, distance[:-1])
    with pytest.raises(ValueError, match="distance_weights"):
        CalibratedUncertainty.from_metadata({**data, "distance_weights": [1.0]})


# --- through the model ------------------------------------------------------------------------


def test_predict_with_trust_equals_the_two_calls(model, features) -> None:
    assert model.trust_model.needs_latent_distance
    mean, spread, trust = model.predict_with_trust(features, n_threads=1)
    mean2, spread2 = model.predict_features(features, n_threads=1)
    again = model.trust(features, mean2, spread2)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(spread, spread2)
    # the activations of the call against a recomputation: the same float32 products
    np.testing.assert_allclose(
        trust.predicted_delta_mu, again.predicted_delta_mu, rtol=RTOL, atol=0
    )
    # bfloat16: the distance from the bfloat16 activations (8 significant bits), so the
    # predicted Δμ moves with the precision: by at most 4.2 % on the 815 validation complexes
    # (docs/calibration.md), far below its own error
    _, _, half = model.predict_with_trust(features, n_threads=1, precision="bfloat16")
    np.testing.assert_allclose(half.predicted_delta_mu, trust.predicted_delta_mu, rtol=0.1)
    assert not np.array_equal(half.predicted_delta_mu, trust.predicted_delta_mu)
    # several forward chunks against one: the float32 products of the layers may round
    # differently with the number of rows (last bits of the activations), and a site's
    # distance is a difference of activations up to ~10^3 times larger than itself (float32
    # ε 6e-8 × 10^3 ≈ 1e-4 on the distance of a site almost on a training structure; its
    # predicted Δμ is then the spread's term, so the sum moves far less)
    _, _, chunked = model.predict_with_trust(features, n_threads=1, batch_size=5)
    _, _, whole = model.predict_with_trust(features, n_threads=1)
    np.testing.assert_allclose(
        chunked.predicted_delta_mu, whole.predicted_delta_mu, rtol=RTOL, atol=0
    )


def test_a_calibration_that_needs_the_distance_is_ignored_without_it(model, features) -> None:
    metadata = {k: v for k, v in model.metadata.items() if k != "latent_distance"}
    with pytest.warns(RuntimeWarning, match="needs the latent_distance entry"):
        bare = XanesModel(model.module, metadata, model.path)
    assert bare.trust_model.calibration is None
    mean, spread, trust = bare.predict_with_trust(features[:3], n_threads=1)
    assert np.isnan(trust.predicted_delta_mu).all() and np.isnan(trust.sigma).all()
    assert np.isfinite(trust.domain_score).all()  # the other entries still serve


def test_a_latent_entry_that_does_not_fit_the_networks_is_ignored(model) -> None:
    entry = dict(model.metadata["latent_distance"], member=7)
    with pytest.warns(RuntimeWarning, match="latent_distance ignored .*member 7"):
        XanesModel(model.module, dict(model.metadata, latent_distance=entry), model.path)
    small = fit_latent_distance(clustered(dim=24), n_components=8).to_metadata()
    with pytest.warns(RuntimeWarning, match="24 activations, the member has 512"):
        XanesModel(model.module, dict(model.metadata, latent_distance=small), model.path)
