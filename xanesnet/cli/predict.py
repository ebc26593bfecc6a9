"""``xanesnet predict INPUT... -o OUT.npz [--model M]``: spectra of absorbing sites.

Uses the shipped Fe K-edge model unless ``--model`` names another. Writes ``ids``, ``sites``,
``energies`` (eV), ``spectra`` (n_sites, n_energies; float32), ``spread`` (the ensemble's
standard deviation, only when the model has one) and the model's metadata (JSON); failed
structures are recorded with their reasons and the job goes on (exit status 1 when any
failed). An output ending in ``.csv`` gets one row per site instead. (Large jobs:
``xanesnet-batch`` streams to chunked, resumable storage.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from xanesnet.cli._sites import (
    SiteStream,
    add_input_arguments,
    add_model_argument,
    add_precision_argument,
    resolve_inputs,
)
from xanesnet.cli.descriptors import report_failures, save_npz


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet predict", description="Predict XANES spectra of absorbing sites."
    )
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .npz or .csv")
    add_model_argument(parser)
    add_precision_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = resolve_inputs(parser, args)
    from xanesnet.model.files import load_model
    from xanesnet.model.pretrained import resolve_model_path

    try:
        model = load_model(resolve_model_path(args.model))
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet predict: error: {exc}", file=sys.stderr)
        return 2
    stream = SiteStream(
        inputs,
        model.descriptor,
        args.absorber,
        args.select,
        args.backend,
        args.threads,
        args.chunk_size,
    )
    spectra, spreads, ids, sites = [], [], [], []
    start = time.perf_counter()
    try:
        for features, chunk_ids, chunk_sites in stream:
            mean, spread = model.predict_features(features, precision=args.precision)
            spectra.append(mean.astype(np.float32))
            spreads.append(spread.astype(np.float32))
            ids += chunk_ids
            sites.append(chunk_sites)
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet predict: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    n_e = len(model.energies)
    spectra_all = np.concatenate(spectra) if spectra else np.empty((0, n_e), np.float32)
    spread_all = np.concatenate(spreads) if spreads else np.empty((0, n_e), np.float32)
    sites_all = np.concatenate(sites) if sites else np.empty(0, dtype=np.int64)
    if args.output.suffix == ".csv":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w") as handle:
            handle.write("id,site," + ",".join(f"{e:.3f}" for e in model.energies) + "\n")
            for name, site, row in zip(ids, sites_all, spectra_all, strict=True):
                handle.write(f"{name},{site}," + ",".join(f"{v:.6e}" for v in row) + "\n")
    else:
        spread_kept = {"spread": spread_all} if model.has_spread else {}
        save_npz(
            args.output,
            ids=np.asarray(ids, dtype=str),
            sites=sites_all,
            energies=model.energies,
            spectra=spectra_all,
            **spread_kept,
            model_metadata=np.asarray(json.dumps(model.metadata)),
            precision=np.asarray(args.precision),
            failed_ids=np.asarray([f[0] for f in stream.failures], dtype=str),
            failed_reasons=np.asarray([f[1] for f in stream.failures], dtype=str),
        )
    if not args.quiet:
        print(
            f"{len(ids)} sites from {stream.n_structures} structures -> {args.output} "
            f"({model.element} {model.edge}-edge model, {model.n_members} member(s), "
            f"{elapsed:.2f} s)"
        )
    report_failures(stream.failures)
    return 1 if stream.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
