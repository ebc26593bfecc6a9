"""Write the fixed train/validation split of the 1439 featurised V K-edge complexes.

    python scripts/v_k_edge/make_split.py [--data ../shared/data/v_k_edge_tmqm_featurised/k_edge_v.npz]

The set has no structure names, so the split lists row indices of ``k_edge_v.npz`` (its
SHA-256 is recorded, so another file is refused). A seeded permutation (numpy
default_rng(2024), as for Fe) of the rows; the first fifth (287) is the validation set. Every V
figure the project reports for the shipped model uses this split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 2024
DEFAULT_DATA = HERE.parents[2] / "shared" / "data" / "v_k_edge_tmqm_featurised" / "k_edge_v.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    with np.load(args.data, allow_pickle=False) as data:
        n_rows = int(data["x"].shape[0])
    order = np.random.default_rng(SEED).permutation(n_rows)
    n_val = n_rows // 5
    split = {
        "description": f"V K-edge tmQM featurised set (k_edge_v.npz rows): seeded split "
        f"(default_rng({SEED})), {n_rows - n_val} train / {n_val} validation",
        "seed": SEED,
        "data": "v_k_edge_tmqm_featurised/k_edge_v.npz",
        "data_sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
        "n_rows": n_rows,
        "train": sorted(int(i) for i in order[n_val:]),
        "validation": sorted(int(i) for i in order[:n_val]),
    }
    (HERE / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    print(f"{len(split['train'])} train, {len(split['validation'])} validation -> split.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
