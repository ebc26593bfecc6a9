"""``xanesnet predict INPUT... -o OUT.npz [--model M]``: spectra of absorbing sites in one file.

A front end over the batch pipeline (:func:`xanesnet.pipeline.batch.predict_batch`, the same
reading, defaults and failure handling as ``xanesnet-batch``) for jobs that fit in one file.
Uses the shipped Fe K-edge model unless ``--model`` names another; the absorber is the model's
element (every such site) unless ``--absorber`` names another or an atom index. Writes ``ids``,
``sites``, ``energies`` (eV), ``spectra`` (n_sites, n_energies; float32), ``spread`` (the
ensemble's standard deviation, only when the model has one) and the model's metadata (JSON);
failed structures are recorded with their reasons and the job goes on (exit status 1 when any
failed). An output ending in ``.csv`` gets the batch output's ``predictions.csv`` instead (one
row per site: ``structure_id,site_index`` and one column per energy).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xanesnet.cli._args import add_prediction_arguments, batch_options, checked_inputs
from xanesnet.cli._sites import report_failures, save_npz


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet predict", description="Predict XANES spectra of absorbing sites."
    )
    add_prediction_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output .npz or .csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = checked_inputs(parser, args)
    from xanesnet.model.files import load_model
    from xanesnet.model.pretrained import resolve_model_path
    from xanesnet.pipeline.batch import predict_batch
    from xanesnet.store import read_predictions

    try:
        model = load_model(resolve_model_path(args.model))
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet predict: error: {exc}", file=sys.stderr)
        return 2
    csv = args.output.suffix == ".csv"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # The batch output is made next to the file (same file system), then turned into it.
    with tempfile.TemporaryDirectory(prefix=".xanesnet-predict-", dir=args.output.parent) as tmp:
        folder = Path(tmp) / "output"
        try:
            options = batch_options(args, progress=False, format="csv" if csv else "hdf5")
            summary = predict_batch(inputs, folder, options=options)
        except (FileNotFoundError, ValueError) as exc:
            print(f"xanesnet predict: error: {exc}", file=sys.stderr)
            return 2
        result = read_predictions(folder)
        failures = [(str(item), str(reason)) for item, reason in result.errors]
        if csv:
            shutil.move(folder / "predictions.csv", args.output)
        else:
            spread_kept = {"spread": result.spread.astype(np.float32)} if model.has_spread else {}
            save_npz(
                args.output,
                ids=np.asarray(result.ids, dtype=str),
                sites=np.asarray(result.sites, dtype=np.int64),
                energies=model.energies,
                spectra=np.asarray(result.spectra, dtype=np.float32),
                **spread_kept,
                model_metadata=np.asarray(json.dumps(model.metadata)),
                precision=np.asarray(args.precision),
                failed_ids=np.asarray([f[0] for f in failures], dtype=str),
                failed_reasons=np.asarray([f[1] for f in failures], dtype=str),
            )
    elapsed = time.perf_counter() - start
    if not args.quiet:
        print(
            f"{summary.sites} sites from {summary.structures} structures -> {args.output} "
            f"({model.element} {model.edge}-edge model, {model.n_members} member(s), "
            f"{elapsed:.2f} s)"
        )
    report_failures(failures)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
