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

import numpy as np

from xanesnet.cli._args import add_compute_arguments, add_input_arguments, parse_inputs
from xanesnet.cli._sites import SiteStream, report_failures, save_npz
from xanesnet.descriptors import WACSF
from xanesnet.descriptors.dispatch import default_backend


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet descriptors",
        description="Compute wACSF descriptors of the absorbing sites of structures.",
    )
    add_input_arguments(
        parser,
        absorber=0,
        absorber_help="atom index in every structure (default 0, the XANESNET convention) or "
        "an element symbol (every site of that element)",
    )
    add_compute_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .npz file")
    parser.add_argument(
        "--config", type=Path, default=None, help="descriptor configuration (JSON, WACSF.to_json)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, inputs = parse_inputs(parser, argv)
    try:
        config = WACSF.from_json(args.config.read_text()) if args.config else WACSF()
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"--config {args.config}: {exc}")
    backend = args.backend or default_backend()
    stream = SiteStream(
        inputs, config, args.absorber, args.select, backend, args.threads, args.chunk_size
    )
    features, ids, sites = [], [], []
    start = time.perf_counter()
    try:
        for f, i, s in stream:
            features.append(f)
            ids += i
            sites.append(s)
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet descriptors: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start

    from xanesnet import __version__

    matrix = np.concatenate(features) if features else np.empty((0, config.n_features))
    save_npz(
        args.output,
        features=matrix,
        ids=np.asarray(ids, dtype=str),
        sites=np.concatenate(sites) if sites else np.empty(0, dtype=np.int64),
        feature_names=np.asarray(config.feature_names),
        config_json=np.asarray(config.to_json()),
        failed_ids=np.asarray([f[0] for f in stream.failures], dtype=str),
        failed_reasons=np.asarray([f[1] for f in stream.failures], dtype=str),
        xanesnet_version=np.asarray(__version__),
        inputs=np.asarray([str(p) for p in inputs]),
    )
    if not args.quiet:
        rate = matrix.shape[0] / elapsed if elapsed > 0 else float("inf")
        print(
            f"{matrix.shape[0]} sites from {stream.n_structures} structures -> {args.output} "
            f"({matrix.shape[1]} features, backend {backend}, {elapsed:.2f} s, {rate:,.0f} sites/s)"
        )
    report_failures(stream.failures)
    return 1 if stream.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
