"""Pretrained models shipped with the package: one registry table, found by element and edge.

:data:`REGISTRY` lists every shipped model file with what its metadata cannot say (the kind of
structures and the spectrum code of its training data, the recipe that made it). Everything
else (energy grid, size, validation figures) is read from the file itself, so the table and
the files cannot disagree about numbers. ``xanesnet models`` prints it.

To ship a model: put the file in this folder and add one :class:`ShippedModel` row.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xanesnet.model import XanesModel

__all__ = [
    "REGISTRY",
    "VARIANTS",
    "ShippedModel",
    "available_models",
    "default_model",
    "default_model_path",
    "find_model",
    "model_for_absorber",
    "read_metadata",
    "resolve_model_path",
    "shipped_models",
]

#: Variants: "default" (per element and edge, the model to use), "ensemble" (Fe: the
#: default's teacher, networks blended with kernel ridge regression; the same accuracy at three
#: times the cost) and "fast" (Fe: one small network, for screening at the highest throughput).
VARIANTS = ("default", "ensemble", "fast")
#: Kinds of training structures and spectrum codes a row may name.
TRAINING_DATA = ("molecules", "crystals")
CODES = ("FDMNES", "FEFF")
#: Name of the metadata entry inside a model archive (``xanesnet.model.files``).
METADATA_NAME = "xanesnet.json"

_FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedModel:
    """One row of the registry.

    Attributes:
        element, edge: absorbing element symbol and edge ("Fe", "K").
        variant: one of :data:`VARIANTS`.
        file: file name in this folder.
        training_data: "molecules" (isolated complexes) or "crystals" (periodic cells).
        code: the code that computed the training spectra ("FDMNES", "FEFF").
        recipe: how the file was made (script or configuration in the repository).
    """

    element: str
    edge: str
    variant: str
    file: str
    training_data: str
    code: str
    recipe: str

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {self.variant!r}")
        if self.training_data not in TRAINING_DATA:
            raise ValueError(
                f"training_data: expected one of {TRAINING_DATA}, got {self.training_data!r}"
            )
        if self.code not in CODES:
            raise ValueError(f"code: expected one of {CODES}, got {self.code!r}")

    @property
    def path(self) -> Path:
        """The model file."""
        return _FOLDER / self.file

    def metadata(self) -> dict[str, Any]:
        """The file's metadata (see :func:`read_metadata`)."""
        return read_metadata(self.path)

    def summary(self) -> dict[str, Any]:
        """The row with the file's grid, size and validation figures (JSON-ready).

        ``validation`` holds Δμ_avg (%), its median and post-broadening value, skew, ΔE (eV),
        R² of peak energies and of intensities and the number of validation spectra, as the
        file's ``validation_metrics`` records them (None where it does not).
        """
        meta = self.metadata()
        energies = meta["energies"]
        metrics = meta.get("validation_metrics") or {}
        figures = (
            "delta_mu_avg",
            "delta_mu_median",
            "post_broadening_delta_mu_avg",
            "skew",
            "delta_e_avg",
            "r2_peaks",
            "r2_intensity",
            "n_spectra",
        )
        return {
            "element": self.element,
            "edge": self.edge,
            "variant": self.variant,
            "file": self.file,
            "training_data": self.training_data,
            "code": self.code,
            "grid_ev": [float(energies[0]), float(energies[-1]), len(energies)],
            "e0_ev": float(meta["e0"]),
            "size_bytes": self.path.stat().st_size,
            "n_members": int(meta["n_members"]),
            "kernel": meta.get("kernel") is not None,
            "validation": {key: metrics.get(key) for key in figures},
            "recipe": self.recipe,
        }


