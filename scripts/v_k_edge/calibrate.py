"""Uncertainty calibration and out-of-domain score of the shipped V K-edge model.

    python scripts/v_k_edge/calibrate.py --fold K [--threads 1]   # K = 0 ... 4, ~5 min each
    python scripts/v_k_edge/calibrate.py --attach                 # fit, write into V_K_edge.pt
    python scripts/v_k_edge/calibrate.py --report                 # validation figures

(from the repository root, with ../shared beside it). The shipped file (``train_model.py``:
3 networks + Laplacian kernel ridge, blend 0.5, trained on the 1152 training rows of
split.json) was written without the ``"uncertainty_calibration"`` and ``"domain"`` entries
the Fe and Cu models carry, so its predictions had NaN σ and domain score. As for the Fe
ensemble (docs/calibration.md), σ is fitted on held-out residuals that chose no weights:

- ``--fold K``: the training rows are split into 5 folds (``kfold_indices(1152, 5, seed 0)``);
  a stand-in of the shipped make-up (``train.toml`` unchanged: 3 × 2 × 512 SiLU, 300 epochs,
  + kernel ridge, blend 0.5, weights rounded to float16) is trained on the other four folds and
  predicts fold K (mean and spread), cached in ``CACHE``;
- ``--attach``: :func:`fit_calibration` on the five folds' out-of-fold predictions, and
  :func:`fit_domain` on the training descriptors with the networks' standardiser; both are
  written into the shipped file (:func:`update_model_metadata`: networks unchanged, checked
  on the validation inputs: predictions bit-identical);
- ``--report``: coverage, Spearman of predicted vs actual Δμ and the domain counts on the
  287 validation rows (the split's figures; nothing is fitted on them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from xanesnet.config import read_config
from xanesnet.model import TrainConfig, load_model, train_ensemble, update_model_metadata
from xanesnet.model.calibration import coverage
from xanesnet.model.calibration_fit import fit_calibration
from xanesnet.model.domain import DomainScore, fit_domain
from xanesnet.model.network import store_weights_as_float16
from xanesnet.model.pretrained import default_model_path
from xanesnet.model.train import kfold_indices

HERE = Path(__file__).resolve().parent
CACHE = Path("/tmp/v_k_edge_calibration")
N_FOLDS = 5


def load_data() -> tuple[np.ndarray, np.ndarray, list[int], list[int], dict]:
    """x, y of the featurised set, the train and validation rows, and the training config."""
    raw = read_config(HERE / "train.toml")
    features = (HERE / raw["data"]["features"]).resolve()
    split = json.loads((HERE / raw["data"]["split"]).read_text())
    if hashlib.sha256(features.read_bytes()).hexdigest() != split["data_sha256"]:
        raise ValueError(f"{features}: not the file split.json was made for (SHA-256 differs)")
    with np.load(features, allow_pickle=False) as npz:
        x, y = npz["x"].astype(np.float64), npz["y"].astype(np.float64)
    return x, y, list(split["train"]), list(split["validation"]), raw


def run_fold(fold: int, threads: int) -> None:
    x, y, train, _, raw = load_data()
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(raw["training"])
    fit_rows, held_rows = kfold_indices(len(train), N_FOLDS, 0)[fold]
    rows = np.asarray(train)
    ensemble, _ = train_ensemble(x[rows[fit_rows]], y[rows[fit_rows]], None, None, config)
    ensemble = store_weights_as_float16(ensemble)
    for member in ensemble.members:  # the shipped file predates the input bounds: none here
        member.z_min.fill_(-np.inf)
        member.z_max.fill_(np.inf)
    with torch.no_grad():
        mean, spread = ensemble(torch.as_tensor(x[rows[held_rows]], dtype=torch.float32))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE / f"fold_{fold}.npz", held=held_rows, mean=mean.numpy(), spread=spread.numpy())
    print(f"fold {fold}: {len(held_rows)} held-out rows cached in {CACHE}")


def out_of_fold(n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(held rows, mean, spread) of the five cached folds, rows in fold order."""
    held, mean, spread = [], [], []
    for fold in range(N_FOLDS):
        path = CACHE / f"fold_{fold}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run --fold {fold} first")
        with np.load(path, allow_pickle=False) as npz:
            held.append(npz["held"])
            mean.append(npz["mean"].astype(np.float64))
            spread.append(npz["spread"].astype(np.float64))
    rows = np.concatenate(held)
    if sorted(rows.tolist()) != list(range(n_train)):
        raise ValueError("the cached folds do not cover the training rows once each")
    return rows, np.concatenate(mean), np.concatenate(spread)


