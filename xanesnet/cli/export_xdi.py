"""``xanesnet export-xdi OUT -o DIR [--model M]``: XDI files, one per site, of a batch output.

Works on any finished (or partly committed) output of ``xanesnet-batch`` in any format; see
:mod:`xanesnet.store.xdi` for the file content.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from xanesnet.cli._args import status_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xanesnet export-xdi",
        description=(
            "Write one XDI 1.0 file (XAS Data Interchange: Larch, Athena) per predicted site "
            "of a batch output folder (hdf5, zarr or csv)."
        ),
    )
    parser.add_argument("output", type=Path, help="batch output folder (xanesnet-batch -o)")
    parser.add_argument("-o", "--out-dir", required=True, type=Path, help="folder for the files")
    parser.add_argument(
        "--model",
        default=None,
        help=(
            "the model file the output was made with (for E0, units and calibrated sigma); "
            "default: the shipped model whose SHA-256 the output records"
        ),
    )
    return status_of("xanesnet export-xdi", partial(_export, parser.parse_args(argv)))


def _export(args: argparse.Namespace) -> int:
    from xanesnet.store.xdi import export_xdi

    paths = export_xdi(args.output, args.out_dir, model=args.model)
    print(f"wrote {len(paths)} XDI files -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
