"""Coordination shells around the absorber: neighbour distances over many structures and the
peaks of their histogram (distances in Å)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["NEIGHBOUR_GROUPS", "absorber_distances", "neighbour_group", "shell_peaks"]


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
    Distances are weighted by 1/r² so that far shells do not dominate by volume. A flat top
    (equal neighbouring bins) is one peak at its centre bin (rounded down), as
    :func:`scipy.signal.find_peaks` reports it.
    """
    from scipy import signal  # imported on use: scipy.signal takes ~1 s to import

    distances = np.asarray(distances, dtype=np.float64)
    distances = distances[distances > 0.3]
    if distances.size == 0:
        return np.empty(0)
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    counts, _ = np.histogram(distances, bins=edges, weights=1.0 / distances**2)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    idx, _ = signal.find_peaks(smooth, height=min_fraction * smooth.max())
    idx = idx[np.argsort(-smooth[idx], kind="stable")][:max_peaks]
    centres = 0.5 * (edges[:-1] + edges[1:])
    return np.sort(centres[idx])
