"""Per-spectrum error models for the default Fe model, scored on out-of-fold residuals.

    python scripts/fe_k_edge/error_model_search.py [--workdir /tmp/xanesnet_calibration]

Run ``calibrate.py`` first: this reads its cached descriptors and per-fold predictions. It
prints the Spearman correlation between each per-spectrum error predictor and the two-network
stand-in's out-of-fold Δμ over the 3264 training structures. Each learned predictor is scored
by a second 5-fold cross-validation over those rows. The validation split is not read.
Results and conclusions: docs/calibration.md, "Default model: per-spectrum error models
tried". A few minutes on one core.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from xanesnet.analysis.scores import delta_mu
from xanesnet.model.domain import fit_domain
from xanesnet.model.train import kfold_indices

N_FOLDS = 5
FOLD_SEED = 0


def oof_predictions(workdir: Path, y: np.ndarray) -> np.ndarray:
    """(2, n, n_energies) out-of-fold predictions of the stand-in's two networks."""
    members = np.zeros((2, *y.shape))
    for path in sorted(workdir.glob("fold_*_e100_*.npz")):
        with np.load(path) as stored:
            members[:, stored["held"]] = stored["members"]
    return members


def standardised(features: np.ndarray) -> np.ndarray:
    """Features scaled to zero mean and unit variance (constant columns to 0)."""
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 1e-12, std, np.inf)


def fit_mlp(inputs: np.ndarray, target: np.ndarray, seed: int = 0) -> torch.nn.Module:
    """515 → 32 SiLU → 1 regressor (input dropout 0.2, AdamW wd 0.01, 100 epochs)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.2), torch.nn.Linear(inputs.shape[1], 32), torch.nn.SiLU(),
        torch.nn.Linear(32, 1),
    )  # fmt: skip
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    x, t = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(target).float()
    for _ in range(100):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 256):
            batch = order[start : start + 256]
            optimiser.zero_grad()
            loss = ((net(x[batch])[:, 0] - t[batch]) ** 2).mean()
            loss.backward()
            optimiser.step()
    return net.eval()


def fit_second_network(features: np.ndarray, spectra: np.ndarray) -> torch.nn.Module:
    """513 → 128 SiLU → 226 network on the reference spectra (AdamW wd 0.05, Huber, one-cycle
    lr 2e-3, 100 epochs, batch 64), on standardised inputs and outputs."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(features.shape[1], 128), torch.nn.SiLU(),
        torch.nn.Linear(128, spectra.shape[1]),
    )  # fmt: skip
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.05)
    steps = 100 * ((len(features) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
    x, t = (torch.as_tensor(a, dtype=torch.float32) for a in (features, spectra))
    for _ in range(100):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            optimiser.zero_grad()
            torch.nn.functional.huber_loss(net(x[batch]), t[batch]).backward()
            optimiser.step()
            schedule.step()
    return net.eval()


def cross_validated(inputs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions of :func:`fit_mlp` (inputs standardised on each fit part)."""
    out = np.zeros(len(target))
    for fit, held in kfold_indices(len(target), N_FOLDS, FOLD_SEED):
        mean, std = inputs[fit].mean(axis=0), inputs[fit].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        net = fit_mlp((inputs[fit] - mean) / std, target[fit] - target[fit].mean())
        with torch.no_grad():
            held_in = torch.as_tensor((inputs[held] - mean) / std, dtype=torch.float32)
            out[held] = net(held_in)[:, 0].double().numpy() + target[fit].mean()
    return out


def students_search(workdir: Path, x: np.ndarray, y: np.ndarray) -> None:
    """The same question on the held-out folds of the full-recipe students
    (``calibrate_students.py``): does anything rank their errors better than their own
    calibrated predicted Δμ? (Rows scored by a 5-fold cross-validation over those rows.)"""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from calibrate import student_oof

    from xanesnet.model.calibration_fit import fit_calibration

    found = student_oof(workdir)
    rows, mean, spread = found["rows"], found["mean"], found["spread"]
    actual = delta_mu(mean, y[rows])
    predicted = np.zeros(len(rows))
    for fit, held in kfold_indices(len(rows), N_FOLDS, 1):
        calibration = fit_calibration(y[rows][fit], mean[fit], spread[fit], reference_spectra=y)
        predicted[held] = calibration.predicted_delta_mu(spread[held], mean[held])
    _, ood = fit_domain(x)
    log_predicted, log_ood = np.log(predicted), np.log(ood[rows])
    mlp = cross_validated(np.column_stack([standardised(x)[rows], log_ood]), np.log(actual))
    candidates = {
        "students' calibrated predicted delta-mu": log_predicted,
        **{f"  + {b} x log OOD": log_predicted + b * log_ood for b in (0.1, 0.2, 0.5, 1.0)},
        "MLP on descriptor + log OOD": mlp,
        **{f"  + {b} x log predicted delta-mu": mlp + b * log_predicted for b in (1.0, 1.5)},
    }
    print(f"students of folds {found['folds']}: {len(rows)} held-out spectra")
    for label, predictor in candidates.items():
        print(f"{label:70s} Spearman {spearmanr(predictor, actual).statistic:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/xanesnet_calibration"))
    parser.add_argument(
        "--students", action="store_true",
        help="search on the full-recipe students of calibrate_students.py instead",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = np.load(args.workdir / "x_train.npy"), np.load(args.workdir / "y_train.npy")
    if args.students:
        students_search(args.workdir, x, y)
        return
    members = oof_predictions(args.workdir, y)
    mean, spread = members.mean(axis=0), members.std(axis=0)
    actual = delta_mu(mean, y)
    log_spread = np.log(spread.mean(axis=1))
    _, ood = fit_domain(x)  # held-out OOD scores of the training sites, as domain_check.py
    z = standardised(x)
    y_mean, y_std = y.mean(axis=0), y.std(axis=0)
    second = np.zeros(y.shape)
    for fit, held in kfold_indices(len(x), N_FOLDS, FOLD_SEED):
        net = fit_second_network(z[fit], (y[fit] - y_mean) / y_std)
        with torch.no_grad():
            second[held] = net(torch.as_tensor(z[held], dtype=torch.float32)).numpy()
    second = second * y_std + y_mean
    log_disagreement = np.log(np.abs(second - mean).mean(axis=1))
    with_spread = cross_validated(np.column_stack([z, log_spread, np.log(ood)]), np.log(actual))
    no_spread = cross_validated(np.column_stack([z, np.log(ood)]), np.log(actual))
    rows = {
        "stand-in spread (sum over energies)": spread.sum(axis=1),
        "MLP on descriptor + log spread + log OOD": with_spread,
        "MLP on descriptor + log spread + log OOD, + 1 x log spread": with_spread + log_spread,
        "MLP on descriptor + log OOD (no spread)": no_spread,
        "MLP (no spread) + 1 x log spread": no_spread + log_spread,
        f"disagreement with a second network (its delta-mu {delta_mu(second, y).mean():.2f} %)": (
            log_disagreement
        ),
        "MLP (no spread) + 1 x log disagreement": no_spread + log_disagreement,
        "MLP (no spread) + 1 x log disagreement + 1 x log spread": (
            no_spread + log_disagreement + log_spread
        ),
    }
    for label, predictor in rows.items():
        print(f"{label:70s} Spearman {spearmanr(predictor, actual).statistic:.3f}")


if __name__ == "__main__":
    main()
