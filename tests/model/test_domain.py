"""Out-of-domain score: ≈ 1 for training-like sites, above the threshold for a crystal and a
strongly perturbed complex; metadata round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from helpers import EXAMPLES, read_xanesnet_xyz

import xanesnet
from xanesnet.model.domain import DomainScore, domain_from_model_metadata, fit_domain, roc_auc


@pytest.fixture(scope="module")
def descriptor():
    return xanesnet.default_model("Fe", "K").descriptor


@pytest.fixture(scope="module")
def complexes() -> list:
    return [read_xanesnet_xyz(p) for p in sorted(EXAMPLES.glob("*.xyz"))]


@pytest.fixture(scope="module")
def fitted(descriptor, complexes):
    """A small domain fitted on 80 example complexes; the other 20 are held out."""
    features, _ = descriptor.compute(complexes, 0, n_threads=1)
    domain, held_out = fit_domain(features[:80], n_centres=16, n_folds=4, quantile=0.95)
    return domain, held_out, features[80:]


def displaced(atoms, length: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=atoms.positions.shape)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    copy = atoms.copy()
    copy.positions = copy.positions + length * direction
    return copy


def test_training_like_sites_score_about_one(fitted) -> None:
    domain, held_out, new_features = fitted
    assert np.median(held_out) == pytest.approx(1.0)
    scores = domain.score_features(new_features)
    assert 0.5 < np.median(scores) < 2.0
    assert np.mean(domain.is_outside(scores)) <= 0.25


def test_crystal_and_perturbed_complex_score_outside(fitted, descriptor, complexes) -> None:
    domain = fitted[0]
    crystal, _ = descriptor.compute([bulk("FeO", "rocksalt", a=4.33)], "Fe", n_threads=1)
    far, _ = descriptor.compute([displaced(complexes[85], 0.5)], 0, n_threads=1)
    for features in (crystal, far):
        score = domain.score_features(features)
        assert score.shape == (1,)
        assert domain.is_outside(score).all(), score


def test_round_trip_through_json(fitted) -> None:
    domain, _, new_features = fitted
    again = DomainScore.from_metadata(json.loads(json.dumps(domain.to_metadata())))
    # the centres were rounded to float16 when fitted, so nothing is lost in storage
    assert np.array_equal(again.score_features(new_features), domain.score_features(new_features))
    assert again.threshold == domain.threshold
    assert np.array_equal(
        again.is_outside(np.array([0.0, np.nan, again.threshold * 2])), [False, True, True]
    )


def test_from_metadata_refuses_bad_entries(fitted) -> None:
    data = fitted[0].to_metadata()
    with pytest.raises(ValueError, match="schema"):
        DomainScore.from_metadata({**data, "schema": "other"})
    with pytest.raises(ValueError, match="fill shape"):
        DomainScore.from_metadata({**data, "centres": {**data["centres"], "shape": [3, 5]}})
    with pytest.raises(ValueError, match="missing key"):
        DomainScore.from_metadata({k: v for k, v in data.items() if k != "threshold"})
    with pytest.raises(ValueError, match="n_sites"):
        fitted[0].score(np.zeros((2, 3)))


def test_roc_auc() -> None:
    assert roc_auc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert roc_auc([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert roc_auc([1.0, 1.0], [1.0]) == 0.5


def test_shipped_model_domain(descriptor, complexes) -> None:
    """Once the shipped Fe model carries its domain entry: examples in, crystal out."""
    domain = domain_from_model_metadata(xanesnet.default_model("Fe", "K").metadata)
    if domain is None:
        pytest.skip("the shipped model carries no domain entry yet")
    features, _ = descriptor.compute(complexes, 0, n_threads=1)
    scores = domain.score_features(features)
    assert 0.5 < np.median(scores) < 1.5
    assert np.mean(domain.is_outside(scores)) <= 0.05
    crystal, _ = descriptor.compute([bulk("Fe", "bcc", a=2.8665)], "Fe", n_threads=1)
    assert domain.is_outside(domain.score_features(crystal)).all()


def test_training_domain_and_kfold_calibration_of_a_small_model(example_structures):
    """The entries ``xanesnet train`` writes: training sites score about 1 (held-out median),
    centres capped for a small set; k-fold σ refuses impossible fold counts."""
    import pytest

    from xanesnet import WACSF
    from xanesnet.model import NetworkConfig, TrainConfig, train_ensemble
    from xanesnet.model.trust_fit import kfold_calibration, training_domain

    features = WACSF(n_g2=8, n_g4=8).compute(example_structures[:40], n_threads=1)[0]
    spectra = np.random.default_rng(0).normal(1.0, 0.1, size=(40, 12))
    config = TrainConfig(
        network=NetworkConfig(hidden=(8,), activation="silu", dropout=0.0),
        epochs=1,
        batch_size=8,
        n_members=2,
    )
    ensemble, _ = train_ensemble(features, spectra, None, None, config)
    domain = training_domain(ensemble, features)
    assert domain.centres.shape[0] == 10  # a quarter of the 40 training sites
    assert 0.5 < float(np.median(domain.score_features(features))) <= 1.0
    calibration = kfold_calibration(features, spectra, config, 2)
    assert calibration.sigma(np.zeros((1, 12))).shape == (1, 12)
    with pytest.raises(ValueError, match="expected 2 <= folds <= 40"):
        kfold_calibration(features, spectra, config, 41)
