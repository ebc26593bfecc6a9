"""Throughput of the Laplacian kernel ridge member: compiled C++ kernel against torch (cdist).

Usage (from the repository root, after ``scripts/dev_build.sh``)::

    PYTHONPATH=. python benchmarks/bench_kernel.py [--sites 4096] [--centres 3264]
        [--features 513] [--energies 226] [--threads 1,2] [--repeats 5] [--members 3]
        [--hidden 512,512] [--no-fit] [--seed 0] [--json OUT]

Two scopes, each at every thread count of ``--threads`` (``torch.set_num_threads`` is set to
the same count for both methods, so the networks and torch's cdist get the same threads):

* **kernel**: the kernel member alone, descriptors in, spectra out. torch = the scripted
  ``KernelRidge`` of the model file (``exp(−γ·cdist(z, c, p=1)) @ α + y_mean``); C++ = the
  standardisation (torch) then ``xanesnet._core.laplacian_predict(..., n_threads)``.
* **model**: ``XanesModel.predict_features`` on the blended TorchScript model file (networks +
  kernel), ``kernel_backend="torch"`` against ``"cpp"``.

Every method gets one untimed warm-up call (reported), then ``--repeats`` timed calls:
min / median / max seconds and median sites/s. The ratio C++/torch is that of the medians
measured in the same run (below 1: C++ is faster), with the speed-up beside it.

Inputs are synthetic and seeded: descriptors are a smooth non-linear map of an 8-dimensional
latent vector plus noise, with one feature in eight constant (as zero-variance wACSF terms);
spectra are five Gaussian peaks whose positions and heights follow the latent vector. The
kernel member is fitted with ``fit_kernel_ridge`` on ``--centres`` training rows (so γ and α
are realistic; the fit time is printed), or with ``--no-fit`` given random α and γ = 1 /
median distance. The networks (``--members`` MLPs of ``--hidden``) keep their random initial
weights: their cost, not their accuracy, matters here. Also printed: machine (CPU model and
flags, cores, load average before and after), versions, the inputs, and the agreement between
the two methods (max |C++ − torch| / max |torch|).
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

import torch  # noqa: E402
from _environment import cpuinfo_field, versions  # noqa: E402

from xanesnet import WACSF  # noqa: E402
from xanesnet.model import (  # noqa: E402
    KernelConfig,
    KernelRidge,
    NetworkConfig,
    SpectrumEnsemble,
    SpectrumMLP,
    XanesModel,
    fit_kernel_ridge,
    load_model,
    save_model,
)
from xanesnet.model.network import fit_scaling  # noqa: E402

LATENT = 8


# -- machine -----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    flags = set((cpuinfo_field("flags") or "").split())
    simd = [f for f in ("avx512f", "avx2", "fma", "sse4_2") if f in flags]
    info: dict[str, Any] = {
        "cpu": cpuinfo_field("model name") or platform.processor() or "unknown",
        "simd": simd,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "torch_threads_default": torch.get_num_threads(),
    }
    try:
        from xanesnet import _core

        info["cpp_have_openmp"] = _core.have_openmp
        info["cpp_default_threads"] = _core.default_threads()
    except ImportError:
        info["cpp"] = "not importable"
    return info


# -- inputs ------------------------------------------------------------------------------------
class Generator:
    """A fixed random map latent → (descriptors, spectra)."""

    def __init__(self, n_features: int, n_energies: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_features, self.n_energies = n_features, n_energies
        self.w1 = rng.normal(size=(LATENT, n_features)) / np.sqrt(LATENT)
        self.w2 = rng.normal(size=(LATENT, n_features))
        self.constant = np.arange(n_features) % 8 == 7
        self.peaks = rng.uniform(0.1, 0.9, 5) * n_energies
        self.shift = rng.normal(size=(LATENT, 5)) * 0.01 * n_energies
        self.height = rng.normal(size=(LATENT, 5)) * 0.5

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n, n_features) float32 descriptors and (n, n_energies) float64 spectra."""
        latent = rng.normal(size=(n, LATENT))
        x = latent @ self.w1 + 0.5 * np.tanh(latent @ self.w2)
        x += 0.05 * rng.normal(size=x.shape)
        x[:, self.constant] = 1.0
        grid = np.arange(self.n_energies)
        position = self.peaks + latent @ self.shift  # (n, 5)
        height = np.log1p(np.exp(latent @ self.height))  # softplus, (n, 5)
        width = 0.02 * self.n_energies
        peaks = np.exp(-0.5 * ((grid[None, None, :] - position[..., None]) / width) ** 2)
        y = (height[..., None] * peaks).sum(1) + 0.1
        return x.astype(np.float32), y


