"""Throughput of the wACSF descriptor: C++ and Numba backends against NumPy and DScribe.

Usage (from the repository root, after ``scripts/dev_build.sh``)::

    PYTHONPATH=. python benchmarks/bench_wacsf.py [--data DIR] [--limit N] [--repeats R]
                                                  [--json OUT]

Measures absorbing sites per second on the Fe K-edge training structures (one site per
structure, the absorber is atom 0) for

* the C++ backend and the Numba backend at 1 and 2 threads, twice each: the kernel alone
  (``run_kernel`` on a batch packed beforehand) and the full ``WACSF.compute`` (packing and
  validation included);
* packing alone (``pack_structures``);
* the NumPy reference (``wacsf_numpy``, one structure at a time, full distance matrix, the
  upstream way) on a subset;
* DScribe's ``ACSF`` (if installed) with the same radial grids, on a subset.

Every timing is repeated R times and reported as min / median / max sites/s. The first call of
each backend is a warm-up (for Numba it includes JIT compilation); it is timed and reported
separately, never mixed into the repeats. Prints machine and version information, the input
statistics, the agreement between backends, a markdown table and the speed targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
try:
    import xanesnet  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH=.
    sys.path.insert(0, str(REPO_ROOT))

from _environment import cpuinfo_field, versions  # noqa: E402

from xanesnet import WACSF  # noqa: E402
from xanesnet.descriptors.dispatch import run_kernel  # noqa: E402
from xanesnet.descriptors.packing import PackedBatch, pack_structures  # noqa: E402
from xanesnet.descriptors.reference import wacsf_numpy  # noqa: E402

DATA_SUBPATH = Path("shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train")
#: Documented default, relative to the repository root.
DEFAULT_DATA = Path("..") / DATA_SUBPATH

#: Backends agree when max_rel_diff is at most this.
AGREEMENT_RTOL = 1e-10

# Speed targets (median sites/s, end-to-end ``compute()`` rows).
TARGET_CPP_VS_NUMPY = 50.0
TARGET_CPP_VS_DSCRIBE = 15.0
TARGET_NUMBA_VS_CPP = 3.0


# -- input -------------------------------------------------------------------------------------
def default_data_dir() -> Path:
    """``../shared/...`` relative to the repo root; also tried: ``shared/`` in any ancestor.

    The environment variable ``XANESNET_BENCH_DATA`` overrides the search.
    """
    env = os.environ.get("XANESNET_BENCH_DATA")
    if env:
        return Path(env)
    for base in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = base / DATA_SUBPATH
        if candidate.is_dir():
            return candidate
    return REPO_ROOT / DEFAULT_DATA


def read_xyz(path: Path) -> Any:
    """One XANESNET ``.xyz`` file: count, comment, then ``Z x y z`` rows (Z or symbol)."""
    from ase import Atoms
    from ase.data import atomic_numbers

    lines = path.read_text().splitlines()
    n_atoms = int(lines[0].split()[0])
    numbers, positions = [], []
    for line in lines[2 : 2 + n_atoms]:
        fields = line.split()
        element = fields[0]
        numbers.append(int(element) if element.isdigit() else atomic_numbers[element])
        positions.append([float(v) for v in fields[1:4]])
    if len(numbers) != n_atoms:
        raise ValueError(f"{path}: expected {n_atoms} atoms, found {len(numbers)}")
    return Atoms(numbers=numbers, positions=positions, info={"id": path.stem})


def load_structures(data_dir: Path, limit: int | None) -> tuple[list[Any], str]:
    """Structures of the first ``limit`` files (sorted by name), and the loader's name."""
    files = sorted(data_dir.glob("*.xyz"))
    if limit is not None:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(f"no .xyz files in {data_dir}")
    try:
        from xanesnet.io import read_structures
    except ImportError:
        read_structures = None
    if read_structures is not None:
        try:
            structures = list(read_structures(files))
            if len(structures) == len(files):
                return structures, "xanesnet.io.read.read_structures"
        except Exception as exc:  # noqa: BLE001 - the local loader is the fallback
            print(f"note: read_structures failed ({exc!r}); using the local loader")
    return [read_xyz(f) for f in files], "local read_xyz (benchmarks/bench_wacsf.py)"


