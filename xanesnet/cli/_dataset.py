"""Shared by the commands that run a model on (structure, spectrum) pairs (``evaluate``,
``importance``, ``plot``) or fit one (``train``, ``distill``): the data-set arguments, name
lists, loading model + data set and the training/validation split of a ``[data]`` table.

A data set comes from one of three sources (all through :mod:`xanesnet.io.pairs`): the FDMNES
layout (``--xyz``/``--xanes``, ``[data] xyz_dir``/``xanes_dir``), FEFF folders (``--feff``,
``[data] feff_dir``: an OmniXAS-style ``index.csv`` or ``**/FEFF-XANES/<site>_<El>/xmu.dat``)
or a CSV table of (structure, spectrum[, absorber]) files (``--pairs``, ``[data] pairs``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from xanesnet.cli._args import add_choice_argument, add_model_argument

#: ``[data]`` keys naming where the pairs come from, one source per table
SOURCE_KEYS = ("xanes_dir", "feff_dir", "pairs")


def add_dataset_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, other_sources: bool = False
) -> None:
    """``--model``, ``--xyz``, ``--xanes`` and ``--names`` (the data set a model is run on);
    with ``other_sources`` also ``--feff``, ``--pairs`` and ``--feff-target`` (then
    ``--xyz``/``--xanes`` are optional and :func:`load_model_and_data` checks the choice)."""
    add_model_argument(parser)
    required = required and not other_sources
    parser.add_argument("--xyz", type=Path, required=required, help="folder of NAME.xyz structures")
    parser.add_argument("--xanes", type=Path, required=required, help="folder of NAME.txt spectra")
    if other_sources:
        parser.add_argument(
            "--feff",
            type=Path,
            default=None,
            metavar="DIR",
            help="FEFF folders instead of --xyz/--xanes (index.csv, or "
            "<material>/FEFF-XANES/<site>_<El>/xmu.dat with <material>/POSCAR)",
        )
        parser.add_argument(
            "--pairs",
            type=Path,
            default=None,
            metavar="TABLE.csv",
            help="instead of --xyz/--xanes: a CSV table with columns structure, spectrum "
            "[, absorber] (paths relative to the table)",
        )
        add_choice_argument(
            parser,
            "--feff-target",
            ("mu", "omnixas"),
            help="FEFF spectra as FEFF's mu (default) or OmniXAS's 1000·mu·xsedge/a0²",
        )
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
    # the layout's absorber is atom 0: it must be of the model's element
    from xanesnet.descriptors.absorbers import refuse_other_elements
    from xanesnet.io import read_structures

    structures = list(read_structures([Path(xyz) / f"{n}.xyz" for n in data.names]))
    refuse_other_elements(structures, 0, loaded.element, loaded.label)
    return loaded, data


def load_model_and_data(args: argparse.Namespace, *, n_threads: int = 0) -> tuple[Any, Any]:
    """(XanesModel, SpectrumDataset) of the options :func:`add_dataset_arguments` added with
    ``other_sources``: exactly one of ``--xyz``/``--xanes``, ``--feff``, ``--pairs``. FEFF
    and table spectra are read on the model's energies; pairs that cannot be read are named
    on stderr and left out.

    Raises:
        FileNotFoundError / ValueError naming the option at fault.
    """
    chosen = [f for f, v in (("--feff", args.feff), ("--pairs", args.pairs)) if v is not None]
    if args.xyz is not None or args.xanes is not None:
        chosen.append("--xyz/--xanes")
    if len(chosen) != 1:
        raise ValueError(
            "give one data set: --xyz and --xanes, --feff DIR or --pairs TABLE.csv"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if chosen[0] == "--xyz/--xanes":
        if args.xyz is None or args.xanes is None:
            raise ValueError("--xyz and --xanes go together")
        return load_model_and_dataset(
            args.model, args.xyz, args.xanes, args.names, n_threads=n_threads
        )
    from xanesnet.datasets import load_pairs, training_pairs
    from xanesnet.model.files import load_model
    from xanesnet.model.pretrained import resolve_model_path

    source = args.feff if args.feff is not None else args.pairs
    if not source.exists():
        raise FileNotFoundError(f"{chosen[0]}: not found: {source}")
    loaded = load_model(resolve_model_path(args.model))
    pairs = training_pairs(source, names=read_names(args.names) if args.names else None)
    data = load_pairs(
        pairs,
        loaded.descriptor,
        loaded.energies,
        feff_target=args.feff_target,
        n_threads=n_threads,
        on_error=report_left_out,
    )
    return loaded, data


def report_left_out(pair: Any, error: Exception) -> None:
    """Names on stderr a pair that cannot be read (it is left out of the data set)."""
    print(f"left out {pair.name}: {error}", file=sys.stderr)


def data_grid(data: dict[str, Any]) -> Any:
    """The energies (eV, absolute) of ``[data] grid``: a list of energies or a table
    ``{start, stop, n_points}``; None when not given.

    Raises:
        ValueError: a grid of another form, or one that is not strictly increasing.
    """
    import numpy as np

    grid = data.get("grid")
    if grid is None:
        return None
    if isinstance(grid, dict):
        if set(grid) != {"start", "stop", "n_points"}:
            raise ValueError("[data] grid: expected a table {start, stop, n_points} (eV)")
        energies = np.linspace(float(grid["start"]), float(grid["stop"]), int(grid["n_points"]))
    else:
        energies = np.asarray(grid, dtype=np.float64)
    if energies.ndim != 1 or energies.size < 2 or np.any(np.diff(energies) <= 0):
        raise ValueError("[data] grid: at least 2 energies, strictly increasing")
    return energies


def edge_energy(data: dict[str, Any], energies: Any) -> float:
    """E0 (eV) for the model file: ``[data] e0``; else, for the FDMNES layout, 15 eV above the
    first grid point (the published grids start at E0 − 15 eV); else the tabulated K-edge
    energy of ``[data] element``.

    Raises:
        ValueError: none of these applies.
    """
    from xanesnet.spectra import K_EDGE_ENERGIES

    if "e0" in data:
        return float(data["e0"])
    if "xanes_dir" in data:
        return float(energies[0] + 15.0)
    element = data.get("element")
    if data.get("edge", "K") == "K" and element in K_EDGE_ENERGIES:
        return K_EDGE_ENERGIES[element]
    raise ValueError("[data] needs e0 (the edge energy, eV) for this element and edge")


def load_split_sets(
    data: dict[str, Any], base: Path, descriptor: Any, energies: Any = None
) -> tuple[Any, Any, Any]:
    """(whole data set, training set, validation set or None) of a ``[data]`` table.

    The pairs come from one source: ``xyz_dir``/``xanes_dir`` (paired by name),
    ``feff_dir`` or ``pairs`` (a CSV table); see the module docstring. The JSON ``split``
    file lists names (``{"train": [...], "validation": [...]}``) or whole materials
    (``{"materials": {"train": [...], "validation": [...]}}``, the groups of FEFF sites).
    Relative paths are taken from ``base``. The spectra are read on ``energies``, else on
    ``[data] grid`` (:func:`data_grid`), else on the grid of the first (processed) spectrum.
    ``[data] feff_target`` ("mu" or "omnixas") chooses the FEFF spectrum. Pairs that cannot
    be read are named on stderr and left out.

    Raises:
        ValueError: not exactly one source, a malformed split, or no grid for FEFF spectra.
    """
    sources = [key for key in SOURCE_KEYS if key in data]
    if len(sources) != 1:
        raise ValueError(
            "[data] needs one source: xyz_dir + xanes_dir (FDMNES layout), feff_dir (FEFF "
            "folders) or pairs (CSV table of structure and spectrum files)"
            + (f"; got {', '.join(sources)}" if sources else "")
        )

    def path(value: str) -> Path:
        return (base / value).resolve()

    by_group, train, validation = False, None, []
    if "split" in data:
        split = json.loads(path(data["split"]).read_text())
        by_group = "materials" in split
        parts = split["materials"] if by_group else split
        if not isinstance(parts, dict) or not isinstance(parts.get("train"), list):
            raise ValueError(f"{data['split']}: expected a 'train' list (or materials.train)")
        train, validation = list(parts["train"]), list(parts.get("validation", []))
    wanted = None if train is None else train + validation
    grid = data_grid(data) if energies is None else energies
    if sources == ["xanes_dir"]:
        from xanesnet.datasets import load_dataset

        if "xyz_dir" not in data:
            raise ValueError("[data] needs xyz_dir with xanes_dir")
        dataset = load_dataset(
            path(data["xyz_dir"]), path(data["xanes_dir"]), descriptor, names=wanted, energies=grid
        )
    else:
        from xanesnet.datasets import load_pairs, training_pairs

        pairs = training_pairs(path(data[sources[0]]))
        if wanted is not None:
            keep = set(wanted)
            pairs = [p for p in pairs if ((p.group or p.name) if by_group else p.name) in keep]
        if grid is None and pairs and pairs[0].spectrum_format != "processed":
            raise ValueError("[data] needs grid (the model's energies, eV) for these spectra")
        dataset = load_pairs(
            pairs,
            descriptor,
            grid,
            feff_target=str(data.get("feff_target", "mu")),
            on_error=report_left_out,
        )
    if train is None:
        return dataset, dataset, None
    pick = dataset.group_subset if by_group else dataset.subset
    return dataset, pick(train), pick(validation) if validation else None
