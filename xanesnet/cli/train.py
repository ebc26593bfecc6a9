"""``xanesnet train CONFIG [--set KEY=VALUE ...]``: train and export a spectrum model.

The configuration (TOML, or YAML when PyYAML is installed) has four tables::

    [data]        xyz_dir, xanes_dir, split (JSON with "train"/"validation" name lists,
                  optional), element, edge, e0 (eV)
    [descriptor]  WACSF fields (r_min, r_max, n_g2, n_g4, zetas, ...)
    [training]    TrainConfig fields (epochs, batch_size, learning_rate, n_members, ...),
                  with [training.network] (hidden, activation, dropout)
    [output]      model (file to write: .pt, TorchScript), workdir
                  (checkpoints and per-epoch CSV logs; a killed run resumes from them),
                  weight_dtype ("float32", or "float16" to store network weights in half
                  the space; validation figures are measured after that rounding)

Relative paths are taken from the configuration file's folder. ``--set training.epochs=10``
overrides any value (parsed as TOML, e.g. ``--set "training.network.hidden=[256, 256]"``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


_SECTIONS = ("data", "descriptor", "training", "output")


def read_config(path: Path, sections: tuple[str, ...] = _SECTIONS) -> dict[str, Any]:
    """Parse a TOML or YAML configuration with these top-level tables."""
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ValueError(
                f"{path}: YAML configurations need PyYAML (pip install pyyaml)"
            ) from exc
        data = yaml.safe_load(text)
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings")
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}")
    return data


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=VALUE`` (VALUE parsed as TOML, else kept as a string)."""
    if "=" not in assignment:
        raise ValueError(f"--set: expected KEY=VALUE, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.strip().split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set: {key} is not inside a table")
    node[parts[-1]] = value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet train",
        description="Train a spectrum model from (structure, spectrum) pairs and export it.",
    )
    parser.add_argument("config", type=Path, help="training configuration (.toml or .yaml)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value (repeatable)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, help="model file to write")
    parser.add_argument("--workdir", type=Path, default=None, help="checkpoints and logs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        raw = read_config(args.config)
        for assignment in args.set:
            apply_override(raw, assignment)
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet train: error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(raw, args.config.resolve().parent, args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"xanesnet train: error: {exc}", file=sys.stderr)
        return 2


def run(raw: dict[str, Any], base: Path, args: argparse.Namespace) -> int:
    import torch

    from xanesnet.descriptors.wacsf import WACSF
    from xanesnet.model.train import TrainConfig, train_ensemble

    raw = copy.deepcopy(raw)
    data = raw.get("data", {})
    output = raw.get("output", {})
    path = lambda value: (base / value).resolve()  # noqa: E731
    descriptor = WACSF.from_dict(raw.get("descriptor", {}))
    train_config = TrainConfig.from_dict(raw.get("training", {}))
    model_path = args.output or (path(output["model"]) if "model" in output else None)
    if model_path is None:
        raise ValueError("no model file: give -o/--output or [output] model")
    workdir = args.workdir or (path(output["workdir"]) if "workdir" in output else None)
    weight_dtype = output_weight_dtype(output)
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset, train_set, val_set = load_split_sets(data, base, descriptor)
    print(
        f"training on {len(train_set.names)} structures"
        + (f", validating on {len(val_set.names)}" if val_set else "")
        + f"; {descriptor.n_features} features -> {dataset.spectra.shape[1]} energies; "
        f"{train_config.n_members} member(s) x {train_config.epochs} epochs",
        file=sys.stderr,
    )
    progress = None if args.quiet else _ProgressBar(train_config)
    started = time.perf_counter()
    ensemble, histories = train_ensemble(
        train_set.features,
        train_set.spectra,
        None if val_set is None else val_set.features,
        None if val_set is None else val_set.spectra,
        train_config,
        workdir=workdir,
        progress=progress,
    )
    if progress is not None:
        progress.close()
    extra: dict[str, Any] = {
        "training_set_hash": train_set.content_hash(),
        "training_set_size": len(train_set.names),
        "training": train_config.to_dict(),
        "best_epochs": [h.best_epoch for h in histories],
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    export_trained(
        ensemble,
        model_path,
        weight_dtype=weight_dtype,
        val_set=val_set,
        descriptor=descriptor,
        energies=dataset.energies,
        e0=float(data.get("e0", dataset.energies[0] + 15.0)),
        element=str(data.get("element", "Fe")),
        edge=str(data.get("edge", "K")),
        extra=extra,
    )
    return 0


def load_split_sets(
    data: dict[str, Any], base: Path, descriptor: Any, energies: Any = None
) -> tuple[Any, Any, Any]:
    """(whole data set, training set, validation set or None) of a ``[data]`` table:
    ``xyz_dir``/``xanes_dir`` paired by name, split by the JSON ``split`` file when given.
    Relative paths are taken from ``base``; ``energies`` resamples the spectra."""
    from xanesnet.datasets import load_dataset

    for key in ("xyz_dir", "xanes_dir"):
        if key not in data:
            raise ValueError(f"[data] needs {key}")
    path = lambda value: (base / value).resolve()  # noqa: E731
    split = None
    names = None
    if "split" in data:
        split = json.loads(path(data["split"]).read_text())
        names = list(split["train"]) + list(split.get("validation", []))
    dataset = load_dataset(
        path(data["xyz_dir"]), path(data["xanes_dir"]), descriptor, names=names, energies=energies
    )
    if split is None:
        return dataset, dataset, None
    val_set = dataset.subset(split["validation"]) if split.get("validation") else None
    return dataset, dataset.subset(split["train"]), val_set


def output_weight_dtype(output: dict[str, Any]) -> str:
    """``[output] weight_dtype``, checked."""
    weight_dtype = output.get("weight_dtype", "float32")
    if weight_dtype not in ("float32", "float16"):
        raise ValueError(
            f"[output] weight_dtype: expected 'float32' or 'float16', got {weight_dtype!r}"
        )
    return str(weight_dtype)


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
    from xanesnet.model.network import store_weights_as_float16

    if weight_dtype == "float16":
        ensemble = store_weights_as_float16(ensemble)
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


class _ProgressBar:
    """One line per member, updated each epoch (tqdm when installed)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.bar = None
        self.member = -1

    def __call__(self, member: int, epoch: int, train_loss: float, val_loss: float | None) -> None:
        if member != self.member:
            self.close()
            self.member = member
            try:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=self.config.epochs,
                    desc=f"member {member}",
                    unit="epoch",
                    initial=epoch,
                    file=sys.stderr,
                )
            except ImportError:
                self.bar = None
        text = f"train {train_loss:.4f}" + ("" if val_loss is None else f" val {val_loss:.4f}")
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)
        elif epoch % 10 == 0:
            print(f"member {member} epoch {epoch}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
