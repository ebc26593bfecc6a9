"""Permutation feature importance of a spectrum model, per energy window.

For each descriptor column the values are shuffled across samples (seeded, ``repeats``
times), the spectra are predicted again and the increase of the mean absolute error over
each energy window (relative to the edge, eV) is recorded. Features whose shuffling hurts a
window most are the ones the model relies on for that part of the spectrum.

What each feature means is in :mod:`xanesnet.analysis.features`, coordination shells in
:mod:`xanesnet.analysis.shells`, the figures in :mod:`xanesnet.analysis.importance_plots`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_WINDOWS",
    "ImportanceResult",
    "Window",
    "parse_windows",
    "permutation_importance",
    "window_masks",
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
