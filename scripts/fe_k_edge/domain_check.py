"""Fit the out-of-domain score of the shipped Fe K-edge models and show what it separates.

    python scripts/fe_k_edge/domain_check.py [--workdir /tmp/xanesnet_calibration]

(from the repository root, with ../shared beside it). Fits :func:`xanesnet.model.domain.fit_domain`
on the descriptors of the 3264 training structures of ``split.json`` (threshold: the 99th
percentile of 5-fold held-out training sites), writes ``domain.json`` beside this script, then
scores, with the shipped default model's descriptor:

- the 815 held-out complexes of the validation split (expected: in domain);
- Fe sites of crystals built with ase: FeO rocksalt, Fe3O4 spinel, α-Fe2O3 corundum, bcc Fe;
- strongly perturbed validation complexes: every atom displaced by 0.3 / 0.5 Å (random
  directions), and the whole complex compressed to 0.85 or stretched to 1.2 × its size;

and prints the share flagged outside, the share of the default model's spectra flagged by
:func:`xanesnet.model.calibration.physical_range_flags` (once the file carries its
calibration) and the ROC-AUC of complexes against each group. The validation split is only
scored here, never used to fit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal

import xanesnet
from xanesnet.io import read_structures
from xanesnet.model.calibration import CalibratedUncertainty, physical_range_flags
from xanesnet.model.domain import DomainScore, fit_domain, roc_auc

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "fe_k_edge" / "xanesnet_2022_preconv"


def fe_crystals() -> dict[str, Atoms]:
    """The four Fe crystals (experimental lattice constants, Å)."""
    return {
        "FeO rocksalt": bulk("FeO", "rocksalt", a=4.33),
        "Fe3O4 spinel": crystal(
            ["Fe", "Fe", "O"],
            basis=[(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.2549, 0.2549, 0.2549)],
            spacegroup=227,
            setting=2,
            cellpar=[8.396, 8.396, 8.396, 90, 90, 90],
        ),
        "Fe2O3 corundum": crystal(
            ["Fe", "O"],
            basis=[(0.0, 0.0, 0.3553), (0.3059, 0.0, 0.25)],
            spacegroup=167,
            cellpar=[5.035, 5.035, 13.75, 90, 90, 120],
        ),
        "bcc Fe": bulk("Fe", "bcc", a=2.8665, cubic=True),
    }


def perturbed(structures: list[Atoms], seed: int = 0) -> dict[str, list[Atoms]]:
    """Copies displaced by a fixed length in random directions, and uniformly rescaled about
    the absorber (atom 0)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[Atoms]] = {}
    for length in (0.3, 0.5):
        copies = []
        for atoms in structures:
            direction = rng.normal(size=atoms.positions.shape)
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            copy = atoms.copy()
            copy.positions = copy.positions + length * direction
            copies.append(copy)
        groups[f"displaced {length} A"] = copies
    for factor in (0.85, 1.2):
        copies = []
        for atoms in structures:
            copy = atoms.copy()
            copy.positions = atoms.positions[0] + factor * (atoms.positions - atoms.positions[0])
            copies.append(copy)
        groups[f"scaled x{factor}"] = copies
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/xanesnet_calibration"))
    parser.add_argument("--output", type=Path, default=HERE / "domain.json")
    parser.add_argument("--n-centres", type=int, default=256)
    parser.add_argument("--k", type=int, default=1)
    args = parser.parse_args()
    split = json.loads((HERE / "split.json").read_text())
    model = xanesnet.default_model("Fe", "K")
    cached = args.workdir / "x_train.npy"
    if cached.exists():
        x_train = np.load(cached)
    else:
        from xanesnet.datasets import load_dataset

        x_train = load_dataset(
            DATA / "xyz_train", DATA / "xanes_train", model.descriptor, names=split["train"],
            cache_dir=args.workdir, n_threads=1,
        ).features  # fmt: skip
    domain, held_out = fit_domain(
        x_train,
        n_centres=args.n_centres,
        k=args.k,
        source=(
            f"k-means ({args.n_centres} centres, k = {args.k}) of the standardised descriptors "
            f"of the {len(x_train)} training structures of scripts/fe_k_edge/split.json; "
            "normaliser and threshold (99th percentile) from 5-fold held-out training sites"
        ),
    )
    # what the file will hold: float16 centres, float32 standardiser
    domain = DomainScore.from_metadata(json.loads(json.dumps(domain.to_metadata())))
    complexes = list(
        read_structures([DATA / "xyz_train" / f"{n}.xyz" for n in split["validation"]])
    )
    # the physical-range flags of the default model's spectra, where the file has its
    # calibration (scripts/fe_k_edge/attach_calibration.py)
    calib_entry = model.metadata.get("uncertainty_calibration")
    calib = None if calib_entry is None else CalibratedUncertainty.from_metadata(calib_entry)
    scores = {"held-out training sites (5-fold)": held_out}
    flagged: dict[str, np.ndarray] = {}

    def score_group(name: str, structures: list[Atoms], absorber: int | str) -> None:
        features, _ = model.descriptor.compute(structures, absorber, n_threads=1)
        scores[name] = domain.score_features(features)
        if calib is not None:
            spectra, _ = model.predict_features(features, n_threads=1)
            flagged[name] = physical_range_flags(spectra, calib)

    score_group("validation complexes", complexes, 0)
    crystals = fe_crystals()
    for name, atoms in crystals.items():
        score_group(name, [atoms], "Fe")
    for name, group in perturbed(complexes).items():
        score_group(name, group, 0)
    negative = scores["validation complexes"]
    crystal_scores = np.concatenate([scores[n] for n in crystals])
    perturbed_names = [n for n in scores if n.startswith(("displaced", "scaled"))]
    perturbed_scores = np.concatenate([scores[n] for n in perturbed_names])
    figures = {"threshold": domain.threshold, "normaliser": domain.normaliser, "groups": {}}
    print(f"threshold {domain.threshold:.3f} (normaliser {domain.normaliser:.3f})")
    for name, values in scores.items():
        row = {
            "n_sites": int(len(values)),
            "median_score": float(np.median(values)),
            "min_score": float(values.min()),
            "share_outside": float(np.mean(domain.is_outside(values))),
        }
        if name in flagged:
            row["share_spectra_flagged"] = float(np.mean(flagged[name]))
        figures["groups"][name] = row
        print(f"{name:34s} n {row['n_sites']:4d}  median {row['median_score']:8.3f}  "
              f"min {row['min_score']:8.3f}  outside {100 * row['share_outside']:5.1f} %  "
              f"spectra flagged {100 * row.get('share_spectra_flagged', np.nan):5.1f} %")  # fmt: skip
    figures["roc_auc_complexes_vs_crystals"] = roc_auc(negative, crystal_scores)
    figures["roc_auc_complexes_vs_perturbed"] = roc_auc(negative, perturbed_scores)
    for name in perturbed_names:
        figures[f"roc_auc_complexes_vs_{name}"] = roc_auc(negative, scores[name])
    for key, value in figures.items():
        if key.startswith("roc_auc"):
            print(f"{key}: {value:.4f}")
    payload = {**domain.to_metadata(), "validation_figures": figures}
    args.output.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
