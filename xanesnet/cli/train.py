"""``xanesnet train CONFIG [--set KEY=VALUE ...]``: train and export a spectrum model.

The configuration (TOML, or YAML when PyYAML is installed) has these tables::

    [data]        the pairs, from one source: xyz_dir + xanes_dir (FDMNES layout, NAME.xyz
                  with NAME.txt), feff_dir (FEFF folders: index.csv or
                  <material>/FEFF-XANES/<site>_<El>/xmu.dat with <material>/POSCAR) or
                  pairs (CSV table: structure, spectrum[, absorber]); split (JSON with
                  "train"/"validation" name lists, or "materials": {"train", "validation"}
                  to split FEFF sites by material; optional); grid (the model's absolute
                  energies, eV: {start, stop, n_points} or a list; needed for FEFF and raw
                  FDMNES spectra), feff_target ("mu" or "omnixas"), element (needed with
                  feff_dir/pairs), edge, e0 (eV; default: the FDMNES grid's start + 15 eV,
                  else the tabulated K-edge energy)
    [descriptor]  WACSF fields (r_min, r_max, n_g2, n_g4, zetas, ...)
    [training]    TrainConfig fields (epochs, batch_size, learning_rate, n_members, ...),
                  with [training.network] (hidden, activation, dropout)
    [output]      model (file to write: .pt, TorchScript), workdir
                  (checkpoints and per-epoch CSV logs; a killed run resumes from them),
                  weight_dtype ("float32", "float16" to store network weights in half
                  the space, or "int8" in a quarter, one scale per row; validation
                  figures are measured after that rounding)
    [calibration] optional: domain (default true: the out-of-domain score, fitted on the
                  training descriptors in seconds), folds (default 0; k >= 2 fits the
                  calibrated sigma on k-fold out-of-fold predictions of stand-ins trained
                  like the model, k more trainings; the validation split is not used)

Relative paths are taken from the configuration file's folder. ``--set training.epochs=10``
overrides any value (parsed as TOML, e.g. ``--set "training.network.hidden=[256, 256]"``).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

from xanesnet.cli._dataset import edge_energy, load_split_sets
from xanesnet.cli._progress import TrainingProgress
from xanesnet.cli._training import (
    add_training_arguments,
    calibration_options,
    export_trained,
    fit_trust,
    output_paths,
    output_weight_dtype,
    training_record,
)
from xanesnet.config import load_config

SECTIONS = ("data", "descriptor", "training", "output", "calibration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet train",
        description="Train a spectrum model from (structure, spectrum) pairs and export it.",
        # the configuration's tables and keys, as the module docstring lists them
        epilog=(__doc__ or "").split("\n", 2)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser, "training")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        raw = load_config(args.config, SECTIONS, args.set)
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
    descriptor = WACSF.from_dict(raw.get("descriptor", {}))
    train_config = TrainConfig.from_dict(raw.get("training", {}))
    model_path, workdir = output_paths(output, base, args)
    weight_dtype = output_weight_dtype(output)
    folds, with_domain, with_latent = calibration_options(raw.get("calibration", {}))
    if args.threads:
        torch.set_num_threads(args.threads)

    if "xanes_dir" not in data and "element" not in data:
        raise ValueError('[data] needs element (the absorber, e.g. "Cu") with feff_dir or pairs')
    dataset, train_set, val_set = load_split_sets(data, base, descriptor)
    if folds > len(train_set.names):
        raise ValueError(
            f"[calibration] folds: expected at most the {len(train_set.names)} training "
            f"structures, got {folds}"
        )
    print(
        f"training on {len(train_set.names)} structures"
        + (f", validating on {len(val_set.names)}" if val_set else "")
        + f"; {descriptor.n_features} features -> {dataset.spectra.shape[1]} energies; "
        f"{train_config.n_members} member(s) x {train_config.epochs} epochs",
        file=sys.stderr,
    )
    progress = TrainingProgress(train_config.epochs, quiet=args.quiet)
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
    progress.close()
    extra = training_record(train_set, train_config, histories, started)
    extra.update(
        fit_trust(
            ensemble,
            train_set,
            train_config,
            folds=folds,
            domain=with_domain,
            weight_dtype=weight_dtype,
            quiet=args.quiet,
            latent=with_latent,
        )
    )
    export_trained(
        ensemble,
        model_path,
        weight_dtype=weight_dtype,
        val_set=val_set,
        descriptor=descriptor,
        energies=dataset.energies,
        e0=edge_energy(data, dataset.energies),
        element=str(data.get("element", "Fe")),
        edge=str(data.get("edge", "K")),
        extra=extra,
    )
    return 0
