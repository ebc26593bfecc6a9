"""Regenerate the committed spectrum fixtures from ../shared/data (run from the repository root).

Copies three Fe K-edge spectra, byte for byte, into ``tests/data/spectra/``:

- ``raw/NAME.txt``: raw FDMNES output (``xanesnet_2022_default``, 376 points, unconvolved);
- ``processed/NAME.txt``: the published processed spectrum (``xanesnet_2022_preconv``,
  226 points, broadened), which ``xanesnet convolve`` must reproduce from the raw one.

Usage: ``python tests/make_spectra_fixtures.py [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["ABIHUO_C19H21FeNO6", "ACNCFE_C16H8FeO4", "ACODUR_C8H5FeNO2"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args(argv)
    fe = args.shared / "data" / "fe_k_edge"
    target = ROOT / "tests" / "data" / "spectra"
    for kind, source in (("raw", "xanesnet_2022_default"), ("processed", "xanesnet_2022_preconv")):
        (target / kind).mkdir(parents=True, exist_ok=True)
        for name in NAMES:
            shutil.copyfile(
                fe / source / "xanes_train" / f"{name}.txt", target / kind / f"{name}.txt"
            )
    print(f"wrote {len(NAMES)} raw + {len(NAMES)} processed spectra to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
