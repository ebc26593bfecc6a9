"""Attach the fitted uncertainty calibration and domain score to the shipped Fe K-edge models.

    python scripts/fe_k_edge/attach_calibration.py [--check]

Reads ``calibration.json`` (one entry per variant: default, ensemble, fast; written by
``calibrate.py``) and ``domain.json`` (shared by the three variants, which have one descriptor
and one training set; written by ``domain_check.py``) and ``latent.json`` (the default's
latent distance, whose predicted Δμ needs it; written by ``calibrate.py --latent``) beside
this script, and rewrites each shipped model file with the metadata entries
``"uncertainty_calibration"``, ``"domain"`` and (default) ``"latent_distance"`` (:func:`xanesnet.model.update_model_metadata`: networks copied unchanged,
checksum recomputed). The predictions of every file on the packaged example structures are
compared before and after: they must be bit-identical. ``--check`` only reports whether the
files already carry the current entries.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import xanesnet
from xanesnet.model import update_model_metadata
from xanesnet.model.calibration import CalibratedUncertainty
from xanesnet.model.domain import DomainScore
from xanesnet.model.latent import LatentDistance
from xanesnet.model.pretrained import default_model_path

HERE = Path(__file__).resolve().parent
EXAMPLES = Path(xanesnet.__file__).resolve().parent / "examples" / "fe_k_edge"
VARIANTS = ("default", "ensemble", "fast")
LATENT_VARIANTS = ("default",)  # the variants whose calibration uses latent.json


def example_predictions(variant: str) -> tuple[np.ndarray, np.ndarray]:
    from xanesnet.io import read_structures

    model = xanesnet.default_model("Fe", "K", variant)
    structures = list(read_structures(sorted(EXAMPLES.glob("*.xyz"))))
    features, _ = model.descriptor.compute(structures, 0, n_threads=1)
    return model.predict_features(features, n_threads=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, write nothing")
    args = parser.parse_args()
    calibration = json.loads((HERE / "calibration.json").read_text())
    domain = json.loads((HERE / "domain.json").read_text())
    DomainScore.from_metadata(domain)  # refuse to attach an invalid entry
    latent_path = HERE / "latent.json"
    latent = json.loads(latent_path.read_text()) if latent_path.exists() else None
    if latent is not None:
        LatentDistance.from_metadata(latent)
    stale = 0
    for variant in VARIANTS:
        entry = calibration[variant]
        if CalibratedUncertainty.from_metadata(entry).needs_distance and (
            latent is None or variant not in LATENT_VARIANTS
        ):
            print(f"{variant}: its calibration needs latent.json", file=sys.stderr)
            return 1
        entries = {"uncertainty_calibration": entry, "domain": domain}
        if variant in LATENT_VARIANTS and latent is not None:
            entries["latent_distance"] = latent
        path = default_model_path("Fe", "K", variant)
        meta = xanesnet.default_model("Fe", "K", variant).metadata
        current = all(meta.get(key) == value for key, value in entries.items())
        print(f"{variant}: {path.name} {'up to date' if current else 'to update'}")
        if current or args.check:
            stale += not current
            continue
        before = example_predictions(variant)
        update_model_metadata(path, path, entries)
        after = example_predictions(variant)
        if not all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
            print(f"{variant}: predictions changed after attaching", file=sys.stderr)
            return 1
        print(f"{variant}: attached; example predictions bit-identical; "
              f"{path.stat().st_size / 1e6:.2f} MB")  # fmt: skip
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
