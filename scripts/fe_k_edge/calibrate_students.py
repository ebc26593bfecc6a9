"""Out-of-fold residuals of students distilled exactly like the shipped default Fe model.

    python scripts/fe_k_edge/calibrate_students.py --fold 0 [--teacher full]
        [--workdir /tmp/xanesnet_calibration]

(from the repository root, with ../shared beside it; one fold takes about 50 minutes on one
core, so two folds run side by side on a 2-core machine). Why (docs/calibration.md): the
default model's two students were distilled on 508,000 inputs and agree far more closely than
networks trained on the reference spectra, so a σ map fitted on the spread of such networks
is too narrow for them. Per fold of ``calibrate.py``'s 5-fold split of the training
structures:

1. the fold's teacher, trained on the other four folds only: 3 × (2 × 512 SiLU) networks
   (``calibrate.py``'s recipe: 100 epochs, batch 64, lr 2e-3, dropout 0.1) blended half and
   half with the Laplacian kernel ridge model, as the shipped ensemble is;
2. its distillation set, built like ``distill.toml``'s (``xanesnet.model.distill``): the
   four folds' structures, 32 perturbed copies of each (0.005–0.03 Å) and mixed samples, as
   many per structure as the shipped 400,000 for 3264 structures;
3. two students with the shipped recipe (``distill.student_training(60)``);
4. the students' (and the teacher's) predictions on the held-out fold, saved to
   ``WORKDIR/students_fold_<k>.npz`` (a killed run starts the fold again), and the students'
   weights beside it (``.students.pt``).

``--teacher full`` trains the fold teacher's networks with the shipped ensemble's own recipe
(``train.toml``: 300 epochs, batch 32, lr 1e-3; about 6 minutes on one core) instead of
step 1's cheaper one, and writes ``students_full_fold_<k>.npz``: stand-ins whose teacher is
made like the shipped default's.

``calibrate.py --students [--student-teacher full]`` then fits the default model's σ map on
these residuals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from calibrate import DATA, FOLD_SEED, KERNEL_WEIGHT, N_FOLDS, FoldTeacher, load_split  # noqa: E402

import xanesnet  # noqa: E402
from xanesnet.io import read_structures  # noqa: E402
from xanesnet.model.distill import DistillConfig, distillation_set, student_training  # noqa: E402
from xanesnet.model.kernel import KernelConfig, fit_kernel_ridge  # noqa: E402
from xanesnet.model.network import NetworkConfig  # noqa: E402
from xanesnet.model.train import TrainConfig, kfold_indices, train_ensemble  # noqa: E402

SHIPPED_MIXUP = 400_000  # distill.toml, for the 3264 training structures
SHIPPED_STRUCTURES = 3264
STUDENT_EPOCHS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, required=True, choices=range(N_FOLDS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/xanesnet_calibration"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--teacher", choices=("e100", "full"), default="e100",
        help="the fold teacher's networks: calibrate.py's 100-epoch recipe (default) or the "
        "shipped ensemble's own (train.toml: 300 epochs, batch 32, lr 1e-3)",
    )  # fmt: skip
    parser.add_argument(
        "--student-seed", type=int, default=None,
        help="seed of the students (default 2000 + fold); another seed gives two more "
        "students of the same teacher, written to ..._seed<S>_fold_<k>.npz",
    )  # fmt: skip
    parser.add_argument(
        "--drop-fold", type=int, default=None, choices=range(N_FOLDS),
        help="also leave this fold out of training (3/5 of the structures instead of 4/5: "
        "how the stand-ins' errors and spread change with the training set's size); "
        "written to ..._drop<D>_fold_<k>.npz",
    )  # fmt: skip
    args = parser.parse_args()
    if args.drop_fold == args.fold:
        parser.error("--drop-fold must differ from --fold")
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.teacher == "e100" else f"_{args.teacher}"
    student_seed = 2000 + args.fold if args.student_seed is None else args.student_seed
    if args.student_seed is not None:
        suffix += f"_seed{student_seed}"
    if args.drop_fold is not None:
        suffix += f"_drop{args.drop_fold}"
    out = args.workdir / f"students{suffix}_fold_{args.fold}.npz"
    x, y = load_split(args.workdir)["train"]
    names = json.loads((HERE / "split.json").read_text())["train"]
    folds = kfold_indices(len(x), N_FOLDS, FOLD_SEED)
    fit, held = folds[args.fold]
    if args.drop_fold is not None:
        fit = np.setdiff1d(fit, folds[args.drop_fold][1])
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"fold {args.fold} {time.perf_counter() - started:7.0f} s: {text}", flush=True)

    descriptor = xanesnet.default_model("Fe", "K").descriptor
    structures = list(read_structures([DATA / "xyz_train" / f"{names[i]}.xyz" for i in fit]))
    check, _ = descriptor.compute(structures[:8], 0, n_threads=args.threads)
    if not np.allclose(check, x[fit[:8]], rtol=1e-6, atol=1e-9):
        raise SystemExit("the cached descriptors do not match the structures (stale cache?)")

    epochs, batch_size, learning_rate = (
        (100, 64, 2e-3) if args.teacher == "e100" else (300, 32, 1e-3)
    )
    teacher_config = TrainConfig(
        network=NetworkConfig(hidden=(512, 512), activation="silu", dropout=0.1),
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, weight_decay=0.05,
        schedule="onecycle", loss="huber", n_members=3, restore_best=False,
        seed=1000 + args.fold,
    )  # fmt: skip
    ensemble, _ = train_ensemble(x[fit], y[fit], None, None, teacher_config)
    krr = fit_kernel_ridge(
        x[fit], y[fit],
        KernelConfig(weight=KERNEL_WEIGHT, length_scale=1.0, ridge=1e-4, centre_dtype="float16",
                     n_components=64),
    )  # fmt: skip
    teacher = FoldTeacher(list(ensemble.members), krr, descriptor)
    log("teacher trained")

    mixup = round(SHIPPED_MIXUP * len(fit) / SHIPPED_STRUCTURES)
    distill = DistillConfig(
        copies=32, sigmas=(0.005, 0.01, 0.02, 0.03), mixup=mixup, seed=args.fold,
        originals="teacher", spread="members",
    )  # fmt: skip
    features, labels, _, summary = distillation_set(
        teacher, structures, x[fit], y[fit], distill, n_threads=args.threads
    )
    log(f"distillation set {summary}")
    students, _ = train_ensemble(
        features, labels, None, None,
        replace(student_training(STUDENT_EPOCHS), seed=student_seed),
        progress=lambda m, e, *_: e % 10 == 0 and log(f"student {m} epoch {e}"),
    )  # fmt: skip
    log("students trained")
    teacher_mean, teacher_spread = teacher.predict_features(x[held])
    with torch.no_grad():
        xt = torch.as_tensor(x[held], dtype=torch.float32)
        np.savez(
            out,
            held=held,
            students=np.stack([m(xt).numpy() for m in students.members]),
            teacher_mean=teacher_mean,
            teacher_spread=teacher_spread,
            samples=summary["samples"],
        )
    # the students themselves, for label-free checks on other inputs later
    torch.save([m.state_dict() for m in students.members], out.with_suffix(".students.pt"))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
