"""Peaks of spectra (prominence, parabolic refinement) and the peak-position error ΔE.

Energies in eV on a strictly increasing grid of ``n_e`` points; spectra μ in arbitrary
absorption units, shape ``(n_e,)`` for one spectrum or ``(n, n_e)`` for a set. Local maxima and
prominences come from :func:`scipy.signal.find_peaks`; maxima at the grid ends (which scipy
never reports) are handled here when asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from xanesnet.analysis.inputs import as_finite_array, check_energies, check_spectra_pair
from xanesnet.analysis.scores import r2_score

__all__ = ["PEAK_MODES", "PeakMode", "PeakShift", "Peaks", "find_peaks", "peak_shift"]

PeakMode = Literal["all", "main"]
#: the accepted ``peaks`` values of :func:`peak_shift`
PEAK_MODES = ("all", "main")


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


def _edge_maximum(mu: np.ndarray, at_start: bool) -> tuple[int, int, float] | None:
    """(first, last grid index, prominence) of a maximum at one grid end, or None.

    scipy never reports grid-end maxima. Put a point below the whole spectrum before that end
    and the end's maximum becomes an inner one to scipy, with its prominence measured on the
    inner side only (the added point is lower than any minimum on the outer side).
    """
    from scipy import signal  # imported on use: scipy.signal takes ~1 s to import

    n = mu.shape[0]
    below = float(mu.min()) - 1.0
    padded = np.concatenate(([below], mu)) if at_start else np.concatenate((mu, [below]))
    found, props = signal.find_peaks(padded, plateau_size=1)
    if found.size == 0:
        return None
    k = 0 if at_start else -1
    first, last = int(props["left_edges"][k]), int(props["right_edges"][k])
    if at_start:
        first, last = first - 1, last - 1
        if first != 0:
            return None
    elif last != n - 1:
        return None
    prominence = signal.peak_prominences(padded, found[[k]])[0][0]
    return first, last, float(prominence)


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
    m = as_finite_array(mu, "mu")
    if m.ndim != 1:
        raise ValueError(f"mu: expected one spectrum of shape (n_e,), got shape {m.shape}")
    e = check_energies(energies, m.shape[0], "mu")
    if not (min_prominence >= 0 and math.isfinite(min_prominence)):
        raise ValueError(f"min_prominence: expected a finite value >= 0, got {min_prominence!r}")
    from scipy import signal

    threshold = min_prominence * float(np.max(np.abs(m))) if m.size else 0.0
    n = m.shape[0]
    # inner maxima (plateaus once, at their centre rounded down) with their prominences, the
    # height above the higher of the two minima between the peak and the nearest strictly
    # higher point (or the grid end) on each side; always > 0 for an inner maximum
    found, props = signal.find_peaks(m, plateau_size=1, prominence=threshold)
    starts = props["left_edges"].astype(np.intp)
    ends = props["right_edges"].astype(np.intp)
    prom = props["prominences"]
    if include_edges and n >= 2:
        extra = [_edge_maximum(m, at_start) for at_start in (True, False)]
        extra = [x for x in extra if x is not None and x[2] > 0.0 and x[2] >= threshold]
        if extra:
            starts = np.concatenate((starts, [x[0] for x in extra])).astype(np.intp)
            ends = np.concatenate((ends, [x[1] for x in extra])).astype(np.intp)
            prom = np.concatenate((prom, [x[2] for x in extra]))
            order = np.argsort(starts, kind="stable")
            starts, ends, prom = starts[order], ends[order], prom[order]
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
    if peaks not in PEAK_MODES:
        raise ValueError(f"peaks: expected one of {PEAK_MODES}, got {peaks!r}")
    p, t = check_spectra_pair(pred, target)
    p2, t2 = np.atleast_2d(p), np.atleast_2d(t)
    e = check_energies(energies, p2.shape[1], "pred/target")
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
