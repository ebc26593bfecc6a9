"""Benchmark: XANESNET xyz reader of :mod:`xanesnet.io.read` against ``ase.io.read``.

ASE cannot read the XANESNET files (atomic numbers in column 1), so the ASE paths read a
converted copy (standard xyz with element symbols, written to a temporary folder). Each
repeat reads every structure of the folder; the table gives structures per second
(min / median / max over repeats) and the ratio of medians against the fastest ASE path.

    python benchmarks/bench_reader.py [--data DIR] [--repeats N] [--limit N] [--json FILE]

DIR defaults to ``../shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train`` relative to the
repository root (falling back to ``shared/data/...`` inside it, or ``$XANESNET_SHARED/data/...``
when that variable is set).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ase  # noqa: E402
import ase.io  # noqa: E402
from _environment import cpuinfo_field, default_fe_xyz  # noqa: E402

from xanesnet.io import fast_path  # noqa: E402
from xanesnet.io.read import read_structures  # noqa: E402


def machine() -> dict[str, str]:
    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ase": ase.__version__,
    }


def timed(fn: Callable[[], int]) -> tuple[float, float]:
    """Structures per second of one call: (wall clock, CPU time of this process)."""
    w0, c0 = time.perf_counter(), time.process_time()
    n = fn()
    return n / (time.perf_counter() - w0), n / max(time.process_time() - c0, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of XANESNET .xyz files")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    data = args.data or default_fe_xyz()
    files = sorted(data.glob("*.xyz"))[: args.limit]
    if not files:
        raise SystemExit(f"no .xyz files in {data} (pass --data DIR)")

    ours = list(read_structures(files))
    # The fast (Numba) path must give exactly what float() gives on the text.
    for atoms, src in zip(ours, files, strict=True):
        rows = src.read_bytes().split(b"\n", 2)[2].split()
        table = np.array(rows, dtype=np.float64).reshape(-1, 4)
        assert np.array_equal(atoms.numbers, table[:, 0]), src
        assert np.array_equal(atoms.positions, table[:, 1:]), src
    with tempfile.TemporaryDirectory(prefix="xanesnet_bench_") as tmp:
        converted = []
        for atoms, src in zip(ours, files, strict=True):
            dst = Path(tmp) / src.name
            ase.io.write(dst, atoms, format="xyz")
            converted.append(str(dst))
        # The converted copy must hold the same structures.
        for a, f in zip(ours, converted, strict=True):
            b = ase.io.read(f, format="xyz")
            assert np.array_equal(a.numbers, b.numbers), f
            assert np.allclose(a.positions, b.positions, atol=1e-6), f

        def run_ours(parser: str) -> Callable[[], int]:
            def run() -> int:
                before = os.environ.get(fast_path.ENV)
                os.environ[fast_path.ENV] = "1" if parser == "numba" else "0"
                try:
                    return sum(1 for _ in read_structures(files))
                finally:
                    os.environ.pop(fast_path.ENV)
                    if before is not None:
                        os.environ[fast_path.ENV] = before

            return run

        def run_ase(fmt: str | None) -> Callable[[], int]:
            def run() -> int:
                return len([ase.io.read(f, format=fmt) for f in converted])

            return run

        runs = {
            "read_structures, XANESNET xyz, Numba fast path": run_ours("numba"),
            "read_structures, XANESNET xyz, Python path": run_ours("python"),
            'ase.io.read(format="xyz") (converted)': run_ase("xyz"),
            'ase.io.read(format="extxyz") (converted)': run_ase("extxyz"),
            "ase.io.read (format auto-detected, converted)": run_ase(None),
        }
        for fn in runs.values():
            fn()  # warm-up (imports, JIT cache, page cache)
        # Readers alternate within each repeat, so they see the same load on a shared machine.
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                w, c = timed(fn)
                wall[name].append(w)
                cpu[name].append(c)

    med = statistics.median
    best_ase = max((k for k in runs if k.startswith("ase")), key=lambda k: med(wall[k]))
    info = machine()
    print(f"\n{len(files)} structures from {data}, {args.repeats} repeats\n")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    print(
        "| reader | structures/s min | median | max | CPU-time structures/s (median) "
        "| vs best ASE: wall median | CPU median |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in runs:
        w = wall[name]
        print(
            f"| {name} | {min(w):,.0f} | {med(w):,.0f} | {max(w):,.0f} | {med(cpu[name]):,.0f} "
            f"| {med(w) / med(wall[best_ase]):.2f}x | {med(cpu[name]) / med(cpu[best_ase]):.2f}x |"
        )
    print(f"\nbest ASE path: {best_ase}")
    if args.json:
        result = {"n": len(files), "data": str(data), "machine": info, "wall": wall, "cpu": cpu}
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
