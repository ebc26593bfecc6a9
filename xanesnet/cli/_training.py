"""Shared by the commands that fit and export a model (``train``, ``distill``): their common
arguments, the ``[output]`` and ``[calibration]`` tables, the trust entries and writing the model
file with its validation figures."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

#: principal axes of the latent distance of ``[calibration] latent = true`` (the shipped Fe
#: default's choice, docs/calibration.md)
LATENT_COMPONENTS = 128

__all__ = [
    "add_training_arguments",
    "calibration_options",
    "export_trained",
    "fit_trust",
    "output_paths",
    "output_weight_dtype",
    "round_weights",
    "training_record",
]


def add_training_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """CONFIG, ``--set``, ``-o``, ``--workdir``, ``--threads`` and ``--quiet``."""
    parser.add_argument("config", type=Path, help=f"{what} configuration (.toml or .yaml)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value (repeatable; VALUE parsed as TOML)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="model file to write")
    parser.add_argument("--workdir", type=Path, default=None, help="checkpoints and logs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def output_paths(
    output: dict[str, Any], base: Path, args: argparse.Namespace
) -> tuple[Path, Path | None]:
    """(model file, work folder or None) from ``-o``/``--workdir`` or the ``[output]`` table,
    relative paths taken from ``base``.

    Raises:
        ValueError: no model file given either way.
    """
    model_path = args.output or ((base / output["model"]).resolve() if "model" in output else None)
    if model_path is None:
        raise ValueError("no model file: give -o/--output or [output] model")
    workdir = args.workdir or (
        (base / output["workdir"]).resolve() if "workdir" in output else None
    )
    return model_path, workdir


def output_weight_dtype(output: dict[str, Any]) -> str:
    """``[output] weight_dtype``, checked: "float32" (default), "float16" or "int8"."""
    weight_dtype = output.get("weight_dtype", "float32")
    if weight_dtype not in ("float32", "float16", "int8"):
        raise ValueError(
            f"[output] weight_dtype: expected 'float32', 'float16' or 'int8', got {weight_dtype!r}"
        )
    return str(weight_dtype)


def round_weights(ensemble: Any, weight_dtype: str) -> Any:
    """``ensemble`` with its network weights stored as ``weight_dtype`` (a copy unless
    "float32")."""
    from xanesnet.model.network import store_weights_as_float16, store_weights_as_int8

    if weight_dtype == "float16":
        return store_weights_as_float16(ensemble)
    if weight_dtype == "int8":
        return store_weights_as_int8(ensemble)
    return ensemble


def calibration_options(calibration: dict[str, Any]) -> tuple[int, bool, bool]:
    """``[calibration] folds`` (0: no σ; k ≥ 2: σ from k-fold stand-ins), ``domain`` (fit the
    out-of-domain score; default true) and ``latent`` (the predicted Δμ also from the latent
    distance; default false, needs folds), checked."""
    unknown = sorted(set(calibration) - {"folds", "domain", "latent"})
    if unknown:
        raise ValueError(f"[calibration]: unknown keys {unknown} (expected folds, domain, latent)")
    folds = calibration.get("folds", 0)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds == 1 or folds < 0:
        raise ValueError(f"[calibration] folds: expected 0 (off) or an integer >= 2, got {folds!r}")
    domain = calibration.get("domain", True)
    if not isinstance(domain, bool):
        raise ValueError(f"[calibration] domain: expected true or false, got {domain!r}")
    latent = calibration.get("latent", False)
    if not isinstance(latent, bool):
        raise ValueError(f"[calibration] latent: expected true or false, got {latent!r}")
    if latent and not folds:
        raise ValueError("[calibration] latent = true needs folds >= 2 (it is part of σ's fit)")
    return int(folds), domain, latent


def fit_trust(
    ensemble: Any,
    train_set: Any,
    train_config: Any,
    *,
    folds: int,
    domain: bool,
    weight_dtype: str,
    quiet: bool = False,
    latent: bool = False,
) -> dict[str, Any]:
    """The ``"domain"``, ``"uncertainty_calibration"`` and ``"latent_distance"`` metadata
    entries asked for by ``[calibration]`` (see :mod:`xanesnet.model.trust_fit`); a training
    set too small for a domain fit gets none, with a message."""
    from functools import partial

    from xanesnet.model.trust_fit import kfold_calibration, training_domain, training_latent

    entries: dict[str, Any] = {}
    if domain:
        try:
            entries["domain"] = training_domain(ensemble, train_set.features).to_metadata()
        except ValueError as exc:
            print(f"{exc}: the model file gets none", file=sys.stderr)
    if folds:

        def progress(fold: int, total: int) -> None:
            if not quiet:
                print(f"calibration: stand-in {fold + 1} of {total}", file=sys.stderr)

        calibration = kfold_calibration(
            train_set.features,
            train_set.spectra,
            train_config,
            folds,
            finish=partial(round_weights, weight_dtype=weight_dtype),
            progress=progress,
            latent_components=LATENT_COMPONENTS if latent else 0,
        )
        entries["uncertainty_calibration"] = calibration.to_metadata()
        if latent:
            entries["latent_distance"] = training_latent(
                ensemble, train_set.features, LATENT_COMPONENTS
            ).to_metadata()
        figures = calibration.fit_figures
        print(
            f"calibrated σ on {folds}-fold out-of-fold predictions: "
            f"±1σ {100 * figures['within_1sigma']:.1f} %, "
            f"±2σ {100 * figures['within_2sigma']:.1f} %, "
            f"Spearman of predicted Δμ {figures['spearman_predicted_delta_mu']:.2f}",
            file=sys.stderr,
        )
    return entries


def training_record(
    train_set: Any, train_config: Any, histories: list[Any], started: float
) -> dict[str, Any]:
    """The model metadata describing a fit: the training split's hashes and size, the
    training configuration, each member's best epoch and the seconds since ``started`` (a
    :func:`time.perf_counter` reading)."""
    from xanesnet.model.distill import training_split_sha256

    return {
        "training_set_hash": train_set.content_hash(),
        "training_split_sha256": training_split_sha256(train_set.names, train_set.spectra),
        "training_set_size": len(train_set.names),
        "training": train_config.to_dict(),
        "best_epochs": [h.best_epoch for h in histories],
        "training_seconds": round(time.perf_counter() - started, 1),
    }


def export_trained(
    ensemble: Any,
    model_path: Path,
    *,
    weight_dtype: str,
    val_set: Any,
    extra: dict[str, Any],
    **model_info: Any,
) -> None:
    """Round the weights to ``weight_dtype``, measure the validation split (after rounding,
    so the figures describe the file) and write the model file with its metadata.
    ``model_info``: descriptor, energies, e0, element, edge (see ``save_model``)."""
    import numpy as np
    import torch

    from xanesnet.analysis import evaluate_spectra
    from xanesnet.model.files import save_model

    ensemble = round_weights(ensemble, weight_dtype)
    extra = {**extra, "weight_dtype": weight_dtype}
    if val_set is not None:
        with torch.no_grad():
            prediction = ensemble(torch.as_tensor(val_set.features, dtype=torch.float32))[0]
        metrics = evaluate_spectra(
            val_set.energies, prediction.numpy().astype(np.float64), val_set.spectra
        )
        extra["validation_metrics"] = metrics.to_dict()
        extra["validation_size"] = len(val_set.names)
        print(metrics.table_row(label="validation"))
    save_model(ensemble, model_path, extra=extra, **model_info)
    print(f"model written to {model_path}")
