"""Pretrained models shipped with the package, found by element and edge."""

from __future__ import annotations

import os
from pathlib import Path

from xanesnet.model.export import XanesModel, load_model

__all__ = ["available_models", "default_model", "default_model_path", "resolve_model_path"]

#: Shipped variants: "default" (two networks distilled from the ensemble: its accuracy at a
#: fraction of the cost and size; scripts/fe_k_edge/distill.toml), "ensemble" (the default's teacher:
#: three networks blended with kernel ridge regression; the same accuracy at three times the
#: cost; train.toml) and "fast"
#: (one small network, for screening at the highest throughput; train_fast.toml).
VARIANTS = ("default", "ensemble", "fast")

_FOLDER = Path(__file__).resolve().parent


def available_models() -> list[tuple[str, str]]:
    """(element, edge) of every shipped model."""
    found = []
    for path in sorted(_FOLDER.glob("*_edge.pt")):  # the default variants
        element, edge, _ = path.stem.split("_")
        found.append((element, edge))
    return found


def default_model_path(element: str = "Fe", edge: str = "K", variant: str = "default") -> Path:
    """Path of the shipped model file for an absorbing element and edge.

    ``variant``: "default" (accurate and fast), "ensemble" (the default's teacher, same accuracy) or
    "fast" (highest throughput); see :data:`VARIANTS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    suffix = "" if variant == "default" else f"_{variant}"
    path = _FOLDER / f"{element}_{edge}_edge{suffix}.pt"
    if not path.is_file():
        shipped = ", ".join(f"{e} {k}" for e, k in available_models()) or "none"
        raise ValueError(
            f"no shipped {variant} model for the {element} {edge}-edge (shipped: {shipped})"
        )
    return path


def default_model(element: str = "Fe", edge: str = "K", variant: str = "default") -> XanesModel:
    """The shipped pretrained model for an absorbing element and edge (see
    :func:`default_model_path` for ``variant``)."""
    return load_model(default_model_path(element, edge, variant))


def resolve_model_path(model: str | os.PathLike | None, option: str = "--model") -> Path:
    """A ``--model`` value as a file: None or "default" is the shipped Fe K-edge model,
    "ensemble" and "fast" its other variants (unless a file of that name exists), anything
    else a model file.

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
    raise FileNotFoundError(
        f"{option}: file not found: {model} (or use one of the shipped models: "
        f"{', '.join(VARIANTS)})"
    )
