"""Fitting :class:`~xanesnet.model.calibration.CalibratedUncertainty` on held-out predictions.

The σ model is fitted by Gaussian likelihood per energy point, then scaled by one coverage
factor (held-out errors are heavier-tailed than a Gaussian); the predicted Δμ is matched to
the held-out mean, optionally with the latent-distance term (:mod:`.latent`); the Δμ bound
factors are quantiles of actual / predicted. The held-out predictions come from k-fold
stand-ins of the model (``scripts/fe_k_edge/calibrate.py``, :mod:`.trust_fit`), never from the
validation split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from xanesnet.model.calibration import NOMINAL_COVERAGE, CalibratedUncertainty, coverage

__all__ = ["fit_calibration"]


def _fit_variance_model(
    residual: np.ndarray, spread: np.ndarray, iterations: int = 500
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-energy (a, c, b) minimising the Gaussian negative log-likelihood of the residuals
    under σ² = a²·spread² + c²·mean_spread² + b² (L-BFGS on log a, log c, log b, all energies
    at once; mean_spread is each spectrum's spread averaged over energies)."""
    import torch

    r2 = torch.as_tensor(residual**2)
    s2 = torch.as_tensor(spread**2)
    m2 = torch.as_tensor(spread.mean(axis=1, keepdims=True) ** 2).expand_as(s2)
    mean_r2 = r2.mean(dim=0).clamp_min(1e-30)
    has_spread = bool((s2 > 0).any())

    # start: a third of the mean squared residual from each term
    def start(term: torch.Tensor) -> torch.Tensor:
        mean = term.mean(dim=0)
        ratio = torch.where(mean > 0, mean_r2 / (3 * mean.clamp_min(1e-30)), torch.ones_like(mean))
        return 0.5 * ratio.log()

    log_b = (0.5 * (mean_r2 / 3).log()).clone().requires_grad_(True)
    log_a = start(s2).clone().requires_grad_(has_spread)
    log_c = start(m2).clone().requires_grad_(has_spread)
    params = [log_a, log_c, log_b] if has_spread else [log_b]
    optimiser = torch.optim.LBFGS(params, max_iter=iterations, line_search_fn="strong_wolfe")

    def variance() -> torch.Tensor:
        if not has_spread:
            return (2 * log_b).exp().expand_as(r2)
        return (2 * log_a).exp() * s2 + (2 * log_c).exp() * m2 + (2 * log_b).exp()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        var = variance()
        loss = 0.5 * (var.log() + r2 / var).mean()
        loss.backward()
        return loss

    optimiser.step(closure)
    if not has_spread:
        zeros = np.zeros(residual.shape[1])
        return zeros, zeros.copy(), log_b.detach().exp().numpy()
    return tuple(t.detach().exp().numpy() for t in (log_a, log_c, log_b))


def _coverage_factor(residual: np.ndarray, sigma: np.ndarray) -> float:
    """The common factor κ of σ that brings the ±1σ and ±2σ coverage nearest to nominal
    (the largest of the two deviations smallest): held-out residuals are heavier-tailed than
    a Gaussian, so the likelihood fit alone over-covers at 1σ."""
    z = np.sort((np.abs(residual) / np.maximum(sigma, 1e-300)).ravel())
    factors = np.linspace(0.5, 2.0, 301)

    def share(k: float) -> np.ndarray:
        return np.searchsorted(z, k * factors, side="right") / len(z)

    worst = np.maximum(
        np.abs(share(1.0) - NOMINAL_COVERAGE[1]), np.abs(share(2.0) - NOMINAL_COVERAGE[2])
    )
    return float(factors[np.argmin(worst)])


def _fit_distance_weights(
    actual: np.ndarray, gaussian: np.ndarray, distance: np.ndarray
) -> tuple[float, float]:
    """(α, λ) of ``hypot(α · gaussian, λ · distance)`` nearest to the actual Δμ in log space
    (least squares on the logarithms: a multiplicative error model, so the many small errors
    weigh as much as the few large ones)."""
    from scipy.optimize import minimize

    keep = (actual > 0) & (gaussian > 0) & np.isfinite(distance)
    log_actual, g, d = np.log(actual[keep]), gaussian[keep], distance[keep]

    def loss(params: np.ndarray) -> float:
        predicted = np.hypot(math.exp(params[0]) * g, math.exp(params[1]) * d)
        return float(np.mean((log_actual - np.log(np.maximum(predicted, 1e-300))) ** 2))

    start = np.array([0.0, math.log(np.median(actual[keep]) / max(np.median(d), 1e-12))])
    result = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-12})
    return math.exp(result.x[0]), math.exp(result.x[1])


