"""Helpers shared by the tests (importable because pyproject sets pythonpath = ["tests"])."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import xanesnet

ROOT = Path(__file__).resolve().parents[1]
#: the one variable naming the shared reference folder (the one holding data/), for a
#: checkout that is not beside it (e.g. a git worktree elsewhere)
SHARED_ENV = "XANESNET_SHARED"


def _shared_root() -> Path:
    """``$XANESNET_SHARED``, else ``shared/`` beside or inside the repository: the first that
    holds ``data/`` (the sibling when none does)."""
    env = os.environ.get(SHARED_ENV)
    bases = ([Path(env)] if env else []) + [ROOT.parent / "shared", ROOT / "shared"]
    return next((b for b in bases if (b / "data").is_dir()), ROOT.parent / "shared")


SHARED_DATA = _shared_root() / "data"
#: The example structures shipped inside the installed package.
EXAMPLES = Path(xanesnet.__file__).resolve().parent / "examples" / "fe_k_edge"
TEST_DATA = Path(__file__).resolve().parent / "data"

BACKENDS = ["cpp", "numba"]

#: the folder holding the xanesnet package these tests run against (site-packages when it is
#: installed, the checkout with a developer build)
PACKAGE_PARENT = Path(xanesnet.__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python process that must import the same xanesnet as the tests.

    Its folder goes first on PYTHONPATH; run the child outside the checkout (``cwd``), or a
    ``python -c`` child would import the uncompiled source tree from the working directory.
    """
    env = dict(os.environ, **extra)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), *map(os.path.abspath, paths)])
    return env


#: spacing of float32 numbers at 1.0 (2**-23 ≈ 1.19e-7): twice the unit roundoff
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def float32_atol(values, reduction_length: int, ulps: float = 4.0) -> float:
    """Absolute tolerance between two float32 computations of ``values`` that differ only in
    the order of their sums (thread count, blocking, SIMD width, another CPU).

    Why: each float32 operation rounds with a relative error up to eps/2, so re-ordering a sum
    of n terms of size up to S changes it by about eps·S·sqrt(n) (the rounding errors add like
    a random walk; eps·S·n is the worst case). ``ulps`` covers the few operations around each
    sum (scaling, exp, blending members); the largest |value| stands in for S.

    Args:
        values: the reference result (any shape), e.g. spectra in μ units.
        reduction_length: length of the longest sum behind each value (features of a matrix
            product or distance, centres of a kernel sum, ...).
        ulps: eps multiples allowed per sum.
    """
    scale = float(np.max(np.abs(np.asarray(values, dtype=np.float64))))
    return ulps * FLOAT32_EPS * scale * math.sqrt(reduction_length)


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
    """The shared reference data (see :data:`SHARED_DATA`), or skip the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared reference data at {SHARED_DATA} (set {SHARED_ENV})")
    return SHARED_DATA


@contextlib.contextmanager
def lock_held_elsewhere(lock_file: Path) -> Iterator[None]:
    """Another process holding ``fcntl.flock`` on ``lock_file`` (an output's ``.lock``) for
    the duration of the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()


def untrained_ensemble(
    x: np.ndarray,
    n_energies: int,
    *,
    activation: str = "silu",
    n_members: int = 1,
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 24),
    dropout: float = 0.1,
):
    """Untrained networks with ``x``'s standardisation and a non-trivial output scaling
    (μ mean 1, scale 0.1…0.3 across the ``n_energies`` points), seeded."""
    import torch

    from xanesnet.model import NetworkConfig, SpectrumEnsemble, SpectrumMLP

    torch.manual_seed(seed)
    config = NetworkConfig(hidden=hidden, activation=activation, dropout=dropout)
    members = [
        SpectrumMLP(
            x.shape[1],
            n_energies,
            config,
            x_mean=x.mean(0),
            x_inv_scale=1.0 / (x.std(0) + 1e-12),
            y_mean=np.full(n_energies, 1.0),
            y_scale=np.linspace(0.1, 0.3, n_energies),
        )
        for _ in range(n_members)
    ]
    return SpectrumEnsemble(members).eval()
