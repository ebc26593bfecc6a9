"""End-to-end batch prediction: sites/s by input format, per-stage times, peak memory, and the
straightforward way a user would do it today, all in one run.

    python benchmarks/bench_batch.py [--n 10000] [--naive 200] [--dask 2] [--data DIR]
        [--workdir DIR] [--keep] [--model default|ensemble|fast|FILE]

Inputs are built from the Fe training structures (random rotations + 0.02 Å perturbations):
a folder of XANESNET .xyz files, the same as standard xyz files (element symbols), one
multi-frame extxyz file and an ASE SQLite database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _environment import perturbed_positions

ROOT = Path(__file__).resolve().parents[1]


def build_inputs(data: Path, n: int, work: Path) -> dict[str, Path]:
    import ase.db
    import ase.io

    from xanesnet import read_structures, write_xanesnet_xyz

    base = list(read_structures(data))
    rng = np.random.default_rng(0)
    xyz = work / "xyz"
    xyz.mkdir(parents=True)
    frames = []
    for i in range(n):
        atoms = base[i % len(base)].copy()
        atoms.positions = perturbed_positions(atoms.positions, rng)
        atoms.info = {}
        write_xanesnet_xyz(atoms, xyz / f"s{i:07d}.xyz")
        frames.append(atoms)
    ase.io.write(work / "all.extxyz", frames, format="extxyz")
    with ase.db.connect(work / "all.db") as db:
        for atoms in frames:
            db.write(atoms)
    return {
        "xanesnet xyz folder": xyz,
        SYMBOLS: build_symbol_folder(xyz, work / "xyz_symbols"),
        "extxyz (multi-frame)": work / "all.extxyz",
        "ASE database (.db)": work / "all.db",
    }


SYMBOLS = "standard xyz folder (element symbols)"


def build_symbol_folder(xyz: Path, folder: Path) -> Path:
    """The same structures as standard xyz files (ase.io's "xyz" writer: element symbols)."""
    import ase.io

    from xanesnet import read_structures

    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(xyz.glob("*.xyz")):
        (atoms,) = read_structures(path)
        atoms.info = {}
        ase.io.write(folder / path.name, atoms, format="xyz")
    return folder


def run_batch(
    source: Path,
    out: Path,
    chunk: int,
    dask_workers: int = 0,
    model: str = "default",
    precision: str = "float32",
) -> tuple[float, float, int, float]:
    """(cold seconds, warm seconds, sites, peak RSS MiB) of a fresh xanesnet-batch process:
    the first run pays one-off start-up costs (first torch call, ...), a second run on a new
    output in the same process shows the steady state. With ``dask_workers`` the chunks run on
    the LocalCluster that ``--dask local:N`` starts (N single-threaded worker processes),
    started before the clock (its start-up is not part of the job); the RSS is then the client
    process's only."""
    setup = ""
    where = ""
    if dask_workers:
        setup = (
            "from xanesnet.pipeline.dask import dask_client; "
            f"client, c = dask_client('local:{dask_workers}')\n"
        )
        where = ", dask=c.scheduler_address"
    code = (
        "import sys, time; from xanesnet import predict_batch; r=[]\n"
        + setup
        + "for k in (0, 1):\n"
        f"    t=time.perf_counter(); s=predict_batch([{str(source)!r}], {str(out)!r}+str(k), "
        f"chunk_size={chunk}, progress=False, model={model!r}, precision={precision!r}{where}); "
        "r.append(time.perf_counter()-t)\n"
        # VmHWM: this process's own peak (ru_maxrss would include the parent's before exec)
        "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(r[0], r[1], s.sites, int(hwm)/1024)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if result.returncode:
        raise RuntimeError(f"batch run on {source} failed:\n{result.stderr[-2000:]}")
    cold, warm, sites, rss = result.stdout.split()[-4:]
    return float(cold), float(warm), int(sites), float(rss)


def stages(
    source: Path,
    chunk: int,
    model_name: str,
    precision: str = "float32",
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Seconds per stage, run one after another (no overlap) on the same input, each as the
    batch job runs it: the reader that predict_batch picks for this input, the descriptor on
    each chunk, the model on each chunk, and the commit of each chunk to an HDF5 output.
    ``clock=time.process_time`` gives the CPU seconds of all the process's threads instead."""
    from xanesnet import load_model
    from xanesnet.descriptors.sites import compute_sites
    from xanesnet.io.chunks import iter_chunks
    from xanesnet.io.sources import resolve_sources
    from xanesnet.model.pretrained import resolve_model_path
    from xanesnet.store import PredictionStore

    model = load_model(resolve_model_path(model_name))
    sources = resolve_sources([source], None, None, None)[0]
    list(iter_chunks(sources, chunk))  # warm-up (JIT, cache)
    t = clock()
    chunks = list(iter_chunks(resolve_sources([source], None, None, None)[0], chunk))
    read = clock() - t
    t = clock()
    computed = [compute_sites(model.descriptor, item.frames, "Fe") for item in chunks]
    descriptors = clock() - t
    model.predict_features(computed[0][0], precision=precision)  # warm-up (first-call costs)
    t = clock()
    predicted = [model.predict_features(c[0], precision=precision) for c in computed]
    network = clock() - t
    times = {"read": read, "descriptors": descriptors, "network": network}
    columns: list = [None] * len(computed)
    if hasattr(model, "predict_with_trust"):
        # the job's per-site trust columns (predicted Δμ, domain score, flags), as the job
        # computes them: with the networks, in one call (the latent distance of the default
        # model is measured in the networks' own activations). trust = that call − network.
        t = clock()
        columns = [
            model.predict_with_trust(c[0], precision=precision, sigma=False)[2].columns()
            for c in computed
        ]
        times["trust"] = clock() - t - network
    elif hasattr(model, "trust"):  # versions before predict_with_trust
        t = clock()
        columns = [
            model.trust(c[0], mean, spread, sigma=False).columns()
            for c, (mean, spread) in zip(computed, predicted, strict=True)
        ]
        times["trust"] = clock() - t
    job = {"benchmark": "stages"}
    with tempfile.TemporaryDirectory() as scratch:
        spread_kept = model.has_spread  # as the job does: no spread column without one
        store = PredictionStore(Path(scratch) / "out", job, model.energies, has_spread=spread_kept)
        t = clock()
        for k, (c, (mean, spread)) in enumerate(zip(computed, predicted, strict=True)):
            kept = spread if spread_kept else None
            extra = {"trust": columns[k]} if columns[k] is not None else {}
            store.commit(k, c[1], c[2], mean, kept, c[3], len(c[1]), **extra)
        times["write"] = clock() - t
    return times


def naive(frames_file: Path, n: int, work: Path, model_name: str) -> float:
    """ase.io.read one structure file at a time + NumPy descriptors + torch on one sample."""
    import ase.io
    import torch

    from xanesnet import load_model
    from xanesnet.descriptors.reference import wacsf_numpy
    from xanesnet.model.pretrained import resolve_model_path

    folder = work / "naive"
    folder.mkdir()
    for i, atoms in enumerate(ase.io.iread(frames_file, index=f":{n}", format="extxyz")):
        ase.io.write(folder / f"s{i:05d}.xyz", atoms, format="xyz")
    model = load_model(resolve_model_path(model_name))
    t = time.perf_counter()
    for path in sorted(folder.glob("*.xyz")):
        atoms = ase.io.read(path, format="xyz")
        x = wacsf_numpy(model.descriptor, atoms.positions, atoms.numbers)
        with torch.no_grad():
            model.module(torch.as_tensor(x[None], dtype=torch.float32))
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    from xanesnet.model.precision import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--naive", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=None, help="default: the package's")
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent
        / "shared"
        / "data"
        / "fe_k_edge"
        / "xanesnet_2022_preconv"
        / "xyz_train",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--keep", action="store_true", help="keep the inputs for a later run with this workdir"
    )
    parser.add_argument(
        "--dask", type=int, default=2, help="LocalCluster workers for the Dask row (0: skip)"
    )
    parser.add_argument(
        "--model",
        default="default",
        help='shipped "default", "ensemble" or "fast", or a model file',
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="network precision of the xanesnet-batch rows and the network stage",
    )
    args = parser.parse_args(argv)
    if args.chunk is None:
        from xanesnet.pipeline.batch import DEFAULT_CHUNK_SIZE

        args.chunk = DEFAULT_CHUNK_SIZE
    import torch

    import xanesnet
    from xanesnet.model.pretrained import resolve_model_path

    model = xanesnet.load_model(resolve_model_path(args.model))
    kernel = model.kernel
    about_model = f"{model.descriptor.n_features} features, {model.n_members} network(s)" + (
        f" + kernel ridge ({kernel['n_centres']} centres)" if kernel else ""
    )

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xanesnet-bench-"))
    print(
        f"# Batch prediction benchmark\n\n- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs; python {platform.python_version()}, torch "
        f"{torch.__version__}, xanesnet {xanesnet.__version__}\n- inputs: {args.n} Fe "
        f"structures (rotated + 0.02 Å noise), chunk {args.chunk}, shipped Fe K model "
        f"({about_model}), network precision {args.precision}\n"
    )
    marker = work / f"inputs-{args.n}.done"
    if marker.exists():  # kept (--keep) by an earlier run with this workdir
        inputs = {k: Path(v) for k, v in json.loads(marker.read_text()).items()}
        if SYMBOLS not in inputs:  # kept by a version of this script without that input
            xyz = inputs.pop("xanesnet xyz folder")
            symbols = build_symbol_folder(xyz, work / "xyz_symbols")
            inputs = {"xanesnet xyz folder": xyz, SYMBOLS: symbols, **inputs}
            marker.write_text(json.dumps({k: str(v) for k, v in inputs.items()}))
    else:
        inputs = build_inputs(args.data, args.n, work)
        marker.write_text(json.dumps({k: str(v) for k, v in inputs.items()}))
    print(
        "| input | sites | cold s | cold sites/s | warm s | warm sites/s | peak RSS MiB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rates = {}
    for name, source in inputs.items():
        cold, warm, sites, rss = run_batch(
            source,
            work / f"out-{source.name}",
            args.chunk,
            model=args.model,
            precision=args.precision,
        )
        rates[name] = sites / warm
        print(
            f"| {name} | {sites} | {cold:.1f} | {sites / cold:,.0f} | {warm:.1f} | "
            f"{sites / warm:,.0f} | {rss:,.0f} |"
        )
    if args.dask:
        source = inputs["xanesnet xyz folder"]
        cold, warm, sites, rss = run_batch(
            source,
            work / "out-dask",
            args.chunk,
            args.dask,
            model=args.model,
            precision=args.precision,
        )
        print(
            f"| xyz folder, Dask LocalCluster ({args.dask} workers) | {sites} | {cold:.1f} | "
            f"{sites / cold:,.0f} | {warm:.1f} | {sites / warm:,.0f} | {rss:,.0f} (client) |"
        )
        single = rates["xanesnet xyz folder"]
        print(
            f"\nDask / single process (warm): {single / (sites / warm):.2f}x the time "
            "(target <= 1.3x)"
        )
    s = stages(inputs["xanesnet xyz folder"], args.chunk, args.model, args.precision)
    total = sum(s.values())
    print(
        "\nStages, run one after another on the xyz folder (the pipeline overlaps reading "
        "with compute and writing):\n"
    )
    print("| stage | seconds | sites/s |\n| --- | ---: | ---: |")
    for key, value in s.items():
        print(f"| {key} | {value:.2f} | {args.n / value:,.0f} |")
    print(f"| sum | {total:.2f} | {args.n / total:,.0f} |")
    rate = naive(inputs["extxyz (multi-frame)"], args.naive, work, args.model)
    best = rates["xanesnet xyz folder"]
    print(
        f"\nStraightforward way (ase.io.read per structure + NumPy wACSF + torch on one sample, "
        f"{args.naive} structures): {rate:,.0f} sites/s; xanesnet-batch on the xyz folder is "
        f"{best / rate:.0f}x faster (target >= 20x). The NumPy descriptor and the network "
        f"here are the shipped model's ({about_model})."
    )
    for path in work.glob("out*"):
        shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(work / "naive", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
