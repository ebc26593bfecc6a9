"""The canvas every figure of the package is drawn on: a :class:`matplotlib.figure.Figure`
with the Agg canvas and constrained layout (no pyplot global state, no ``matplotlib.use``),
written as PNG or SVG by the file suffix; legends placed beside the axes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DPI", "FORMATS", "image_path", "legend_beside", "new_figure", "save_figure"]

#: output formats, by file suffix
FORMATS = ("png", "svg")
#: resolution of the PNG figures (dots per inch)
DPI = 100


def image_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path; ValueError unless its suffix is a supported format."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: unsupported image format {path.suffix or '(none)'!r} "
            f"(use {', '.join('.' + f for f in FORMATS)})"
        )
    return path


def new_figure(width: float, height: float) -> Any:
    """A Figure of ``width`` × ``height`` inches on its own Agg canvas, constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (its folder made if missing), format by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix.lower().lstrip("."), dpi=DPI)


def legend_beside(ax: Any, fontsize: str = "x-small", **options: Any) -> Any:
    """The axes' legend right of them, so that it never covers the data (constrained layout
    makes room for it)."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=fontsize, borderaxespad=0, **options
    )
