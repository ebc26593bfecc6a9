"""Pretrained models shipped with the package, found by element and edge."""

from __future__ import annotations

from pathlib import Path

from xanesnet.model.export import XanesModel, load_model

__all__ = ["available_models", "default_model", "default_model_path"]

_FOLDER = Path(__file__).resolve().parent


def available_models() -> list[tuple[str, str]]:
    """(element, edge) of every shipped model."""
    found = []
    for path in sorted(_FOLDER.glob("*_edge.pt")):
        element, edge, _ = path.stem.split("_")
        found.append((element, edge))
    return found


def default_model_path(element: str = "Fe", edge: str = "K") -> Path:
    """Path of the shipped model file for an absorbing element and edge."""
    path = _FOLDER / f"{element}_{edge}_edge.pt"
    if not path.is_file():
        shipped = ", ".join(f"{e} {k}" for e, k in available_models()) or "none"
        raise ValueError(f"no shipped model for the {element} {edge}-edge (shipped: {shipped})")
    return path


def default_model(element: str = "Fe", edge: str = "K") -> XanesModel:
    """The shipped pretrained model for an absorbing element and edge."""
    return load_model(default_model_path(element, edge))
