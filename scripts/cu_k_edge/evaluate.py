"""Figures of a Cu K-edge model file on OmniXAS's validation sites, from the structures.

    PYTHONPATH=. python scripts/cu_k_edge/evaluate.py [MODEL]

(from the repository root, with ../shared beside it; default: the shipped
``xanesnet/model/pretrained/Cu_K_edge.pt``; seconds). Reads every val material's POSCAR,
predicts the val sites with the file's own descriptor (``XanesModel.predict``, periodic
cells), and prints η and MSE on OmniXAS's window (the first 141 points of the model grid)
against the mean training spectrum, and the metrics of shared/spec/metrics.md on the model's
own grid (post-broadening too), as ``train_model.py`` measured them before saving.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from cu_data import MODEL_GRID, load_targets, read_cells, read_sites, split_indices
from train_model import OUTPUT, figures

from xanesnet.model import load_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=OUTPUT)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    if not np.allclose(model.energies, MODEL_GRID):
        raise ValueError(f"{args.model}: not on the Cu model grid of cu_data.MODEL_GRID")
    sites = read_sites()
    y = load_targets(sites, MODEL_GRID)
    parts = split_indices(sites)
    val = [i for i in parts["validation"] if sites[i].split == "val"]
    train_mean = y[np.concatenate([parts["train"], parts["early_stop"]])].mean(axis=0)
    cells = read_cells([sites[i] for i in val])
    materials = list(cells)
    absorbers = {m: [] for m in materials}
    for i in val:
        absorbers[sites[i].material].append(sites[i].site)
    prediction = model.predict(
        [cells[m] for m in materials], [absorbers[m] for m in materials], n_threads=1
    )
    row_of = {(materials[s], int(a)): r for r, (s, a) in enumerate(prediction.index)}
    pred = prediction.spectra[[row_of[(sites[i].material, sites[i].site)] for i in val]]
    out = figures(pred, y[val], train_mean, model.e0, f"Cu K (val, {len(val)} sites)")
    stored = model.metadata.get("validation_metrics", {}).get("omnixas_window")
    print("stored in the file:", json.dumps(stored))
    print("recomputed:        ", json.dumps(out["omnixas_window"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