def input_stats(structures: Sequence[Any], r_max: float) -> dict[str, Any]:
    """Atoms per structure and neighbours of atom 0 within ``r_max`` (mean, min, max)."""
    n_atoms = np.array([len(a) for a in structures])
    n_neigh = np.empty(len(structures), dtype=np.int64)
    for s, atoms in enumerate(structures):
        pos = atoms.get_positions()
        r = np.linalg.norm(pos[1:] - pos[0], axis=1)
        n_neigh[s] = int(np.count_nonzero((r > 0.0) & (r < r_max)))
    pairs = n_neigh * (n_neigh - 1) // 2
    elements = sorted({int(z) for a in structures for z in a.get_atomic_numbers()})
    return {
        "n_structures": len(structures),
        "n_sites": len(structures),
        "atoms_per_structure": _summary(n_atoms),
        f"neighbours_within_{r_max:g}A": _summary(n_neigh),
        "neighbour_pairs_per_site_mean": float(pairs.mean()),
        "elements": elements,
    }


def spread_subset(n_total: int, n: int) -> np.ndarray:
    """Indices of ``n`` structures spread evenly over ``n_total`` (a representative subset)."""
    n = min(n, n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(np.int64))


def subset_note(subset: Sequence[Any], r_max: float) -> str:
    stats = input_stats(subset, r_max)
    return (
        f"; evenly spread subset, neighbour pairs/site mean "
        f"{stats['neighbour_pairs_per_site_mean']:.0f}"
    )


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


# -- machine -----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu = cpuinfo_field("model name") or "unknown"
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        from xanesnet import _core

        for name in ("have_openmp", "default_threads"):
            value = getattr(_core, name)
            info[f"cpp_{name}"] = value() if callable(value) else value
    except (ImportError, AttributeError):
        pass
    return info


# -- timing ------------------------------------------------------------------------------------
@dataclass
class Result:
    """Timings of one method: ``times`` are the R repeats, ``warmup_s`` the first call."""

    method: str
    threads: str
    scope: str
    n_sites: int
    times: list[float]
    warmup_s: float | None = None
    n_features: int | None = None
    note: str = ""
    rates: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rates = {
            "min": self.n_sites / max(self.times),
            "median": self.n_sites / statistics.median(self.times),
            "max": self.n_sites / min(self.times),
        }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def repeat(fn: Callable[[], Any], repeats: int) -> list[float]:
    return [timed(fn)[0] for _ in range(repeats)]


def numba_available() -> tuple[bool, str]:
    try:
        from xanesnet.descriptors import _numba  # noqa: F401
    except ImportError as exc:
        return False, f"xanesnet.descriptors._numba not importable ({exc})"
    return True, ""


def bench_backend(
    config: WACSF,
    structures: list[Any],
    batch: PackedBatch,
    backend: str,
    threads: Sequence[int],
    repeats: int,
) -> tuple[list[Result], np.ndarray]:
    """Kernel-only and full ``compute()`` timings of one backend; returns its features too."""
    results = []
    features = None
    for n in threads:
        warm, out = timed(lambda n=n: run_kernel(config, batch, backend, n))
        if not np.all(out[1] == 0):
            raise RuntimeError(f"{backend}: kernel reported invalid sites: {np.nonzero(out[1])[0]}")
        features = out[0] if features is None else features
        note = "warm-up includes JIT compilation" if backend == "numba" and n == threads[0] else ""
        times = repeat(lambda n=n: run_kernel(config, batch, backend, n), repeats)
        results.append(
            Result(
                backend,
                str(n),
                "kernel (pre-packed)",
                batch.n_sites,
                times,
                warm,
                out[0].shape[1],
                note,
            )
        )
        times = repeat(
            lambda n=n: config.compute(structures, 0, backend=backend, n_threads=n), repeats
        )
        results.append(
            Result(
                backend,
                str(n),
                "compute() (incl. packing)",
                batch.n_sites,
                times,
                None,
                out[0].shape[1],
            )
        )
    assert features is not None
    return results, features