def fit_calibration(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    spread: np.ndarray,
    *,
    distance: np.ndarray | None = None,
    reference_spectra: np.ndarray | None = None,
    range_margin: float = 0.2,
    quantile_levels: Sequence[float] = (0.5, 0.9, 0.95),
    source: str = "",
    size_factor: float = 1.0,
) -> CalibratedUncertainty:
    """Fit the σ model and the Δμ map on held-out predictions.

    Args:
        y_true: (n, n_energies) reference spectra of sites no member was trained on.
        y_pred: (n, n_energies) held-out (out-of-fold) predictions.
        spread: (n, n_energies) their spread (zeros for a single network).
        size_factor: multiplies σ after the coverage factor: the held-out stand-ins were
            trained on fewer structures than the model and err more per unit of spread (a
            factor < 1 from a learning curve, ``scripts/fe_k_edge/calibrate.py
            --size-correction``); the Δμ map is then fitted to the scaled σ.
        distance: (n,) latent distance of each held-out site (:mod:`.latent`, from the
            model that made the held-out predictions); with it, the predicted Δμ also
            carries the distance term (``distance_weights``).
        reference_spectra: the training spectra whose per-energy range
            :func:`physical_range_flags` checks against (default ``y_true``).
        range_margin: widening of that range, as a share of its width.
        quantile_levels: levels of the stored Δμ bound factors.
        source: description of how the held-out predictions were made.

    Returns:
        The fitted calibration; ``fit_figures`` holds its coverage and Δμ ranking on the fit
        data itself.
    """
    from scipy.stats import spearmanr

    y_true, y_pred, spread = (np.asarray(a, dtype=np.float64) for a in (y_true, y_pred, spread))
    if not (y_true.shape == y_pred.shape == spread.shape) or y_true.ndim != 2:
        raise ValueError(
            f"fit_calibration: expected three (n, n_energies) arrays of one shape, got "
            f"{y_true.shape}, {y_pred.shape}, {spread.shape}"
        )
    residual = y_pred - y_true
    scale, mean_scale, floor = _fit_variance_model(residual, spread)
    likelihood_only = CalibratedUncertainty(
        scale, mean_scale, floor, 1.0, {}, np.zeros(1), np.zeros(1)
    )
    factor_sigma = _coverage_factor(residual, likelihood_only.sigma(spread))
    before = coverage(y_true, y_pred, likelihood_only.sigma(spread))
    if not (math.isfinite(size_factor) and size_factor > 0):
        raise ValueError(f"size_factor: expected a finite value > 0, got {size_factor!r}")
    scale, mean_scale, floor = (factor_sigma * size_factor * v for v in (scale, mean_scale, floor))
    reference = y_true if reference_spectra is None else np.asarray(reference_spectra)
    partial = CalibratedUncertainty(
        scale=scale,
        mean_scale=mean_scale,
        floor=floor,
        delta_mu_factor=1.0,
        delta_mu_ratio_quantiles={},
        spectra_low=reference.min(axis=0),
        spectra_high=reference.max(axis=0),
        range_margin=range_margin,
        reference_sum=float(np.abs(reference).sum(axis=1).mean()),
        source=source,
    )
    actual = 100.0 * np.abs(y_pred - y_true).sum(axis=1) / np.abs(y_true).sum(axis=1)
    gaussian = partial.predicted_delta_mu(spread, y_pred)
    weights = None
    predicted = gaussian
    if distance is not None:
        distance = np.asarray(distance, dtype=np.float64).reshape(-1)
        if len(distance) != len(y_true):
            raise ValueError(
                f"fit_calibration: distance: expected {len(y_true)} values, got {len(distance)}"
            )
        weights = _fit_distance_weights(actual, gaussian, distance)
        predicted = np.hypot(weights[0] * gaussian, weights[1] * distance)
    factor = float(actual.mean() / predicted.mean())
    ratios = actual / (factor * predicted)
    quantiles = {f"{q:g}": float(np.quantile(ratios, q)) for q in quantile_levels}
    figures = coverage(y_true, y_pred, partial.sigma(spread))
    figures["spearman_predicted_delta_mu"] = float(spearmanr(predicted, actual).statistic)
    if weights is not None:
        figures["spearman_spread_only"] = float(spearmanr(gaussian, actual).statistic)
    figures["n_spectra"] = float(len(y_true))
    figures["coverage_factor"] = factor_sigma
    if size_factor != 1.0:
        figures["size_factor"] = float(size_factor)
    figures.update({f"likelihood_fit_{k}": v for k, v in before.items()})
    return CalibratedUncertainty(
        scale=scale,
        mean_scale=mean_scale,
        floor=floor,
        delta_mu_factor=factor,
        delta_mu_ratio_quantiles=quantiles,
        spectra_low=partial.spectra_low,
        spectra_high=partial.spectra_high,
        range_margin=range_margin,
        reference_sum=partial.reference_sum,
        source=source,
        fit_figures=figures,
        distance_weights=weights,
    )
