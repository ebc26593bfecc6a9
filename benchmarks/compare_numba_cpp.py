"""Compare the Numba and C++ wACSF backends: agreement and speed.

Usage: PYTHONPATH=. python benchmarks/compare_numba_cpp.py [XYZ_DIR] [--limit N]

XYZ_DIR holds XANESNET .xyz files (count, comment, then ``Z x y z`` lines); default
../shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train. Also runs random periodic structures
(triclinic cells, partial periodicity, cutoffs larger than the cell, several Fe sites each).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from xanesnet.descriptors.wacsf import WACSF

DEFAULT_DIR = Path("../shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train")

CONFIGS = {
    "defaults": WACSF(),
    "rjk_raw": WACSF(rjk_cutoff="raw"),
    "rankine": WACSF(r_min=0, n_g2=32, n_g4=64, zetas=(1, 2, 4, 8), weight_scale=1.0),
}


def read_xyz(path: Path) -> Atoms:
    lines = path.read_text().splitlines()
    n = int(lines[0].split()[0])
    rows = [line.split() for line in lines[2 : 2 + n]]
    numbers = [int(float(r[0])) for r in rows]
    positions = [[float(v) for v in r[1:4]] for r in rows]
    return Atoms(numbers=numbers, positions=positions, info={"id": path.stem})


def random_periodic(rng: np.random.Generator, n: int) -> list[Atoms]:
    out = []
    for _ in range(n):
        lengths = rng.uniform(2.5, 9.0, 3)
        cell = np.diag(lengths) + rng.uniform(-1.2, 1.2, (3, 3)) * (1 - np.eye(3))
        n_atoms = int(rng.integers(2, 12))
        # rejection sampling so that no two atoms (or images) are too close
        frac = rng.uniform(-0.3, 1.3, (n_atoms, 3))  # unwrapped positions too
        numbers = rng.integers(1, 40, n_atoms)
        numbers[: max(1, n_atoms // 3)] = 26
        pbc = rng.integers(0, 2, 3).astype(bool)
        if not pbc.any():
            pbc[int(rng.integers(0, 3))] = True
        atoms = Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=pbc)
        out.append(atoms)
    return out


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def timed(config: WACSF, structures: list[Atoms], absorber, backend: str, threads: int):
    start = time.perf_counter()
    features, _ = config.compute(structures, absorber, backend=backend, n_threads=threads)
    return features, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("xyz_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    files = sorted(args.xyz_dir.glob("*.xyz"))
    if args.limit:
        files = files[: args.limit]
    molecules = [read_xyz(p) for p in files]
    print(f"{len(molecules)} molecules from {args.xyz_dir}")
    # warm up (JIT / disk cache)
    WACSF().compute(molecules[:2], backend="numba")

    for name, config in CONFIGS.items():
        ref, _ = timed(config, molecules, 0, "cpp", 1)
        got, _ = timed(config, molecules, 0, "numba", 1)
        line = f"{name:9s} max rel diff {max_rel(got, ref):.2e};"
        for threads in (1, 2):
            _, t_cpp = timed(config, molecules, 0, "cpp", threads)
            _, t_nb = timed(config, molecules, 0, "numba", threads)
            n = len(molecules)
            line += f" {threads} thr: cpp {n / t_cpp:7.0f}, numba {n / t_nb:7.0f} sites/s;"
        print(line)

    rng = np.random.default_rng(1234)
    periodic = []
    while len(periodic) < 300:
        for atoms in random_periodic(rng, 50):
            try:
                CONFIGS["defaults"].compute([atoms], "Fe", backend="cpp")
            except ValueError:
                continue  # atoms too close: covered separately
            periodic.append(atoms)
    periodic = periodic[:300]
    for name, config in CONFIGS.items():
        ref, idx_ref = config.compute(periodic, "Fe", backend="cpp")
        got, idx_got = config.compute(periodic, "Fe", backend="numba")
        assert np.array_equal(idx_ref, idx_got)
        print(f"periodic {name:9s} {len(ref)} sites: max rel diff {max_rel(got, ref):.2e}")


if __name__ == "__main__":
    main()