def bench_reference(
    config: WACSF, structures: list[Any], repeats: int
) -> tuple[Result, np.ndarray]:
    def run() -> np.ndarray:
        return np.stack([wacsf_numpy(config, a.positions, a.numbers, 0) for a in structures])

    warm, features = timed(run)
    times = repeat(run, repeats)
    result = Result(
        "NumPy reference",
        "1",
        "per structure, full distance matrix",
        len(structures),
        times,
        warm,
        features.shape[1],
        f"{len(structures)} structures",
    )
    return result, features


def dscribe_acsf(config: WACSF, species: Sequence[int]) -> Any:
    """DScribe ACSF with the WACSF radial grids: G2 (η, μ) pairs, G4 η with ζ 1, λ ±1."""
    from dscribe.descriptors import ACSF

    g2 = [[float(e), float(m)] for e, m in zip(config.g2_eta, config.g2_mu, strict=True)]
    g4 = [
        [float(e), float(z), float(lam)]
        for e in config.g4_eta
        for lam in config.lambdas
        for z in config.zetas
    ]
    return ACSF(r_cut=config.r_max, g2_params=g2, g4_params=g4, species=list(species))


def bench_dscribe(
    config: WACSF,
    structures: list[Any],
    species: Sequence[int],
    jobs: Sequence[int],
    repeats: int,
) -> list[Result]:
    acsf = dscribe_acsf(config, species)
    n_features = int(acsf.get_number_of_features())
    centers = [[0]] * len(structures)
    results = []
    for n in jobs:

        def run(n: int = n) -> Any:
            return acsf.create(structures, centers=centers, n_jobs=n)

        warm = timed(lambda n=n: acsf.create(structures[:2], centers=centers[:2], n_jobs=n))[0]
        times = repeat(run, repeats)
        note = f"unweighted, split by element ({len(species)} species -> {n_features} features)"
        if n > 1:
            note += "; n_jobs uses joblib processes"
        results.append(
            Result(
                "DScribe ACSF",
                str(n),
                "create(centers=[0])",
                len(structures),
                times,
                warm,
                n_features,
                note,
            )
        )
    return results


# -- comparison --------------------------------------------------------------------------------
def max_rel_diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """max |a−b| / max(|a|, |b|) elementwise; denominators floored at 1e-12 × column scale."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    floor = 1e-12 * np.maximum(scale.max(axis=0, keepdims=True), 1e-300)
    rel = diff / np.maximum(scale, floor)
    worst = float(rel.max())
    return {
        "max_rel": worst,
        "max_abs": float(diff.max()),
        "ok (<= 1e-10)": bool(worst <= AGREEMENT_RTOL),
    }


def best_median(results: Sequence[Result], method: str) -> Result | None:
    rows = [r for r in results if r.method == method]
    return max(rows, key=lambda r: r.rates["median"]) if rows else None


def find(results: Sequence[Result], method: str, threads: str, scope: str) -> Result | None:
    for r in results:
        if r.method == method and r.threads == threads and r.scope.startswith(scope):
            return r
    return None


def check_targets(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Targets on median sites/s, C++/Numba at 2 threads.

    ``met`` is judged on the end-to-end ``compute()`` rows (packing included, the stricter
    reading); ``kernel_value`` gives the same ratio for the kernel-only rows.
    """
    ref = best_median(results, "NumPy reference")
    dsc = best_median(results, "DScribe ACSF")

    def ratio(x: Result | None, y: Result | None) -> float | None:
        return x.rates["median"] / y.rates["median"] if x and y else None

    out = []
    for name, goal, higher in (
        ("C++ 2 threads / NumPy reference >= 50", TARGET_CPP_VS_NUMPY, True),
        ("C++ 2 threads / best DScribe >= 15", TARGET_CPP_VS_DSCRIBE, True),
        ("C++ / Numba (2 threads) <= 3", TARGET_NUMBA_VS_CPP, False),
    ):
        values = {}
        for scope in ("compute", "kernel"):
            cpp = find(results, "cpp", "2", scope)
            numba = find(results, "numba", "2", scope)
            if name.startswith("C++ / Numba"):
                values[scope] = ratio(cpp, numba)
            else:
                values[scope] = ratio(cpp, ref if "NumPy" in name else dsc)
        value = values["compute"]
        met = None if value is None else bool(value >= goal if higher else value <= goal)
        out.append(
            {
                "target": name,
                "value": value,
                "kernel_value": values["kernel"],
                "goal": goal,
                "met": met,
            }
        )
    return out


