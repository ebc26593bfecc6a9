"""``xanesnet-batch INPUT... -o OUT``: streaming, resumable prediction over many structures.

Writes an output folder (see :mod:`xanesnet.store`): chunks committed atomically (HDF5 by
default; ``--format zarr`` or ``--format csv``), a consolidated view (``predictions.h5``,
``predictions.zarr`` or ``predictions.csv``) readable without xanesnet, a manifest, and the
structures that failed with their reasons. Running the same command again resumes an interrupted job and does
nothing on a finished one. Exit status: 0, 1 when some structures failed (all recorded), 2 for
bad arguments or a fatal error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xanesnet.cli._sites import (
    _absorber,
    add_model_argument,
    add_precision_argument,
    example_paths,
)
from xanesnet.descriptors.dispatch import BACKENDS
from xanesnet.pipeline.batch import DEFAULT_CHUNK_SIZE
from xanesnet.store import FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanesnet-batch",
        description="Predict XANES spectra of every absorbing site of many structures.",
    )
    parser.add_argument("inputs", nargs="*", help="files, folders of .xyz, globs, ASE databases")
    parser.add_argument(
        "--examples",
        action="store_true",
        help="use the example Fe structures shipped with xanesnet",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="hdf5",
        help="output format: hdf5 (default; predictions.h5), zarr (predictions.zarr; needs "
        'pip install "xanesnet[zarr]") or csv (predictions.csv, spread.csv, errors.csv; small '
        "jobs). Resuming an output needs the format it was started with",
    )
    add_model_argument(parser)
    parser.add_argument(
        "--absorber",
        type=_absorber,
        default=None,
        help="element symbol (default: the model's element: every such site) or "
        "an atom index (XANESNET one-site convention)",
    )
    parser.add_argument("--select", default=None, help="ASE database selection string")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"structures per chunk (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.add_argument("--threads", type=int, default=0, help="descriptor threads; 0 = all")
    parser.add_argument("--backend", choices=BACKENDS, default=None)
    parser.add_argument("--device", default="cpu", help="network device: cpu or cuda")
    add_precision_argument(parser)
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
    parser.add_argument("--strict", action="store_true", help="stop at the first failure")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    inputs = list(args.inputs) + (example_paths() if args.examples else [])
    if not inputs:
        parser.error("no inputs: give structure files/folders/databases, or --examples")
    if args.chunk_size < 1:
        parser.error(f"--chunk-size: expected a positive integer, got {args.chunk_size}")
    if args.threads < 0:
        parser.error(f"--threads: expected an integer >= 0, got {args.threads}")
    from xanesnet.pipeline.batch import parse_shard, predict_batch

    try:
        shard = parse_shard(args.shard)
        summary = predict_batch(
            inputs,
            args.output,
            model=args.model,
            absorber=args.absorber,
            select=args.select,
            chunk_size=args.chunk_size,
            n_threads=args.threads,
            backend=args.backend,
            device=args.device,
            precision=args.precision,
            shard=shard,
            strict=args.strict,
            progress=not args.quiet,
            dask=args.dask,
            format=args.format,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"xanesnet-batch: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary.line())
    if summary.failed:
        print(
            f"{summary.failed} structure(s) failed; see the error tables in {args.output}",
            file=sys.stderr,
        )
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
