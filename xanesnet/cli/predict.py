"""``xanesnet predict INPUT... -o OUT.npz [--model M]``: spectra of absorbing sites in one file.

A front end over the batch pipeline (:func:`xanesnet.pipeline.batch.predict_batch`, the same
reading, defaults and failure handling as ``xanesnet-batch``) for jobs that fit in one file.
Uses the shipped model of the ``--absorber`` element (the Fe K-edge model without one) unless
``--model`` names another; the absorber is the model's element (every such site); ``--absorber``
may name that element or an atom index (another element is refused, exit 2; an index selecting
another element fails that structure). ``--unique-sites`` adds ``multiplicity`` (per site),
``structure_mean_ids`` and ``structure_mean`` (per structure; CSV: ``NAME.multiplicity.csv``,
``NAME.structure_mean.csv``).
Writes ``ids``, ``sites``, ``energies`` (eV), ``spectra`` (n_sites, n_energies; float32),
``spread`` (the ensemble's standard deviation, only when the model has one), ``sigma`` (the
calibrated standard uncertainty, n_sites × n_energies, NaN for a model without a calibration),
the per-site ``predicted_delta_mu`` (%), ``domain_score``, ``outside_domain`` and
``unphysical``, ``no_site_ids`` (structures without a site of the model's element: not
failures) and the model's metadata (JSON); failed structures are recorded with their reasons
and the job goes on (exit status 1 when any failed). An output ending in ``.csv`` gets the
batch output's ``predictions.csv`` instead (one row per site: ``structure_id,site_index`` and
one column per energy), with the trust columns in ``NAME.trust.csv`` beside it
(``structure_id,site_index,predicted_delta_mu,domain_score,outside_domain,unphysical``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from xanesnet.cli._args import add_prediction_arguments, batch_options, parse_inputs
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
    args, inputs = parse_inputs(build_parser(), argv)
    from xanesnet.model.files import load_model
    from xanesnet.model.pretrained import model_for_absorber
    from xanesnet.pipeline.batch import OutOfDomainWarning, predict_batch
    from xanesnet.pipeline.options import absorber_elements
    from xanesnet.store import read_predictions

    try:
        if (absorber_elements(args.absorber) or [None])[1:]:
            raise ValueError(
                f"--absorber {args.absorber}: one element per output file; xanesnet-batch "
                "runs several (OUT/Fe, OUT/Cu, ...)"
            )
        model = load_model(model_for_absorber(args.model, args.absorber))
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
            with warnings.catch_warnings():  # said below, once, as a plain line
                warnings.simplefilter("ignore", OutOfDomainWarning)
                summary = predict_batch(inputs, folder, options=options)
        except (FileNotFoundError, ValueError) as exc:
            print(f"xanesnet predict: error: {exc}", file=sys.stderr)
            return 2
        result = read_predictions(folder)
        failures = [(str(item), str(reason)) for item, reason in result.errors]
        if csv:
            shutil.move(folder / "predictions.csv", args.output)
            shutil.move(folder / "trust.csv", args.output.with_suffix(".trust.csv"))
            for table in ("multiplicity", "structure_mean") if args.unique_sites else ():
                shutil.move(folder / f"{table}.csv", args.output.with_suffix(f".{table}.csv"))
        else:
            spread_kept = {"spread": result.spread.astype(np.float32)} if model.has_spread else {}
            unique = (
                {
                    "multiplicity": result.multiplicity,
                    "structure_mean_ids": np.asarray(result.structure_mean_ids, dtype=str),
                    "structure_mean": result.structure_mean,
                }
                if args.unique_sites
                else {}
            )
            calibration = model.trust_model.calibration
            sigma = (
                np.full(result.spectra.shape, np.nan, dtype=np.float32)
                if calibration is None
                else calibration.sigma(
                    result.spread if model.has_spread else None, len(result.ids)
                ).astype(np.float32)
            )
            save_npz(
                args.output,
                ids=np.asarray(result.ids, dtype=str),
                sites=np.asarray(result.sites, dtype=np.int64),
                energies=model.energies,
                spectra=np.asarray(result.spectra, dtype=np.float32),
                **spread_kept,
                sigma=sigma,
                predicted_delta_mu=result.predicted_delta_mu,
                domain_score=result.domain_score,
                outside_domain=result.outside_domain,
                unphysical=result.unphysical,
                no_site_ids=np.asarray(result.no_sites, dtype=str),
                **unique,
                model_metadata=np.asarray(json.dumps(model.metadata)),
                precision=np.asarray(args.precision),
                failed_ids=np.asarray([f[0] for f in failures], dtype=str),
                failed_reasons=np.asarray([f[1] for f in failures], dtype=str),
            )
    elapsed = time.perf_counter() - start
    if not args.quiet:
        no_sites = (
            f", {summary.no_sites} structures without a {model.element} site"
            if summary.no_sites
            else ""
        )
        print(
            f"{summary.sites} sites from {summary.structures} structures{no_sites} -> "
            f"{args.output} ({model.element} {model.edge}-edge model, {model.n_members} "
            f"member(s), {elapsed:.2f} s)"
        )
    if summary.domain_warning() is not None:
        print(f"warning: {summary.domain_warning()}", file=sys.stderr)
    report_failures(failures)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
