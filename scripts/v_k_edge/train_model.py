"""Train and export the shipped V K-edge model from the featurised tmQM V set.

    python scripts/v_k_edge/train_model.py [scripts/v_k_edge/train.toml] [--set KEY=VALUE ...]
        [--threads 1] [-o MODEL] [--predictions VAL.npy]

The set ships descriptors, not structures, so this does what ``xanesnet train`` does from the
features: the package's ``train_ensemble`` on the training rows of ``split.json``, network
weights rounded to ``[output] weight_dtype``, the validation rows measured after that rounding
(definitions of shared/spec/metrics.md, post-broadening included), and ``save_model`` with the
descriptor configuration, grid and figures in the metadata. The configuration has the tables of
``xanesnet train`` with ``[data] features`` (an .npz with ``x`` and ``y``) instead of
structure folders, and ``relative_energies = [first, last, n]`` around ``e0``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xanesnet.analysis.metrics import evaluate_spectra
from xanesnet.analysis.peaks import find_peaks, peak_shift
from xanesnet.cli._training import output_weight_dtype
from xanesnet.config import apply_override, read_config
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.model import TrainConfig, load_model, save_model, train_ensemble
from xanesnet.model.network import store_weights_as_float16
from xanesnet.spectra import Broadening, broaden

HERE = Path(__file__).resolve().parent
SHARP_WIDTH = 2.0  # eV: a target peak is "sharp" when its flat width at 2 % of max is below


def flat_width(
    energies: np.ndarray, mu: np.ndarray, energy: float, tolerance: float = 0.02
) -> float:
    """Width (eV) of the range around the grid point nearest ``energy`` where ``mu`` stays
    within ``tolerance`` · max(mu) of that point's value (as ``peak_analysis.py``)."""
    j = int(np.argmin(np.abs(energies - energy)))
    level = mu[j] - tolerance * mu.max()
    a = b = j
    while a > 0 and mu[a - 1] >= level:
        a -= 1
    while b < len(mu) - 1 and mu[b + 1] >= level:
        b += 1
    return float(energies[b] - energies[a])


