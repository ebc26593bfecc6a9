"""The seed-table metrics of a set of predicted XANES spectra (the published table, made exact).

Every definition follows ``shared/spec/metrics.md``; each variant is behind an explicit option
and :class:`SpectrumMetrics` records the options used, so a printed figure always says which
definition it uses. The scores themselves live in :mod:`xanesnet.analysis.scores` (Δμ, skew,
R², MSE) and :mod:`xanesnet.analysis.peaks` (peaks, ΔE).

Conventions:

* ``energies``: 1-D array of ``n_e`` strictly increasing energies in eV (uniform in practice,
  e.g. 226 points from E0 − 15 to E0 + 60 eV, step 1/3 eV; non-uniform grids are accepted).
* ``pred``, ``target``: spectra μ̂ and μ (arbitrary absorption units) sampled on that grid,
  shape ``(n, n_e)`` for ``n`` spectra or ``(n_e,)`` for one spectrum.
* Δμ values are in percent, peak energies and ΔE in eV, R² is dimensionless and the MSE is in
  squared absorption units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xanesnet.analysis.inputs import check_energies, check_spectra_pair
from xanesnet.analysis.peaks import PeakMode, peak_shift
from xanesnet.analysis.scores import DeltaMuNorm, delta_mu, r2_score, skewness

__all__ = ["SpectrumMetrics", "evaluate_spectra"]

_DELTA_MU_TEXT = {
    "l1": "Δμ = 100·Σ|μ̂−μ| / Σ|μ| (%)",
    "l2": "Δμ = 100·sqrt(Σ(μ̂−μ)²) / Σμ (%), step h={step:g} (Δμ/√h)",
    "max": "Δμ = 100·mean|μ̂−μ| / max μ (%)",
}


def _json_float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _fmt(x: float | None, digits: int) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if math.isfinite(x) else "nan"


@dataclass(frozen=True)
class SpectrumMetrics:
    """The seed-table metrics of a set of predicted spectra.

    Attributes:
        delta_mu_avg: mean Δμ over the set, %.
        delta_mu_median: median Δμ, %.
        skew: Fisher–Pearson (biased) skewness of the Δμ values.
        delta_e_avg: ΔE, mean |E_pred − E_target| over matched peak pairs, eV.
        r2_peaks: R² of predicted against target peak energies, pooled over the pairs.
        r2_intensity: R² of predicted against target μ, all grid points of all spectra pooled.
        mse: mean squared error of μ over all grid points (μ units squared).
        n_spectra: number of spectra.
        n_peak_pairs: number of matched peak pairs.
        n_unmatched_spectra: spectra that gave no peak pair (no peak in target or prediction).
        post_broadening_delta_mu_avg: mean Δμ after broadening both spectra, % (``None``
            unless a broadening was given).
        definitions: the options and formulas used (strings, JSON-ready).
    """

    delta_mu_avg: float
    delta_mu_median: float
    skew: float
    delta_e_avg: float
    r2_peaks: float
    r2_intensity: float
    mse: float
    n_spectra: int
    n_peak_pairs: int
    n_unmatched_spectra: int = 0
    post_broadening_delta_mu_avg: float | None = None
    definitions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict (non-finite numbers become ``None``)."""
        return {
            "delta_mu_avg": _json_float(self.delta_mu_avg),
            "delta_mu_median": _json_float(self.delta_mu_median),
            "skew": _json_float(self.skew),
            "delta_e_avg": _json_float(self.delta_e_avg),
            "r2_peaks": _json_float(self.r2_peaks),
            "r2_intensity": _json_float(self.r2_intensity),
            "mse": _json_float(self.mse),
            "n_spectra": int(self.n_spectra),
            "n_peak_pairs": int(self.n_peak_pairs),
            "n_unmatched_spectra": int(self.n_unmatched_spectra),
            "post_broadening_delta_mu_avg": _json_float(self.post_broadening_delta_mu_avg),
            "definitions": dict(self.definitions),
        }

    @staticmethod
    def table_header(label: str = "edge", *, post_broadening: bool = True) -> str:
        """Header of the published seed table, matching :meth:`table_row`.

        ``post_broadening=False`` drops "(post-broadening)" from the Δμ column, for rows
        without a post-broadening figure.
        """
        dmu = "Δμ_avg % (post-broadening)" if post_broadening else "Δμ_avg %"
        return f"| {label} | {dmu} | skew | ΔE eV | R² |\n| --- | --- | --- | --- | --- |"

    def table_row(self, label: str | None = None) -> str:
        """The published seed-table row: ``Δμ_avg % (post-broadening) | skew | ΔE eV | R²``.

        Δμ with 1 decimal, skew 3, ΔE 2, R² (of peak energies) 3; the post-broadening Δμ is
        in parentheses only when present. With ``label`` (e.g. ``"Fe"``) it is the first cell.
        """
        dmu = _fmt(self.delta_mu_avg, 1)
        if self.post_broadening_delta_mu_avg is not None:
            dmu += f" ({_fmt(self.post_broadening_delta_mu_avg, 1)})"
        cells = [dmu, _fmt(self.skew, 3), _fmt(self.delta_e_avg, 2), _fmt(self.r2_peaks, 3)]
        if label is not None:
            cells.insert(0, label)
        return "| " + " | ".join(cells) + " |"

    def definitions_text(self) -> str:
        """The definitions as ``key: value`` lines, to print with the figures."""
        return "\n".join(f"{k}: {v}" for k, v in self.definitions.items())


