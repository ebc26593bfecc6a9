"""Copy the FEFF test fixtures (tests/data/feff/) from the OmniXAS Cu K-edge data.

Run from the repository root with ``../shared`` present::

    python tests/make_feff_fixtures.py [--source ../shared/data/cu_k_edge_feff_omnixas]

Copies, byte for byte, the POSCAR and every ``FEFF-XANES/<site>_Cu/{feff.inp,xmu.dat}`` of the
materials in ``MATERIALS``, and writes ``index.csv`` with those materials' rows of the source
index (same columns), and the OmniXAS licence. Small materials were picked: two single-site ones (one from OmniXAS's
train split, one from its val split) and one with three Cu sites.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

MATERIALS = ("mp-1212085", "mp-1211660", "mp-1196135")
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent.parent / "shared" / "data" / "cu_k_edge_feff_omnixas"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=HERE / "data" / "feff")
    args = parser.parse_args()
    with open(args.source / "index.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames
        rows = [row for row in reader if row["material"] in MATERIALS]
    for row in rows:
        xmu = Path(row["xmu_path"])
        for relative in (xmu, xmu.with_name("feff.inp"), Path("Cu", row["material"], "POSCAR")):
            target = args.out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.source / relative, target)
    shutil.copyfile(args.source / "LICENSE-OmniXAS", args.out / "LICENSE-OmniXAS")
    with open(args.out / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} sites of {len(MATERIALS)} materials copied to {args.out}")


if __name__ == "__main__":
    main()