def build_model(args: argparse.Namespace, workdir: Path) -> tuple[XanesModel, dict[str, Any]]:
    """The blended TorchScript model file, and notes on how it was made."""
    rng = np.random.default_rng(args.seed + 1)
    gen = Generator(args.features, args.energies, args.seed)
    x_train, y_train = gen.sample(args.centres, rng)
    notes: dict[str, Any] = {}
    if args.fit:
        start = time.perf_counter()
        kernel = fit_kernel_ridge(x_train, y_train, KernelConfig())
        notes["kernel_fit_s"] = round(time.perf_counter() - start, 2)
    else:
        x_mean, x_inv, y_mean, _ = fit_scaling(x_train.astype(np.float64), y_train)
        z = (x_train - x_mean.astype(np.float32)) * x_inv.astype(np.float32)
        sub = z[rng.choice(len(z), min(len(z), 256), replace=False)]
        median = float(np.median(np.abs(sub[:, None, :] - sub[None]).sum(-1)))
        alpha = rng.normal(size=(len(z), args.energies)) * 0.1
        kernel = KernelRidge(x_mean, x_inv, z, alpha, y_mean, 1.0 / median).eval()
        notes["kernel_fit_s"] = None
    x_mean, x_inv, y_mean, y_scale = fit_scaling(x_train.astype(np.float64), y_train)
    torch.manual_seed(args.seed)
    members = [
        SpectrumMLP(
            args.features,
            args.energies,
            NetworkConfig(hidden=tuple(args.hidden)),
            x_mean,
            x_inv,
            y_mean,
            y_scale,
        ).eval()
        for _ in range(args.members)
    ]
    ensemble = SpectrumEnsemble(members, kernel, 0.5)
    n_g4 = 2 * ((args.features - 1) // 4)
    descriptor = WACSF(n_g2=args.features - 1 - n_g4, n_g4=n_g4)
    energies = 7112.0 + np.linspace(-15.0, 60.0, args.energies)
    path = workdir / "bench_blend.pt"
    save_model(ensemble, path, descriptor=descriptor, energies=energies, e0=7112.0, element="Fe")
    notes.update(
        model_file_mib=round(path.stat().st_size / 2**20, 1),
        gamma=kernel.gamma,
        median_abs_alpha=float(np.median(np.abs(kernel.coefficients.numpy()))),
    )
    return load_model(path), notes


# -- timing ------------------------------------------------------------------------------------
@dataclass
class Result:
    scope: str
    method: str
    threads: int
    n_sites: int
    times: list[float]
    warmup_s: float
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stats = {
            "min_s": min(self.times),
            "median_s": statistics.median(self.times),
            "max_s": max(self.times),
            "median_sites_per_s": self.n_sites / statistics.median(self.times),
        }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(
    scope: str, method: str, threads: int, n_sites: int, fn: Callable[[], Any], repeats: int
) -> tuple[Result, Any]:
    warmup, value = timed(fn)
    times = [timed(fn)[0] for _ in range(repeats)]
    return Result(scope, method, threads, n_sites, times, warmup), value


def scaled_diff(got: np.ndarray, want: np.ndarray, scale: np.ndarray | None = None) -> float:
    """max |got − want| / max |scale| (scale: want by default)."""
    scale = want if scale is None else scale
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(scale).max())


