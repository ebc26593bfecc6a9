"""Per-spectrum and pooled error scores: Δμ (%), skewness of a sample, R², MSE.

Spectra are μ in arbitrary absorption units on an energy grid of ``n_e`` points; ``pred`` and
``target`` have shape ``(n, n_e)`` for ``n`` spectra or ``(n_e,)`` for one. Definitions follow
``shared/spec/metrics.md``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from xanesnet.analysis.inputs import as_finite_array, check_spectra_pair

__all__ = ["DELTA_MU_NORMS", "DeltaMuNorm", "delta_mu", "mse", "r2_score", "skewness"]

DeltaMuNorm = Literal["l1", "l2", "max"]
#: the accepted ``norm`` values of :func:`delta_mu`
DELTA_MU_NORMS = ("l1", "l2", "max")

# relative spread below which a sample counts as constant: the threshold at which
# scipy.stats.skew warns of catastrophic cancellation (10 ulp of the mean)
_CONSTANT_RTOL = 10.0 * float(np.finfo(np.float64).eps)


def delta_mu(pred: Any, target: Any, norm: DeltaMuNorm = "l1", *, step: float = 1.0) -> np.ndarray:
    """Relative spectral error Δμ of each spectrum, in percent.

    Args:
        pred: predicted spectra μ̂, shape ``(n, n_e)`` or ``(n_e,)``.
        target: target spectra μ, same shape as ``pred``.
        norm: which definition (sums run over the ``n_e`` grid points k of one spectrum):

            * ``"l1"`` (default): ``100 · Σ_k |μ̂_k − μ_k| / Σ_k |μ_k|``;
            * ``"l2"``: ``100 · sqrt(Σ_k (μ̂_k − μ_k)²) / Σ_k μ_k`` (relative spectral error
              of the 2025 upstream code);
            * ``"max"``: ``100 · mean_k |μ̂_k − μ_k| / max_k μ_k``.
        step: only for ``"l2"``. The "l2" ratio is not scale-free in the energy step h: written
            with integrals, ``sqrt(∫(μ̂−μ)² dE) / ∫μ dE = sqrt(h·Σ(μ̂−μ)²) / (h·Σμ)``, which is
            the sum formula above divided by ``sqrt(h)``. The default ``step=1`` is the sum
            formula exactly (the step measured in grid points); pass the grid step in eV (e.g.
            1/3) for the integral convention. "l1" and "max" do not depend on the step.

    Returns:
        Δμ in percent, shape ``(n,)`` (a 0-d array for 1-D input). A spectrum whose denominator
        is zero gives ``nan`` (or ``inf``); a negative "l2"/"max" denominator is used as is.

    Raises:
        ValueError: unknown ``norm``, non-positive ``step``, or ``pred``/``target`` shapes that
            differ or are not 1-D/2-D.
    """
    if norm not in DELTA_MU_NORMS:
        raise ValueError(f"norm: expected one of {DELTA_MU_NORMS}, got {norm!r}")
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"step: expected a positive finite energy step, got {step!r}")
    p, t = check_spectra_pair(pred, target)
    diff = p - t
    with np.errstate(divide="ignore", invalid="ignore"):
        if norm == "l1":
            out = np.abs(diff).sum(axis=-1) / np.abs(t).sum(axis=-1)
        elif norm == "l2":
            out = np.sqrt(np.square(diff).sum(axis=-1)) / t.sum(axis=-1) / math.sqrt(step)
        else:
            out = np.abs(diff).mean(axis=-1) / t.max(axis=-1)
    return 100.0 * out


def skewness(values: Any) -> float:
    """Fisher–Pearson sample skewness (biased): ``scipy.stats.skew(values)``.

    ``g1 = m3 / m2**1.5`` with the central moments ``m_r = mean((x − mean(x))**r)``.

    Args:
        values: the sample, any shape (flattened), e.g. the Δμ values of a set.

    Returns:
        The skewness (dimensionless); ``nan`` for an empty sample or one that is constant
        within rounding (all values within 10 ulp of their mean).
    """
    x = as_finite_array(values, "values").ravel()
    if x.size == 0:
        return float("nan")
    # A constant sample has no skewness. Decided here, before scipy, because scipy warns
    # (RuntimeWarning) for it and its own zero test is looser (returns rounding noise).
    mean = float(x.mean())
    if float(np.max(np.abs(x - mean))) <= _CONSTANT_RTOL * abs(mean):
        return float("nan")
    from scipy import stats  # imported on use: scipy.stats takes ~1 s to import

    return float(stats.skew(x, bias=True))


def r2_score(pred: Any, target: Any) -> float:
    """Coefficient of determination of ``pred`` against ``target`` (target = ground truth).

    ``R² = 1 − Σ(pred − target)² / Σ(target − mean(target))²`` over all elements (inputs are
    flattened, so pooling several spectra or pairs is just passing them all).

    Args:
        pred: predicted values, any shape.
        target: true values, same shape as ``pred``.

    Returns:
        R² (1 for a perfect prediction, ≤ 1 in general, may be negative); ``nan`` when there are
        no values or ``target`` is constant (R² undefined).

    Raises:
        ValueError: if the shapes differ.
    """
    p = as_finite_array(pred, "pred")
    t = as_finite_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}"
        )
    if t.size == 0:
        return float("nan")
    ss_res = float(np.sum(np.square(p - t)))
    ss_tot = float(np.sum(np.square(t - t.mean())))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - ss_res / ss_tot


def mse(pred: Any, target: Any) -> float:
    """Mean squared error over all elements (all grid points of all spectra pooled).

    Raises:
        ValueError: if the shapes differ.
    """
    p, t = check_spectra_pair(pred, target)
    return float(np.mean(np.square(p - t)))
