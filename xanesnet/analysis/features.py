"""What each descriptor column means (:class:`FeatureInfo`), importance-weighted radial
centres and the importance CSV table."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xanesnet.analysis.importance import ImportanceResult

__all__ = [
    "CSV_COLUMNS",
    "FeatureInfo",
    "feature_table",
    "g2_block",
    "g2_grids",
    "g2_groups",
    "weighted_mean_mu",
    "write_csv",
]


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
        grid: radial grid of a G2 feature: 0 the main grid, k the k-th of
            ``g2_extra_grids`` (each grid has its own width η); 0 for other kinds.
    """

    index: int
    name: str
    kind: str
    mu: float = float("nan")
    eta: float = float("nan")
    lambda_: float = float("nan")
    zeta: float = float("nan")
    group: str = ""
    grid: int = 0


def feature_table(config: Any) -> list[FeatureInfo]:
    """One :class:`FeatureInfo` per feature of a :class:`~xanesnet.descriptors.WACSF`.

    Built from the configuration's parameters in the descriptor's column order (G1, G2,
    G4 by radial index then λ then ζ, per-group G2 channels, S, q).
    """
    names = list(config.feature_names)
    nan = float("nan")
    rows: list[tuple[str, float, float, float, float, str, int]] = [
        ("G1", nan, nan, nan, nan, "", 0)
    ]
    # main grid (n_g2 functions), then each extra grid in turn
    n_per_grid = [int(config.n_g2)] + [int(n) for _, _, n in getattr(config, "g2_extra_grids", ())]
    grid_of = np.repeat(np.arange(len(n_per_grid)), n_per_grid)
    g2 = list(zip(np.asarray(config.g2_mu, float), np.asarray(config.g2_eta, float), grid_of))
    rows += [("G2", mu, eta, nan, nan, "", int(k)) for mu, eta, k in g2]
    for mu, eta in zip(np.asarray(config.g4_mu, float), np.asarray(config.g4_eta, float)):
        for lam in config.lambdas:
            for zeta in config.zetas:
                rows.append(("G4", mu, eta, float(lam), float(zeta), "", 0))
    for group in config.g2_element_groups:
        rows += [("G2", mu, eta, nan, nan, str(group), int(k)) for mu, eta, k in g2]
    if config.use_spin:
        rows.append(("S", nan, nan, nan, nan, "", 0))
    if config.use_charge:
        rows.append(("q", nan, nan, nan, nan, "", 0))
    if len(rows) != len(names):
        raise ValueError(f"feature table: {len(rows)} rows for {len(names)} features")
    return [
        FeatureInfo(i, name, kind, float(mu), float(eta), float(lam), float(zeta), group, grid)
        for i, (name, (kind, mu, eta, lam, zeta, group, grid)) in enumerate(zip(names, rows))
    ]


def g2_block(table: Sequence[FeatureInfo], group: str | None = "") -> np.ndarray:
    """Indices of G2 features of one element group (``""``: the plain Z-weighted block)."""
    return np.array([f.index for f in table if f.kind == "G2" and f.group == group], dtype=int)


def g2_grids(table: Sequence[FeatureInfo]) -> list[int]:
    """Radial grids of the G2 features (0: main grid, k: k-th extra grid), in column order."""
    return sorted({f.grid for f in table if f.kind == "G2"})


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
