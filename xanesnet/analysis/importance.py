"""Permutation feature importance of a spectrum model, per energy window.

For each descriptor column the values are shuffled across samples (seeded, ``repeats``
times), the spectra are predicted again and the increase of the mean absolute error over
each energy window (relative to the edge, eV) is recorded. Features whose shuffling hurts a
window most are the ones the model relies on for that part of the spectrum.

Helpers map features to their meaning (:func:`feature_table`), collect absorber-neighbour
distances for coordination shells (:func:`absorber_distances`, :func:`shell_peaks`) and draw
the figures (:func:`plot_g2_importance`, :func:`plot_pair_distribution`; matplotlib is
imported only there, with the Agg backend).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_WINDOWS",
    "NEIGHBOUR_GROUPS",
    "CSV_COLUMNS",
    "FeatureInfo",
    "ImportanceResult",
    "Window",
    "absorber_distances",
    "feature_table",
    "g2_block",
    "neighbour_group",
    "parse_windows",
    "permutation_importance",
    "plot_g2_importance",
    "plot_pair_distribution",
    "shell_peaks",
    "weighted_mean_mu",
    "write_csv",
]


@dataclass(frozen=True)
class Window:
    """An energy window relative to the edge: ``lo <= E - e0 <= hi`` (eV)."""

    lo: float
    hi: float
    label: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lo) and np.isfinite(self.hi)) or self.hi <= self.lo:
            raise ValueError(f"window: need finite lo < hi, got {self.lo}:{self.hi}")
        if not self.label:
            object.__setattr__(self, "label", f"{self.lo:+g}..{self.hi:+g} eV")


#: near-edge and high-energy windows of the published analysis (eV relative to e0)
DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window(-3.0, 3.0, "near edge"),
    Window(50.0, 56.0, "high energy"),
)


def parse_windows(text: str) -> tuple[Window, ...]:
    """Windows from ``"lo:hi,lo:hi"`` (eV relative to the edge), e.g. ``"-3:3,50:56"``.

    Windows equal to a default one keep its label ("near edge", "high energy").

    Raises:
        ValueError: malformed text, non-numbers or ``hi <= lo``.
    """
    windows = []
    for part in text.split(","):
        pieces = part.strip().split(":")
        if len(pieces) != 2:
            raise ValueError(f"--windows: expected LO:HI[,LO:HI...] in eV, got {part.strip()!r}")
        try:
            lo, hi = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise ValueError(f"--windows: not numbers in {part.strip()!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise ValueError(f"--windows: need finite LO < HI, got {part.strip()!r}")
        label = next((w.label for w in DEFAULT_WINDOWS if (w.lo, w.hi) == (lo, hi)), "")
        windows.append(Window(lo, hi, label))
    return tuple(windows)


def window_masks(energies_rel: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """(n_windows, n_energies) bool: grid points inside each window.

    Raises:
        ValueError: a window holds no grid point.
    """
    energies_rel = np.asarray(energies_rel, dtype=np.float64)
    masks = np.array([(energies_rel >= w.lo) & (energies_rel <= w.hi) for w in windows])
    for w, m in zip(windows, masks):
        if not m.any():
            raise ValueError(
                f"window {w.label!r} ({w.lo:g}:{w.hi:g} eV) holds no point of the energy grid "
                f"({energies_rel.min():g} to {energies_rel.max():g} eV relative to the edge)"
            )
    return masks


@dataclass(frozen=True)
class ImportanceResult:
    """Permutation importance of every feature in every window.

    Attributes:
        windows: the energy windows.
        baseline: (n_windows,) unpermuted mean absolute error per window (spectrum units).
        mean: (n_features, n_windows) mean over repeats of permuted minus baseline error.
        std: (n_features, n_windows) standard deviation over repeats (ddof=0).
        repeats: number of shuffles per feature.
        seed: seed of the shuffles.
    """

    windows: tuple[Window, ...]
    baseline: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    repeats: int
    seed: int

    def ranking(self, window: int) -> np.ndarray:
        """(n_features,) feature indices, most important first, for window index ``window``."""
        return np.argsort(-self.mean[:, window], kind="stable")


def _window_errors(pred: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean absolute error per window. pred (..., n, E), targets (n, E) -> (..., n_windows)."""
    per_sample = np.abs(pred - targets) @ weights  # (..., n, W)
    return per_sample.mean(axis=-2)


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    features: np.ndarray,
    targets: np.ndarray,
    energies_rel: np.ndarray,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
    *,
    repeats: int = 5,
    seed: int = 0,
    max_rows: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportanceResult:
    """Permutation importance of each feature column per energy window.

    The error in a window is the mean absolute error over the window's grid points, averaged
    over samples. For column ``j`` it is shuffled across samples ``repeats`` times (one
    seeded permutation each); all shuffles of one column go to ``predict`` in one call
    (split only beyond ``max_rows`` rows). Importance is permuted minus baseline error.

    Args:
        predict: features (m, n_features) -> spectra (m, n_energies).
        features: (n_samples, n_features) descriptors.
        targets: (n_samples, n_energies) reference spectra.
        energies_rel: (n_energies,) grid energies relative to the edge, eV.
        windows: energy windows relative to the edge, eV.
        repeats: shuffles per feature (>= 1).
        seed: seed of :func:`numpy.random.default_rng`.
        max_rows: most rows per ``predict`` call.
        progress: called as ``progress(done, n_features)`` after each feature.

    Returns:
        :class:`ImportanceResult` with (n_features, n_windows) mean and std.
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if features.ndim != 2 or targets.ndim != 2 or len(features) != len(targets):
        raise ValueError(
            f"features {features.shape} and targets {targets.shape} must be 2-D with equal rows"
        )
    if len(features) < 2:
        raise ValueError("permutation importance needs at least 2 samples")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    windows = tuple(windows)
    masks = window_masks(energies_rel, windows)
    if masks.shape[1] != targets.shape[1]:
        raise ValueError(
            f"energies_rel has {masks.shape[1]} points, targets {targets.shape[1]} columns"
        )
    weights = (masks / masks.sum(axis=1, keepdims=True)).T  # (E, W)
    n, n_features = features.shape

    def errors(x: np.ndarray) -> np.ndarray:
        pred = np.asarray(predict(x.reshape(-1, n_features)), dtype=np.float64)
        return _window_errors(pred.reshape(-1, n, targets.shape[1]), targets, weights)

    baseline = errors(features[None])[0]
    rng = np.random.default_rng(seed)
    per_call = max(1, max_rows // n)
    mean = np.empty((n_features, len(windows)))
    std = np.empty((n_features, len(windows)))
    for j in range(n_features):
        perms = np.stack([rng.permutation(n) for _ in range(repeats)])  # (R, n)
        scores = []
        for start in range(0, repeats, per_call):
            block = perms[start : start + per_call]
            x = np.broadcast_to(features, (len(block), n, n_features)).copy()
            x[:, :, j] = features[block, j]
            scores.append(errors(x))
        increase = np.concatenate(scores) - baseline  # (R, W)
        mean[j], std[j] = increase.mean(axis=0), increase.std(axis=0)
        if progress is not None:
            progress(j + 1, n_features)
    return ImportanceResult(windows, baseline, mean, std, repeats, seed)


# -- feature meanings -----------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureInfo:
    """Meaning of one descriptor column.

    Attributes:
        index: column index.
        name: the configuration's feature name.
        kind: ``"G1"``, ``"G2"``, ``"G4"``, ``"S"`` (spin) or ``"q"`` (charge).
        mu: radial centre, Å (G2, G4), else NaN.
        eta: radial width parameter, Å⁻² (G2, G4), else NaN.
        lambda_: G4 angular λ, else NaN.
        zeta: G4 angular ζ, else NaN.
        group: element group of a per-group G2 channel, ``""`` for the Z-weighted block.
    """

    index: int
    name: str
    kind: str
    mu: float = float("nan")
    eta: float = float("nan")
    lambda_: float = float("nan")
    zeta: float = float("nan")
    group: str = ""


def feature_table(config: Any) -> list[FeatureInfo]:
    """One :class:`FeatureInfo` per feature of a :class:`~xanesnet.descriptors.WACSF`.

    Built from the configuration's parameters in the descriptor's column order (G1, G2,
    G4 by radial index then λ then ζ, per-group G2 channels, S, q).
    """
    names = list(config.feature_names)
    rows: list[tuple[str, float, float, float, float, str]] = [("G1", *[np.nan] * 4, "")]
    g2 = list(zip(np.asarray(config.g2_mu, float), np.asarray(config.g2_eta, float)))
    rows += [("G2", mu, eta, np.nan, np.nan, "") for mu, eta in g2]
    for mu, eta in zip(np.asarray(config.g4_mu, float), np.asarray(config.g4_eta, float)):
        for lam in config.lambdas:
            for zeta in config.zetas:
                rows.append(("G4", mu, eta, float(lam), float(zeta), ""))
    for group in config.g2_element_groups:
        rows += [("G2", mu, eta, np.nan, np.nan, str(group)) for mu, eta in g2]
    if config.use_spin:
        rows.append(("S", *[np.nan] * 4, ""))
    if config.use_charge:
        rows.append(("q", *[np.nan] * 4, ""))
    if len(rows) != len(names):
        raise ValueError(f"feature table: {len(rows)} rows for {len(names)} features")
    return [
        FeatureInfo(i, name, kind, float(mu), float(eta), float(lam), float(zeta), group)
        for i, (name, (kind, mu, eta, lam, zeta, group)) in enumerate(zip(names, rows))
    ]


def g2_block(table: Sequence[FeatureInfo], group: str | None = "") -> np.ndarray:
    """Indices of G2 features of one element group (``""``: the plain Z-weighted block)."""
    return np.array([f.index for f in table if f.kind == "G2" and f.group == group], dtype=int)


def g2_groups(table: Sequence[FeatureInfo]) -> list[str]:
    """Element groups of the per-group G2 channels, in column order (empty if none)."""
    seen: list[str] = []
    for f in table:
        if f.kind == "G2" and f.group and f.group not in seen:
            seen.append(f.group)
    return seen


def weighted_mean_mu(
    result: ImportanceResult, table: Sequence[FeatureInfo], window: int, group: str | None = ""
) -> float:
    """Importance-weighted mean radial centre μ (Å) of G2 features in one window.

    ``group`` picks the block: ``""`` the plain Z-weighted G2 block, a group name one
    per-group channel, ``None`` the per-group channels summed over groups at each μ.
    Negative importances (noise) count as zero. NaN when no feature has positive weight.
    """
    if group is None:
        groups = g2_groups(table)
        if not groups:
            return float("nan")
        idx = g2_block(table, groups[0])
        w = sum(result.mean[g2_block(table, g), window] for g in groups)
    else:
        idx = g2_block(table, group)
        w = result.mean[idx, window]
    mu = np.array([table[i].mu for i in idx])
    w = np.clip(w, 0.0, None)
    return float(np.sum(w * mu) / np.sum(w)) if np.sum(w) > 0 else float("nan")


CSV_COLUMNS = (
    "feature_index",
    "name",
    "kind",
    "mu",
    "eta",
    "lambda",
    "zeta",
    "group",
    "window",
    "importance_mean",
    "importance_std",
)


def write_csv(
    path: str | os.PathLike, result: ImportanceResult, table: Sequence[FeatureInfo]
) -> None:
    """Write one row per (feature, window) with the columns of :data:`CSV_COLUMNS`."""

    def num(x: float) -> str:
        return "" if np.isnan(x) else f"{x:.6g}"

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for f in table:
            for w, window in enumerate(result.windows):
                writer.writerow(
                    [
                        f.index,
                        f.name,
                        f.kind,
                        num(f.mu),
                        num(f.eta),
                        num(f.lambda_),
                        num(f.zeta),
                        f.group,
                        window.label,
                        f"{result.mean[f.index, w]:.6g}",
                        f"{result.std[f.index, w]:.6g}",
                    ]
                )


# -- coordination shells --------------------------------------------------------------------

#: neighbour element groups of the pair-distribution figure: (label, atomic numbers);
#: everything not listed (other light elements, and all heavier ones) goes to the last
NEIGHBOUR_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("H", (1,)),
    ("C, N, O, F", (6, 7, 8, 9)),
    ("Si, P, S, Cl", (14, 15, 16, 17)),
    ("heavier / other", ()),
)


def neighbour_group(numbers: np.ndarray) -> np.ndarray:
    """Index into :data:`NEIGHBOUR_GROUPS` for each atomic number."""
    numbers = np.asarray(numbers)
    out = np.full(numbers.shape, len(NEIGHBOUR_GROUPS) - 1, dtype=int)
    for g, (_, zs) in enumerate(NEIGHBOUR_GROUPS[:-1]):
        out[np.isin(numbers, zs)] = g
    return out


def absorber_distances(
    structures: Iterable[Any], r_max: float, absorber: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Absorber-neighbour distances (Å) within ``r_max`` over many ASE structures.

    Periodic structures use the minimum-image distance (neighbours beyond one image are
    not repeated).

    Returns:
        distances (m,) float64 Å and atomic numbers (m,) int of the neighbours.
    """
    dists, numbers = [], []
    for atoms in structures:
        others = np.array([i for i in range(len(atoms)) if i != absorber], dtype=int)
        if len(others) == 0:
            continue
        if np.any(atoms.pbc):
            d = atoms.get_distances(absorber, others, mic=True)
        else:
            d = np.linalg.norm(atoms.positions[others] - atoms.positions[absorber], axis=1)
        keep = d <= r_max
        dists.append(d[keep])
        numbers.append(atoms.numbers[others][keep])
    if not dists:
        return np.empty(0), np.empty(0, dtype=int)
    return np.concatenate(dists), np.concatenate(numbers).astype(int)


