"""Evaluation metrics of predicted XANES spectra (the published seed table, made exact).

Every definition follows ``shared/spec/metrics.md``; each variant is behind an explicit option
and :class:`SpectrumMetrics` records the options used, so a printed figure always says which
definition it uses.

Conventions:

* ``energies``: 1-D array of ``n_e`` strictly increasing energies in eV (uniform in practice,
  e.g. 226 points from E0 − 15 to E0 + 60 eV, step 1/3 eV; non-uniform grids are accepted).
* ``pred``, ``target``: spectra μ̂ and μ (arbitrary absorption units) sampled on that grid,
  shape ``(n, n_e)`` for ``n`` spectra or ``(n_e,)`` for one spectrum.
* Δμ values are in percent, peak energies and ΔE in eV, R² is dimensionless and the MSE is in
  squared absorption units.

Only NumPy is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "DeltaMuNorm",
    "PeakMode",
    "Peaks",
    "PeakShift",
    "SpectrumMetrics",
    "delta_mu",
    "evaluate_spectra",
    "find_peaks",
    "mse",
    "peak_shift",
    "r2_score",
    "skewness",
]

DeltaMuNorm = Literal["l1", "l2", "max"]
PeakMode = Literal["all", "main"]

_NORMS = ("l1", "l2", "max")
_PEAK_MODES = ("all", "main")

_DELTA_MU_TEXT = {
    "l1": "Δμ = 100·Σ|μ̂−μ| / Σ|μ| (%)",
    "l2": "Δμ = 100·sqrt(Σ(μ̂−μ)²) / Σμ (%), step h={step:g} (Δμ/√h)",
    "max": "Δμ = 100·mean|μ̂−μ| / max μ (%)",
}


# --------------------------------------------------------------------------------------------
# input checks


def _as_float_array(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected an array of real numbers ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    return arr


def _check_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both spectra arrays as float64 of the same shape, 1-D or 2-D, at least one point."""
    p = _as_float_array(pred, "pred")
    t = _as_float_array(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}"
        )
    if p.ndim not in (1, 2):
        raise ValueError(
            f"pred and target: expected shape (n_e,) or (n, n_e), got {p.ndim}-D shape {p.shape}"
        )
    if p.shape[-1] == 0:
        raise ValueError("pred and target: the energy axis (last axis) is empty")
    return p, t


def _check_energies(energies: Any, n_e: int, what: str) -> np.ndarray:
    e = _as_float_array(energies, "energies")
    if e.ndim != 1:
        raise ValueError(f"energies: expected a 1-D array, got shape {e.shape}")
    if e.shape[0] != n_e:
        raise ValueError(
            f"energies and {what} disagree: energies has {e.shape[0]} points, "
            f"{what} has {n_e} along its last axis"
        )
    if n_e > 1 and not np.all(np.diff(e) > 0):
        raise ValueError("energies: must be strictly increasing")
    return e


# --------------------------------------------------------------------------------------------
# Δμ, skewness, R², MSE