def evaluate_spectra(
    energies: Any,
    pred: Any,
    target: Any,
    *,
    norm: DeltaMuNorm = "l1",
    peaks: PeakMode = "all",
    broaden: Callable[[np.ndarray], np.ndarray] | None = None,
    broaden_label: str | None = None,
    step: float = 1.0,
    min_prominence: float = 0.02,
    include_edges: bool = False,
) -> SpectrumMetrics:
    """All seed-table metrics of a set of predicted spectra.

    Args:
        energies: energy grid, eV, shape ``(n_e,)``.
        pred: predicted spectra, shape ``(n, n_e)`` (or ``(n_e,)`` for one spectrum).
        target: target spectra, same shape.
        norm: Δμ definition, see :func:`delta_mu`.
        peaks: ΔE / R² peak matching, see :func:`peak_shift`.
        broaden: optional ``broaden(mu) -> mu'`` mapping ``(n, n_e)`` spectra to ``(n, n_e)``
            broadened spectra on the same grid (e.g. the arctangent model of ``spectra.md``
            with its parameters bound). Applied separately to ``pred`` and ``target``; the
            post-broadening Δμ uses the same ``norm``.
        broaden_label: how to describe the broadening in ``definitions`` (its parameters);
            defaults to ``repr(broaden)`` (informative for a ``functools.partial``).
        step: energy-step convention of ``norm="l2"``, see :func:`delta_mu`.
        min_prominence: peak prominence threshold, fraction of each spectrum's maximum.
        include_edges: count maxima at the grid ends as peaks.

    Returns:
        :class:`SpectrumMetrics`.

    Raises:
        ValueError: bad options, mismatched shapes, or a ``broaden`` result of the wrong shape.
    """
    p, t = check_spectra_pair(pred, target)
    p2, t2 = np.atleast_2d(p), np.atleast_2d(t)
    e = check_energies(energies, p2.shape[1], "pred/target")
    dmu = delta_mu(p2, t2, norm, step=step)
    ps = peak_shift(e, p2, t2, peaks, min_prominence=min_prominence, include_edges=include_edges)
    definitions: dict[str, Any] = {
        "delta_mu": f"norm={norm!r}: " + _DELTA_MU_TEXT[norm].format(step=step),
        "delta_mu_avg": "mean of Δμ over the set (median also reported)",
        "skew": "Fisher–Pearson biased sample skewness of Δμ (scipy.stats.skew default)",
        "peaks": (
            f"local maxima with prominence >= {min_prominence:g}·max μ, parabolic refinement; "
            f"grid-end maxima {'included' if include_edges else 'excluded'}"
        ),
        "delta_e": (
            f"peaks={peaks!r}: "
            + (
                "every target peak matched to the nearest predicted peak"
                if peaks == "all"
                else "largest target peak paired with largest predicted peak"
            )
            + "; mean |E_pred − E_target| over all pairs (eV)"
        ),
        "r2": "R² of predicted vs target peak energies, pooled over matched pairs",
        "r2_intensity": "R² of predicted vs target μ, all grid points pooled",
        "mse": "mean of (μ̂ − μ)² over all grid points",
        "broadening": None,
    }
    post = None
    if broaden is not None:
        bp = np.asarray(broaden(p2.copy()), dtype=np.float64)
        bt = np.asarray(broaden(t2.copy()), dtype=np.float64)
        if bp.shape != p2.shape or bt.shape != t2.shape:
            raise ValueError(
                f"broaden: must map (n, n_e) = {p2.shape} spectra to the same shape, "
                f"got {bp.shape} for pred and {bt.shape} for target"
            )
        post = float(np.mean(delta_mu(bp, bt, norm, step=step)))
        definitions["broadening"] = broaden_label if broaden_label is not None else repr(broaden)
    return SpectrumMetrics(
        delta_mu_avg=float(np.mean(dmu)),
        delta_mu_median=float(np.median(dmu)),
        skew=skewness(dmu),
        delta_e_avg=ps.delta_e,
        r2_peaks=ps.r2,
        r2_intensity=r2_score(p2, t2),
        mse=float(np.mean(np.square(p2 - t2))),
        n_spectra=int(p2.shape[0]),
        n_peak_pairs=ps.n_pairs,
        n_unmatched_spectra=int(ps.unmatched_spectra.shape[0]),
        post_broadening_delta_mu_avg=post,
        definitions=definitions,
    )
