"""xanesnet: XANES spectra of transition-metal sites from their 3D structure."""

from __future__ import annotations

from xanesnet.descriptors import WACSF, available_backends, default_backend

__version__ = "0.1.0"

__all__ = ["WACSF", "available_backends", "default_backend", "__version__"]