#: Every shipped model, one row each.
REGISTRY: tuple[ShippedModel, ...] = (
    ShippedModel(
        "Fe", "K", "default", "Fe_K_edge.pt", "molecules", "FDMNES",
        "scripts/fe_k_edge/distill.toml",
    ),
    ShippedModel(
        "Fe", "K", "ensemble", "Fe_K_edge_ensemble.pt", "molecules", "FDMNES",
        "scripts/fe_k_edge/train.toml",
    ),
    ShippedModel(
        "Fe", "K", "fast", "Fe_K_edge_fast.pt", "molecules", "FDMNES",
        "scripts/fe_k_edge/train_fast.toml",
    ),
    ShippedModel(
        "V", "K", "default", "V_K_edge.pt", "molecules", "FDMNES",
        "scripts/v_k_edge/train_model.py (train.toml)",
    ),
    ShippedModel(
        "Cu", "K", "default", "Cu_K_edge.pt", "crystals", "FEFF",
        "scripts/cu_k_edge/train_model.py --all-materials",
    ),
)  # fmt: skip


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata embedded in a model file, read without loading its networks.

    For listing only: :func:`xanesnet.model.load_model` verifies a file before use.

    Raises:
        ValueError: the file is not a model archive or holds no metadata.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_NAME}")]
            if len(names) != 1:
                raise ValueError(f"{path}: model file has no xanesnet metadata ({METADATA_NAME})")
            return json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a xanesnet model file ({exc})") from exc


def shipped_models(element: str | None = None, edge: str | None = None) -> list[ShippedModel]:
    """Registry rows whose file is present, optionally of one element and/or edge."""
    return [
        row
        for row in REGISTRY
        if (element is None or row.element == element)
        and (edge is None or row.edge == edge)
        and row.path.is_file()
    ]


def available_models() -> list[tuple[str, str]]:
    """(element, edge) of every shipped default model."""
    return [(r.element, r.edge) for r in shipped_models() if r.variant == "default"]


def find_model(element: str = "Fe", edge: str = "K", variant: str = "default") -> ShippedModel:
    """The registry row of a shipped model.

    Raises:
        ValueError: unknown variant, or no such model shipped (the message lists them).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    for row in shipped_models(element, edge):
        if row.variant == variant:
            return row
    shipped = ", ".join(f"{r.element} {r.edge} {r.variant}" for r in shipped_models()) or "none"
    raise ValueError(
        f"no shipped {variant} model for the {element} {edge}-edge (shipped: {shipped})"
    )


def default_model_path(element: str = "Fe", edge: str = "K", variant: str = "default") -> Path:
    """Path of the shipped model file for an absorbing element and edge (see
    :data:`VARIANTS` for ``variant``)."""
    return find_model(element, edge, variant).path


def default_model(element: str = "Fe", edge: str = "K", variant: str = "default") -> XanesModel:
    """The shipped pretrained model for an absorbing element and edge, loaded and verified."""
    from xanesnet.model import load_model  # imports torch: only when a model is loaded

    return load_model(default_model_path(element, edge, variant))


def resolve_model_path(model: str | os.PathLike | None, option: str = "--model") -> Path:
    """A ``--model`` value as a file: None or "default" is the shipped Fe K-edge model,
    "ensemble" and "fast" its other variants, an element symbol ("V") that element's shipped
    K-edge model (unless a file of that name exists), anything else a model file.

    Raises:
        FileNotFoundError naming ``option`` when the file does not exist.
    """
    if model is None:
        return default_model_path("Fe", "K")
    path = Path(model)
    if path.is_file():
        return path
    if str(model) in VARIANTS:
        return default_model_path("Fe", "K", str(model))
    if (str(model), "K") in available_models():
        return default_model_path(str(model), "K")
    names = ", ".join([*VARIANTS, *(e for e, _ in available_models())])
    raise FileNotFoundError(
        f"{option}: file not found: {model} (or use one of the shipped models: {names})"
    )


def model_for_absorber(
    model: str | os.PathLike | None, absorber: object = None, option: str = "--model"
) -> Path:
    """The model a prediction job runs: ``model`` when given (see :func:`resolve_model_path`),
    else the shipped K-edge model of the absorber element when ``absorber`` is an element
    symbol, else the shipped Fe K-edge model.

    Raises:
        ValueError: no ``model`` and no shipped model for the absorber element (the message
            lists the shipped ones, as ``xanesnet models`` does).
        FileNotFoundError: as :func:`resolve_model_path`.
    """
    if model is not None or not isinstance(absorber, str):
        return resolve_model_path(model, option)
    if (absorber, "K") in available_models():
        return default_model_path(absorber, "K")
    shipped = ", ".join(f"{e} {edge}-edge" for e, edge in available_models()) or "none"
    raise ValueError(
        f"absorber {absorber!r}: no shipped model for this element (shipped: {shipped}; "
        f"see `xanesnet models`), or give a model file ({option})"
    )
