"""Each batch stage against this machine's own limits, measured in the same run.

    python benchmarks/bench_stages.py [--n 8192] [--repeats 5] [--model default]
        [--precision float32|bfloat16] [--data DIR] [--inputs DIR] [--json OUT]

Stages are timed as ``bench_batch.py`` times them, one after another on a folder of XANESNET
.xyz files (chunks of the job's size), and each is divided by a limit measured right after it:

- network (``predict_features`` per chunk) / the same matrix products as plain torch GEMMs
  (float32 and bfloat16, the model's layer shapes, rows = chunk): the GEMM-bound sites/s is
  GEMM FLOP/s over the model's FLOPs per site (2 · Σ in · out over layers and members);
- descriptors (``compute_sites`` per chunk) / an exp ceiling: the exponentials a site needs at
  least (G2 per neighbour and function, G4 per neighbour and per neighbour pair within the
  cutoff, per η), counted from the input's geometry, at numpy's float64 ``exp`` rate on one core
  times the cores used;
- reading (the job's reader) / raw reads of the same files (the compiled whole-file read the
  reader uses, and Python ``read_bytes``);
- the network inside the running job (``predict_batch``; its per-chunk network calls timed
  while reading and writing run beside them) / the same GEMM bound.

Also printed: CPU model, vendor, the flags that decide the matrix paths, cores, versions,
torch's BLAS / oneDNN builds, and the network alone by thread count, chunk size and path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _environment import cpuinfo_field, default_fe_xyz, perturbed_positions, versions

FLAGS = ("fma", "f16c", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def spread(times: list[float], work: float) -> tuple[float, float, float]:
    """(min, median, max) rate = work / seconds over repeated timings."""
    rates = sorted(work / t for t in times)
    return rates[0], statistics.median(rates), rates[-1]


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls after one untimed warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def siblings() -> str | None:
    """Logical CPUs sharing cpu0's core ("0" without SMT; "0-1" when two vCPUs are one core's
    hyperthreads, which then share its vector units)."""
    try:
        return (
            Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text().strip()
        )
    except OSError:
        return None


def onednn_bfloat16_path() -> tuple[str | None, str | None]:
    """(ISA oneDNN dispatches to, implementation of a bfloat16 linear), from its verbose log in
    a child process (the log is written by C code); e.g. "brg_matmul:avx512_core_bf16" is the
    native AVX-512 BF16 path, "...amx" the AMX one."""
    import subprocess

    code = (
        "import torch\n"
        "a = torch.randn(64, 64).bfloat16()\n"
        "with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):\n"
        "    torch.nn.functional.linear(a, a)\n"
    )
    log = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    ).stdout
    isa = re.search(r"info,cpu,isa:(.*)", log)
    impl = re.search(r"exec,cpu,matmul,([^,]+)", log) or re.search(r"exec,cpu,[^,]+,([^,]+)", log)
    return (isa.group(1).strip() if isa else None, impl.group(1) if impl else None)


def machine() -> dict[str, object]:
    """CPU, flags, cores, versions and torch's matrix backends."""
    import torch

    flags = set((cpuinfo_field("flags") or "").split())
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", config)
    onednn = re.search(r"MKL-DNN (v[\d.]+)", config)
    return {
        "cpu": cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "vendor": cpuinfo_field("vendor_id"),
        "flags": {flag: flag in flags for flag in FLAGS},
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu0_siblings": siblings(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions(("torch", "numpy", "numba")),
        "torch_threads": torch.get_num_threads(),
        "torch_blas": blas.group(1) if blas else None,
        "torch_mkl": mkl.group(1) if mkl else None,
        "torch_onednn": onednn.group(1) if onednn else None,
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_isa_and_bfloat16_linear": onednn_bfloat16_path(),
    }