def delta_mu(pred: Any, target: Any, norm: DeltaMuNorm = "l1", *, step: float = 1.0) -> np.ndarray:
    """Relative spectral error Δμ of each spectrum, in percent.

    Args:
        pred: predicted spectra μ̂, shape ``(n, n_e)`` or ``(n_e,)``.
        target: target spectra μ, same shape as ``pred``.
        norm: which definition (sums run over the ``n_e`` grid points k of one spectrum):

            * ``"l1"`` (default): ``100 · Σ_k |μ̂_k − μ_k| / Σ_k |μ_k|``;
            * ``"l2"``: ``100 · sqrt(Σ_k (μ̂_k − μ_k)²) / Σ_k μ_k`` (relative spectral error of
              the 2025 upstream code);
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
    if norm not in _NORMS:
        raise ValueError(f"norm: expected one of {_NORMS}, got {norm!r}")
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"step: expected a positive finite energy step, got {step!r}")
    p, t = _check_pair(pred, target)
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
    """Fisher–Pearson sample skewness (biased), as ``scipy.stats.skew`` computes by default.

    ``g1 = m3 / m2**1.5`` with the central moments ``m_r = mean((x − mean(x))**r)``.

    Args:
        values: the sample, any shape (flattened), e.g. the Δμ values of a set.

    Returns:
        The skewness (dimensionless); ``nan`` for an empty or constant sample.
    """
    x = _as_float_array(values, "values").ravel()
    if x.size == 0:
        return float("nan")
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    m3 = float(np.mean(d * d * d))
    # constant within rounding (the same test as scipy): undefined
    if m2 <= (np.finfo(np.float64).resolution * float(x.mean())) ** 2:
        return float("nan")
    return m3 / m2**1.5


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
    p = _as_float_array(pred, "pred")
    t = _as_float_array(target, "target")
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
    p, t = _check_pair(pred, target)
    return float(np.mean(np.square(p - t)))


# --------------------------------------------------------------------------------------------
# peaks


class Peaks(NamedTuple):
    """Peaks of one spectrum, in increasing energy.

    Attributes:
        energies: refined peak positions, eV, shape ``(m,)``.
        heights: refined peak heights (μ units), shape ``(m,)``.
        indices: grid index of each maximum (the plateau centre, rounded down), shape ``(m,)``.
        prominences: prominence of each peak (μ units, on the grid values), shape ``(m,)``.
    """

    energies: np.ndarray
    heights: np.ndarray
    indices: np.ndarray
    prominences: np.ndarray


def _local_maxima(mu: np.ndarray, include_edges: bool) -> tuple[np.ndarray, np.ndarray]:
    """First and last grid index of every local maximum (a plateau counts once), as arrays."""
    n = mu.shape[0]
    if n < 2:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    # runs of equal values: [starts[r], ends[r]]
    change = np.flatnonzero(mu[1:] != mu[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change - 1, [n - 1]))
    v = mu[starts]
    left_lower = np.zeros(starts.shape, dtype=bool)
    right_lower = np.zeros(starts.shape, dtype=bool)
    left_lower[1:] = v[:-1] < v[1:]
    right_lower[:-1] = v[1:] < v[:-1]
    keep = left_lower & right_lower
    if include_edges:
        keep[0] |= right_lower[0]
        keep[-1] |= left_lower[-1]
    return starts[keep], ends[keep]


def _prominences(mu: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Prominence of the maxima occupying grid points starts[i]..ends[i] (plateaus allowed).

    On each side, walk outwards until the first strictly higher point (or the end of the grid)
    and take the minimum on the way; the prominence is the height above the higher of the two
    minima. A side that is empty (maximum at the grid end) is ignored. Vectorised over the
    maxima with (maxima × grid) masks.
    """
    n = mu.shape[0]
    h = mu[starts][:, None]
    k = np.arange(n)[None, :]
    higher = mu[None, :] > h
    # nearest strictly higher point on the left (−1: none) and on the right (n: none)
    left_hi = np.where(higher & (k < starts[:, None]), k, -1).max(axis=1)
    right_hi = np.where(higher & (k > ends[:, None]), k, n).min(axis=1)
    left_rng = (k > left_hi[:, None]) & (k < starts[:, None])
    right_rng = (k > ends[:, None]) & (k < right_hi[:, None])
    left_min = np.where(left_rng, mu[None, :], np.inf).min(axis=1)
    right_min = np.where(right_rng, mu[None, :], np.inf).min(axis=1)
    # an empty side (min = inf) is ignored; both empty cannot happen for n >= 2
    base = np.where(
        np.isinf(left_min),
        right_min,
        np.where(np.isinf(right_min), left_min, np.maximum(left_min, right_min)),
    )
    return h[:, 0] - base


