"""Where the V K-edge ΔE comes from: the peak pairs of held-out predictions, taken apart.

    python scripts/v_k_edge/cross_validate.py --set training.kernel.weight=0.5 \
        --predictions v_cv.npy
    python scripts/v_k_edge/peak_analysis.py v_cv.npy [--data .../k_edge_v.npz]

Prints, with the default definitions of shared/spec/metrics.md:

* ΔE by how well each target peak's position is defined: the width of the energy range around
  the peak over which the target stays within 2 % of its maximum of the peak height. On a broad,
  flat top an error of 2 % of the maximum (half the typical Δμ) can move the maximum anywhere
  in that range.
* ΔE of the targets plus the model's own residuals scaled by α (and plus another spectrum's
  residuals, to break their correlation with the target's shape): how small Δμ would have to
  be for ΔE to reach a given value, if the errors kept their present shape.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from xanesnet.analysis import evaluate_spectra, peak_shift

HERE = Path(__file__).resolve().parent
ENERGIES = np.linspace(-15.0, 60.0, 226)  # relative to the edge; ΔE does not depend on E0
WIDTH_CLASSES = ((0.0, 2.0), (2.0, 6.0), (6.0, 10.0), (10.0, np.inf))


def flat_width(mu: np.ndarray, energy: float, tolerance: float = 0.02) -> float:
    """Width in eV of the range around the grid point nearest ``energy`` where ``mu`` stays
    within ``tolerance`` · max(mu) of that point's value."""
    j = int(np.argmin(np.abs(ENERGIES - energy)))
    level = mu[j] - tolerance * mu.max()
    a = j
    while a > 0 and mu[a - 1] >= level:
        a -= 1
    b = j
    while b < len(mu) - 1 and mu[b + 1] >= level:
        b += 1
    return float(ENERGIES[b] - ENERGIES[a])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("predictions", type=Path, help="(1439, 226) held-out spectra (.npy)")
    default = HERE.parents[2] / "shared" / "data" / "v_k_edge_tmqm_featurised" / "k_edge_v.npz"
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args(argv)
    with np.load(args.data) as data:
        target = data["y"].astype(np.float64)
    pred = np.load(args.predictions).astype(np.float64)
    if pred.shape != target.shape:
        parser.error(f"{args.predictions}: expected shape {target.shape}, got {pred.shape}")

    shift = peak_shift(ENERGIES, pred, target)
    error = np.abs(shift.pred_energies - shift.target_energies)
    print(f"{shift.n_pairs} peak pairs, ΔE {shift.delta_e:.3f} eV, median {np.median(error):.2f}")
    print(
        f"pairs > 3 eV apart: {np.mean(error > 3):.1%}, {error[error > 3].sum() / error.sum():.0%} of the sum"
    )
    widths = np.array(
        [flat_width(target[i], e) for i, e in zip(shift.spectrum_index, shift.target_energies)]
    )
    print(
        "\n| flat width at 2 % of max (eV) | pairs | ΔE eV | pairs > 3 eV apart | share of the ΔE sum |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for lo, hi in WIDTH_CLASSES:
        sel = (widths >= lo) & (widths < hi)
        print(
            f"| {lo:g}–{hi:g} | {sel.sum()} | {error[sel].mean():.2f} | {np.mean(error[sel] > 3):.1%} "
            f"| {error[sel].sum() / error.sum():.0%} |"
        )

    residual = pred - target
    other = residual[np.random.default_rng(0).permutation(len(residual))]
    print("\n| α | Δμ_avg % (own residuals) | ΔE eV | Δμ_avg % (another spectrum's) | ΔE eV |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for alpha in (0.25, 0.5, 0.75, 1.0):
        own = evaluate_spectra(ENERGIES, target + alpha * residual, target)
        perm = evaluate_spectra(ENERGIES, target + alpha * other, target)
        print(
            f"| {alpha:g} | {own.delta_mu_avg:.2f} | {own.delta_e_avg:.2f} "
            f"| {perm.delta_mu_avg:.2f} | {perm.delta_e_avg:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
