"""Shared by the commands that run a model on (structure, spectrum) pairs (``evaluate``,
``importance``, ``plot``) or fit one (``train``, ``distill``): the data-set arguments, name
lists, loading model + data set and the training/validation split of a ``[data]`` table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from xanesnet.cli._args import add_model_argument


def add_dataset_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model``, ``--xyz``, ``--xanes`` and ``--names`` (the data set a model is run on)."""
    add_model_argument(parser)
    parser.add_argument("--xyz", type=Path, required=required, help="folder of NAME.xyz structures")
    parser.add_argument("--xanes", type=Path, required=required, help="folder of NAME.txt spectra")
    parser.add_argument(
        "--names",
        default=None,
        metavar="FILE[:KEY]",
        help="use only these names: a text file (one per line) or a JSON split file with the "
        "list under KEY (e.g. split.json:validation)",
    )


def read_names(spec: str) -> list[str]:
    """Names from ``FILE`` (one per line) or ``FILE.json:KEY``."""
    path_text, _, key = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
    path = Path(path_text)
    if not path.is_file():
        raise FileNotFoundError(f"--names: file not found: {path}")
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if key:
            if key not in data:
                raise ValueError(f"--names: {path} has no list {key!r} (has {sorted(data)})")
            data = data[key]
        if not isinstance(data, list):
            raise ValueError(f"--names: {path} does not hold a list of names")
        return [str(n) for n in data]
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_model_and_dataset(
    model: Path | None,
    xyz: Path,
    xanes: Path,
    names: str | None = None,
    *,
    n_threads: int = 0,
    cache_dir: Path | None = None,
) -> tuple[Any, Any]:
    """(XanesModel, SpectrumDataset on the model's grid and descriptor), after checking the
    arguments; ``model=None`` is the shipped Fe K-edge model.

    Raises:
        FileNotFoundError / ValueError naming the option at fault.
    """
    from xanesnet.datasets import load_dataset
    from xanesnet.model.files import load_model
    from xanesnet.model.pretrained import resolve_model_path

    for option, folder in (("--xyz", xyz), ("--xanes", xanes)):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{option}: folder not found: {folder}")
    loaded = load_model(resolve_model_path(model))
    data = load_dataset(
        xyz,
        xanes,
        loaded.descriptor,
        names=read_names(names) if names else None,
        energies=loaded.energies,
        n_threads=n_threads,
        cache_dir=cache_dir,
    )
    return loaded, data


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

    def path(value: str) -> Path:
        return (base / value).resolve()

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
