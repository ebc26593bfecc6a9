"""``xanesnet merge OUT1 OUT2 ... -o OUT``: join the shard outputs of one batch job.

The outputs must share one format (hdf5, zarr or csv); the merged output has it too.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from xanesnet.cli._args import status_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xanesnet merge",
        description="Join finished shard outputs (--shard I/N) of one format into one.",
    )
    parser.add_argument("outputs", nargs="+", type=Path, help="shard output folders")
    parser.add_argument("-o", "--output", required=True, type=Path, help="merged output folder")
    return status_of("xanesnet merge", partial(_merge, parser.parse_args(argv)))


def _merge(args: argparse.Namespace) -> int:
    from xanesnet.store import merge_outputs

    merge_outputs(args.outputs, args.output)
    print(f"merged {len(args.outputs)} outputs -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
