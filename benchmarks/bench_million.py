"""One full million-site run of ``xanesnet-batch``: wall time, sites/s and peak memory.

    python benchmarks/bench_million.py [--sites 1000000] [--model default|fast|FILE]
        [--precision float32|bfloat16] [--workdir DIR] [--keep] [--evict]

Builds a folder of XANESNET .xyz files from the Fe training structures (random rotations +
0.02 Å perturbations) until it holds ``--sites`` Fe sites, then runs the command a user would
run, ``xanesnet-batch DIR -o OUT --quiet`` (every Fe site, shipped model, default chunk size),
as a separate process, and reports its wall time and peak RSS. The folder takes about 4 KB of
disk per structure (one file system block each). ``--evict`` drops the input files from the
page cache first (``posix_fadvise(DONTNEED)``, Linux), so that the run reads them from disk;
otherwise it finds them as the system left them (the fraction cached is printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _environment import perturbed_positions

ROOT = Path(__file__).resolve().parents[1]


def build_folder(data: Path, n_sites: int, folder: Path) -> tuple[int, int]:
    """Write structures until they hold ``n_sites`` Fe sites; (structures, sites)."""
    from xanesnet import read_structures

    base = [(a.numbers.copy(), a.positions.copy()) for a in read_structures(data)]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    sites = structures = 0
    while sites < n_sites:
        numbers, positions = base[structures % len(base)]
        moved = perturbed_positions(positions, rng)
        # the XANESNET layout: count, a name, then "Z x y z" rows
        rows = "\n".join(
            f"{z}\t{x:.10f}\t{y:.10f}\t{w:.10f}"
            for z, (x, y, w) in zip(numbers.tolist(), moved, strict=True)
        )
        name = f"s{structures:07d}"
        (folder / f"{name}.xyz").write_text(f"{len(numbers)}\n{name}\n{rows}\n")
        sites += int((numbers == 26).sum())
        structures += 1
    return structures, sites


def evict(folder: Path) -> None:
    """Drop the folder's files from the page cache (clean pages only: the files are not
    being written)."""
    for entry in os.scandir(folder):
        fd = os.open(entry.path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_fraction(folder: Path, sample: int = 2000) -> float | None:
    """Fraction of a random sample of the folder's files resident in the page cache (util-linux
    ``fincore``), or None where that tool is missing. Uncached files are read from disk, which
    on a VM costs far more than the prediction itself."""
    if shutil.which("fincore") is None:
        return None
    names = [e.name for e in os.scandir(folder)]
    rng = np.random.default_rng()
    picked = [str(folder / n) for n in rng.choice(names, min(sample, len(names)), replace=False)]
    result = subprocess.run(
        ["fincore", "--noheadings", "--bytes", "--output", "RES", *picked],
        capture_output=True,
        text=True,
    )
    resident = [int(v) for v in result.stdout.split() if v.isdigit()]
    return sum(r > 0 for r in resident) / len(picked) if resident else None


def main(argv: list[str] | None = None) -> int:
    from xanesnet.model.precision import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=1_000_000)
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent / "shared/data/fe_k_edge/xanesnet_2022_preconv/xyz_train",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the inputs and the output")
    parser.add_argument("--model", default="default", help='"default", "fast" or a model file')
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument(
        "--evict", action="store_true", help="drop the input files from the page cache first"
    )
    args = parser.parse_args(argv)
    if args.evict and not hasattr(os, "posix_fadvise"):
        parser.error("--evict: needs posix_fadvise (Linux)")
    import torch

    import xanesnet

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xanesnet-million-"))
    started = time.perf_counter()
    if (work / "xyz.done").exists():  # inputs kept (--keep) by an earlier run with this workdir
        n_structures, n_sites = map(int, (work / "xyz.done").read_text().split())
    else:
        n_structures, n_sites = build_folder(args.data, args.sites, work / "xyz")
        (work / "xyz.done").write_text(f"{n_structures} {n_sites}")
    built = time.perf_counter() - started
    print(
        f"# Million-site run\n\n- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; python {platform.python_version()}, torch "
        f"{torch.__version__}, xanesnet {xanesnet.__version__}\n- input: {n_structures:,} "
        f"XANESNET .xyz files holding {n_sites:,} Fe sites (built in {built:.0f} s)\n"
        f"- command: xanesnet-batch {work / 'xyz'} -o OUT --quiet --model {args.model} "
        f"--precision {args.precision}\n"
    )
    if args.evict:
        evict(work / "xyz")
    cached = cached_fraction(work / "xyz")
    if cached is not None:
        print(f"- input files in the page cache before the run: {100 * cached:.0f} % (fincore)\n")
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    # the command's own peak memory (VmHWM; ru_maxrss would include this parent's before exec)
    code = (
        "import sys; from xanesnet.cli.batch import main; code = main(sys.argv[1:]); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print('VmHWM', hwm); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(work / "xyz"), "-o", str(out), "--quiet"]
        + ["--model", args.model, "--precision", args.precision],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t
    if result.returncode:
        print(result.stderr[-3000:], file=sys.stderr)
        return result.returncode
    rss = int(result.stdout.split("VmHWM")[-1].split()[0]) / 1024
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print("| sites | structures | wall s | sites/s | peak RSS MiB | output MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {n_sites:,} | {n_structures:,} | {seconds:.0f} | {n_sites / seconds:,.0f} | "
        f"{rss:,.0f} | {size:,.0f} |"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
