"""xanesnet: XANES spectra of transition-metal sites from their 3D structure.

Main entry points: :class:`WACSF` (descriptor), :func:`read_structures` (input; :class:`Frames`
the packed form of many structures, :class:`InputError` for bad input),
:func:`load_model` / :func:`default_model` (prediction), :mod:`xanesnet.analysis`.
"""

from __future__ import annotations

from xanesnet._version import __version__
from xanesnet.descriptors import WACSF, available_backends, default_backend
from xanesnet.errors import InputError
from xanesnet.frames import Frames
from xanesnet.io import read_structures, write_xanesnet_xyz

__all__ = [
    "Frames",
    "InputError",
    "WACSF",
    "__version__",
    "available_backends",
    "default_backend",
    "default_model",
    "load_model",
    "predict_batch",
    "read_predictions",
    "read_structures",
    "write_xanesnet_xyz",
]


def load_model(path):  # noqa: ANN001, ANN201 (typed in xanesnet.model.files)
    """Load a model file (see :func:`xanesnet.model.files.load_model`); imports torch."""
    from xanesnet.model.files import load_model as _load

    return _load(path)


def default_model(element: str = "Fe", edge: str = "K", variant: str = "default"):  # noqa: ANN201
    """The shipped pretrained model, ``variant`` "default", "ensemble" (the
    default's teacher: networks + kernel ridge, same accuracy at 3× the cost) or "fast" (see :mod:`xanesnet.model.pretrained`); imports torch."""
    from xanesnet.model.pretrained import default_model as _default

    return _default(element, edge, variant)


def predict_batch(inputs, output, **options):  # noqa: ANN001, ANN201 (typed in xanesnet.pipeline.batch)
    """Streaming, resumable batch prediction (see :func:`xanesnet.pipeline.batch.predict_batch`)."""
    from xanesnet.pipeline.batch import predict_batch as _predict_batch

    return _predict_batch(inputs, output, **options)


def read_predictions(path):  # noqa: ANN001, ANN201 (typed in xanesnet.store)
    """Read a batch output folder of any format, hdf5, zarr or csv (see
    :func:`xanesnet.store.read_predictions`)."""
    from xanesnet.store import read_predictions as _read

    return _read(path)