def attach() -> None:
    x, y, train, val, _ = load_data()
    rows, mean, spread = out_of_fold(len(train))
    y_held = y[np.asarray(train)[rows]]
    calibration = fit_calibration(
        y_held,
        mean,
        spread,
        reference_spectra=y[train],
        source=f"5-fold out-of-fold predictions of the {len(train)} training rows of "
        "scripts/v_k_edge/split.json; stand-ins of the shipped make-up (train.toml: 3 networks "
        "+ kernel ridge, blend 0.5, float16 weights) trained on the other folds",
    )
    print("fit figures (out-of-fold):", json.dumps(calibration.fit_figures))
    path = default_model_path("V", "K")
    model = load_model(path)
    members = dict(model.module.members.named_children())
    domain, _ = fit_domain(
        x[train],
        mean=members["0"].x_mean.numpy().astype(np.float64),
        inv_scale=members["0"].x_inv_scale.numpy().astype(np.float64),
        source=f"k-means (256 centres, k = 1) of the standardised descriptors of the "
        f"{len(train)} training rows of scripts/v_k_edge/split.json; threshold: 99th "
        "percentile of 5-fold held-out training rows",
    )
    before = model.predict_features(x[val].astype(np.float32), n_threads=1)
    update_model_metadata(
        path,
        path,
        {"uncertainty_calibration": calibration.to_metadata(), "domain": domain.to_metadata()},
    )
    after = load_model(path).predict_features(x[val].astype(np.float32), n_threads=1)
    if not all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
        raise AssertionError(f"{path}: predictions changed when the metadata was written")
    print(f"written into {path} (predictions bit-identical on the validation inputs)")


def report() -> None:
    from scipy.stats import spearmanr

    x, y, _, val, _ = load_data()
    model = load_model(default_model_path("V", "K"))
    calibration = model.trust_model.calibration
    if calibration is None:
        raise ValueError("the shipped V file has no calibration: run --attach first")
    mean, spread = model.predict_features(x[val].astype(np.float32), n_threads=1)
    truth = y[val]
    sigma = calibration.sigma(spread)
    predicted = calibration.predicted_delta_mu(spread, mean)
    actual = 100 * np.abs(mean - truth).sum(axis=1) / np.abs(truth).sum(axis=1)
    bound = calibration.delta_mu_bound(spread, mean, 0.9)
    domain = DomainScore.from_metadata(model.metadata["domain"])
    score = domain.score_features(x[val])
    outside = domain.is_outside(score)
    figures = {
        "coverage": coverage(truth, mean, sigma, ks=(1, 2, 3)),
        "spearman_predicted_vs_actual_delta_mu": float(spearmanr(predicted, actual)[0]),
        "below_90_bound": float(np.mean(actual <= bound)),
        "predicted_delta_mu_mean": float(predicted.mean()),
        "actual_delta_mu_mean": float(actual.mean()),
        "domain_threshold": float(domain.threshold),
        "domain_score_median": float(np.median(score)),
        "outside_domain": int(outside.sum()),
        "n": len(val),
    }
    print(json.dumps(figures, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--fold", type=int, choices=range(N_FOLDS))
    action.add_argument("--attach", action="store_true")
    action.add_argument("--report", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.fold is not None:
        run_fold(args.fold, args.threads)
    elif args.attach:
        attach()
    else:
        report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
