"""Figures of predicted spectra: spectra, Δμ histogram, best/median/worst panels.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas (no
pyplot global state, no ``matplotlib.use``), writes it to ``path`` (PNG or SVG, chosen by the
file suffix) and returns the Figure so callers and tests can inspect it.

Energies are relative to the edge, E − E0 in eV; spectra are μ in the units of the data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from xanesnet.analysis.figures import FORMATS, image_path, new_figure, save_figure
from xanesnet.analysis.scores import skewness

__all__ = [
    "CALIBRATED_LABEL",
    "ENERGY_LABEL",
    "FORMATS",
    "MAX_SITE_LINES",
    "OUTSIDE_DOMAIN_NOTE",
    "RANGE_LABEL",
    "SPREAD_LABEL",
    "best_median_worst",
    "image_path",
    "plot_best_median_worst",
    "plot_delta_mu_histogram",
    "plot_spectra",
    "site_groups",
]

ENERGY_LABEL = "E − E0 (eV)"
MU_LABEL = "μ (arb. units)"
#: legend text of the band of a raw ensemble spread (not an error scale)
SPREAD_LABEL = "mean ± spread"
#: legend text of the band of a calibrated σ (xanesnet.model.trust): a 1σ interval
CALIBRATED_LABEL = "±1σ calibrated interval"
#: appended to the legend name of a site outside the model's training domain
OUTSIDE_DOMAIN_NOTE = " (outside training domain)"
#: legend text of the band between the lowest and highest spectrum of a structure's sites
RANGE_LABEL = "min–max over sites"
#: beyond this many distinct sites of one structure, ``xanesnet plot`` draws their mean and range
MAX_SITE_LINES = 4


def _as_2d(values: Any, name: str, n_e: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_e:
        raise ValueError(f"{name}: expected shape (n, {n_e}) or ({n_e},), got {arr.shape}")
    return arr


def _draw_spectrum(
    ax: Any,
    energies: np.ndarray,
    predicted: np.ndarray,
    reference: np.ndarray | None,
    spread: np.ndarray | None,
    color: Any,
    label: str | None,
    site_range: tuple[np.ndarray, np.ndarray] | None = None,
    band_label: str = SPREAD_LABEL,
    outside: bool = False,
) -> None:
    """One structure on ``ax``: predicted line, optional ±spread band, min–max band over
    sites and dashed reference; a site outside the training domain is drawn dotted and hatched
    ("xx") and its name says so.

    With ``label`` only the predicted line is named (the line styles get their own legend);
    without, each element is named by what it is.
    """
    name = (label or "predicted") + (OUTSIDE_DOMAIN_NOTE if outside else "")
    ax.plot(energies, predicted, color=color, lw=1.5, ls=":" if outside else "-", label=name)
    if spread is not None:
        ax.fill_between(
            energies,
            predicted - spread,
            predicted + spread,
            color=color,
            alpha=0.25,
            lw=0,
            hatch="xx" if outside else None,
            label=None if label else band_label,
        )
    if site_range is not None and np.all(np.isfinite(site_range[0])):
        ax.fill_between(
            energies,
            site_range[0],
            site_range[1],
            facecolor="none",
            edgecolor=color,
            hatch="///",
            alpha=0.5,
            lw=0,
            label=None if label else RANGE_LABEL,
        )
    if reference is not None:
        ax.plot(
            energies, reference, color=color, lw=1.2, ls="--", label=None if label else "reference"
        )


def _style_handles(
    reference: bool, spread: bool, ranges: bool, band_label: str = SPREAD_LABEL
) -> list[Any]:
    """Legend entries saying what solid, dashed and the bands mean (several structures)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="0.3", lw=1.5, label="predicted")]
    if spread:
        handles.append(Patch(color="0.3", alpha=0.25, lw=0, label=band_label))
    if ranges:
        handles.append(
            Patch(facecolor="none", edgecolor="0.3", hatch="///", lw=0, label=RANGE_LABEL)
        )
    if reference:
        handles.append(Line2D([], [], color="0.3", lw=1.2, ls="--", label="reference"))
    return handles


