"""Stage 1, reading: paths, folders, globs and database URLs into structures.

:func:`read_structures` streams ``ase.Atoms``; the batch pipeline reads the same inputs in
chunks (:mod:`xanesnet.io.chunks`).
"""

from __future__ import annotations

from xanesnet.io.read import read_structures, write_xanesnet_xyz

__all__ = ["read_structures", "write_xanesnet_xyz"]