# -- report ------------------------------------------------------------------------------------
def fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def markdown_table(results: Sequence[Result]) -> str:
    ref = best_median(results, "NumPy reference")
    dsc = best_median(results, "DScribe ACSF")
    head = (
        "| method | threads | scope | sites | sites/s min | sites/s median | sites/s max "
        "| × NumPy ref | × DScribe | warm-up s | features | notes |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        x_ref = f"{r.rates['median'] / ref.rates['median']:.1f}" if ref else "n/a"
        x_dsc = f"{r.rates['median'] / dsc.rates['median']:.1f}" if dsc else "n/a"
        if r.method == "packing only":  # not a descriptor: no speed-up to quote
            x_ref = x_dsc = ""
        warm = f"{r.warmup_s:.3f}" if r.warmup_s is not None else ""
        lines.append(
            f"| {r.method} | {r.threads} | {r.scope} | {r.n_sites} | {fmt_rate(r.rates['min'])} "
            f"| {fmt_rate(r.rates['median'])} | {fmt_rate(r.rates['max'])} | {x_ref} | {x_dsc} "
            f"| {warm} | {r.n_features or ''} | {r.note} |"
        )
    return "\n".join(lines)


def print_report(report: dict[str, Any], results: Sequence[Result]) -> None:
    print("## Machine")
    for k, v in report["machine"].items():
        print(f"- {k}: {v}")
    print("\n## Versions")
    for k, v in report["versions"].items():
        print(f"- {k}: {v if v is not None else 'not installed'}")
    print("\n## Input")
    for k, v in report["input"].items():
        print(f"- {k}: {v}")
    print(f"- repeats: {report['repeats']} (warm-up call excluded)")
    print(f"- descriptor: {report['descriptor']}")
    print("\n## Agreement")
    for k, v in report["agreement"].items():
        print(f"- {k}: {v}")
    print("\n## Throughput (sites/s; ratios use medians; × columns vs the best row of each)")
    print(markdown_table(results))
    print()
    for note in report["notes"]:
        print(f"- {note}")
    print("\n## Targets (medians; judged on end-to-end compute(), kernel-only in brackets)")
    for t in report["targets"]:
        met = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        value = "n/a" if t["value"] is None else f"{t['value']:.1f}"
        kernel = "n/a" if t["kernel_value"] is None else f"{t['kernel_value']:.1f}"
        print(f"- {t['target']}: {value} (kernel {kernel}) -> {met}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"directory of .xyz files (default: {DEFAULT_DATA} from the repo root)",
    )
    p.add_argument("--limit", type=int, default=None, help="use the first N structures only")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per method (default 5)")
    p.add_argument("--threads", default="1,2", help="thread counts for cpp/numba (default 1,2)")
    p.add_argument(
        "--ref-limit",
        type=int,
        default=300,
        help="structures for the NumPy reference (default 300; 0 skips it)",
    )
    p.add_argument(
        "--dscribe-limit",
        type=int,
        default=1000,
        help="structures for DScribe (default 1000; 0 skips it)",
    )
    p.add_argument(
        "--dscribe-jobs", default="1", help="DScribe n_jobs values, comma separated (default 1)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    args.threads = [int(v) for v in args.threads.split(",") if v]
    args.dscribe_jobs = [int(v) for v in args.dscribe_jobs.split(",") if v]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data if args.data is not None else default_data_dir()
    config = WACSF()
    structures, loader = load_structures(data_dir, args.limit)
    notes: list[str] = [f"structures read by {loader} from {data_dir}"]
    results: list[Result] = []
    agreement: dict[str, Any] = {}

    times = repeat(lambda: pack_structures(structures, 0), args.repeats)
    batch = pack_structures(structures, 0)
    results.append(Result("packing only", "1", "pack_structures", batch.n_sites, times))

    cpp_results, cpp_features = bench_backend(
        config, structures, batch, "cpp", args.threads, args.repeats
    )
    results += cpp_results

    ok, why = numba_available()
    if ok:
        numba_results, numba_features = bench_backend(
            config, structures, batch, "numba", args.threads, args.repeats
        )
        results += numba_results
        agreement["cpp vs numba (all sites)"] = max_rel_diff(cpp_features, numba_features)
    else:
        notes.append(f"Numba backend skipped: {why}")
        agreement["cpp vs numba"] = "skipped (no numba backend)"

    if args.ref_limit > 0:
        pick = spread_subset(len(structures), args.ref_limit)
        subset = [structures[i] for i in pick]
        ref_result, ref_features = bench_reference(config, subset, args.repeats)
        ref_result.note += subset_note(subset, config.r_max)
        results.append(ref_result)
        agreement[f"cpp vs NumPy reference ({pick.size} structures)"] = max_rel_diff(
            cpp_features[pick], ref_features
        )

    if args.dscribe_limit > 0:
        pick = spread_subset(len(structures), args.dscribe_limit)
        subset = [structures[i] for i in pick]
        try:
            import dscribe  # noqa: F401
        except ImportError:
            notes.append("DScribe skipped: not installed (pip install dscribe)")
        else:
            species = input_stats(structures, config.r_max)["elements"]
            dsc_results = bench_dscribe(config, subset, species, args.dscribe_jobs, args.repeats)
            for r in dsc_results:
                r.note += subset_note(subset, config.r_max)
            results += dsc_results
            notes.append(
                "DScribe ACSF: r_cut 6, G2 = the 16 (eta, mu) of WACSF().g2_eta/g2_mu, "
                "G4 = the 16 etas of WACSF().g4_eta with zeta 1, lambda ±1, species = all "
                "elements present. Its G4 is unweighted and every G2/G4 is split by element "
                "(pair), so its feature count differs from WACSF's 49; the work per site is "
                "comparable (same neighbour pairs), the output is not."
            )

    notes.append(
        "kernel rows time run_kernel on a pre-packed batch; compute() rows include packing "
        "and validation of ase.Atoms (the 'packing only' row is that part alone)"
    )
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n_cores is not None and max(args.threads) > n_cores:
        notes.append(f"more threads than usable cores ({n_cores}): those rows are oversubscribed")

    report = {
        "machine": machine_info(),
        "versions": versions(("numpy", "numba", "ase", "dscribe")),
        "input": {"data_dir": str(data_dir), **input_stats(structures, config.r_max)},
        "repeats": args.repeats,
        "descriptor": f"WACSF() defaults, {config.n_descriptor_features} features",
        "agreement": agreement,
        "notes": notes,
    }
    report["input"].pop("elements")
    report["targets"] = check_targets(results)
    print_report(report, results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report["results"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
