"""Benchmark: fast .xyz batch input (:mod:`xanesnet.io.chunks`) against the ase.Atoms path.

Builds a folder of at least ``--min-files`` XANESNET .xyz files (copies of the real ones, in a
temporary folder), then, alternating the variants within each repeat so that they see the same
load on a shared machine:

* reading only: the chunks of ``predict_batch`` (``xanesnet.io.chunks.iter_chunks``) with the
  ase.Atoms reader (per-frame Numba parser, and the pure-Python parser that a fresh process
  uses for its first 10k frames) and with the fast reader; then the same plus packing into the
  descriptor kernel's arrays (``pack_arrays``);
* end to end: ``predict_batch`` in a fresh process each time (as ``xanesnet-batch`` runs it)
  with ``XANESNET_FAST_XYZ=0`` and ``=1``; outputs checked equal.

Prints machine, versions, structures/s or sites/s (min / median / max over repeats, wall
clock; CPU-time rate median) and the ratio of medians against the Atoms path.

    python benchmarks/bench_fast_xyz.py [--data DIR] [--min-files N] [--repeats N]
        [--e2e-repeats N] [--chunk-size N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from _environment import cpuinfo_field, default_fe_xyz  # noqa: E402

from xanesnet.io import fast_path  # noqa: E402


def machine() -> dict[str, str]:
    import ase
    import numba
    import torch

    import xanesnet

    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "ase": ase.__version__,
        "xanesnet": xanesnet.__version__,
    }


def make_folder(data: Path, min_files: int, dest: Path) -> int:
    """Copy the .xyz files of ``data`` into ``dest`` (prefix c<k>_) until >= min_files."""
    files = sorted(data.glob("*.xyz"))
    if not files:
        raise SystemExit(f"no .xyz files in {data} (pass --data DIR)")
    copies = -(-min_files // len(files))
    for k in range(copies):
        for path in files:
            shutil.copyfile(path, dest / f"c{k}_{path.name}")
    return copies * len(files)


def rate(fn: Callable[[], int]) -> tuple[float, float]:
    """(items per second of wall clock, items per second of this process's CPU time)."""
    w0, c0 = time.perf_counter(), time.process_time()
    n = fn()
    return n / (time.perf_counter() - w0), n / max(time.process_time() - c0, 1e-9)


_E2E = """
import json, sys, time
sys.path.insert(0, {repo!r})
from xanesnet import predict_batch
c0 = time.process_time()
s = predict_batch({folder!r}, {out!r}, chunk_size={chunk_size}, progress=False)
print(json.dumps([s.sites, s.seconds, time.process_time() - c0]))
"""


def e2e_run(folder: Path, out: Path, chunk_size: int, fast: str) -> tuple[float, float]:
    """predict_batch in a fresh process (as ``xanesnet-batch`` runs), XANESNET_FAST_XYZ=fast.

    Returns (sites per second of the job's wall clock, sites per second of the process's CPU
    time over the job and model loading).
    """
    code = _E2E.format(repo=str(REPO), folder=str(folder), out=str(out), chunk_size=chunk_size)
    env = dict(os.environ, XANESNET_FAST_XYZ=fast)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    sites, seconds, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return sites / seconds, sites / cpu


def table(title: str, unit: str, wall: dict, cpu: dict, reference: str) -> None:
    med = statistics.median
    print(f"\n{title}\n")
    print(f"| variant | {unit} min | median | max | CPU-time {unit} (median) | vs Atoms path |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, w in wall.items():
        print(
            f"| {name} | {min(w):,.0f} | {med(w):,.0f} | {max(w):,.0f} | {med(cpu[name]):,.0f} "
            f"| {med(w) / med(wall[reference]):.2f}x |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of XANESNET .xyz files")
    parser.add_argument("--min-files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the reading runs")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="repeats of predict_batch")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    from xanesnet import read_predictions
    from xanesnet.descriptors.packing import id_labels, pack_arrays
    from xanesnet.io.chunks import iter_chunks
    from xanesnet.io.sources import resolve_sources

    data = args.data or default_fe_xyz()
    with tempfile.TemporaryDirectory(prefix="xanesnet_fastxyz_") as tmp:
        folder = Path(tmp) / "xyz"
        folder.mkdir()
        n_files = make_folder(data, args.min_files, folder)

        def read(fast: bool, parser: str = "numba", pack: bool = False) -> Callable[[], int]:
            def run() -> int:
                before = os.environ.get(fast_path.ENV)
                os.environ[fast_path.ENV] = "1" if parser == "numba" else "0"
                n = 0
                try:
                    sources = resolve_sources([folder], None, None, None)[0]
                    for chunk in iter_chunks(sources, args.chunk_size, fast_xyz=fast):
                        f = chunk.frames
                        n += len(f)
                        if pack:
                            labels = id_labels(f.ids)
                            pack_arrays(
                                f.positions, f.numbers, f.offsets, f.cells, f.pbc, "Fe", labels
                            )
                finally:
                    os.environ.pop(fast_path.ENV)
                    if before is not None:
                        os.environ[fast_path.ENV] = before
                return n

            return run

        reading = {
            "per-file readers, Python parser": read(False, "python"),
            "per-file readers, Numba parser per frame": read(False),
            "block reader (fast_xyz)": read(True),
            "per-file readers, Numba parser + pack_arrays": read(False, pack=True),
            "block reader + pack_arrays": read(True, pack=True),
        }
        for fn in reading.values():
            fn()  # warm-up: imports, JIT cache, page cache
        wall: dict[str, list[float]] = {k: [] for k in reading}
        cpu: dict[str, list[float]] = {k: [] for k in reading}
        for _ in range(args.repeats):
            for name, fn in reading.items():
                w, c = rate(fn)
                wall[name].append(w)
                cpu[name].append(c)

        e2e_wall: dict[str, list[float]] = {"Atoms path": [], "fast path": []}
        e2e_cpu: dict[str, list[float]] = {"Atoms path": [], "fast path": []}
        for _ in range(args.e2e_repeats):
            for name, flag in (("Atoms path", "0"), ("fast path", "1")):
                out = Path(tmp) / f"out_{flag}"
                shutil.rmtree(out, ignore_errors=True)
                w, c = e2e_run(folder, out, args.chunk_size, flag)
                e2e_wall[name].append(w)
                e2e_cpu[name].append(c)
        a, b = (read_predictions(Path(tmp) / f"out_{flag}") for flag in "01")
        same = (
            np.array_equal(a.ids, b.ids)
            and np.array_equal(a.sites, b.sites)
            and np.array_equal(a.spectra, b.spectra)
            and a.errors == b.errors
        )

    info = machine()
    print(f"{n_files} XANESNET .xyz files (copies of {data}), chunk size {args.chunk_size}")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    table(
        f"Reading only, {args.repeats} repeats",
        "structures/s",
        wall,
        cpu,
        "Atoms path, Numba parser per frame",
    )
    table(
        f"predict_batch end to end, {args.e2e_repeats} repeats (outputs identical: {same})",
        "sites/s",
        e2e_wall,
        e2e_cpu,
        "Atoms path",
    )
    if args.json:
        result = {
            "files": n_files,
            "chunk_size": args.chunk_size,
            "machine": info,
            "reading": {"wall": wall, "cpu": cpu},
            "end_to_end": {"wall": e2e_wall, "cpu": e2e_cpu, "identical": same},
        }
        args.json.write_text(json.dumps(result, indent=2))
    if not same:
        raise SystemExit("fast path and Atoms path outputs differ")


if __name__ == "__main__":
    main()
