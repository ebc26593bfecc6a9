"""Distil the V K-edge ensemble into small networks (an experiment; see docs/model.md).

    python scripts/v_k_edge/distill_model.py [--teacher xanesnet/model/pretrained/V_K_edge.pt]
        [--mixup 30000] [--epochs 40] [--members 2] [-o build/V_K_edge_distilled.pt]

The Fe default model is distilled from its ensemble on perturbed copies of the training
structures and on mixed samples between them (``xanesnet distill``). The V set has no
structures, so only mixed samples are possible: λ·x_i + (1 − λ)·x_j of two training rows'
descriptors, labelled by the teacher (``xanesnet.model.distill`` with ``copies = 0``). The
validation rows stay unseen; their figures are printed as train_model.py prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from train_model import validation_metrics  # this folder's training script

from xanesnet.model import load_model, save_model
from xanesnet.model.distill import (
    DistillConfig,
    distillation_set,
    student_training,
    train_student,
)
from xanesnet.model.network import store_weights_as_float16

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "v_k_edge_tmqm_featurised" / "k_edge_v.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--teacher", type=Path, default=ROOT / "xanesnet/model/pretrained/V_K_edge.pt"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mixup", type=int, default=30000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "build/V_K_edge_distilled.pt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    teacher = load_model(args.teacher)
    split = json.loads((HERE / "split.json").read_text())
    with np.load(args.data, allow_pickle=False) as npz:
        x, y = npz["x"].astype(np.float64), npz["y"].astype(np.float64)
    train, val = split["train"], split["validation"]
    started = time.perf_counter()
    # no structures: copies = 0, so distillation_set never looks at them
    features, labels, _, summary = distillation_set(
        teacher,
        [None] * len(train),
        x[train],
        y[train],
        DistillConfig(copies=0, mixup=args.mixup, seed=0, originals="teacher"),
        n_threads=args.threads,
    )
    print(f"distillation set: {summary}", file=sys.stderr)
    config = student_training(args.epochs, args.members)
    student, _ = train_student(
        features,
        labels,
        config,
        progress=lambda m, e, t, v: (
            print(f"student {m} epoch {e}: {t:.4f}", file=sys.stderr) if e % 10 == 9 else None
        ),
    )
    student = store_weights_as_float16(student)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        pred = student(torch.as_tensor(x[val], dtype=torch.float32))[0].numpy().astype(np.float64)
    teacher_pred, _ = teacher.predict_features(x[val])
    gap = 100 * np.abs(pred - teacher_pred).sum(1) / np.abs(teacher_pred).sum(1)
    metrics = validation_metrics(teacher.energies, teacher.e0, pred, y[val])
    print(f"student vs teacher Δμ_avg {gap.mean():.2f} %; {seconds:.0f} s")
    print(json.dumps(metrics["peaks"], indent=1))
    save_model(
        student,
        args.output,
        descriptor=teacher.descriptor,
        energies=teacher.energies,
        e0=teacher.e0,
        element="V",
        edge="K",
        extra={
            "validation_metrics": metrics,
            "distillation": {**summary, "student_vs_teacher_delta_mu": float(gap.mean())},
            "training": config.to_dict(),
            "weight_dtype": "float16",
        },
    )
    print(f"written {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
