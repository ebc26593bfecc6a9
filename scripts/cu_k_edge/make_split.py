"""Write split.json: Cu materials (never sites) into train / early_stop / validation.

validation = the materials of OmniXAS's ``val`` sites (index.csv); the rest are training
materials, of which a seeded 10 % is held out for early stopping and for choosing the
descriptor (the "inner validation" of docs/model.md). Run from the repository root:
``python scripts/cu_k_edge/make_split.py``.
"""

from __future__ import annotations

import json

import numpy as np
from cu_data import SPLIT, read_sites

SEED = 19
EARLY_STOP_FRACTION = 0.10


def main() -> None:
    sites = read_sites()
    # 36 of these materials also have sites outside OmniXAS's splits ("-"): they stay with
    # their material (never trained on); figures on "val" use the val sites only
    val = sorted({s.material for s in sites if s.split == "val"})
    rest = sorted({s.material for s in sites} - set(val))
    order = np.random.default_rng(SEED).permutation(len(rest))
    n_stop = round(EARLY_STOP_FRACTION * len(rest))
    stop = sorted(rest[i] for i in order[:n_stop])
    train = sorted(rest[i] for i in order[n_stop:])
    split = {
        "description": (
            "Cu K-edge FEFF (OmniXAS tutorial set), split by material: validation = the "
            "materials with an omnixas_split 'val' site in index.csv (the figures use those val "
            "sites only); the other materials are for "
            f"training, of which a seeded (numpy default_rng({SEED})) {EARLY_STOP_FRACTION:.0%} "
            "is held out for early stopping and descriptor choice (early_stop)"
        ),
        "seed": SEED,
        "materials": {"train": train, "early_stop": stop, "validation": val},
    }
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")
    counts = {k: len(v) for k, v in split["materials"].items()}
    print(f"wrote {SPLIT}: {counts} materials")


if __name__ == "__main__":
    main()
