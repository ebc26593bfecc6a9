"""Tests of xanesnet.analysis (metrics, scores, peaks) on hand-computed cases with known answers."""

from __future__ import annotations

import functools
import json
import math
import warnings

import numpy as np
import pytest

from xanesnet.analysis import (
    SpectrumMetrics,
    delta_mu,
    evaluate_spectra,
    find_peaks,
    mse,
    peak_shift,
    r2_score,
    skewness,
)

# the standard grid of the published models: 226 points, E0 − 15 … E0 + 60 eV, step 1/3 eV
E0 = 7112.0
GRID = E0 + np.linspace(-15.0, 60.0, 226)


def gaussians(energies, centres, sigmas, amps):
    e = np.asarray(energies)[:, None]
    return np.sum(
        np.asarray(amps) * np.exp(-0.5 * ((e - np.asarray(centres)) / np.asarray(sigmas)) ** 2),
        axis=1,
    )


# ------------------------------------------------------------------------------------------
# Δμ


def test_delta_mu_each_norm_hand_computed():
    target = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    pred = np.array([[1.5, 2.0, 2.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    # spectrum 0: μ̂ − μ = (0.5, 0, −1, 0); Σ|μ| = Σμ = 10, max μ = 4
    # l1: 100 · 1.5 / 10 = 15
    np.testing.assert_allclose(delta_mu(pred, target), [15.0, 0.0])
    np.testing.assert_allclose(delta_mu(pred, target, "l1"), [15.0, 0.0])
    # l2: 100 · sqrt(0.25 + 1) / 10 = 10 · sqrt(1.25)
    np.testing.assert_allclose(delta_mu(pred, target, "l2"), [10.0 * math.sqrt(1.25), 0.0])
    # l2 with an energy step h = 0.25: sqrt(h·Σd²)/(h·Σμ) = the above / sqrt(0.25)
    np.testing.assert_allclose(
        delta_mu(pred, target, "l2", step=0.25), [20.0 * math.sqrt(1.25), 0.0]
    )
    # max: 100 · mean|d| / max μ = 100 · (1.5 / 4) / 4 = 9.375
    np.testing.assert_allclose(delta_mu(pred, target, "max"), [9.375, 0.0])


def test_delta_mu_l1_uses_absolute_target():
    target = np.array([-1.0, 1.0, 2.0])
    pred = np.array([0.0, 1.0, 2.0])
    # 100 · 1 / (1 + 1 + 2) = 25
    out = delta_mu(pred, target)
    assert out.shape == ()
    assert float(out) == pytest.approx(25.0)


def test_delta_mu_is_scale_invariant_and_vectorised():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.5, 2.0, size=(7, 226))
    pred = target + rng.normal(0, 0.05, size=target.shape)
    for norm in ("l1", "l2", "max"):
        d = delta_mu(pred, target, norm)
        assert d.shape == (7,)
        np.testing.assert_allclose(delta_mu(3.0 * pred, 3.0 * target, norm), d)
        np.testing.assert_allclose([float(delta_mu(p, t, norm)) for p, t in zip(pred, target)], d)


def test_delta_mu_errors():
    with pytest.raises(ValueError, match=r"pred and target.*\(2, 5\).*\(2, 4\)"):
        delta_mu(np.ones((2, 5)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="norm"):
        delta_mu(np.ones(3), np.ones(3), "l3")
    with pytest.raises(ValueError, match="step"):
        delta_mu(np.ones(3), np.ones(3), "l2", step=0.0)
    with pytest.raises(ValueError, match="pred and target"):
        delta_mu(np.ones((2, 2, 3)), np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="pred"):
        delta_mu(np.array([1.0, np.nan]), np.ones(2))


# ------------------------------------------------------------------------------------------
# skewness, R², MSE


def test_skewness_known_values():
    # x = (1, 2, 3, 10): mean 4, deviations (−3, −2, −1, 6)
    # m2 = (9 + 4 + 1 + 36)/4 = 12.5, m3 = (−27 − 8 − 1 + 216)/4 = 45
    assert skewness([1.0, 2.0, 3.0, 10.0]) == pytest.approx(45.0 / 12.5**1.5)
    assert skewness([1.0, 2.0, 3.0]) == pytest.approx(0.0, abs=1e-15)
    assert skewness([3.0, 2.0, 1.0, -6.0]) == pytest.approx(-45.0 / 12.5**1.5)
    assert math.isnan(skewness([2.0, 2.0, 2.0]))
    assert math.isnan(skewness([]))


def test_skewness_of_a_constant_sample_is_nan_without_warnings():
    # constant within rounding (a few ulp of the mean): undefined, and no scipy
    # "catastrophic cancellation" warning reaches the caller
    nearly = 0.1 + np.array([0.0, 1.0, 2.0, 0.0]) * np.spacing(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(skewness(nearly))
        assert math.isnan(skewness(np.zeros(4)))
        assert skewness([0.0, 0.0, 1.0]) == pytest.approx(2.0**-0.5)  # mean 0: not constant


def test_skewness_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for x in (rng.lognormal(1.0, 0.6, 500), rng.normal(size=31), np.array([5.5, 3.2, 4.4, 9.0])):
        assert skewness(x) == pytest.approx(float(stats.skew(x)), rel=1e-12, abs=1e-14)


def test_r2_perfect_and_textbook():
    y = np.array([3.0, -0.5, 2.0, 7.0])
    assert r2_score(y, y) == 1.0
    # ŷ = (2.5, 0, 2, 8): SS_res = 0.25 + 0.25 + 0 + 1 = 1.5;
    # mean y = 2.875, SS_tot = 0.125² + 3.375² + 0.875² + 4.125² = 29.1875
    pred = np.array([2.5, 0.0, 2.0, 8.0])
    assert r2_score(pred, y) == pytest.approx(1.0 - 1.5 / 29.1875)
    assert r2_score(pred, y) == pytest.approx(0.9486081370449679)
    # predicting the mean gives 0; the argument order matters (target = 2nd argument)
    assert r2_score(np.full(4, y.mean()), y) == pytest.approx(0.0)
    assert r2_score(y, pred) != pytest.approx(r2_score(pred, y))
    assert math.isnan(r2_score([1.0, 2.0], [3.0, 3.0]))
    assert math.isnan(r2_score([], []))
    with pytest.raises(ValueError, match=r"pred and target.*\(3,\).*\(2,\)"):
        r2_score(np.ones(3), np.ones(2))


def test_mse():
    assert mse([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [3.0, 5.0]]) == pytest.approx(5.0 / 4.0)
    with pytest.raises(ValueError, match="pred and target"):
        mse(np.ones((2, 2)), np.ones((2, 3)))


# ------------------------------------------------------------------------------------------
# peaks


def test_peaks_of_gaussians_refined_to_true_centres():
    e = 7100.0 + np.arange(0.0, 75.0 + 1e-9, 0.05)
    centres = [7110.123, 7130.4567, 7155.789]
    mu = gaussians(e, centres, [1.5, 2.0, 2.5], [1.0, 0.6, 0.3])
    pk = find_peaks(e, mu)
    np.testing.assert_allclose(pk.energies, centres, atol=1e-3)
    np.testing.assert_allclose(pk.heights, [1.0, 0.6, 0.3], atol=1e-4)
    # the refinement beats the grid: error far below half a step
    assert np.max(np.abs(pk.energies - centres)) < 1e-3
    np.testing.assert_array_equal(pk.indices, np.round((np.array(centres) - 7100) / 0.05))


def test_peaks_on_standard_grid_refined():
    mu = gaussians(GRID, [E0 + 2.1, E0 + 20.05], [2.0, 3.0], [1.5, 0.8])
    pk = find_peaks(GRID, mu)
    # a Gaussian of σ = 2 eV sampled every 1/3 eV: parabola error ≲ 0.01 eV
    np.testing.assert_allclose(pk.energies, [E0 + 2.1, E0 + 20.05], atol=0.01)


def test_parabolic_refinement_exact_for_parabola():
    e = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    mu = 5.0 - (e - 1.8) ** 2  # vertex at 1.8, height 5; grid maximum at e = 2
    pk = find_peaks(e, mu)
    assert pk.energies == pytest.approx([1.8])
    assert pk.heights == pytest.approx([5.0])
    # non-uniform grid: still the exact vertex
    e2 = np.array([0.0, 1.1, 2.05, 3.5, 4.0])
    pk2 = find_peaks(e2, 5.0 - (e2 - 1.8) ** 2)
    assert pk2.energies == pytest.approx([1.8])
    assert pk2.heights == pytest.approx([5.0])


def test_prominence_hand_computed():
    # maxima: index 1 (5), index 3 (3), index 5 (4)
    mu = np.array([0.0, 5.0, 1.0, 3.0, 2.0, 4.0, 0.0])
    e = np.arange(7.0)
    pk = find_peaks(e, mu, min_prominence=0.0)
    np.testing.assert_array_equal(pk.indices, [1, 3, 5])
    # index 1: no higher point either side → min 0 both sides → 5
    # index 3: higher points at 1 and 5; minima between: 1 (left), 2 (right) → 3 − 2 = 1
    # index 5: higher point at 1 → left min 1; right runs to the end → min 0 → 4 − 1 = 3
    np.testing.assert_allclose(pk.prominences, [5.0, 1.0, 3.0])
    # threshold = fraction · max μ = fraction · 5
    np.testing.assert_array_equal(find_peaks(e, mu, 0.2).indices, [1, 3, 5])  # 1 >= 1
    np.testing.assert_array_equal(find_peaks(e, mu, 0.25).indices, [1, 5])  # 1 < 1.25
    np.testing.assert_array_equal(find_peaks(e, mu, 0.7).indices, [1])


def test_small_shoulder_below_two_percent_ignored():
    e = np.arange(0.0, 75.0, 0.05)
    main = gaussians(e, [30.0], [3.0], [1.0])
    # a small separate bump far in the tail: prominence ≈ its amplitude
    small = main + gaussians(e, [50.0], [0.5], [0.01])
    assert len(find_peaks(e, small).energies) == 1  # 1 % < 2 %: ignored
    assert len(find_peaks(e, small, min_prominence=0.005).energies) == 2
    big = main + gaussians(e, [50.0], [0.5], [0.03])
    pk = find_peaks(e, big)  # 3 % ≥ 2 %: kept
    np.testing.assert_allclose(pk.energies, [30.0, 50.0], atol=1e-3)
    np.testing.assert_allclose(pk.prominences[1], 0.03, rtol=1e-3)


def test_plateau_is_one_peak_at_its_centre():
    e = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    pk = find_peaks(e, np.array([0.0, 1.0, 2.0, 2.0, 1.0, 0.0]))
    assert pk.energies == pytest.approx([2.5])
    assert pk.heights == pytest.approx([2.0])
    assert pk.indices.tolist() == [2]
    # a plateau with a higher neighbour on one side is no maximum
    assert find_peaks(e, np.array([0.0, 1.0, 1.0, 2.0, 1.0, 0.0])).energies == pytest.approx([3.0])


def test_edge_maxima():
    e = np.arange(0.0, 75.0, 0.25)
    # a peak at 20 and a rise to the end of the window (μ[-1] = 0.5 < 1)
    mu = gaussians(e, [20.0], [2.0], [1.0]) + 0.5 * np.exp((e - e[-1]) / 5.0)
    assert mu[-1] > mu[-2]
    pk = find_peaks(e, mu)
    np.testing.assert_allclose(pk.energies, [20.0], atol=1e-3)  # edge excluded by default
    pk_edges = find_peaks(e, mu, include_edges=True)
    assert pk_edges.energies[1] == e[-1]
    assert pk_edges.heights[1] == pytest.approx(mu[-1])
    # the edge peak's prominence: above the valley between it and the higher peak at 20
    valley = mu[(e > 20) & (e < e[-1])].min()
    assert pk_edges.prominences[1] == pytest.approx(mu[-1] - valley)
    # a decreasing start: maximum at the first point
    dec = np.linspace(1.0, 0.0, 10)
    assert find_peaks(np.arange(10.0), dec).energies.size == 0
    assert find_peaks(np.arange(10.0), dec, include_edges=True).energies.tolist() == [0.0]


def test_no_peaks():
    e = np.arange(10.0)
    for mu in (np.zeros(10), np.linspace(0, 1, 10), np.ones(10)):
        pk = find_peaks(e, mu)
        assert pk.energies.shape == pk.heights.shape == pk.indices.shape == (0,)


def test_find_peaks_matches_scipy_on_random_data():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(2)
    e = np.arange(60.0)
    for trial in range(40):
        # integers give plateaus too
        mu = rng.integers(0, 6, 60).astype(float) if trial % 2 else rng.random(60)
        thr = 0.02 * mu.max()
        idx, props = signal.find_peaks(mu, prominence=thr)
        keep = props["prominences"] > 0
        pk = find_peaks(e, mu)
        np.testing.assert_array_equal(pk.indices, idx[keep])
        np.testing.assert_allclose(pk.prominences, props["prominences"][keep])


def test_find_peaks_errors():
    with pytest.raises(ValueError, match="mu"):
        find_peaks(np.arange(5.0), np.ones((2, 5)))
    with pytest.raises(ValueError, match="energies.*5.*4"):
        find_peaks(np.arange(5.0), np.ones(4))
    with pytest.raises(ValueError, match="increasing"):
        find_peaks(np.array([0.0, 2.0, 1.0]), np.ones(3))


# ------------------------------------------------------------------------------------------
# ΔE


def test_delta_e_of_shifted_spectra():
    centres = np.array([E0 - 2.0, E0 + 8.0, E0 + 25.0, E0 + 45.0])
    sig, amp = [1.5, 2.5, 3.0, 3.5], [1.2, 0.9, 0.5, 0.35]
    target = np.stack([gaussians(GRID, centres + s, sig, amp) for s in (0.0, 1.7, -3.1)])
    pred = np.stack([gaussians(GRID, centres + s + 0.5, sig, amp) for s in (0.0, 1.7, -3.1)])
    ps = peak_shift(GRID, pred, target)
    assert ps.n_pairs == 12
    assert ps.delta_e == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(ps.pred_energies - ps.target_energies, 0.5, atol=0.02)
    np.testing.assert_array_equal(ps.spectrum_index, np.repeat([0, 1, 2], 4))
    assert ps.pairs.shape == (12, 2)
    assert ps.unmatched_spectra.size == 0
    # R² of peak energies: 1 − Σ(0.5)² / Σ(E_t − mean)², close to 1 for peaks tens of eV apart
    te = ps.target_energies
    expected = 1.0 - np.sum((ps.pred_energies - te) ** 2) / np.sum((te - te.mean()) ** 2)
    assert ps.r2 == pytest.approx(expected)
    assert 0.99 < ps.r2 < 1.0
    main = peak_shift(GRID, pred, target, peaks="main")
    assert main.n_pairs == 3
    np.testing.assert_allclose(main.target_energies, centres[0] + [0.0, 1.7, -3.1], atol=0.01)
    assert main.delta_e == pytest.approx(0.5, abs=0.01)


def test_main_vs_all_peaks():
    e = np.arange(0.0, 60.0, 0.05)
    target = gaussians(e, [10.0, 30.0], [1.5, 1.5], [1.0, 0.5])
    # predicted: main peak 0.4 eV high, second peak at 28 (nearest to 30), a third at 45
    pred = gaussians(e, [10.4, 28.0, 45.0], [1.5, 1.5, 1.5], [1.0, 0.5, 0.3])
    all_ = peak_shift(e, pred, target, "all")
    np.testing.assert_allclose(all_.pairs, [[10.0, 10.4], [30.0, 28.0]], atol=1e-3)
    assert all_.delta_e == pytest.approx((0.4 + 2.0) / 2, abs=1e-3)
    main = peak_shift(e, pred, target, "main")
    np.testing.assert_allclose(main.pairs, [[10.0, 10.4]], atol=1e-3)
    assert main.delta_e == pytest.approx(0.4, abs=1e-3)
    # "main" pairs the largest peak of each, even when they are far apart
    swapped = gaussians(e, [10.0, 30.0], [1.5, 1.5], [0.5, 1.0])
    assert peak_shift(e, swapped, target, "main").delta_e == pytest.approx(20.0, abs=1e-3)
    assert peak_shift(e, swapped, target, "all").delta_e == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="peaks"):
        peak_shift(e, pred, target, "largest")


def test_empty_peak_spectra_reported():
    e = np.arange(0.0, 60.0, 0.25)
    peaked = gaussians(e, [20.0], [2.0], [1.0])
    flat = np.linspace(0.1, 1.0, e.size)  # monotonic: no peak (edges excluded)
    target = np.stack([peaked, flat, peaked])
    pred = np.stack([gaussians(e, [21.0], [2.0], [1.0]), peaked, flat])
    ps = peak_shift(e, pred, target)
    assert ps.n_pairs == 1
    assert ps.unmatched_spectra.tolist() == [1, 2]  # no target peak; no predicted peak
    assert ps.delta_e == pytest.approx(1.0, abs=1e-3)
    none = peak_shift(e, flat, flat)
    assert none.n_pairs == 0 and none.n_spectra == 1
    assert none.unmatched_spectra.tolist() == [0]
    assert math.isnan(none.delta_e) and math.isnan(none.r2)
    assert none.pairs.shape == (0, 2)


def test_peak_shift_shape_errors():
    with pytest.raises(ValueError, match=r"pred and target.*\(2, 10\).*\(3, 10\)"):
        peak_shift(np.arange(10.0), np.ones((2, 10)), np.ones((3, 10)))
    with pytest.raises(ValueError, match="energies.*9.*pred/target.*10"):
        peak_shift(np.arange(9.0), np.ones((2, 10)), np.ones((2, 10)))


# ------------------------------------------------------------------------------------------
# evaluate_spectra


def _moving_average(mu, width=9):
    k = np.ones(width) / width
    return np.stack([np.convolve(np.pad(m, width // 2, mode="edge"), k, "valid") for m in mu])


def test_evaluate_spectra_perfect_prediction():
    target = np.stack([gaussians(GRID, [E0 + 5, E0 + 30], [2, 4], [1, 0.4]) + 0.1] * 3)
    m = evaluate_spectra(GRID, target, target)
    assert m.delta_mu_avg == 0.0 and m.delta_mu_median == 0.0
    assert math.isnan(m.skew)  # constant Δμ: undefined
    assert m.delta_e_avg == 0.0
    assert m.r2_peaks == 1.0 and m.r2_intensity == 1.0 and m.mse == 0.0
    assert m.n_spectra == 3 and m.n_peak_pairs == 6 and m.n_unmatched_spectra == 0
    assert m.post_broadening_delta_mu_avg is None


def test_evaluate_spectra_values_and_definitions():
    rng = np.random.default_rng(3)
    centres = np.array([E0 + 1.0, E0 + 15.0, E0 + 40.0])
    target = np.stack(
        [gaussians(GRID, centres + s, [2, 3, 4], [1.0, 0.5, 0.3]) + 0.05 for s in (0, 1, 2, 3)]
    )
    pred = np.stack(
        [
            gaussians(GRID, centres + s + 0.3, [2, 3, 4], [1.0, 0.5, 0.3]) + 0.05
            for s in (0, 1, 2, 3)
        ]
    )
    pred = pred + rng.normal(0, 0.002, pred.shape)
    m = evaluate_spectra(GRID, pred, target, norm="l2", peaks="main", broaden=_moving_average)
    d = delta_mu(pred, target, "l2")
    assert m.delta_mu_avg == pytest.approx(d.mean())
    assert m.delta_mu_median == pytest.approx(np.median(d))
    assert m.skew == pytest.approx(skewness(d))
    ps = peak_shift(GRID, pred, target, "main")
    assert m.delta_e_avg == pytest.approx(ps.delta_e)
    assert m.delta_e_avg == pytest.approx(0.3, abs=0.02)
    assert m.r2_peaks == pytest.approx(ps.r2)
    assert m.r2_intensity == pytest.approx(r2_score(pred, target))
    assert m.mse == pytest.approx(np.mean((pred - target) ** 2))
    assert m.n_peak_pairs == 4
    bd = delta_mu(_moving_average(pred), _moving_average(target), "l2")
    assert m.post_broadening_delta_mu_avg == pytest.approx(bd.mean())
    assert m.post_broadening_delta_mu_avg < m.delta_mu_avg  # broadening hides error
    assert "l2" in m.definitions["delta_mu"] and "main" in m.definitions["delta_e"]
    assert "_moving_average" in m.definitions["broadening"]
    # an explicit label, e.g. the arctangent parameters
    lab = "arctangent Γ_hole=2 Γ_max=15 E_cent=30 E_larg=30 e_F=−5 eV"
    m2 = evaluate_spectra(
        GRID, pred, target, broaden=functools.partial(_moving_average, width=5), broaden_label=lab
    )
    assert m2.definitions["broadening"] == lab
    assert m2.definitions["delta_mu"].startswith("norm='l1'")


def test_evaluate_spectra_single_spectrum_and_empty_peaks():
    e = np.arange(0.0, 60.0, 0.25)
    flat = np.linspace(0.1, 1.0, e.size)
    m = evaluate_spectra(e, flat * 1.1, flat)
    assert m.n_spectra == 1 and m.n_peak_pairs == 0 and m.n_unmatched_spectra == 1
    assert m.delta_mu_avg == pytest.approx(10.0)
    assert math.isnan(m.delta_e_avg) and math.isnan(m.r2_peaks)
    d = m.to_dict()
    assert d["delta_e_avg"] is None and d["r2_peaks"] is None
    assert "nan" in m.table_row()


def test_evaluate_spectra_errors():
    e = np.arange(10.0)
    with pytest.raises(ValueError, match="pred and target"):
        evaluate_spectra(e, np.ones((2, 10)), np.ones((2, 9)))
    with pytest.raises(ValueError, match="energies"):
        evaluate_spectra(np.arange(11.0), np.ones((2, 10)), np.ones((2, 10)))
    with pytest.raises(ValueError, match="broaden"):
        evaluate_spectra(e, np.ones((2, 10)), np.ones((2, 10)), broaden=lambda mu: mu[:, :5])
    with pytest.raises(ValueError, match="norm"):
        evaluate_spectra(e, np.ones((2, 10)), np.ones((2, 10)), norm="l0")


def test_table_row_and_json():
    m = SpectrumMetrics(
        delta_mu_avg=4.71,
        delta_mu_median=4.1,
        skew=1.6071,
        delta_e_avg=0.8312,
        r2_peaks=0.99612,
        r2_intensity=0.98,
        mse=1e-4,
        n_spectra=100,
        n_peak_pairs=350,
        post_broadening_delta_mu_avg=3.08,
        definitions={"delta_mu": "norm='l1'"},
    )
    assert m.table_row("Fe") == "| Fe | 4.7 (3.1) | 1.607 | 0.83 | 0.996 |"
    assert m.table_row() == "| 4.7 (3.1) | 1.607 | 0.83 | 0.996 |"
    no_post = SpectrumMetrics(4.71, 4.1, 1.6071, 0.8312, 0.99612, 0.98, 1e-4, 100, 350)
    assert no_post.table_row("Fe") == "| Fe | 4.7 | 1.607 | 0.83 | 0.996 |"
    header = SpectrumMetrics.table_header().splitlines()
    assert header[0] == "| edge | Δμ_avg % (post-broadening) | skew | ΔE eV | R² |"
    assert header[1].count("|") == m.table_row("Fe").count("|")
    plain = SpectrumMetrics.table_header("Fe", post_broadening=False).splitlines()[0]
    assert plain == "| Fe | Δμ_avg % | skew | ΔE eV | R² |"
    text = json.dumps(m.to_dict(), allow_nan=False)
    back = json.loads(text)
    assert back["post_broadening_delta_mu_avg"] == 3.08
    assert back["definitions"] == {"delta_mu": "norm='l1'"}
    assert back["n_peak_pairs"] == 350
    assert "delta_mu: norm='l1'" in m.definitions_text()
    real = evaluate_spectra(GRID, np.ones((2, 226)) * 1.1, np.ones((2, 226)))
    json.dumps(real.to_dict(), allow_nan=False)
