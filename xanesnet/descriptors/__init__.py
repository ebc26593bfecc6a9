"""Descriptors of absorbing sites (wACSF) with compiled and Numba backends."""

from __future__ import annotations

from xanesnet.descriptors.dispatch import available_backends, default_backend
from xanesnet.descriptors.wacsf import WACSF

__all__ = ["WACSF", "available_backends", "default_backend"]