def site_groups(spectra: Any, rtol: float = 1e-5) -> list[np.ndarray]:
    """Sites of one structure whose predicted spectra are the same, as groups of row indices.

    Symmetry-equivalent sites have the same rotation-invariant descriptor, hence the same
    spectrum up to float32 rounding; rows within ``rtol`` · max|μ| of a group's first row join
    it. Groups are in order of their first row.

    Args:
        spectra: (n_sites, n_e) μ of the sites of one structure.
        rtol: tolerance relative to the largest |μ|.
    """
    mu = np.asarray(spectra, dtype=np.float64)
    tol = rtol * float(np.max(np.abs(mu))) if mu.size else 0.0
    groups: list[list[int]] = []
    for row in range(mu.shape[0]):
        for group in groups:
            if np.max(np.abs(mu[row] - mu[group[0]])) <= tol:
                group.append(row)
                break
        else:
            groups.append([row])
    return [np.asarray(g, dtype=np.intp) for g in groups]


def plot_spectra(
    energies_rel: Any,
    predicted: Any,
    reference: Any | None = None,
    spread: Any | None = None,
    labels: Sequence[str] | None = None,
    *,
    path: str | os.PathLike,
    title: str | None = None,
    ranges: tuple[Any, Any] | None = None,
    band_label: str = SPREAD_LABEL,
    outside_domain: Sequence[bool] | None = None,
) -> Any:
    """Predicted (and optionally reference) spectra of a few structures on one axis.

    The legends sit right of the axes, never on the data.

    Args:
        energies_rel: (n_e,) energies relative to the edge, E − E0 in eV.
        predicted: (n, n_e) or (n_e,) predicted μ (the ensemble mean for an ensemble).
        reference: same shape as ``predicted``: reference μ, drawn dashed; or None.
        spread: same shape: ensemble spread (one standard deviation), drawn as a mean ± spread
            band; or None.
        labels: n names for the legend (default "#0", "#1", ...; none for one spectrum).
        path: output image, ``.png`` or ``.svg``.
        title: optional figure title.
        ranges: (low, high), each shaped like ``predicted``: the minimum and maximum over the
            sites a line stands for (e.g. the mean of many sites), drawn hatched; rows of NaN
            draw no band. None: no bands.
        band_label: what the ``spread`` band is, for the legend: :data:`SPREAD_LABEL` (a raw
            ensemble spread) or :data:`CALIBRATED_LABEL` (a calibrated σ, see
            :mod:`xanesnet.model.trust`).
        outside_domain: n flags: lines of sites outside the model's training domain are drawn
            dotted, their band cross-hatched, their names marked :data:`OUTSIDE_DOMAIN_NOTE`. None:
            no flags.

    Returns:
        The Figure (already written to ``path``).
    """
    out = image_path(path)
    e = np.asarray(energies_rel, dtype=np.float64).ravel()
    pred = _as_2d(predicted, "predicted", e.size)
    ref = None if reference is None else _as_2d(reference, "reference", e.size)
    spr = None if spread is None else _as_2d(spread, "spread", e.size)
    low = high = None
    if ranges is not None:
        low, high = _as_2d(ranges[0], "ranges", e.size), _as_2d(ranges[1], "ranges", e.size)
    for name, arr in (("reference", ref), ("spread", spr), ("ranges", low), ("ranges", high)):
        if arr is not None and arr.shape != pred.shape:
            raise ValueError(f"{name}: shape {arr.shape} differs from predicted {pred.shape}")
    n = pred.shape[0]
    if labels is None:
        labels = [f"#{i}" for i in range(n)] if n > 1 else [None]  # type: ignore[list-item]
    if len(labels) != n:
        raise ValueError(f"labels: expected {n} names, got {len(labels)}")
    outside = [False] * n if outside_domain is None else [bool(f) for f in outside_domain]
    if len(outside) != n:
        raise ValueError(f"outside_domain: expected {n} flags, got {len(outside)}")
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(n)]
    for i in range(n):
        _draw_spectrum(
            ax,
            e,
            pred[i],
            None if ref is None else ref[i],
            None if spr is None else spr[i],
            colors[i],
            labels[i],
            None if low is None or high is None else (low[i], high[i]),
            band_label,
            outside[i],
        )
    ax.set_xlabel(ENERGY_LABEL)
    ax.set_ylabel(MU_LABEL)
    ax.set_xlim(e[0], e[-1])
    has_ranges = low is not None and bool(np.isfinite(low).any())
    # one legend (constrained layout makes room for it), right of the data: the names, then
    # what the line styles and bands mean
    handles, _ = ax.get_legend_handles_labels()
    if labels[0] is not None:
        handles += _style_handles(ref is not None, spr is not None, has_ranges, band_label)
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        ncols=1 if len(handles) <= 16 else 2,
    )
    if title:
        ax.set_title(title)
    save_figure(fig, out)
    return fig