def shell_peaks(
    distances: np.ndarray,
    r_max: float,
    *,
    bin_width: float = 0.05,
    min_fraction: float = 0.15,
    max_peaks: int = 5,
) -> np.ndarray:
    """Coordination-shell radii (Å): peaks of the distance histogram.

    Local maxima of the histogram (``bin_width`` Å bins, 3-bin moving average) that reach
    ``min_fraction`` of the highest bin, strongest ``max_peaks`` kept, sorted by distance.
    Distances are weighted by 1/r² so that far shells do not dominate by volume.
    """
    distances = np.asarray(distances, dtype=np.float64)
    distances = distances[distances > 0.3]
    if distances.size == 0:
        return np.empty(0)
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    counts, _ = np.histogram(distances, bins=edges, weights=1.0 / distances**2)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    inner = smooth[1:-1]
    is_peak = (inner > smooth[:-2]) & (inner >= smooth[2:]) & (inner >= min_fraction * smooth.max())
    idx = np.nonzero(is_peak)[0] + 1
    idx = idx[np.argsort(-smooth[idx])][:max_peaks]
    centres = 0.5 * (edges[:-1] + edges[1:])
    return np.sort(centres[idx])


# -- figures --------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mark_shells(ax: Any, shells: np.ndarray) -> None:
    for k, r in enumerate(shells):
        ax.axvline(
            r,
            color="0.5",
            ls=":",
            lw=1,
            label="shell (distance-histogram peak)" if k == 0 else None,
        )


