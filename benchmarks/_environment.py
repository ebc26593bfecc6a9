"""What every benchmark reports about where it ran: CPU, package versions, git commit, data.

Imported by the benchmark scripts (``python benchmarks/bench_*.py`` puts this folder first on
``sys.path``; ``benchmarks/conftest.py`` does the same for ``pytest benchmarks/``).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The Fe K-edge training structures, relative to the shared data folder.
FE_XYZ_SUBDIR = Path("data/fe_k_edge/xanesnet_2022_preconv/xyz_train")


def cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` of /proc/cpuinfo (e.g. "model name", "flags"), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def git_commit() -> str | None:
    """Short commit of the checkout, with "-dirty" when tracked files differ; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def versions(packages: Sequence[str]) -> dict[str, str | None]:
    """Python, each package's installed version (None if absent), and xanesnet's own version,
    location and commit."""
    import platform

    import xanesnet

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["xanesnet"] = getattr(xanesnet, "__version__", "?")
    out["xanesnet_path"] = str(Path(xanesnet.__file__).parent)
    out["xanesnet_commit"] = git_commit()
    return out


def default_fe_xyz() -> Path:
    """The Fe training structures: under $XANESNET_SHARED, else ``shared/`` beside or inside the
    repository (the first that exists; the sibling path when none does)."""
    env = os.environ.get("XANESNET_SHARED")
    bases = ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared", REPO_ROOT / "shared"]
    for base in bases:
        if (base / FE_XYZ_SUBDIR).is_dir():
            return base / FE_XYZ_SUBDIR
    return REPO_ROOT.parent / "shared" / FE_XYZ_SUBDIR


def perturbed_positions(positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The benchmark inputs' recipe: ``positions`` (n, 3) Å under a random rotation, every atom
    but the absorber (atom 0, at the origin) displaced by Gaussian noise of 0.02 Å."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = positions @ (q * np.sign(np.diag(r))).T
    moved[1:] += rng.normal(scale=0.02, size=(len(moved) - 1, 3))
    return moved
