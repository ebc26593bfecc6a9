"""Calibrated uncertainty: coverage, the σ fit, the metadata round trip, physical flags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xanesnet.model.calibration import (
    NOMINAL_COVERAGE,
    CalibratedUncertainty,
    calibration_from_model_metadata,
    clip_negative,
    coverage,
    physical_range_flags,
)
from xanesnet.model.calibration_fit import fit_calibration


def synthetic(n: int = 4000, n_e: int = 20, seed: int = 0):
    """Spectra with heteroscedastic Gaussian errors: σ_true = sqrt((2·spread)² + 0.01²)."""
    rng = np.random.default_rng(seed)
    energies = np.linspace(0.0, 1.0, n_e)
    y_true = 0.2 + np.abs(np.sin(3 * energies))[None, :] * rng.uniform(0.5, 1.5, (n, 1))
    spread = rng.uniform(0.001, 0.02, (n, 1)) * rng.uniform(0.2, 1.8, (n, n_e))
    sigma_true = np.sqrt((2.0 * spread) ** 2 + 0.01**2)
    y_pred = y_true + sigma_true * rng.normal(size=(n, n_e))
    return y_true, y_pred, spread, sigma_true


def test_coverage_counts_points_within_k_sigma() -> None:
    y_true = np.zeros((1, 4))
    y_pred = np.array([[0.5, -1.5, 2.5, 3.5]])
    sigma = np.ones((1, 4))
    assert coverage(y_true, y_pred, sigma) == {
        "within_1sigma": 0.25,
        "within_2sigma": 0.5,
        "within_3sigma": 0.75,
    }
    assert coverage(y_true, y_pred, sigma, ks=(4,)) == {"within_4sigma": 1.0}


def test_coverage_refuses_bad_sigma_and_shapes() -> None:
    with pytest.raises(ValueError, match="sigma"):
        coverage(np.zeros((1, 2)), np.zeros((1, 2)), -np.ones((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        coverage(np.zeros((1, 2)), np.zeros((1, 3)), np.ones((1, 2)))


def test_true_sigma_gives_nominal_coverage() -> None:
    y_true, y_pred, _, sigma_true = synthetic()
    shares = coverage(y_true, y_pred, sigma_true)
    # 80,000 independent points: binomial standard error below 0.002
    for k in (1, 2, 3):
        assert shares[f"within_{k}sigma"] == pytest.approx(NOMINAL_COVERAGE[k], abs=0.01)


def test_fit_recovers_scale_and_floor_and_calibrates() -> None:
    y_true, y_pred, spread, _ = synthetic(n=2000)
    calib = fit_calibration(y_true, y_pred, spread)
    # 2000 points per energy: the likelihood fit is good to a few per cent; coverage over
    # 40,000 points has a binomial standard error below 0.003
    assert np.allclose(calib.scale, 2.0, rtol=0.15)
    assert np.allclose(calib.floor, 0.01, rtol=0.3)
    assert np.all(calib.mean_scale < 0.5)  # no per-spectrum term in these errors
    raw = coverage(y_true, y_pred, spread)
    fitted = coverage(y_true, y_pred, calib.sigma(spread))
    assert raw["within_1sigma"] < 0.5
    for k in (1, 2):
        assert fitted[f"within_{k}sigma"] == pytest.approx(NOMINAL_COVERAGE[k], abs=0.02)
    # the per-spectrum estimate ranks spectra by their actual error
    actual = 100 * np.abs(y_pred - y_true).sum(axis=1) / np.abs(y_true).sum(axis=1)
    predicted = calib.predicted_delta_mu(spread, y_pred)
    assert predicted.shape == (len(y_true),)
    assert (
        np.corrcoef(np.argsort(np.argsort(predicted)), np.argsort(np.argsort(actual)))[0, 1] > 0.8
    )
    assert predicted.mean() == pytest.approx(actual.mean(), rel=1e-6)
    bound = calib.delta_mu_bound(spread, y_pred, level=0.9)
    assert np.mean(actual <= bound) == pytest.approx(0.9, abs=1e-3)


def test_fit_without_spread_gives_a_floor_only() -> None:
    y_true, y_pred, _, _ = synthetic(n=500)
    calib = fit_calibration(y_true, y_pred, np.zeros_like(y_true))
    assert np.all(calib.scale == 0)
    sigma = calib.sigma(None, n_sites=3)
    assert sigma.shape == (3, y_true.shape[1])
    assert np.allclose(sigma, calib.floor)
    with pytest.raises(ValueError, match="n_sites"):
        calib.sigma(None)


def test_metadata_round_trip_through_json() -> None:
    y_true, y_pred, spread, _ = synthetic(n=300)
    calib = fit_calibration(y_true, y_pred, spread, source="synthetic")
    text = json.dumps(calib.to_metadata(), allow_nan=False)
    again = CalibratedUncertainty.from_metadata(json.loads(text))
    assert np.array_equal(again.sigma(spread), calib.sigma(spread))
    assert np.array_equal(
        again.predicted_delta_mu(spread, y_pred), calib.predicted_delta_mu(spread, y_pred)
    )
    assert again.source == "synthetic"
    assert again.delta_mu_ratio_quantiles == calib.delta_mu_ratio_quantiles


def test_from_metadata_refuses_other_entries() -> None:
    with pytest.raises(ValueError, match="schema"):
        CalibratedUncertainty.from_metadata({"schema": "other"})
    y_true, y_pred, spread, _ = synthetic(n=50)
    data = fit_calibration(y_true, y_pred, spread).to_metadata()
    data["floor"] = data["floor"][:-1]
    with pytest.raises(ValueError, match="floor"):
        CalibratedUncertainty.from_metadata(data)
    del data["floor"]
    with pytest.raises(ValueError, match="missing key"):
        CalibratedUncertainty.from_metadata(data)


def test_sigma_checks_the_energy_grid() -> None:
    y_true, y_pred, spread, _ = synthetic(n=50)
    calib = fit_calibration(y_true, y_pred, spread)
    with pytest.raises(ValueError, match="n_sites"):
        calib.sigma(spread[:, :-1])


def test_physical_range_flags_and_clipping() -> None:
    y_true, y_pred, spread, _ = synthetic(n=200)
    calib = fit_calibration(y_true, y_pred, spread, range_margin=0.2)
    inside = y_true[:3].copy()
    negative = inside[0:1].copy()
    negative[0, 0] = -1e-3
    far = inside[0:1] + 2.0 * (calib.spectra_high - calib.spectra_low)
    flags = physical_range_flags(np.concatenate([inside, negative, far]), calib)
    assert flags.tolist() == [False, False, False, True, True]
    clipped, was_negative = clip_negative(negative)
    assert clipped.min() == 0.0 and was_negative.tolist() == [True]
    assert np.array_equal(clipped[0, 1:], negative[0, 1:])


def test_predicted_delta_mu_without_spectra_uses_the_training_sum() -> None:
    y_true, y_pred, spread, _ = synthetic(n=300)
    calib = fit_calibration(y_true, y_pred, spread)
    assert calib.reference_sum == pytest.approx(np.abs(y_true).sum(axis=1).mean())
    reference = np.broadcast_to(y_true.mean(axis=0), y_true.shape)
    scale = np.abs(reference).sum(axis=1) / calib.reference_sum
    assert np.allclose(
        calib.predicted_delta_mu(spread), calib.predicted_delta_mu(spread, reference) * scale
    )


def test_calibration_from_model_metadata() -> None:
    y_true, y_pred, spread, _ = synthetic(n=100)
    entry = fit_calibration(y_true, y_pred, spread).to_metadata()
    assert calibration_from_model_metadata({}) is None
    again = calibration_from_model_metadata({"uncertainty_calibration": entry})
    assert np.array_equal(
        again.sigma(spread), CalibratedUncertainty.from_metadata(entry).sigma(spread)
    )


def test_size_factor_scales_sigma_and_refits_the_delta_mu_map() -> None:
    y_true, y_pred, spread, _ = synthetic(n=500)
    plain = fit_calibration(y_true, y_pred, spread)
    scaled = fit_calibration(y_true, y_pred, spread, size_factor=0.9)
    np.testing.assert_allclose(scaled.sigma(spread), 0.9 * plain.sigma(spread), rtol=1e-12)
    # the Δμ map is fitted to the scaled σ: the same predicted Δμ on the fit data
    np.testing.assert_allclose(
        scaled.predicted_delta_mu(spread, y_pred), plain.predicted_delta_mu(spread, y_pred)
    )
    assert scaled.fit_figures["size_factor"] == 0.9 and "size_factor" not in plain.fit_figures
    with pytest.raises(ValueError, match="size_factor"):
        fit_calibration(y_true, y_pred, spread, size_factor=0.0)