def plot_g2_importance(
    path: str | os.PathLike,
    result: ImportanceResult,
    table: Sequence[FeatureInfo],
    shells: np.ndarray = np.empty(0),  # noqa: B008 - read-only default
    title: str = "",
) -> None:
    """G2 importance against radial centre μ per window, and the highest minus the lowest window.

    Plotted: the plain Z-weighted G2 block (solid, with ±1 std over repeats) and, when the
    model has per-element-group G2 channels, their importance summed over groups (dashed).
    Vertical dotted lines mark coordination shells.
    """
    plt = _pyplot()
    plain = g2_block(table)
    groups = g2_groups(table)
    mu = np.array([table[i].mu for i in plain])
    summed = sum(result.mean[g2_block(table, g)] for g in groups) if groups else None
    order = np.argsort([w.lo for w in result.windows])
    lo_w, hi_w = int(order[0]), int(order[-1])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for w, window in enumerate(result.windows):
        c = colours[w % len(colours)]
        m, s = result.mean[plain, w], result.std[plain, w]
        ax1.plot(mu, m, "-o", ms=3, color=c, label=f"{window.label}: Z-weighted G2")
        ax1.fill_between(mu, m - s, m + s, color=c, alpha=0.2, lw=0)
        if summed is not None:
            ax1.plot(mu, summed[:, w], "--", color=c, lw=1, label=f"{window.label}: Σ group G2")
    _mark_shells(ax1, shells)
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel("importance (Δ MAE of μ)")
    ax1.legend(fontsize=7)
    ax1.set_title(title or "Permutation importance of G2 features")
    diff = result.mean[plain, hi_w] - result.mean[plain, lo_w]
    label = f"{result.windows[hi_w].label} − {result.windows[lo_w].label}"
    ax2.plot(mu, diff, "-o", ms=3, color="k", label=f"Z-weighted G2: {label}")
    if summed is not None:
        ax2.plot(mu, summed[:, hi_w] - summed[:, lo_w], "--", color="k", lw=1, label="Σ group G2")
    _mark_shells(ax2, shells)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_xlabel("G2 radial centre μ (Å)")
    ax2.set_ylabel("importance difference")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pair_distribution(
    path: str | os.PathLike,
    distances: np.ndarray,
    numbers: np.ndarray,
    r_max: float,
    shells: np.ndarray = np.empty(0),  # noqa: B008 - read-only default
    title: str = "",
    bin_width: float = 0.05,
) -> None:
    """Stacked histogram of absorber-neighbour distances coloured by neighbour group."""
    plt = _pyplot()
    groups = neighbour_group(numbers)
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    data = [np.asarray(distances)[groups == g] for g in range(len(NEIGHBOUR_GROUPS))]
    labels = [f"{label} ({len(d)})" for (label, _), d in zip(NEIGHBOUR_GROUPS, data)]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.hist(data, bins=edges, stacked=True, label=labels)
    _mark_shells(ax, shells)
    ax.set_xlabel("absorber–neighbour distance (Å)")
    ax.set_ylabel("count")
    ax.set_title(title or "Absorber–neighbour distances")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
