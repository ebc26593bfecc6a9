"""Helpers shared by the tests (importable because pyproject sets pythonpath = ["tests"])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xanesnet

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
#: The example structures shipped inside the installed package.
EXAMPLES = Path(xanesnet.__file__).resolve().parent / "examples" / "fe_k_edge"
TEST_DATA = Path(__file__).resolve().parent / "data"

BACKENDS = ["cpp", "numba"]


def read_xanesnet_xyz(path: Path):
    """Minimal independent reader of XANESNET .xyz files (atomic numbers in column 1)."""
    from ase import Atoms

    lines = Path(path).read_text().splitlines()
    n_atoms = int(lines[0])
    rows = np.array([line.split() for line in lines[2 : 2 + n_atoms]], dtype=float)
    atoms = Atoms(numbers=rows[:, 0].astype(int), positions=rows[:, 1:4])
    atoms.info["id"] = Path(path).stem
    return atoms


def shared_data_dir() -> Path:
    """../shared/data, or skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared reference data at {SHARED_DATA}")
    return SHARED_DATA
