"""Full neighbour lists ("ijdDS"): xanesnet's C++ cell list against ASE, matscipy and vesin.

Run as ``python benchmarks/bench_neighbours.py [--repeats N] [--cutoff R] [--quick]``; prints a
markdown table (min / median / max wall time over repeats, and the speed-up over ASE) with the
machine and library versions. Libraries that are not importable are skipped; ASE is skipped on
a structure where its estimated time exceeds ``--ase-limit`` seconds.

With pytest-benchmark installed, ``pytest benchmarks/bench_neighbours.py`` times the C++ search
on the same structures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xanesnet import _core  # noqa: E402
from xanesnet.descriptors.neighbours import neighbour_list  # noqa: E402

CUTOFF = 5.0


def cluster(n_target: int = 100) -> Atoms:
    """A roughly spherical fcc copper cluster with about ``n_target`` atoms, not periodic.

    It gets a box around it (ignored by the searches, as pbc is False) because matscipy and
    vesin need an invertible cell."""
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(6)
    crystal.rattle(0.05, seed=0)
    centre = crystal.positions.mean(axis=0)
    r = np.linalg.norm(crystal.positions - centre, axis=1)
    keep = np.argsort(r)[:n_target]
    positions = crystal.positions[keep] - centre
    box = np.ptp(positions, axis=0) + 10.0
    return Atoms(crystal.numbers[keep], positions=positions + box / 2, cell=box, pbc=False)


def silicon(n_target: int) -> Atoms:
    """Bulk diamond silicon: a cubic supercell with about ``n_target`` atoms, rattled."""
    reps = max(1, round((n_target / 8) ** (1 / 3)))
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(reps)
    atoms.rattle(0.02, seed=1)
    return atoms


def structures(quick: bool = False) -> list[tuple[str, Atoms]]:
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    out = [("Cu cluster (molecule)", cluster(100))]
    out += [(f"Si diamond {n // 1000}k", silicon(n)) for n in sizes]
    return out


def methods() -> dict[str, Callable[[Atoms, float], object]]:
    found: dict[str, Callable[[Atoms, float], object]] = {
        "xanesnet 1 thread": lambda a, c: neighbour_list(a, c, n_threads=1),
    }
    if _core.default_threads() > 1:
        found["xanesnet 2 threads"] = lambda a, c: neighbour_list(a, c, n_threads=2)
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    found["ase"] = lambda a, c: ase_neighbor_list("ijdDS", a, c)
    try:
        from matscipy.neighbours import neighbour_list as matscipy_neighbour_list

        found["matscipy"] = lambda a, c: matscipy_neighbour_list("ijdDS", a, c)
    except ImportError:
        pass
    try:
        import vesin

        def run_vesin(a: Atoms, c: float) -> object:
            nl = vesin.NeighborList(cutoff=c, full_list=True)
            return nl.compute(a.positions, np.asarray(a.cell), a.pbc, quantities="ijdDS")

        found["vesin"] = run_vesin
    except ImportError:
        pass
    return found


def versions() -> dict[str, str]:
    import ase

    out = {"python": platform.python_version(), "numpy": np.__version__, "ase": ase.__version__}
    for name in ("matscipy", "vesin"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except ImportError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timings(fn: Callable[[], object], repeats: int, budget: float) -> list[float]:
    """Wall times of ``repeats`` runs after one warm-up (fewer when over ``budget`` s)."""
    first = time_once(fn)
    times: list[float] = []
    for _ in range(repeats):
        if times and sum(times) + first > budget:
            break
        times.append(time_once(fn))
    return times or [first]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cutoff", type=float, default=CUTOFF)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per cell of the table")
    parser.add_argument("--ase-limit", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="skip the 100k-atom cell")
    args = parser.parse_args(argv)

    print("# Neighbour list benchmark (full list, quantities ijdDS)\n")
    print(f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}")
    print(f"- xanesnet OpenMP: {_core.have_openmp}, default threads {_core.default_threads()}")
    print("- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(
        f"- cutoff {args.cutoff} Å; times in ms over up to {args.repeats} repeats after a warm-up"
    )
    print()
    print("| structure | atoms | pairs | method | min ms | median ms | max ms | vs ase |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    found = methods()
    ase_per_atom: float | None = None
    for label, atoms in structures(args.quick):
        n_pairs = len(neighbour_list(atoms, args.cutoff)[0])
        results: dict[str, list[float] | str] = {}
        for name, fn in found.items():
            if name == "ase" and ase_per_atom is not None:
                estimate = ase_per_atom * len(atoms)
                if estimate > args.ase_limit:
                    results[name] = f"skipped (~{estimate:.0f} s estimated)"
                    continue
            run = lambda fn=fn, atoms=atoms: fn(atoms, args.cutoff)  # noqa: E731
            results[name] = timings(run, args.repeats, args.budget)
            if name == "ase" and len(atoms) >= 1000:
                ase_per_atom = statistics.median(results[name]) / len(atoms)
        ase_times = results.get("ase")
        for name, times in results.items():
            head = f"| {label} | {len(atoms)} | {n_pairs} | {name} |"
            if isinstance(times, str):
                print(f"{head} {times} | | | |")
                continue
            median = statistics.median(times)
            ratio = ""
            if isinstance(ase_times, list):
                ratio = f"{statistics.median(ase_times) / median:.1f}x"
            print(
                f"{head} {1e3 * min(times):.3f} | {1e3 * median:.3f} | "
                f"{1e3 * max(times):.3f} | {ratio} |",
                flush=True,
            )


# pytest-benchmark entry points (optional): `pytest benchmarks/bench_neighbours.py`
try:
    import pytest

    @pytest.mark.parametrize("size", [1_000, 10_000])
    def test_bench_xanesnet(benchmark, size: int) -> None:  # pragma: no cover - timing only
        atoms = silicon(size)
        benchmark(neighbour_list, atoms, CUTOFF)

except ImportError:  # pragma: no cover
    pass


if __name__ == "__main__":
    main()
