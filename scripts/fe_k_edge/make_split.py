"""Write the fixed train/validation split of the 4079 Fe K-edge training structures.

    python scripts/fe_k_edge/make_split.py [--data ../shared/data/fe_k_edge/xanesnet_2022_preconv]

A seeded permutation (numpy default_rng(2024)) of the sorted structure names; the first fifth
(815) is the validation set. Every figure the project reports uses this split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 2024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    default = HERE.parents[2] / "shared" / "data" / "fe_k_edge" / "xanesnet_2022_preconv"
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args(argv)
    xyz = {p.stem for p in (args.data / "xyz_train").glob("*.xyz")}
    xanes = {p.stem for p in (args.data / "xanes_train").glob("*.txt")}
    names = sorted(xyz & xanes)
    order = np.random.default_rng(SEED).permutation(len(names))
    n_val = len(names) // 5
    split = {
        "description": f"Fe K-edge xanesnet_2022_preconv: seeded split (default_rng({SEED})), "
        f"{len(names) - n_val} train / {n_val} validation",
        "seed": SEED,
        "train": sorted(names[i] for i in order[n_val:]),
        "validation": sorted(names[i] for i in order[:n_val]),
    }
    (HERE / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    print(f"{len(split['train'])} train, {len(split['validation'])} validation -> split.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
