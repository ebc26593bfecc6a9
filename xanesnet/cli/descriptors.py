"""``xanesnet descriptors INPUT... -o OUT.npz``: wACSF descriptors of absorbing sites.

Reads structures as a stream, computes descriptors chunk by chunk and writes one ``.npz``
holding ``features`` (n_sites, n_features), ``ids`` and ``sites`` of each row,
``feature_names``, the descriptor configuration as JSON, and the structures that failed with
their reasons. A structure that fails is recorded and the job goes on; the exit status is 1
when any failed (0 otherwise, 2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.descriptors import WACSF
from xanesnet.descriptors.dispatch import BACKENDS, default_backend


def _absorber(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet descriptors",
        description="Compute wACSF descriptors of the absorbing sites of structures.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        help="structure files, folders of .xyz, glob patterns or ASE databases (.db)",
    )
    parser.add_argument(
        "--examples",
        action="store_true",
        help="use the example Fe structures shipped with xanesnet",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .npz file")
    parser.add_argument(
        "--absorber",
        type=_absorber,
        default=0,
        help="atom index in every structure (default 0, the XANESNET convention) or an element "
        "symbol (every site of that element)",
    )
    parser.add_argument("--select", default=None, help="ASE database selection string")
    parser.add_argument(
        "--config", type=Path, default=None, help="descriptor configuration (JSON, WACSF.to_json)"
    )
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: best available")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores (default)")
    parser.add_argument("--chunk-size", type=int, default=4096, help="structures per batch")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def example_paths() -> list[Path]:
    """The example Fe K-edge structures shipped inside the package."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "fe_k_edge"
    return sorted(folder.glob("*.xyz"))


def _compute_chunk(
    config: WACSF,
    chunk: list[Any],
    absorber: Any,
    backend: str,
    threads: int,
    failures: list[tuple[str, str]],
) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """Descriptors of one chunk; structures that fail are isolated and recorded."""
    try:
        features, index = config.compute(chunk, absorber, backend=backend, n_threads=threads)
    except ValueError:
        if len(chunk) == 1:
            raise
    else:
        ids = [str(chunk[s].info.get("id", "")) for s in index[:, 0]]
        return [features], ids, [index[:, 1]]
    out: tuple[list[np.ndarray], list[str], list[np.ndarray]] = ([], [], [])
    for atoms in chunk:  # one bad structure fails the batch: redo one by one
        try:
            part = _compute_chunk(config, [atoms], absorber, backend, threads, failures)
        except ValueError as exc:
            failures.append((str(atoms.info.get("id", "")), str(exc)))
            continue
        for collected, new in zip(out, part, strict=True):
            collected += new
    return out


def _safe_chunk(
    config: WACSF,
    chunk: list[Any],
    absorber: Any,
    backend: str,
    threads: int,
    failures: list[tuple[str, str]],
) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    try:
        return _compute_chunk(config, chunk, absorber, backend, threads, failures)
    except ValueError as exc:  # a chunk of one structure that failed
        failures.append((str(chunk[0].info.get("id", "")), str(exc)))
        return [], [], []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from xanesnet.structures import read_structures

    inputs: list[Any] = list(args.inputs)
    if args.examples:
        inputs += example_paths()
    if not inputs:
        parser.error("no inputs: give structure files/folders/databases, or --examples")
    if args.chunk_size < 1:
        parser.error(f"--chunk-size: expected a positive integer, got {args.chunk_size}")
    if args.threads < 0:
        parser.error(f"--threads: expected an integer >= 0, got {args.threads}")
    try:
        config = WACSF.from_json(args.config.read_text()) if args.config else WACSF()
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"--config {args.config}: {exc}")
    backend = args.backend or default_backend()

    failures: list[tuple[str, str]] = []
    features: list[np.ndarray] = []
    ids: list[str] = []
    sites: list[np.ndarray] = []
    n_structures = 0
    start = time.perf_counter()
    try:
        stream = read_structures(
            inputs, select=args.select, on_error=lambda item, exc: failures.append((item, str(exc)))
        )
        chunk: list[Any] = []
        for atoms in stream:
            chunk.append(atoms)
            if len(chunk) == args.chunk_size:
                f, i, s = _safe_chunk(config, chunk, args.absorber, backend, args.threads, failures)
                features += f
                ids += i
                sites += s
                n_structures += len(chunk)
                chunk = []
        if chunk:
            f, i, s = _safe_chunk(config, chunk, args.absorber, backend, args.threads, failures)
            features += f
            ids += i
            sites += s
            n_structures += len(chunk)
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet descriptors: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start

    from xanesnet import __version__

    matrix = np.concatenate(features) if features else np.empty((0, config.n_features))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".partial.npz")
    np.savez_compressed(
        tmp,
        features=matrix,
        ids=np.asarray(ids, dtype=str),
        sites=np.concatenate(sites) if sites else np.empty(0, dtype=np.int64),
        feature_names=np.asarray(config.feature_names),
        config_json=np.asarray(config.to_json()),
        failed_ids=np.asarray([f[0] for f in failures], dtype=str),
        failed_reasons=np.asarray([f[1] for f in failures], dtype=str),
        xanesnet_version=np.asarray(__version__),
        inputs=np.asarray([str(p) for p in inputs]),
    )
    tmp.replace(args.output)  # the output appears complete or not at all
    if not args.quiet:
        rate = matrix.shape[0] / elapsed if elapsed > 0 else float("inf")
        print(
            f"{matrix.shape[0]} sites from {n_structures} structures -> {args.output} "
            f"({matrix.shape[1]} features, backend {backend}, {elapsed:.2f} s, {rate:,.0f} sites/s)"
        )
    for item, reason in failures:
        print(f"failed: {item}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} structure(s) failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