def build_folder(data: Path, n: int, folder: Path) -> Path:
    """``n`` XANESNET .xyz files: the Fe structures rotated + perturbed (bench_batch's recipe)."""
    from xanesnet import read_structures, write_xanesnet_xyz

    if folder.is_dir() and len(list(folder.glob("*.xyz"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = list(read_structures(data))
    rng = np.random.default_rng(0)
    for i in range(n):
        atoms = base[i % len(base)].copy()
        atoms.positions = perturbed_positions(atoms.positions, rng)
        atoms.info = {}
        write_xanesnet_xyz(atoms, folder / f"s{i:07d}.xyz")
    return folder


def layer_shapes(model) -> list[tuple[int, int]]:  # noqa: ANN001 - a XanesModel
    """(in, out) of every linear layer of every member network, in order."""
    members = dict(model.module.members.named_children())
    shapes = []
    for k in range(len(members)):
        for _, child in members[str(k)].layers.named_children():
            tensors = dict(child.named_buffers()) | dict(child.named_parameters())
            if "weight" in tensors:
                out_features, in_features = tensors["weight"].shape
                shapes.append((int(in_features), int(out_features)))
    return shapes


def gemm_seconds(shapes: list[tuple[int, int]], rows: int, dtype: str, repeats: int) -> list[float]:
    """Seconds of the model's matrix products alone, (rows × in) @ (in × out) per layer."""
    import torch

    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(0)
    operands = [
        (
            torch.randn(rows, i, generator=generator).to(torch_dtype),
            torch.randn(o, i, generator=generator).to(torch_dtype).t(),
            torch.empty(rows, o, dtype=torch_dtype),
        )
        for i, o in shapes
    ]

    def run() -> None:
        for a, w, out in operands:
            torch.mm(a, w, out=out)

    with torch.inference_mode():
        return timed(run, repeats)


def onednn_float32_seconds(
    shapes: list[tuple[int, int]], rows: int, repeats: int
) -> list[float] | None:
    """Seconds of the same float32 products through oneDNN (torch's internal
    ``mkldnn._linear_pointwise``, which the torch.compile CPU backend uses; torch's own float32
    linear goes to MKL), or None where that operator does not exist. A measure of the
    alternative backend only: the package does not use it."""
    import torch

    linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if linear is None:
        return None
    generator = torch.Generator().manual_seed(0)
    operands = [
        (
            torch.randn(rows, i, generator=generator),
            torch.randn(o, i, generator=generator),
            torch.zeros(o),
        )
        for i, o in shapes
    ]

    def run() -> None:
        for a, w, b in operands:
            linear(a, w, b, "none", [], "")

    try:
        with torch.inference_mode():
            return timed(run, repeats)
    except RuntimeError:
        return None


def numpy_gemm_seconds(shapes: list[tuple[int, int]], rows: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    operands = [
        (rng.random((rows, i), dtype=np.float32), rng.random((i, o), dtype=np.float32))
        for i, o in shapes
    ]
    outs = [np.empty((rows, o), dtype=np.float32) for _, o in shapes]

    def run() -> None:
        for (a, w), out in zip(operands, outs, strict=True):
            np.matmul(a, w, out=out)

    return timed(run, repeats)


def exps_per_site(folder: Path, descriptor, limit: int = 2000) -> float:  # noqa: ANN001
    """Mean exponentials a site needs at least: G2 (each function) and the per-neighbour G4
    factor (each η) for every neighbour within r_max, and the r_jk factor (each η) for every
    neighbour pair (j < k) within r_max of each other; absorbers are the Fe atoms."""
    from xanesnet import read_structures

    params = descriptor.kernel_params()
    n_g2, n_g4 = len(params["g2_eta"]), len(params["g4_eta"])
    r_max = float(params["r_max"])
    counts = []
    for atoms in read_structures(sorted(folder.glob("*.xyz"))[:limit]):
        for site in np.flatnonzero(atoms.numbers == 26):
            d = np.linalg.norm(atoms.positions - atoms.positions[site], axis=1)
            near = atoms.positions[(d < r_max) & (np.arange(len(d)) != site)]
            rjk = np.linalg.norm(near[:, None] - near[None], axis=2)
            pairs = int(np.count_nonzero(np.triu(rjk < r_max, 1)))
            counts.append(len(near) * (n_g2 + n_g4) + pairs * n_g4)
    return float(np.mean(counts))


def exp_rate(repeats: int) -> tuple[float, float, float]:
    """numpy float64 exp, elements/s on one core, on a cache-resident 4096-element block."""
    x = -np.random.default_rng(0).random(4096) * 10.0
    out = np.empty_like(x)

    def run() -> None:
        for _ in range(200):
            np.exp(x, out=out)

    return spread(timed(run, repeats), 200 * x.size)


def raw_read_seconds(folder: Path, repeats: int) -> dict[str, list[float]]:
    paths = sorted(str(p) for p in folder.glob("*.xyz"))
    out: dict[str, list[float]] = {
        "python read_bytes": timed(lambda: [Path(p).read_bytes() for p in paths], repeats)
    }
    try:
        from xanesnet import _core

        out["compiled read_whole_files"] = timed(
            lambda: _core.read_whole_files(paths, 1 << 20), repeats
        )
    except (ImportError, AttributeError):
        pass
    return out


def job_network_seconds(
    folder: Path, model_name: str, chunk: int, precision: str, matmul: str = "torch"
) -> dict:
    """A warm ``predict_batch`` run with its network calls timed inside it (wall time of each
    ``predict_features`` call while the reader and writer threads run beside it). ``matmul``
    other than "torch" is passed to the job's float32 ``predict_features`` calls."""
    from xanesnet import predict_batch
    from xanesnet.model.runtime import XanesModel

    original = XanesModel.predict_features
    spent: list[float] = []

    def timed_call(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if matmul != "torch" and kwargs.get("precision", "float32") == "float32":
            kwargs["float32_matmul"] = matmul
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    XanesModel.predict_features = timed_call  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for k in (0, 1):  # cold, then warm (only the warm run is kept)
                spent.clear()
                start = time.perf_counter()
                summary = predict_batch(
                    [folder],
                    Path(scratch) / f"out{k}",
                    chunk_size=chunk,
                    progress=False,
                    model=model_name,
                    precision=precision,
                )
                wall = time.perf_counter() - start
    finally:
        XanesModel.predict_features = original  # type: ignore[method-assign]
    return {"sites": summary.sites, "wall": wall, "network": sum(spent), "calls": len(spent)}


#: Settings of the job table: (name, extra environment, torch threads or None, float32 matmul).
JOB_SETTINGS = (
    ("default", {}, None, "torch"),
    (
        "OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep at once)",
        {"OMP_WAIT_POLICY": "PASSIVE"},
        None,
        "torch",
    ),
    ("network on 1 torch thread", {}, 1, "torch"),
    ("float32_matmul='onednn' (float32 only)", {}, None, "onednn"),
)


def job_in_child(folder: Path, model: str, chunk: int, precision: str, setting: tuple) -> dict:
    """:func:`job_network_seconds` in a fresh process with one of :data:`JOB_SETTINGS` (the
    OpenMP environment is read when the runtime starts, so it needs a new process)."""
    import subprocess

    name, env, torch_threads, matmul = setting
    code = (
        f"import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import torch\n"
        + (f"torch.set_num_threads({torch_threads})\n" if torch_threads else "")
        + "from bench_stages import job_network_seconds\n"
        f"print(json.dumps(job_network_seconds(Path({str(folder)!r}), {model!r}, {chunk}, "
        f"{precision!r}, {matmul!r})))"
    ).replace("import sys, json;", "import sys, json; from pathlib import Path;")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"job ({name}) failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def row(name: str, rates: tuple[float, float, float], bound: float | None, note: str = "") -> str:
    ratio = f"{rates[1] / bound:.2f}" if bound else ""
    return (
        f"| {name} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[2]:,.0f} | "
        f"{f'{bound:,.0f}' if bound else ''} | {ratio} | {note} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8192, help="structures (one Fe site each)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="default")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--data", type=Path, default=None, help="Fe .xyz training structures")
    parser.add_argument("--inputs", type=Path, default=None, help="folder kept between runs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch
    from bench_batch import stages

    from xanesnet import load_model
    from xanesnet.model.pretrained import resolve_model_path
    from xanesnet.pipeline.batch import DEFAULT_CHUNK_SIZE

    chunk = DEFAULT_CHUNK_SIZE
    about = machine()
    print("# Batch stages against this machine's limits\n")
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in about["flags"].items())
    v = about["versions"]
    print(
        f"- CPU: {about['cpu']} ({about['vendor']}), {about['usable_cpus']} usable of "
        f"{about['logical_cpus']} logical CPUs (cpu0's core: CPUs {about['cpu0_siblings']}); "
        f"load average {about['load_average']}\n"
        f"- flags: {flags}\n"
        f"- python {v['python']}, torch {v['torch']}, numpy {v['numpy']}, numba {v['numba']}, "
        f"xanesnet {v['xanesnet']} ({v['xanesnet_commit']})\n"
        f"- torch: BLAS {about['torch_blas']} {about['torch_mkl'] or ''}, oneDNN "
        f"{about['torch_onednn']} (mkldnn available: {about['mkldnn_available']}), CPU "
        f"capability {about['torch_cpu_capability']}, {about['torch_threads']} threads\n"
        f"- oneDNN ISA and bfloat16 linear: {about['onednn_isa_and_bfloat16_linear']}"
    )

    scratch = Path(tempfile.mkdtemp(prefix="xanesnet-stages-"))
    folder = build_folder(args.data or default_fe_xyz(), args.n, args.inputs or scratch / "xyz")
    model = load_model(resolve_model_path(args.model))
    shapes = layer_shapes(model)
    flop_per_site = 2.0 * sum(i * o for i, o in shapes)
    n_cores = int(about["usable_cpus"] or 1)
    print(
        f"- inputs: {args.n} Fe structures, chunk {chunk}; model {args.model} "
        f"({len(shapes)} linear layers, {flop_per_site / 1e6:.2f} MFLOP per site), network "
        f"precision {args.precision}; min / median / max of {args.repeats} repeats\n"
    )

    # --- limits -------------------------------------------------------------------------
    rows = min(chunk, args.n)
    gemm = {
        dtype: spread(gemm_seconds(shapes, rows, dtype, args.repeats), rows)
        for dtype in ("float32", "bfloat16")
    }
    gemm["numpy float32"] = spread(numpy_gemm_seconds(shapes, rows, args.repeats), rows)
    onednn = onednn_float32_seconds(shapes, rows, args.repeats)
    if onednn is not None:
        gemm["float32 through oneDNN"] = spread(onednn, rows)
    bound = gemm[args.precision][1]
    exps = exps_per_site(folder, model.descriptor)
    exp_one_core = exp_rate(args.repeats)
    exp_bound = exp_one_core[1] * n_cores / exps
    raw = {k: spread(t, args.n) for k, t in raw_read_seconds(folder, args.repeats).items()}
    read_bound = max(r[1] for r in raw.values())

    # --- stages, one after another (bench_batch's stages(), repeated) -------------------
    runs = [stages(folder, chunk, args.model, args.precision) for _ in range(args.repeats)]
    stage = {k: spread([r[k] for r in runs], args.n) for k in runs[0]}
    cpu_runs = [
        stages(folder, chunk, args.model, args.precision, clock=time.process_time)
        for _ in range(args.repeats)
    ]
    cpu_us = {k: 1e6 * statistics.median(r[k] for r in cpu_runs) / args.n for k in cpu_runs[0]}
    job = job_network_seconds(folder, args.model, chunk, args.precision)
    in_job = (job["sites"] / job["network"],) * 3

    print("| stage / limit | sites/s min | median | max | limit sites/s | ratio | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print(row("read (job's reader)", stage["read"], read_bound, "limit: fastest raw read"))
    for name, rates in raw.items():
        print(row(f"raw read: {name}", rates, None, "same files"))
    print(
        row(
            "descriptors",
            stage["descriptors"],
            exp_bound,
            f"limit: {exps:,.0f} exp per site at numpy exp's "
            f"{exp_one_core[1] / 1e9:.2f} G/s per core × {n_cores}",
        )
    )
    print(row(f"network {args.precision} (predict_features)", stage["network"], bound, ""))
    print(
        row(
            "network inside the job",
            in_job,
            bound,
            f"{job['calls']} calls; job {job['sites'] / job['wall']:,.0f} sites/s end to end",
        )
    )
    for name, rates in gemm.items():
        gflops = rates[1] * flop_per_site / 1e9
        print(row(f"GEMM {name}, same shapes", rates, None, f"{gflops:.0f} GFLOP/s (median)"))
    if "trust" in stage:
        print(row("trust columns (domain score, flags)", stage["trust"], None, ""))
    print(row("write (HDF5 commit)", stage["write"], None, ""))

    # --- the whole job against the CPU it needs -------------------------------------------
    budget = sum(cpu_us.values())
    cpu_bound = n_cores * 1e6 / budget
    job_rate = job["sites"] / job["wall"]
    print(
        "\nCPU time per site of each stage (all threads, median), and the job against the rate "
        f"{n_cores} cores allow when every stage's CPU time is spent in parallel:\n"
    )
    print("| stage | CPU µs per site | share |\n| --- | ---: | ---: |")
    for key, value in cpu_us.items():
        print(f"| {key} | {value:.1f} | {value / budget:.0%} |")
    print(
        f"| all | {budget:.1f} | |\n\nCPU-bound job rate {cpu_bound:,.0f} sites/s; the job did "
        f"{job_rate:,.0f} ({job_rate / cpu_bound:.2f} of it)."
    )

    # --- the network alone: threads, chunk sizes, paths ----------------------------------
    mem0 = dict(model.module.members.named_children())["0"]
    x_mean = mem0.x_mean.double().numpy()
    inv = mem0.x_inv_scale.double().numpy()
    scale = np.where(inv > 0, 1.0 / np.where(inv > 0, inv, 1.0), 0.0)
    rng = np.random.default_rng(0)
    features = x_mean + scale * rng.normal(size=(16384, len(x_mean)))
    threads = torch.get_num_threads()
    print("\nThe network alone (random features around the training mean), sites/s:\n")
    print("| path | threads | rows per call | min | median | max | / GEMM bound |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    variants = []
    for n_threads in sorted({1, threads}):
        for batch in (1024, 4096, 16384):
            for precision in ("float32", "bfloat16"):
                variants.append((f"predict_features {precision}", n_threads, batch, precision))
    variants.append(("predict_features float32, float32_matmul='onednn'", 1, 4096, "onednn"))
    variants.append(("predict_features float32, float32_matmul='onednn'", threads, 4096, "onednn"))
    variants.append(("file's TorchScript forward", threads, 4096, "script"))
    results = []
    for name, n_threads, batch, precision in variants:
        torch.set_num_threads(n_threads)
        x = features[:batch]
        if precision == "script":
            xt = torch.as_tensor(x, dtype=torch.float32)

            def call(xt: torch.Tensor = xt) -> None:
                with torch.inference_mode():
                    model.module(xt)

        elif precision == "onednn":

            def call(x: np.ndarray = x) -> None:
                model.predict_features(x, float32_matmul="onednn")

        else:

            def call(x: np.ndarray = x, precision: str = precision) -> None:
                model.predict_features(x, precision=precision)

        rates = spread(timed(call, args.repeats), batch)
        torch.set_num_threads(threads)
        ref = gemm["bfloat16" if precision == "bfloat16" else "float32"][1]
        ratio = f"{rates[1] / ref:.2f}" if n_threads == threads else ""
        print(
            f"| {name} | {n_threads} | {batch} | {rates[0]:,.0f} | {rates[1]:,.0f} | "
            f"{rates[2]:,.0f} | {ratio} |"
        )
        results.append({"path": name, "threads": n_threads, "rows": batch, "rates": rates})

    print(
        "\nThe job (predict_batch, warm run of a fresh process) under thread settings; its "
        "network calls timed inside it:\n"
    )
    print("| setting | job sites/s | network sites/s in the job | / GEMM bound |")
    print("| --- | ---: | ---: | ---: |")
    jobs = {}
    for setting in JOB_SETTINGS:
        result = job_in_child(folder, args.model, chunk, args.precision, setting)
        jobs[setting[0]] = result
        network_rate = result["sites"] / result["network"]
        print(
            f"| {setting[0]} | {result['sites'] / result['wall']:,.0f} | {network_rate:,.0f} | "
            f"{network_rate / bound:.2f} |"
        )

    shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        report = {
            "machine": about,
            "flop_per_site": flop_per_site,
            "exps_per_site": exps,
            "exp_rate_one_core": exp_one_core,
            "gemm": gemm,
            "raw_read": raw,
            "stages": stage,
            "stage_cpu_us_per_site": cpu_us,
            "job": job,
            "job_settings": jobs,
            "network_alone": results,
        }
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
