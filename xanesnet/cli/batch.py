"""``xanesnet-batch INPUT... -o OUT``: streaming, resumable prediction over many structures.

Writes an output folder (see :mod:`xanesnet.store`): chunks committed atomically (HDF5 by
default; ``--format zarr`` or ``--format csv``), a consolidated view (``predictions.h5``,
``predictions.zarr`` or ``predictions.csv``) readable without xanesnet, a manifest, and the
structures that failed with their reasons. Every site also gets its trust columns (predicted
Δμ, out-of-domain score, outside_domain and unphysical flags; README "Which predictions to
trust"). Without ``--model`` the model is the shipped one of the ``--absorber`` element (Fe
without one); ``--absorber Fe,Cu`` runs one model per element into ``OUT/Fe``, ``OUT/Cu``;
``--unique-sites`` predicts each symmetry-unique site of a crystal once (column
``multiplicity``, table ``structure_mean``). The absorber is the model's element by default;
another element is refused (exit 2), an index selecting an atom of another element fails that
structure. Structures without a site
of the model's element are listed apart (``no_site_ids``), not failures. Running the same
command again resumes an interrupted job and does nothing on a finished one. Exit statuses:
see :data:`EXIT_STATUSES`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from xanesnet.cli._args import add_prediction_arguments, batch_options, parse_inputs
from xanesnet.io.sources import SkippedFilesWarning
from xanesnet.store import FORMATS, OutputWriteError

#: The command's exit statuses (its --help epilog and the README list them).
EXIT_STATUSES = """exit status:
  0  every structure was predicted (or the output was already complete)
  1  some structures failed; each is recorded with its reason, the others were predicted
     (structures without a site of the model's element are listed apart, not failures)
  2  bad arguments, or the job was refused before any work: unreadable model, an output
     holding another job or started from inputs that changed since, an output another
     process is writing; or --strict stopped at the first failure (one line
     "xanesnet-batch: error: ...")
  3  the output could not be written (disk full, read-only, permissions): what was committed
     stays, run the same command again once the cause is fixed"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet-batch",
        description="Predict XANES spectra of every absorbing site of many structures.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_prediction_arguments(parser)
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="hdf5",
        help="output format: hdf5 (default; predictions.h5), zarr (predictions.zarr; needs "
        'pip install "xanesnet[zarr]") or csv (predictions.csv, spread.csv, errors.csv; small '
        "jobs). Resuming an output needs the format it was started with",
    )
    parser.add_argument("--device", default="cpu", help="network device: cpu or cuda")
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="process only the I-th of N deterministic slices (job arrays)",
    )
    parser.add_argument(
        "--dask",
        default=None,
        metavar="local[:N]|ADDRESS",
        help="run chunks on Dask workers: a local cluster of N processes, or "
        "the address of a running scheduler",
    )
    parser.add_argument(
        "--keep-info",
        default=None,
        metavar="KEY[,KEY...]",
        help="carry these structure metadata keys into the output as per-site columns "
        "info.KEY (ASE database key-value pairs and unique_id, extended XYZ comment-line "
        'keys; "" where a structure lacks one). Every output also names each site\'s input '
        "file in the column source",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first failure")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, inputs = parse_inputs(build_parser(), argv)
    from xanesnet.pipeline.batch import OutOfDomainWarning, parse_shard, predict_batch

    try:
        shard = parse_shard(args.shard)
        options = batch_options(
            args,
            device=args.device,
            shard=shard,
            strict=args.strict,
            progress=not args.quiet,
            dask=args.dask,
            format=args.format,
            keep_info=args.keep_info or (),
        )
        with warnings.catch_warnings(record=True) as said:  # said below as plain lines
            warnings.simplefilter("ignore", OutOfDomainWarning)
            warnings.simplefilter("always", SkippedFilesWarning)
            summary = predict_batch(inputs, args.output, options=options)
        for warning in said:
            print(f"warning: {warning.message}", file=sys.stderr)
    except OutputWriteError as exc:  # an OSError: before the refusals below
        print(f"xanesnet-batch: error: {exc.strerror or exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as exc:  # OutputLockedError is a ValueError
        print(f"xanesnet-batch: error: {exc}", file=sys.stderr)
        return 2
    # several absorber elements: one summary per element (outputs OUT/ELEMENT)
    summaries = summary if isinstance(summary, dict) else {"": summary}
    failed = 0
    for element, one in summaries.items():
        prefix = f"{element}: " if element else ""
        if not args.quiet:
            print(prefix + one.line())
        if one.domain_warning() is not None:
            print(f"warning: {prefix}{one.domain_warning()}", file=sys.stderr)
        if one.failed:
            print(
                f"{prefix}{one.failed} structure(s) failed; see the error tables in {one.output}",
                file=sys.stderr,
            )
        failed += one.failed
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
