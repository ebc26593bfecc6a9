"""Figures of the permutation importance: G2 importance against the radial centre μ per energy
window, and the absorber–neighbour distances by neighbour group, coordination shells marked."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from xanesnet.analysis.features import FeatureInfo, g2_block, g2_grids, g2_groups
from xanesnet.analysis.figures import image_path, legend_beside, new_figure, save_figure
from xanesnet.analysis.importance import ImportanceResult
from xanesnet.analysis.shells import NEIGHBOUR_GROUPS, neighbour_group

__all__ = ["plot_g2_importance", "plot_pair_distribution"]

_GRID_MARKERS = ("o", "s", "^", "D", "v")


def _mark_shells(ax: Any, shells: np.ndarray) -> None:
    for k, r in enumerate(shells):
        ax.axvline(
            r,
            color="0.5",
            ls=":",
            lw=1,
            label="shell (distance-histogram peak)" if k == 0 else None,
        )


def _grid_name(table: Sequence[FeatureInfo], grid: int) -> str:
    eta = next(f.eta for f in table if f.kind == "G2" and f.grid == grid)
    return f"{'main grid' if grid == 0 else f'extra grid {grid}'}, η={eta:.3g} Å⁻²"


def plot_g2_importance(
    path: str | os.PathLike,
    result: ImportanceResult,
    table: Sequence[FeatureInfo],
    shells: np.ndarray = np.empty(0),  # noqa: B008 - read-only default
    title: str = "",
) -> Any:
    """G2 importance against radial centre μ per window, and the highest minus the lowest window.

    Plotted: the plain Z-weighted G2 block (solid, with ±1 std over repeats) and, when the
    model has per-element-group G2 channels, their importance summed over groups (dashed).
    Each radial grid (the main one and every ``g2_extra_grids`` entry, each with its own η) is
    a line of its own, in increasing μ, told apart by its marker. Vertical dotted lines mark
    coordination shells (Å).

    Returns:
        The Figure (already written to ``path``, ``.png`` or ``.svg``).
    """
    out = image_path(path)
    plain = g2_block(table)
    groups = g2_groups(table)
    summed = sum(result.mean[g2_block(table, g)] for g in groups) if groups else None
    grid_of = np.array([table[i].grid for i in plain])
    mu = np.array([table[i].mu for i in plain])
    # one sorted run of μ per radial grid: concatenated grids would draw long jumps back
    runs = [(k, np.flatnonzero(grid_of == k)) for k in g2_grids(table)]
    runs = [(k, rows[np.argsort(mu[rows], kind="stable")]) for k, rows in runs if rows.size]
    order = np.argsort([w.lo for w in result.windows])
    lo_w, hi_w = int(order[0]), int(order[-1])
    fig = new_figure(9.5, 7.0)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for w, window in enumerate(result.windows):
        c = f"C{w % 10}"
        for k, rows in runs:
            m, sd = result.mean[plain[rows], w], result.std[plain[rows], w]
            marker = _GRID_MARKERS[k % len(_GRID_MARKERS)]
            name = _grid_name(table, k)
            ax1.plot(
                mu[rows], m, "-", marker=marker, ms=3, color=c, label=f"{window.label}: {name}"
            )
            ax1.fill_between(mu[rows], m - sd, m + sd, color=c, alpha=0.2, lw=0)
            if summed is not None:
                ax1.plot(
                    mu[rows], summed[rows, w], "--", color=c, lw=1,
                    label=f"{window.label}: Σ group G2, {name}",
                )  # fmt: skip
    _mark_shells(ax1, shells)
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel("importance (Δ MAE of μ)")
    legend_beside(ax1)
    ax1.set_title(title or "Permutation importance of G2 features")
    label = f"{result.windows[hi_w].label} − {result.windows[lo_w].label}"
    for k, rows in runs:
        marker = _GRID_MARKERS[k % len(_GRID_MARKERS)]
        diff = result.mean[plain[rows], hi_w] - result.mean[plain[rows], lo_w]
        name = _grid_name(table, k)
        ax2.plot(mu[rows], diff, "-", marker=marker, ms=3, color="k", label=f"{label}: {name}")
        if summed is not None:
            ax2.plot(
                mu[rows], summed[rows, hi_w] - summed[rows, lo_w], "--", color="k", lw=1,
                label=f"Σ group G2, {name}",
            )  # fmt: skip
    _mark_shells(ax2, shells)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_xlabel("G2 radial centre μ (Å)")
    ax2.set_ylabel("importance difference")
    legend_beside(ax2)
    save_figure(fig, out)
    return fig


def plot_pair_distribution(
    path: str | os.PathLike,
    distances: np.ndarray,
    numbers: np.ndarray,
    r_max: float,
    shells: np.ndarray = np.empty(0),  # noqa: B008 - read-only default
    title: str = "",
    bin_width: float = 0.05,
) -> Any:
    """Stacked histogram of absorber–neighbour distances (Å) coloured by neighbour group.

    Returns:
        The Figure (already written to ``path``, ``.png`` or ``.svg``).
    """
    out = image_path(path)
    groups = neighbour_group(numbers)
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    data = [np.asarray(distances)[groups == g] for g in range(len(NEIGHBOUR_GROUPS))]
    labels = [f"{label} ({len(d)})" for (label, _), d in zip(NEIGHBOUR_GROUPS, data)]
    fig = new_figure(9.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(data, bins=edges, stacked=True, label=labels)
    _mark_shells(ax, shells)
    ax.set_xlabel("absorber–neighbour distance (Å)")
    ax.set_ylabel("count")
    ax.set_title(title or "Absorber–neighbour distances")
    legend_beside(ax)
    save_figure(fig, out)
    return fig