def run(args: argparse.Namespace) -> dict[str, Any]:
    from xanesnet import _core

    report: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions(("numpy", "torch")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model, notes = build_model(args, Path(tmp))
    gen = Generator(args.features, args.energies, args.seed)
    sites, _ = gen.sample(args.sites, np.random.default_rng(args.seed + 2))
    report["inputs"] = {
        "sites": args.sites,
        "centres": args.centres,
        "features": args.features,
        "energies": args.energies,
        "members": args.members,
        "hidden": list(args.hidden),
        "kernel_weight": model.module.kernel_weight,
        "centre_dtype": str(model.module.kernel.centres.dtype).removeprefix("torch."),
        **notes,
    }
    kernel = model.module.kernel
    x = torch.as_tensor(sites)
    centres = np.ascontiguousarray(kernel.centres.float().numpy())
    coefficients = np.ascontiguousarray(kernel.coefficients.numpy())
    y_mean = np.ascontiguousarray(kernel.y_mean.numpy())

    def kernel_torch() -> np.ndarray:
        with torch.inference_mode():
            return kernel(x).numpy()

    def kernel_cpp(threads: int) -> np.ndarray:
        with torch.inference_mode():
            z = ((x - kernel.x_mean) * kernel.x_inv_scale).numpy()
        return _core.laplacian_predict(z, centres, kernel.gamma, coefficients, y_mean, threads)

    results: list[Result] = []
    agreement: dict[str, float] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        r_t, k_t = measure("kernel", "torch", threads, args.sites, kernel_torch, args.repeats)
        r_c, k_c = measure(
            "kernel", "C++", threads, args.sites, lambda t=threads: kernel_cpp(t), args.repeats
        )
        results += [r_t, r_c]
        agreement[f"kernel_{threads}t"] = scaled_diff(k_c, k_t)
        r_t, p_t = measure(
            "model",
            "torch",
            threads,
            args.sites,
            lambda: model.predict_features(sites, kernel_backend="torch"),
            args.repeats,
        )
        r_c, p_c = measure(
            "model",
            "C++",
            threads,
            args.sites,
            lambda t=threads: model.predict_features(sites, kernel_backend="cpp", n_threads=t),
            args.repeats,
        )
        results += [r_t, r_c]
        agreement[f"model_mean_{threads}t"] = scaled_diff(p_c[0], p_t[0])
        agreement[f"model_spread_{threads}t"] = scaled_diff(p_c[1], p_t[1], p_t[0])
    report["results"] = [asdict(r) for r in results]
    report["ratios"] = ratios(results)
    report["agreement_max_abs_diff_over_max_abs"] = agreement
    report["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return report


def ratios(results: Sequence[Result]) -> list[dict[str, Any]]:
    out = []
    by_key = {(r.scope, r.method, r.threads): r for r in results}
    for (scope, method, threads), cpp in by_key.items():
        if method != "C++":
            continue
        ref = by_key[(scope, "torch", threads)]
        ratio = cpp.stats["median_s"] / ref.stats["median_s"]
        out.append(
            {"scope": scope, "threads": threads, "cpp_over_torch": ratio, "speedup": 1 / ratio}
        )
    return out


# -- output ------------------------------------------------------------------------------------
def print_report(report: dict[str, Any]) -> None:
    print("# Laplacian kernel ridge member: C++ (_core.laplacian_predict) vs torch (cdist)\n")
    for title in ("machine", "versions", "inputs"):
        print(f"## {title}")
        for key, value in report[title].items():
            print(f"- {key}: {value}")
        print()
    print("## timings (seconds; sites/s from the median)\n")
    print("| scope | method | threads | warm-up s | min s | median s | max s | sites/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report["results"]:
        s = r["stats"]
        print(
            f"| {r['scope']} | {r['method']} | {r['threads']} | {r['warmup_s']:.3f} "
            f"| {s['min_s']:.3f} | {s['median_s']:.3f} | {s['max_s']:.3f} "
            f"| {s['median_sites_per_s']:,.0f} |"
        )
    print("\n## ratio C++ / torch (median times, same run)\n")
    print("| scope | threads | C++/torch | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for r in report["ratios"]:
        print(
            f"| {r['scope']} | {r['threads']} | {r['cpp_over_torch']:.3f} | {r['speedup']:.1f}x |"
        )
    print("\n## agreement (max |C++ − torch| / max |torch spectrum|)\n")
    for key, value in report["agreement_max_abs_diff_over_max_abs"].items():
        print(f"- {key}: {value:.2e}")
    print(f"\nload average after: {report['load_average_after']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    def int_list(text: str) -> list[int]:
        values = [int(v) for v in text.split(",") if v.strip()]
        if not values or any(v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
        return values

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=4096, help="sites to predict")
    parser.add_argument("--centres", type=int, default=3264, help="kernel centres (training rows)")
    parser.add_argument("--features", type=int, default=513, help="descriptor length (>= 3)")
    parser.add_argument("--energies", type=int, default=226, help="spectrum points")
    parser.add_argument("--threads", type=int_list, default=[1, 2], help="e.g. 1,2")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per method")
    parser.add_argument("--members", type=int, default=3, help="networks in the ensemble")
    parser.add_argument("--hidden", type=int_list, default=[512, 512], help="MLP widths")
    parser.add_argument(
        "--no-fit", dest="fit", action="store_false", help="random α instead of a ridge fit"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    if args.features < 3 or min(args.sites, args.centres, args.energies, args.repeats) < 1:
        parser.error("sizes must be positive (features >= 3)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
