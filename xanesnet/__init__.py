"""xanesnet: XANES spectra of transition-metal sites from their 3D structure.

Main entry points: :class:`WACSF` (descriptor), :func:`read_structures` (input),
:func:`load_model` / :func:`default_model` (prediction), :mod:`xanesnet.metrics`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from xanesnet.descriptors import WACSF, available_backends, default_backend
from xanesnet.structures import read_structures, write_xanesnet_xyz

__all__ = [
    "WACSF",
    "__version__",
    "available_backends",
    "default_backend",
    "default_model",
    "load_model",
    "read_structures",
    "write_xanesnet_xyz",
]


def load_model(path):  # noqa: ANN001, ANN201 (typed in xanesnet.model.export)
    """Load a model file (see :func:`xanesnet.model.export.load_model`); imports torch."""
    from xanesnet.model.export import load_model as _load

    return _load(path)


def default_model(element: str = "Fe", edge: str = "K"):  # noqa: ANN201
    """The shipped pretrained model (see :mod:`xanesnet.model.pretrained`); imports torch."""
    from xanesnet.model.pretrained import default_model as _default

    return _default(element, edge)
