"""``xanesnet evaluate --model M --xyz DIR --xanes DIR``: the published metrics of a model.

The data set may also be FEFF folders (``--feff DIR``) or a CSV table of (structure,
spectrum[, absorber]) files (``--pairs TABLE.csv``); spectra are read on the model's grid.

Prints the seed-table row (Δμ_avg %, skew, ΔE_avg eV, R² of peak energies; with
``--post-broadening`` also Δμ after arctangent broadening of both spectra) and the exact
definitions used; ``--json OUT`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from xanesnet.cli._args import (
    INPUT_ERRORS,
    add_choice_argument,
    add_precision_argument,
    status_of,
)
from xanesnet.cli._dataset import add_dataset_arguments
from xanesnet.cli._progress import Progress


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet evaluate", description="Evaluate a model on (structure, spectrum) pairs."
    )
    add_dataset_arguments(parser, other_sources=True)
    add_choice_argument(
        parser,
        "--norm",
        ("l1", "l2", "max"),
        help="Δμ definition (default l1, see shared/spec/metrics.md)",
    )
    add_choice_argument(
        parser, "--peaks", ("all", "main"), help="peaks matched for ΔE and R² (default all)"
    )
    parser.add_argument(
        "--post-broadening",
        action="store_true",
        help="also report Δμ after arctangent broadening of both spectra",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all figures as JSON")
    parser.add_argument("--threads", type=int, default=0, help="descriptor threads (0 = all)")
    add_precision_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return status_of("xanesnet evaluate", partial(run, args), (*INPUT_ERRORS, KeyError))


def run(args: argparse.Namespace) -> int:
    from xanesnet.analysis import evaluate_spectra
    from xanesnet.cli._dataset import load_model_and_data
    from xanesnet.spectra import Broadening, broaden

    # three steps of very different length, named as they start
    with Progress(3, "evaluate", "step", quiet=args.quiet) as progress:
        progress.update(0, "descriptors")
        model, data = load_model_and_data(args, n_threads=args.threads)
        progress.update(1, "prediction")
        prediction, _ = model.predict_features(data.features, precision=args.precision)
        progress.update(1, "metrics")
        broaden_fn = label = None
        if args.post_broadening:
            broadening = Broadening.arctan(float32_input=False)
            broaden_fn = partial(broaden, model.energies, e0=model.e0, broadening=broadening)
            label = broadening.label()
        metrics = evaluate_spectra(
            model.energies,
            prediction,
            data.spectra,
            norm=args.norm,
            peaks=args.peaks,
            broaden=broaden_fn,
            broaden_label=label,
        )
        progress.update(1, "done")
    print(metrics.table_header(post_broadening=args.post_broadening))
    about = f"{len(data.names)} spectra" + (
        f", {args.precision}" if args.precision != "float32" else ""
    )
    print(metrics.table_row(label=f"{model.element} {model.edge} ({about})"))
    print(metrics.definitions_text())
    if args.json is not None:
        record = {
            "model": str(model.path),
            "n_spectra": len(data.names),
            "precision": args.precision,
            **metrics.to_dict(),
        }
        args.json.write_text(json.dumps(record, indent=2, default=float))
    return 0
