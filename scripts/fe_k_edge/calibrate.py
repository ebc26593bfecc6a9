"""Fit the uncertainty calibration of the shipped Fe K-edge models from out-of-fold residuals.

    python scripts/fe_k_edge/calibrate.py [--epochs 100] [--workdir /tmp/xanesnet_calibration]

(from the repository root, with ../shared beside it; about 20 minutes on one busy core).
Steps (method and figures: docs/calibration.md):

1. descriptors of the 3264 training structures of ``split.json`` (the model's own descriptor);
2. 5-fold out-of-fold predictions: per fold, trained on the other four folds, a 2-member
   ensemble of 2 × 512 SiLU networks (the shipped recipe, AdamW wd 0.05, Huber, one-cycle,
   but 100 epochs at batch 64 / lr 2e-3 to cut the cost), a Laplacian kernel ridge model, and
   (for the record) two students distilled from their blend on mixed samples; every training
   structure gets out-of-fold predictions and spreads that no weight was chosen on;
3. the σ model ``σ(E) = sqrt((a(E)·s(E))² + (c(E)·s̄)² + b(E)²)``, its coverage factor and the
   per-spectrum Δμ map are fitted on those residuals
   (:func:`xanesnet.model.calibration_fit.fit_calibration`), one per shipped variant, each on the
   stand-in its spread resembles (networks only: default; networks + kernel: ensemble; one
   network, no spread: fast);
4. the fits are written to ``calibration.json`` beside this script, with their figures on
   the out-of-fold data and on the validation split (the shipped models' own spread, before
   and after calibration; the validation split is never used above).

With ``--students`` the default model's fit uses, instead of the two-network stand-in, the
students that ``calibrate_students.py`` distilled per fold with the default's full recipe
(the folds it has written; all five since session 10): their spread is at the default's level
(median 0.0012 on their held-out folds against 0.0014 for the shipped default on the
validation inputs; the two-network stand-in: 0.0026). The ensemble's fit then uses those
students' teachers: per fold 3 networks + kernel ridge, the shipped ensemble's make-up (the
standing stand-in has 2 networks, and the spread of a blend depends on how many networks
it averages); median spread on their held-out folds 0.0054, the shipped ensemble's on the
validation inputs 0.0051 (no labels). The fast fit is unchanged by it.

``--student-teacher full`` (the shipped default's fit since session 12) fits the default on
the students of ``calibrate_students.py --teacher full`` instead: their fold teachers have
the shipped ensemble's own recipe (train.toml), and their spread and errors come closer to
the shipped default's (folds 0–1: median spread 0.00133, out-of-fold Δμ_avg 4.63 %). The
ensemble stays on the 100-epoch teachers of the five folds.

``--latent`` (with ``--students --student-teacher full``; the shipped default's fit since
session 13) adds the latent distance to the default's predicted Δμ: per fold, the distance of
the held-out structures to the fold's training structures in the last hidden layer of the
fold's student 0 (``latent_distances.py``); the shipped default's own entry (its member 0 on
the 3264 training structures) is written to ``latent.json`` for ``attach_calibration.py``.

``--size-correction`` (with ``--students --student-teacher full``; the shipped default's fit
since session 13) scales the default's σ for the training set's size. On the same held-out
folds 0–1, stand-ins trained on 3/5 of the structures (``calibrate_students.py --teacher full
--drop-fold 4``) and on 4/5 give r = Δμ_avg / median spread; r5 = r4 · (r4 / r3)^(ln(5/4) /
ln(4/3)) extrapolates to the model's 5/5, and σ is multiplied by r5 / r4.

Per-fold predictions are cached in the work folder, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

import xanesnet
from xanesnet.analysis.scores import delta_mu
from xanesnet.datasets import load_dataset
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.model.calibration import CalibratedUncertainty, coverage
from xanesnet.model.calibration_fit import fit_calibration
from xanesnet.model.kernel import KernelConfig, fit_kernel_ridge
from xanesnet.model.network import NetworkConfig, blend_members
from xanesnet.model.train import TrainConfig, kfold_indices, train_ensemble

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "fe_k_edge" / "xanesnet_2022_preconv"
N_FOLDS = 5
FOLD_SEED = 0
KERNEL_WEIGHT = 0.5  # the shipped ensemble's blend
STUDENT_EPOCHS = 15
STUDENT_MIXUP = 10000
BLOCK = 4096  # sites per teacher call


def load_split(cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(features, spectra) of the train and validation parts, with the default model's
    descriptor (cached as .npy in ``cache``)."""
    split = json.loads((HERE / "split.json").read_text())
    descriptor = WACSF.from_dict(xanesnet.default_model("Fe", "K").metadata["descriptor"])
    out = {}
    for part in ("train", "validation"):
        fx, fy = cache / f"x_{part}.npy", cache / f"y_{part}.npy"
        if not (fx.exists() and fy.exists()):
            data = load_dataset(
                DATA / "xyz_train", DATA / "xanes_train", descriptor, names=split[part],
                cache_dir=cache, n_threads=1,
            )  # fmt: skip
            np.save(fx, data.features)
            np.save(fy, data.spectra)
        out[part] = (np.load(fx), np.load(fy))
    return out


