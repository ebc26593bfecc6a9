"""Shared by the commands that fit and export a model (``train``, ``distill``): their common
arguments, the ``[output]`` table and writing the model file with its validation figures."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = [
    "add_training_arguments",
    "export_trained",
    "output_paths",
    "output_weight_dtype",
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
    from xanesnet.model.network import store_weights_as_float16, store_weights_as_int8

    if weight_dtype == "float16":
        ensemble = store_weights_as_float16(ensemble)
    elif weight_dtype == "int8":
        ensemble = store_weights_as_int8(ensemble)
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
