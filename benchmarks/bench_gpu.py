"""`--device cuda` against the CPU: the network stage alone and the whole batch job.

    python benchmarks/bench_gpu.py [--n 100000] [--data DIR] [--model default|fast|ensemble|FILE]
        [--repeats 5] [--workdir DIR]

Builds ``--n`` Fe structures as a folder of XANESNET .xyz files: random rotations + 0.02 Å noise
of the structures in ``--data``. The default is the Fe training set when it is found (see
``_environment.default_fe_xyz``), else the 100 example structures shipped in the package, so
the script also runs on a machine that has only the repository. Then it measures, in one
process:

* the **network stage**: ``model.predict_features`` on descriptor batches of 4,096 and 16,384
  sites (real descriptors of the built structures), on the CPU and on CUDA, in float32 and in
  bfloat16 (``precision=``). The CUDA figure includes the copies to and from the device, as the
  job pays them. Repeats are reported as min / median / max sites/s;
* the **whole job**: ``predict_batch(folder, device=..., precision=...)``, cold and warm (a
  second run in the same process, new output), on the CPU and on CUDA, with the results
  checked: CUDA float32 spectra agree with the CPU's within 1e-4 relative, bfloat16 ones with
  float32 within 1e-2.

Without CUDA (no GPU, or a CPU-only torch) the CUDA rows say so and the CPU rows still run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import (  # noqa: E402
    REPO_ROOT,
    cpuinfo_field,
    default_fe_xyz,
    perturbed_positions,
    versions,
)

EXAMPLES = REPO_ROOT / "xanesnet" / "examples" / "fe_k_edge"
BATCHES = (4096, 16384)


def build_folder(data: Path, n: int, folder: Path) -> int:
    """Write ``n`` rotated, perturbed copies of the structures in ``data``; returns n."""
    from xanesnet import read_structures, write_xanesnet_xyz

    base = list(read_structures(data))
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        atoms = base[i % len(base)].copy()
        atoms.positions = perturbed_positions(atoms.positions, rng)
        atoms.info = {}
        write_xanesnet_xyz(atoms, folder / f"s{i:07d}.xyz")
    return n


def cuda_device() -> str | None:
    """The CUDA device's name, or None when torch sees none."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def network_stage(
    model: object, features: np.ndarray, repeats: int, precision: str = "float32"
) -> list[float]:
    """Sites/s of ``model.predict_features`` over ``features``, one value per repeat (after
    one warm-up call)."""
    model.predict_features(features, precision=precision)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_features(features, precision=precision)
        rates.append(len(features) / (time.perf_counter() - started))
    return rates


def whole_job(
    folder: Path, out: Path, model: str, device: str, precision: str = "float32"
) -> tuple[float, float, Path]:
    """(cold sites/s, warm sites/s, output of the warm run) of predict_batch on ``folder``."""
    from xanesnet import predict_batch

    rates = []
    for k in range(2):
        target = out / f"{device}-{precision}-{k}"
        started = time.perf_counter()
        summary = predict_batch(
            folder, target, model=model, device=device, precision=precision, progress=False
        )
        rates.append(summary.sites / (time.perf_counter() - started))
    return rates[0], rates[1], target


def fmt(rates: list[float]) -> str:
    return (
        f"{min(rates):,.0f} / {statistics.median(rates):,.0f} / {max(rates):,.0f}" if rates else "-"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="structures to build")
    parser.add_argument("--data", type=Path, default=None, help="structures to copy from")
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats: expected positive integers")
    data = args.data or (default_fe_xyz() if default_fe_xyz().is_dir() else EXAMPLES)
    if not data.is_dir():
        parser.error(f"--data: {data} is not a folder of structures")

    import torch

    from xanesnet import read_predictions
    from xanesnet.descriptors.sites import compute_sites
    from xanesnet.io.chunks import iter_chunks
    from xanesnet.io.sources import resolve_sources
    from xanesnet.model.files import load_model
    from xanesnet.model.precision import PRECISIONS
    from xanesnet.model.pretrained import resolve_model_path

    gpu = cuda_device()
    info = versions(["torch", "numpy", "numba"])
    print("# GPU benchmark: --device cuda against the CPU\n")
    print(f"- CPU: {cpuinfo_field('model name')}, {os.cpu_count()} logical CPUs")
    print(f"- GPU: {gpu or 'none (torch.cuda.is_available() is False)'}")
    print(f"- versions: {info}; torch CUDA {torch.version.cuda}")

    work = Path(tempfile.mkdtemp(prefix="xanesnet-gpu-")) if args.workdir is None else args.workdir
    try:
        folder = work / "xyz"
        if not folder.is_dir():
            started = time.perf_counter()
            build_folder(data, args.n, folder)
            print(
                f"- input: {args.n:,} structures from {data} ({time.perf_counter() - started:.0f} s to build)"
            )
        else:
            print(f"- input: the existing folder {folder}")
        model_path = resolve_model_path(args.model, "model")
        print(f"- model: {model_path.name}\n")

        cpu_model = load_model(model_path)
        sources = resolve_sources([str(folder)], None, None, None)[0]
        features = []
        for chunk in iter_chunks(sources, 4096):
            features.append(compute_sites(cpu_model.descriptor, chunk.frames, cpu_model.element)[0])
            if sum(len(f) for f in features) >= max(BATCHES):
                break
        pool = np.concatenate(features)
        print("## Network stage (sites/s, min / median / max)\n")
        print("| batch | precision | CPU | CUDA |")
        print("| ---: | --- | ---: | ---: |")
        cuda_model = None
        if gpu:
            cuda_model = load_model(model_path)
            cuda_model.to("cuda")
        for batch in BATCHES:
            x = np.resize(pool, (batch, pool.shape[1]))  # repeats rows if fewer were built
            for precision in PRECISIONS:
                cpu = network_stage(cpu_model, x, args.repeats, precision)
                gpu_rates = (
                    network_stage(cuda_model, x, args.repeats, precision) if cuda_model else []
                )
                print(
                    f"| {batch:,} | {precision} | {fmt(cpu)} | "
                    f"{fmt(gpu_rates) if gpu else 'no GPU'} |"
                )

        print("\n## Whole job: predict_batch on the folder (sites/s)\n")
        print("| device | precision | cold | warm |")
        print("| --- | --- | ---: | ---: |")
        outputs = {}
        for device in ("cpu", "cuda") if gpu else ("cpu",):
            for precision in PRECISIONS:
                cold, warm, outputs[device, precision] = whole_job(
                    folder, work / "out", args.model, device, precision
                )
                print(f"| {device} | {precision} | {cold:,.0f} | {warm:,.0f} |")
        if not gpu:
            print("| cuda | | no GPU | no GPU |")
        reference = read_predictions(outputs["cpu", "float32"])
        scale = float(np.abs(reference.spectra).max())
        print()
        for (device, precision), out in outputs.items():
            if (device, precision) == ("cpu", "float32"):
                continue
            diff = float(np.abs(read_predictions(out).spectra - reference.spectra).max()) / scale
            limit = 1e-4 if precision == "float32" else 1e-2
            print(
                f"Largest {device} {precision} / CPU float32 spectrum difference: {diff:.1e} "
                f"of the largest value (limit {limit:.0e})"
            )
            if not diff <= limit:
                print(f"{device} {precision} spectra disagree beyond {limit:.0e}", file=sys.stderr)
                return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