def _parabola_vertex(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Vertex (x, y) of the parabola through three points (x0 < x1 < x2), y1 the largest."""
    x0, x1, x2 = (float(v) for v in x)
    y0, y1, y2 = (float(v) for v in y)
    h0, h1 = x1 - x0, x2 - x1
    d0 = (y1 - y0) / h0
    d1 = (y2 - y1) / h1
    a = (d1 - d0) / (x2 - x0)  # curvature / 2, < 0 at a strict maximum
    c1 = d0 + a * h0  # slope at x1
    if a >= 0.0:  # not a strict maximum (cannot happen for strict local maxima)
        return x1, y1
    u = -c1 / (2.0 * a)
    u = min(max(u, -h0), h1)  # stays within the three points
    return x1 + u, y1 + c1 * u + a * u * u


def find_peaks(
    energies: Any,
    mu: Any,
    min_prominence: float = 0.02,
    *,
    include_edges: bool = False,
) -> Peaks:
    """Peaks of one spectrum: local maxima with prominence ≥ ``min_prominence`` · max μ.

    * **Prominence**: the peak height above the higher of the two minima of μ between the
      peak and the nearest strictly higher point on each side (or the end of the grid when no
      point on that side is higher). The threshold is ``min_prominence`` times the spectrum's
      maximum (of |μ|, which is max μ for non-negative spectra); the default 0.02 is the
      spec's 2 %. Peaks need a strictly positive prominence, so a flat spectrum has none.
    * **Refinement**: position and height of a strict maximum at grid point i are the vertex of
      the parabola through points i−1, i, i+1 (exact for any grid spacing).
    * **Plateaus** (equal neighbouring values, both sides lower): one peak at the midpoint
      energy of the plateau, height the plateau value, not refined.
    * **Grid ends**: a maximum at the first or last grid point is a truncation artefact (the
      true peak may lie outside the window), so it is excluded by default. With
      ``include_edges=True`` it is reported at the end point, unrefined, and its prominence is
      measured on the inner side only.

    Args:
        energies: energy grid, eV, shape ``(n_e,)``, strictly increasing.
        mu: one spectrum, shape ``(n_e,)``.
        min_prominence: relative prominence threshold (fraction of the spectrum's maximum).
        include_edges: also report maxima at the grid ends.

    Returns:
        :class:`Peaks` (refined energies in eV, heights, grid indices, prominences), in order
        of increasing energy; empty arrays when there are no peaks.

    Raises:
        ValueError: ``mu`` not 1-D, ``energies`` of another length or not increasing.
    """
    m = _as_float_array(mu, "mu")
    if m.ndim != 1:
        raise ValueError(f"mu: expected one spectrum of shape (n_e,), got shape {m.shape}")
    e = _check_energies(energies, m.shape[0], "mu")
    if not (min_prominence >= 0 and math.isfinite(min_prominence)):
        raise ValueError(f"min_prominence: expected a finite value >= 0, got {min_prominence!r}")
    threshold = min_prominence * float(np.max(np.abs(m))) if m.size else 0.0
    n = m.shape[0]
    starts, ends = _local_maxima(m, include_edges)
    prom = _prominences(m, starts, ends) if starts.size else np.empty(0)
    keep = (prom > 0.0) & (prom >= threshold)
    starts, ends, prom = starts[keep], ends[keep], prom[keep]
    pos, hts = [], []
    for s, t in zip(starts.tolist(), ends.tolist()):
        if s == t and 0 < s < n - 1:
            x, y = _parabola_vertex(e[s - 1 : s + 2], m[s - 1 : s + 2])
        else:  # plateau or grid end
            x, y = 0.5 * (e[s] + e[t]), float(m[s])
        pos.append(x)
        hts.append(y)
    idx = (starts + ends) // 2
    return Peaks(
        np.asarray(pos, dtype=np.float64),
        np.asarray(hts, dtype=np.float64),
        np.asarray(idx, dtype=np.intp),
        np.asarray(prom, dtype=np.float64),
    )


@dataclass(frozen=True)
class PeakShift:
    """Matched peak pairs of a set of spectra and the mean peak-position error ΔE.

    Attributes:
        target_energies: target peak energy of each matched pair, eV, shape ``(m,)``.
        pred_energies: matched predicted peak energy, eV, shape ``(m,)``.
        spectrum_index: index of the spectrum each pair comes from, shape ``(m,)``.
        delta_e: ΔE = mean |E_pred − E_target| over all pairs, eV (``nan`` when no pairs).
        unmatched_spectra: indices of the spectra that gave no pair (no target peak or no
            predicted peak), shape ``(k,)``.
        n_spectra: number of spectra examined.
        mode: ``"all"`` or ``"main"``.
    """

    target_energies: np.ndarray
    pred_energies: np.ndarray
    spectrum_index: np.ndarray
    delta_e: float
    unmatched_spectra: np.ndarray
    n_spectra: int
    mode: str

    @property
    def n_pairs(self) -> int:
        """Number of matched pairs."""
        return int(self.target_energies.shape[0])

    @property
    def pairs(self) -> np.ndarray:
        """The matched pairs as columns (target E, predicted E), eV, shape ``(m, 2)``."""
        return np.stack([self.target_energies, self.pred_energies], axis=1)

    @property
    def r2(self) -> float:
        """R² of predicted against target peak energies, pooled over all pairs (``nan`` if
        fewer than two distinct target energies)."""
        return r2_score(self.pred_energies, self.target_energies)


def peak_shift(
    energies: Any,
    pred: Any,
    target: Any,
    peaks: PeakMode = "all",
    *,
    min_prominence: float = 0.02,
    include_edges: bool = False,
) -> PeakShift:
    """Match target peaks to predicted peaks and average the position error ΔE.

    Peaks are found with :func:`find_peaks` in each spectrum.

    * ``peaks="all"`` (default): every target peak is matched to the nearest predicted peak of
      the same spectrum (a predicted peak may serve several target peaks; ties go to the lower
      energy).
    * ``peaks="main"``: only the largest (highest refined) peak of the target is paired with
      the largest peak of the prediction.

    A spectrum whose target or prediction has no peak gives no pair; it is listed in
    ``unmatched_spectra`` and otherwise ignored.

    Args:
        energies: energy grid, eV, shape ``(n_e,)``.
        pred: predicted spectra, shape ``(n, n_e)`` or ``(n_e,)``.
        target: target spectra, same shape as ``pred``.
        peaks: ``"all"`` or ``"main"``.
        min_prominence: relative prominence threshold passed to :func:`find_peaks`.
        include_edges: passed to :func:`find_peaks`.

    Returns:
        :class:`PeakShift` with the pairs and ΔE = mean |E_pred − E_target| in eV.
    """
    if peaks not in _PEAK_MODES:
        raise ValueError(f"peaks: expected one of {_PEAK_MODES}, got {peaks!r}")
    p, t = _check_pair(pred, target)
    p2, t2 = np.atleast_2d(p), np.atleast_2d(t)
    e = _check_energies(energies, p2.shape[1], "pred/target")
    tgt_e, prd_e, sidx, unmatched = [], [], [], []
    for i in range(p2.shape[0]):
        pk_t = find_peaks(e, t2[i], min_prominence, include_edges=include_edges)
        pk_p = find_peaks(e, p2[i], min_prominence, include_edges=include_edges)
        if pk_t.energies.size == 0 or pk_p.energies.size == 0:
            unmatched.append(i)
            continue
        if peaks == "main":
            et = pk_t.energies[[int(np.argmax(pk_t.heights))]]
            ep = pk_p.energies[[int(np.argmax(pk_p.heights))]]
        else:
            et = pk_t.energies
            ep = pk_p.energies[np.argmin(np.abs(et[:, None] - pk_p.energies[None, :]), axis=1)]
        tgt_e.append(et)
        prd_e.append(ep)
        sidx.append(np.full(et.shape[0], i, dtype=np.intp))
    te = np.concatenate(tgt_e) if tgt_e else np.empty(0)
    pe = np.concatenate(prd_e) if prd_e else np.empty(0)
    si = np.concatenate(sidx) if sidx else np.empty(0, dtype=np.intp)
    de = float(np.mean(np.abs(pe - te))) if te.size else float("nan")
    return PeakShift(te, pe, si, de, np.asarray(unmatched, dtype=np.intp), p2.shape[0], peaks)


# --------------------------------------------------------------------------------------------
# all together


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
    def table_header(label: str = "edge") -> str:
        """Header of the published seed table, matching :meth:`table_row`."""
        return (
            f"| {label} | Δμ_avg % (post-broadening) | skew | ΔE eV | R² |\n"
            "| --- | --- | --- | --- | --- |"
        )

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
    p, t = _check_pair(pred, target)
    p2, t2 = np.atleast_2d(p), np.atleast_2d(t)
    e = _check_energies(energies, p2.shape[1], "pred/target")
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
