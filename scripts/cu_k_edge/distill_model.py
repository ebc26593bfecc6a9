"""Distil the Cu K-edge ensemble (three networks + kernel ridge, 7.4 MB) into two small networks.

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/cu_k_edge/distill_model.py
        --stand-in STAND_IN.pt [--mixup 100000] [--epochs 30] [--spread members|teacher]
        [-o xanesnet/model/pretrained/Cu_K_edge.pt]

(from the repository root, with ../shared beside it; the teacher is the file written by
train_model.py, read from ``--teacher`` before ``--output`` is written, so both may name the
shipped file). The student learns the teacher on the training sites (train + early_stop
materials, the teacher's own) and on mixed samples λ·x_i + (1 − λ)·x_j between two of them
(``xanesnet.model.distill`` with ``copies = 0``: perturbed copies would need the absorber at
index 0, and a crystal's absorber is any of its sites).

The students' spread is their own ("members": their disagreement; "teacher": they learn mean ±
spread of the teacher), so the uncertainty calibration is fitted anew, on held-out sites: the
stand-in of train_model.py (``--stand-in``: the same networks trained on the train materials
only) blended with kernel ridge on the train materials is distilled the same way on the train
materials, and those stand-in students predict the early_stop materials, which neither they
nor their teacher saw. The domain score (same descriptor, same training sites) is the
teacher's. Figures on OmniXAS's ``val`` sites, as train_model.py prints them; the validation
sites are never used to fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from cu_data import MODEL_GRID, load_features, load_targets, read_sites, split_indices
from train_model import (  # this folder's training script
    DESCRIPTOR,
    KERNEL,
    SPLIT_FILE,
    figures,
    stand_in_members,
)

from xanesnet.checksums import file_sha256
from xanesnet.model import TrainConfig, fit_kernel_ridge, load_model, save_model
from xanesnet.model.calibration_fit import fit_calibration
from xanesnet.model.distill import (
    DistillConfig,
    distillation_set,
    student_training,
    train_student,
)
from xanesnet.model.network import blend_members, store_weights_as_float16

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHIPPED = ROOT / "xanesnet" / "model" / "pretrained" / "Cu_K_edge.pt"
#: Metadata entries of the teacher that describe the data and the trust machinery, kept as
#: they are (the student learned the same training set and carries the same spread).
CARRIED = (
    "domain",
    "training_data",
    "intensity",
    "energy_reference",
    "training_set_hash",
    "training_set_size",
    "training_materials",
    "validation_split",
    "validation_size",
)


class StandInTeacher:
    """The stand-in of the shipped teacher: its networks (trained on the train materials) and
    kernel ridge on the train materials, blended as the shipped file blends them."""

    has_spread = True
    label = "Cu K stand-in (train materials)"

    def __init__(self, stand_in: object, x: np.ndarray, y: np.ndarray, weight: float) -> None:
        self.members = stand_in_members(stand_in)
        self.kernel = fit_kernel_ridge(x, y, KERNEL)
        self.weight = weight

    def predict_features(
        self, features: np.ndarray, n_threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        means, spreads = [], []
        with torch.no_grad():
            for start in range(0, len(features), 8192):
                xt = torch.as_tensor(features[start : start + 8192], dtype=torch.float32)
                outputs = torch.stack([m(xt) for m in self.members])
                mean, spread = blend_members(outputs, self.kernel(xt), self.weight)
                means.append(mean.numpy())
                spreads.append(spread.numpy())
        return np.concatenate(means).astype(np.float64), np.concatenate(spreads).astype(np.float64)


def distil(
    teacher: object,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    distill: DistillConfig,
    threads: int,
) -> tuple[object, dict]:
    """Two students of ``teacher`` on the rows ``x`` (reference spectra ``y``: the range that
    drops implausible teacher labels) and mixed samples between them."""
    features, labels, spread, summary = distillation_set(
        teacher, [None] * len(x), x, y, distill, n_threads=threads
    )
    print(f"distillation set: {summary}", file=sys.stderr)
    student, _ = train_student(
        features,
        labels,
        config,
        spread=spread,
        progress=lambda m, e, t, v: (
            print(f"student {m} epoch {e}: {t:.5f}", file=sys.stderr) if e % 10 == 9 else None
        ),
    )
    return store_weights_as_float16(student), summary


def predict(student: object, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        mean, spread = student(torch.as_tensor(x, dtype=torch.float32))
    return mean.numpy().astype(np.float64), spread.numpy().astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=SHIPPED)
    parser.add_argument("--stand-in", type=Path, required=True, help="see the module docstring")
    parser.add_argument("--mixup", type=int, default=100000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--spread", choices=("members", "teacher"), default="members")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "build/Cu_K_edge_distilled.pt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    teacher = load_model(args.teacher)
    teacher_sha256 = file_sha256(args.teacher)
    if teacher.descriptor.to_json() != DESCRIPTOR.to_json():
        raise ValueError(f"{args.teacher}: not the descriptor of train_model.py")
    sites = read_sites()
    x = load_features(sites, DESCRIPTOR)
    y = load_targets(sites, MODEL_GRID)
    parts = split_indices(sites)
    train, stop = parts["train"], parts["early_stop"]
    fit = np.concatenate([train, stop])  # the teacher's training sites
    val = np.array([i for i in parts["validation"] if sites[i].split == "val"])
    if teacher.metadata.get("training_set_size") != len(fit):
        raise ValueError(f"{args.teacher}: not trained on train + early_stop ({len(fit)} sites)")
    config = student_training(args.epochs, 2)
    distill = DistillConfig(copies=0, mixup=args.mixup, seed=0, spread=args.spread)
    started = time.perf_counter()
    # 1. the calibration: stand-in students (train materials only) on the early_stop sites
    stand_in = StandInTeacher(
        load_model(args.stand_in), x[train], y[train], teacher.module.kernel_weight
    )
    stand_in_student, _ = distil(stand_in, x[train], y[train], config, distill, args.threads)
    stop_pred, stop_spread = predict(stand_in_student, x[stop])
    calibration = fit_calibration(
        y[stop],
        stop_pred,
        stop_spread,
        reference_spectra=y[train],
        source=f"early-stop materials of {SPLIT_FILE} ({len(stop)} sites), predicted by two "
        f"students distilled ({args.spread} spread, {args.mixup} mixed samples, {args.epochs} "
        f"epochs) from the stand-in ({args.stand_in.name}, trained on the train materials) "
        "blended with kernel ridge on the train materials; neither saw these sites",
    )
    inner = figures(
        stop_pred,
        y[stop],
        y[train].mean(axis=0),
        teacher.e0,
        "Cu K (early-stop, stand-in students)",
    )
    # 2. the shipped students, from the shipped teacher (every training material)
    student, summary = distil(teacher, x[fit], y[fit], config, distill, args.threads)
    seconds = time.perf_counter() - started
    pred, spread = predict(student, x[val])
    teacher_pred, _ = teacher.predict_features(x[val], n_threads=args.threads)
    gap = 100 * np.abs(pred - teacher_pred).sum(1) / np.abs(teacher_pred).sum(1)
    metrics = figures(
        pred, y[val], y[fit].mean(axis=0), teacher.e0, f"Cu K student (val, {len(val)})"
    )
    print(f"student vs teacher on the val sites: delta-mu {gap.mean():.2f} %; {seconds:.0f} s")
    extra = {key: teacher.metadata[key] for key in CARRIED if key in teacher.metadata}
    extra.update(
        {
            "uncertainty_calibration": calibration.to_metadata(),
            "validation_metrics": {**metrics, "n_spectra": len(val)},
            "early_stop_metrics": inner,
            "training": config.to_dict(),
            "training_seconds": round(seconds, 1),
            "weight_dtype": "float16",
            "distillation": {
                **distill.to_dict(),
                **summary,
                "teacher_file": args.teacher.name,
                "teacher_sha256": teacher_sha256,
                "teacher_validation_metrics": teacher.metadata.get("validation_metrics"),
                "student_vs_teacher_delta_mu": float(gap.mean()),
            },
        }
    )
    save_model(
        student,
        args.output,
        descriptor=teacher.descriptor,
        energies=teacher.energies,
        e0=teacher.e0,
        element="Cu",
        edge="K",
        extra=extra,
    )
    again, _ = load_model(args.output).predict_features(x[val], n_threads=1)
    change = float(np.abs(again - pred).max() / np.abs(pred).max())
    print(
        f"written {args.output} ({args.output.stat().st_size / 1e6:.2f} MB); reloaded "
        f"prediction differs by {change:.1e} of max"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