def plot_delta_mu_histogram(
    delta_mu_values: Any,
    *,
    path: str | os.PathLike,
    bins: int | str = "auto",
    title: str | None = None,
) -> Any:
    """Histogram of Δμ (%) over a set, with the average (vertical line) and skew annotated.

    Args:
        delta_mu_values: Δμ of each spectrum, in percent (see :func:`xanesnet.analysis.delta_mu`).
        path: output image, ``.png`` or ``.svg``.
        bins: passed to ``Axes.hist``.
        title: optional figure title.

    Returns:
        The Figure (already written to ``path``).
    """
    out = image_path(path)
    values = np.asarray(delta_mu_values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("delta_mu_values: no finite values to plot")
    average = float(values.mean())
    skew = skewness(values)
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(values, bins=bins, color="C0", alpha=0.8, edgecolor="white", lw=0.5)
    ax.axvline(average, color="C3", lw=1.5, ls="--", label=f"average {average:.2f} %")
    ax.set_xlabel("Δμ (%)")
    ax.set_ylabel("number of spectra")
    ax.text(
        0.97,
        0.95,
        f"n = {values.size}\nΔμ avg = {average:.2f} %\nmedian = {np.median(values):.2f} %\n"
        f"skew = {skew:.2f}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    if title:
        ax.set_title(title)
    save_figure(fig, out)
    return fig


def best_median_worst(delta_mu_values: Any) -> tuple[int, int, int]:
    """Indices of the spectra with the lowest, the median and the highest Δμ.

    The median is the element of rank ``n // 2`` in ascending order (an actual spectrum, not
    an average of two); non-finite values are never picked.
    """
    values = np.asarray(delta_mu_values, dtype=np.float64).ravel()
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size == 0:
        raise ValueError("delta_mu_values: no finite values")
    order = finite[np.argsort(values[finite], kind="stable")]
    return int(order[0]), int(order[order.size // 2]), int(order[-1])


def plot_best_median_worst(
    energies_rel: Any,
    predicted: Any,
    reference: Any,
    delta_mu: Any,
    ids: Sequence[str],
    *,
    path: str | os.PathLike,
    spread: Any | None = None,
    title: str | None = None,
) -> Any:
    """Three panels side by side: the best, median and worst predicted spectrum by Δμ.

    Args:
        energies_rel: (n_e,) energies relative to the edge, E − E0 in eV.
        predicted, reference: (n, n_e) predicted and reference μ.
        delta_mu: (n,) Δμ of each spectrum, percent.
        ids: n structure names (panel titles).
        path: output image, ``.png`` or ``.svg``.
        spread: (n, n_e) ensemble spread, drawn as a mean ± spread band; or None.
        title: optional figure title.

    Returns:
        The Figure (already written to ``path``), with three axes: best, median, worst.
    """
    out = image_path(path)
    e = np.asarray(energies_rel, dtype=np.float64).ravel()
    pred = _as_2d(predicted, "predicted", e.size)
    ref = _as_2d(reference, "reference", e.size)
    spr = None if spread is None else _as_2d(spread, "spread", e.size)
    dmu = np.asarray(delta_mu, dtype=np.float64).ravel()
    n = pred.shape[0]
    if ref.shape != pred.shape or (spr is not None and spr.shape != pred.shape):
        raise ValueError("predicted, reference and spread must have the same shape")
    if dmu.size != n or len(ids) != n:
        raise ValueError(f"delta_mu and ids: expected {n} values, got {dmu.size} and {len(ids)}")
    fig = new_figure(13.0, 4.0)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, kind, i in zip(axes, ("best", "median", "worst"), best_median_worst(dmu), strict=True):
        _draw_spectrum(ax, e, pred[i], ref[i], None if spr is None else spr[i], "C0", None)
        ax.set_title(f"{kind}: {ids[i]}\nΔμ = {dmu[i]:.2f} %", fontsize="medium")
        ax.set_xlabel(ENERGY_LABEL)
        ax.set_xlim(e[0], e[-1])
    axes[0].set_ylabel(MU_LABEL)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    if title:
        fig.suptitle(title)
    save_figure(fig, out)
    return fig