def peak_figures(energies: np.ndarray, pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """The peak-placement figures every report gives (shared/spec/metrics.md, "Peak
    positions"): median |ΔE|, the share of target peaks with a predicted peak within 1 eV, and
    the mean ΔE over pairs whose target peak is sharp, with their share."""
    shift = peak_shift(energies, pred, target)
    error = np.abs(shift.pred_energies - shift.target_energies)
    n_target_peaks = sum(len(find_peaks(energies, t).energies) for t in target)
    widths = np.array(
        [
            flat_width(energies, target[i], e)
            for i, e in zip(shift.spectrum_index, shift.target_energies)
        ]
    )
    sharp = widths < SHARP_WIDTH
    return {
        "median_abs_delta_e": float(np.median(error)),
        "target_peaks": int(n_target_peaks),
        "share_within_1ev": float(np.sum(error <= 1.0) / n_target_peaks),
        "sharp_peak_delta_e": float(error[sharp].mean()),
        "sharp_peak_share": float(sharp.mean()),
        "definitions": "all target peaks (prominence >= 2 % of max) matched to the nearest "
        "predicted peak; within 1 eV: pairs with |ΔE| <= 1 eV over all target peaks; sharp: "
        f"target flat width at 2 % of max below {SHARP_WIDTH:g} eV",
    }


def validation_metrics(
    energies: np.ndarray, e0: float, pred: np.ndarray, target: np.ndarray
) -> dict[str, Any]:
    """Seed-table metrics with post-broadening (the arctangent model of spectra.md, as
    ``xanesnet evaluate --post-broadening``) plus :func:`peak_figures`."""
    broadening = Broadening.arctan(float32_input=False)
    metrics = evaluate_spectra(
        energies,
        pred,
        target,
        broaden=partial(broaden, energies, e0=e0, broadening=broadening),
        broaden_label=broadening.label(),
    )
    print(metrics.table_header())
    print(metrics.table_row(label=f"V K (validation, {len(target)} spectra)"))
    return {**metrics.to_dict(), "peaks": peak_figures(energies, pred, target)}


def component_figures(ensemble: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Validation Δμ_avg (%, l1) of each member network, their mean and the kernel ridge part
    alone: what the blend gains over its parts."""

    def dmu(pred: torch.Tensor) -> float:
        pred = pred.numpy().astype(np.float64)
        return float(np.mean(100 * np.abs(pred - y).sum(1) / np.abs(y).sum(1)))

    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        outputs = [member(xt) for member in ensemble.members]
        figures = {f"network_{i}": dmu(out) for i, out in enumerate(outputs)}
        figures["networks_mean"] = dmu(torch.stack(outputs).mean(0))
        if ensemble.kernel is not None:
            figures["kernel"] = dmu(ensemble.kernel(xt))
    return {k: round(v, 3) for k, v in figures.items()}


def training_set_hash(rows: list[int], x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 over the row indices, descriptors and spectra of the training set."""
    digest = hashlib.sha256()
    digest.update(json.dumps(rows).encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path, nargs="?", default=HERE / "train.toml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-o", "--output", type=Path, default=None, help="model file to write")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--predictions", type=Path, default=None, help="validation spectra (.npy)")
    args = parser.parse_args(argv)
    raw = read_config(args.config)
    for assignment in args.set:
        apply_override(raw, assignment)
    raw = copy.deepcopy(raw)
    base = args.config.resolve().parent
    data, output = raw["data"], raw.get("output", {})
    torch.set_num_threads(args.threads)

    descriptor = WACSF.from_dict(raw["descriptor"])
    config = TrainConfig.from_dict(raw["training"])
    weight_dtype = output_weight_dtype(output)
    model_path = args.output or (base / output["model"]).resolve()
    workdir = (base / output["workdir"]).resolve() if "workdir" in output else None
    features_path = (base / data["features"]).resolve()
    split = json.loads((base / data["split"]).read_text())
    digest = hashlib.sha256(features_path.read_bytes()).hexdigest()
    if digest != split["data_sha256"]:
        raise ValueError(f"{features_path}: not the file split.json was made for (SHA-256 differs)")
    with np.load(features_path, allow_pickle=False) as npz:
        x, y = npz["x"].astype(np.float64), npz["y"].astype(np.float64)
    if x.shape[1] != descriptor.n_features:
        raise ValueError(
            f"{features_path}: {x.shape[1]} features, descriptor has {descriptor.n_features}"
        )
    first, last, n_e = data["relative_energies"]
    e0 = float(data["e0"])
    energies = e0 + np.linspace(float(first), float(last), int(n_e))
    if y.shape[1] != len(energies):
        raise ValueError(f"{features_path}: {y.shape[1]} energies, the grid has {len(energies)}")
    train, val = list(split["train"]), list(split["validation"])
    print(
        f"V K-edge: {len(train)} train / {len(val)} validation, {x.shape[1]} features -> "
        f"{len(energies)} energies; {config.n_members} member(s) x {config.epochs} epochs, "
        f"{args.threads} thread(s)",
        file=sys.stderr,
    )
    started = time.perf_counter()
    ensemble, histories = train_ensemble(
        x[train],
        y[train],
        x[val],
        y[val],
        config,
        workdir=workdir,
        progress=lambda m, e, t, v: (
            print(f"member {m} epoch {e}: train {t:.4f} val {v:.4f}", file=sys.stderr)
            if e % 50 == 49
            else None
        ),
    )
    seconds = time.perf_counter() - started
    if workdir is not None:  # the epochs' own times, so a resumed run reports the whole training
        seconds = sum(
            float(row["seconds"])
            for i in range(config.n_members)
            for row in csv.DictReader((workdir / f"member_{i}.csv").read_text().splitlines())
        )
    if weight_dtype == "float16":
        ensemble = store_weights_as_float16(ensemble)
    with torch.no_grad():
        pred = ensemble(torch.as_tensor(x[val], dtype=torch.float32))[0].numpy().astype(np.float64)
    metrics = validation_metrics(energies, e0, pred, y[val])
    components = component_figures(ensemble, x[val], y[val])
    print(f"validation Δμ_avg of the parts: {components}")
    if args.predictions:
        np.save(args.predictions, pred)
    extra = {
        "training_set_hash": training_set_hash(train, x[train], y[train]),
        "training_set_size": len(train),
        "training": config.to_dict(),
        "best_epochs": [h.best_epoch for h in histories],
        "training_seconds": round(seconds, 1),
        "weight_dtype": weight_dtype,
        "validation_metrics": metrics,
        "validation_size": len(val),
        "validation_delta_mu_of_parts": components,
        "validation_split": "scripts/v_k_edge/split.json",
        "training_data": {
            "kind": "molecules",
            "code": "FDMNES",
            "source": "tmQM V complexes, featurised: conorrankine/xanesnet @ "
            "c3a69ca3a8ba7bb47f2d7c24fb46a29bd1b885c1 : xanesnet/datasets/tmqm/k_edge_v.npz "
            "(GPL-3.0)",
            "sha256": digest,
            "spectra": "arctangent-convolved, edge-step normalised",
        },
        "energy_reference": f"the data's grid is {first:g}...{last:g} eV around the edge "
        f"({n_e} points); absolute energies use the tabulated V K-edge E0 = {e0:g} eV",
    }
    save_model(
        ensemble,
        model_path,
        descriptor=descriptor,
        energies=energies,
        e0=e0,
        element="V",
        edge="K",
        extra=extra,
    )
    # the file itself must give what was measured (float32 rounding of the blend)
    loaded = load_model(model_path)
    again, _ = loaded.predict_features(x[val])
    change = float(np.abs(again - pred).max() / np.abs(pred).max())
    print(
        f"model written to {model_path} ({model_path.stat().st_size / 1e6:.1f} MB); "
        f"reloaded prediction differs by {change:.1e} of max μ"
    )
    print(json.dumps(metrics["peaks"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