class FoldTeacher:
    """A fold's networks + kernel ridge blend (as the shipped ensemble blends them), with the
    interface ``distillation_set`` uses; the teacher of the per-fold students here and in
    ``calibrate_students.py``."""

    has_spread = True

    def __init__(self, members: list[torch.nn.Module], krr: torch.nn.Module, descriptor) -> None:  # noqa: ANN001
        self.members, self.krr, self.descriptor = members, krr, descriptor
        self.label = "fold teacher"

    def predict_features(self, x: np.ndarray, n_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        means, spreads = [], []
        with torch.no_grad():
            for k in range(0, len(x), BLOCK):
                xt = torch.as_tensor(np.asarray(x[k : k + BLOCK]), dtype=torch.float32)
                outs = torch.stack([m(xt) for m in self.members])
                mean, spread = blend_members(outs, self.krr(xt), KERNEL_WEIGHT)
                means.append(mean.numpy())
                spreads.append(spread.numpy())
        return (
            np.concatenate(means).astype(np.float64),
            np.concatenate(spreads).astype(np.float64),
        )


def out_of_fold(x: np.ndarray, y: np.ndarray, epochs: int, workdir: Path) -> dict[str, np.ndarray]:
    """Out-of-fold predictions, fold by fold (cached in ``workdir``).

    Returns:
        ``members`` (2, n, n_e) of the direct networks, ``kernel`` (n, n_e) of the kernel ridge
        model and ``students`` (2, n, n_e) of two students distilled from the fold's blend.
    """
    config = TrainConfig(
        network=NetworkConfig(hidden=(512, 512), activation="silu", dropout=0.1),
        epochs=epochs,
        # batch 64 at twice the learning rate: half the steps of the shipped batch 32 / 1e-3,
        # the same accuracy on this data (docs/model.md)
        batch_size=64,
        learning_rate=2e-3,
        weight_decay=0.05,
        schedule="onecycle",
        loss="huber",
        n_members=2,
        restore_best=False,
    )
    kernel_config = KernelConfig(
        weight=KERNEL_WEIGHT, length_scale=1.0, ridge=1e-4, centre_dtype="float16", n_components=64
    )
    student_config = replace(
        config, network=NetworkConfig(hidden=(512, 512), activation="silu", dropout=0.0),
        epochs=STUDENT_EPOCHS, batch_size=128, learning_rate=1e-3,
    )  # fmt: skip
    out = {
        "members": np.zeros((2, *y.shape)),
        "kernel": np.zeros(y.shape),
        "students": np.zeros((2, *y.shape)),
    }
    for fold, (fit, held) in enumerate(kfold_indices(len(x), N_FOLDS, FOLD_SEED)):
        cached = workdir / f"fold_{fold}_e{epochs}_s{STUDENT_EPOCHS}_m{STUDENT_MIXUP}.npz"
        if not cached.exists():
            started = time.perf_counter()
            ensemble, _ = train_ensemble(
                x[fit], y[fit], None, None, replace(config, seed=100 * fold)
            )
            krr = fit_kernel_ridge(x[fit], y[fit], kernel_config)

            teacher = FoldTeacher(list(ensemble.members), krr, None)
            # the shipped default's recipe in small: the blend's labels on the fold's
            # training structures and on mixed samples between them (no perturbed copies)
            rng = np.random.default_rng([FOLD_SEED, fold])
            i, j = rng.integers(0, len(fit), (2, STUDENT_MIXUP))
            lam = rng.uniform(0.0, 1.0, (STUDENT_MIXUP, 1))
            x_mix = np.concatenate([x[fit], lam * x[fit][i] + (1.0 - lam) * x[fit][j]])
            y_mix, _ = teacher.predict_features(x_mix)
            students, _ = train_ensemble(
                x_mix, y_mix, None, None, replace(student_config, seed=100 * fold + 50)
            )
            with torch.no_grad():
                xt = torch.as_tensor(x[held], dtype=torch.float32)
                np.savez(
                    cached,
                    members=np.stack([m(xt).numpy() for m in ensemble.members]),
                    kernel=krr(xt).numpy(),
                    students=np.stack([m(xt).numpy() for m in students.members]),
                    held=held,
                    # the students on their own training structures (in-sample spread)
                    students_fit=np.stack(
                        [
                            m(torch.as_tensor(x[fit], dtype=torch.float32)).numpy()
                            for m in students.members
                        ]
                    ),  # fmt: skip
                )
            print(f"fold {fold}: {time.perf_counter() - started:.0f} s", flush=True)
        with np.load(cached) as stored:
            out["members"][:, held] = stored["members"]
            out["kernel"][held] = stored["kernel"]
            out["students"][:, held] = stored["students"]
    return out


def blend(members: np.ndarray, kernel: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread as the model files compute them (xanesnet.model.network.blend_members)."""
    mean, spread = blend_members(
        torch.as_tensor(members), None if kernel is None else torch.as_tensor(kernel),
        KERNEL_WEIGHT,
    )  # fmt: skip
    return mean.numpy(), spread.numpy()


def report(
    label: str,
    y: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    calibration: CalibratedUncertainty | None,
    distance: np.ndarray | None = None,
) -> dict[str, float]:
    """Coverage of ±kσ (raw spread, then calibrated σ) and the Δμ ranking, printed
    (``distance``: the sites' latent distances, for a calibration that needs them)."""
    actual = delta_mu(mean, y)
    row: dict[str, float] = {}
    raw = coverage(y, mean, spread)
    row.update({f"raw_{k}": v for k, v in raw.items()})
    row["delta_mu_avg"] = float(actual.mean())
    if np.any(spread > 0):
        row["spearman_spread_sum"] = float(spearmanr(spread.sum(axis=1), actual).statistic)
    if calibration is not None:
        sigma = calibration.sigma(spread)
        row.update(coverage(y, mean, sigma))
        predicted = calibration.predicted_delta_mu(spread, mean, distance)
        row["spearman_predicted_delta_mu"] = float(spearmanr(predicted, actual).statistic)
        row["mean_predicted_delta_mu"] = float(predicted.mean())
        row["mean_actual_delta_mu"] = float(actual.mean())
        bound = calibration.delta_mu_bound(spread, mean, 0.9, distance)
        row["share_below_bound"] = float(np.mean(actual <= bound))
    print(label, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return row


def size_factor(workdir: Path, y: np.ndarray, folds: tuple[int, ...] = (0, 1)) -> float:
    """r5 / r4 of the module docstring's ``--size-correction`` (r = Δμ_avg / median spread of
    the full-recipe students on the held-out folds, pooled), printed."""
    ratios = {}
    for name, suffix in (("3/5", "_full_drop4"), ("4/5", "_full")):
        spread, dmu = [], []
        for fold in folds:
            with np.load(workdir / f"students{suffix}_fold_{fold}.npz") as stored:
                mean, s = blend(stored["students"], None)
                spread.append(s)
                dmu.append(delta_mu(mean, y[stored["held"]]))
        ratios[name] = float(np.concatenate(dmu).mean() / np.median(np.concatenate(spread)))
    r3, r4 = ratios["3/5"], ratios["4/5"]
    r5 = r4 * (r4 / r3) ** (np.log(5 / 4) / np.log(4 / 3))
    print(f"size correction: r3 {r3:.0f}, r4 {r4:.0f}, r5 {r5:.0f}: sigma x {r5 / r4:.4f}")
    return float(r5 / r4)


def student_oof(workdir: Path, teacher: str = "e100") -> dict[str, np.ndarray | list[int]]:
    """What ``calibrate_students.py --teacher TEACHER`` left in ``workdir`` (the folds found,
    in fold order): ``rows`` (held-out training rows), the full-recipe students' ``mean`` and
    ``spread`` there, and their teacher's (``teacher_mean``, ``teacher_spread``)."""
    keys = ("rows", "mean", "spread", "teacher_mean", "teacher_spread", "folds")
    parts: dict[str, list] = {k: [] for k in keys}
    for fold in range(N_FOLDS):
        suffix = "" if teacher == "e100" else f"_{teacher}"
        path = workdir / f"students{suffix}_fold_{fold}.npz"
        if path.exists():
            with np.load(path) as stored:
                mean, spread = blend(stored["students"], None)
                parts["rows"].append(stored["held"])
                parts["mean"].append(mean)
                parts["spread"].append(spread)
                parts["teacher_mean"].append(stored["teacher_mean"])
                parts["teacher_spread"].append(stored["teacher_spread"])
                parts["folds"].append(fold)
    if not parts["folds"]:
        raise SystemExit(
            f"--students: no {teacher} students' folds in {workdir} (calibrate_students.py)"
        )
    return {k: v if k == "folds" else np.concatenate(v) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/xanesnet_calibration"))
    parser.add_argument("--output", type=Path, default=HERE / "calibration.json")
    parser.add_argument(
        "--students", action="store_true",
        help="fit the default model on the full-recipe students of calibrate_students.py",
    )  # fmt: skip
    parser.add_argument(
        "--student-teacher", choices=("e100", "full"), default="e100",
        help="with --students, fit the default model on the students of calibrate_students.py "
        "--teacher e100 (default) or --teacher full; the ensemble stays on the e100 folds",
    )  # fmt: skip
    parser.add_argument(
        "--latent", action="store_true",
        help="with --students --student-teacher full: the default's predicted Δμ also from "
        "the latent distance (writes latent.json)",
    )  # fmt: skip
    parser.add_argument(
        "--size-correction", action="store_true",
        help="with --students --student-teacher full: scale the default's sigma by the "
        "learning curve of the 3/5- and 4/5-structure stand-ins (folds 0-1)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.size_correction and not (args.students and args.student_teacher == "full"):
        parser.error("--size-correction needs --students --student-teacher full")
    if args.latent and not (args.students and args.student_teacher == "full"):
        parser.error("--latent needs --students --student-teacher full")
    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = load_split(args.workdir)
    x, y = data["train"]
    xv, yv = data["validation"]
    oof = out_of_fold(x, y, args.epochs, args.workdir)
    source = (
        f"{N_FOLDS}-fold out-of-fold residuals on the {len(x)} training structures of "
        f"scripts/fe_k_edge/split.json (fold seed {FOLD_SEED}); per fold 2 x (2 x 512 SiLU), "
        f"{args.epochs} epochs, batch 64, lr 2e-3, AdamW wd 0.05, Huber"
    )
    # the stand-in of each shipped variant: what its spread is made of
    everything = np.arange(len(y))
    stand_ins = {
        "default": (everything, blend(oof["members"], None), source),
        "ensemble": (
            everything,
            blend(oof["members"], oof["kernel"]),
            source + " + Laplacian kernel ridge (blend 0.5)",
        ),
        "fast": (
            everything,
            (oof["members"][0], np.zeros_like(y)),
            source + " (member 0 alone: no spread)",
        ),
    }
    if args.students:
        teachers = student_oof(args.workdir)

        def where(found: dict) -> str:
            return (
                f"out-of-fold residuals on folds {found['folds']} ({len(found['rows'])} "
                f"structures) of the {N_FOLDS}-fold split (seed {FOLD_SEED}) of the {len(x)} "
                "training structures of scripts/fe_k_edge/split.json: per fold, "
            )

        recipes = {
            "e100": "100 epochs, batch 64, lr 2e-3",
            "full": "300 epochs, batch 32, lr 1e-3 (train.toml's recipe)",
        }

        def teacher(recipe: str) -> str:
            return (
                f"3 x (2 x 512 SiLU, dropout 0.1), {recipes[recipe]}, AdamW wd 0.05, Huber, "
                "+ Laplacian kernel ridge, blend 0.5, trained on the other folds"
            )

        found = student_oof(args.workdir, args.student_teacher)
        stand_ins["default"] = (
            found["rows"],
            (found["mean"], found["spread"]),
            f"{where(found)}two students distilled with the shipped default's recipe "
            "(distill.toml: 32 perturbed copies, mixed samples, 60 epochs) from a teacher "
            f"({teacher(args.student_teacher)}): calibrate_students.py",
        )
        stand_ins["ensemble"] = (
            teachers["rows"],
            (teachers["teacher_mean"], teachers["teacher_spread"]),
            f"{where(teachers)}the students' teacher ({teacher('e100')}): the shipped "
            "ensemble's make-up",
        )
        print(f"students: median spread on their held-out folds "
              f"{np.median(found['spread']):.5f}; e100 teachers "
              f"{np.median(teachers['teacher_spread']):.5f}", flush=True)  # fmt: skip
    # for the record: two students distilled per fold (a cheap version of the default's recipe)
    students = blend(oof["students"], None)
    student_source = (
        f"{source}; 2 students per fold distilled from the fold's blend "
        f"({STUDENT_MIXUP} mixed samples, {STUDENT_EPOCHS} epochs)"
    )
    distances: dict[str, np.ndarray] = {}
    validation_distances: dict[str, np.ndarray] = {}
    if args.latent:
        import latent_distances as ld

        distances["default"] = ld.student_distances(
            args.workdir, "_full", found["folds"], x, N_FOLDS, FOLD_SEED
        )
        stand_ins["default"] = (
            *stand_ins["default"][:2],
            stand_ins["default"][2] + f"; latent distance: student 0's last hidden layer, "
            f"{ld.N_COMPONENTS} principal axes, nearest of the fold's training structures",
        )
        latent = ld.shipped_entry(
            x, f"member 0 of Fe_K_edge.pt on the {len(x)} training structures of "
            "scripts/fe_k_edge/split.json; scripts/fe_k_edge/calibrate.py --latent",
        )  # fmt: skip
        validation_distances["default"] = latent.distance(ld.hidden(ld.shipped_member(), xv))
        (HERE / "latent.json").write_text(json.dumps(latent.to_metadata(), sort_keys=True) + "\n")
        print(f"latent: held-out median {np.median(distances['default']):.3f}, validation "
              f"inputs {np.median(validation_distances['default']):.3f}", flush=True)  # fmt: skip
    size_factors: dict[str, float] = {}
    if args.size_correction:
        size_factors["default"] = size_factor(args.workdir, y)
        stand_ins["default"] = (
            *stand_ins["default"][:2],
            stand_ins["default"][2] + f"; sigma x {size_factors['default']:.4f} for the "
            "training set's size (learning curve of 3/5- and 4/5-structure stand-ins)",
        )
    fits = {
        v: fit_calibration(
            y[rows],
            *pair,
            distance=distances.get(v),
            reference_spectra=y,
            source=text,
            size_factor=size_factors.get(v, 1.0),
        )  # fmt: skip
        for v, (rows, pair, text) in stand_ins.items()
    }
    student_fit = fit_calibration(y, *students, source=student_source)
    figures = {}
    for variant, calibration in fits.items():
        rows, pair, _ = stand_ins[variant]
        figures[variant] = {
            "oof": report(f"{variant} OOF", y[rows], *pair, calibration, distances.get(variant))
        }
        model = xanesnet.default_model("Fe", "K", variant)
        mean, spread = model.predict_features(xv, n_threads=1)
        figures[variant]["validation"] = report(
            f"{variant} validation", yv, mean, spread, calibration,
            validation_distances.get(variant),
        )  # fmt: skip
        if variant == "default" and not args.students:
            report("default OOF (student stand-in)", y, *students, student_fit)
            figures[variant]["validation_with_student_stand_in"] = report(
                "default validation (student stand-in)", yv, mean, spread, student_fit
            )
    payload = {
        variant: {**fits[variant].to_metadata(), "figures": figures[variant]} for variant in fits
    }
    args.output.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
