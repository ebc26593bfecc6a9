"""Compare descriptor / training options on the inner validation split (``early_stop``).

Each named option trains one network (or a small ensemble) on the ``train`` materials with
the package's training code and prints η on the ``early_stop`` materials (OmniXAS window, the
first 141 points of the model grid), never on ``validation``. Run from the repository root:

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/cu_k_edge/choose_descriptor.py [--kernel] NAME...

``--kernel`` fits Laplacian kernel ridge (package defaults) instead of a network: seconds
instead of minutes, used to screen descriptors before training networks on the best.
``--tanh`` trains tanh networks instead of SiLU (bounded hidden units). Each result also gives
the largest prediction over the val sites' inputs (no val labels): a check for runaway outputs.

Results are appended to /tmp/cu_k_edge_cache/choices.jsonl (docs/model.md holds the table).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from cu_data import CACHE, MODEL_GRID, eta, load_features, load_targets, read_sites, split_indices

from xanesnet import WACSF
from xanesnet.model import KernelConfig, TrainConfig, fit_kernel_ridge, train_ensemble

#: Element families for the element-resolved G2 channels. Cu sites of the Materials Project
#: crystals here are all in oxides (every material holds O), so the channels tell the anions
#: apart and group the cations by chemical family, which generalises to unseen elements.
ALKALI = "Li,Na,K,Rb,Cs"
ALKALINE_EARTH = "Be,Mg,Ca,Sr,Ba"
RARE_EARTH = "Sc,Y,La,Ce,Pr,Nd,Pm,Sm,Eu,Gd,Tb,Dy,Ho,Er,Tm,Yb,Lu,Ac,Th,Pa,U,Np,Pu"
HALOGEN = "F,Cl,Br,I"
CHALCOGEN = "S,Se,Te"
LIGHT_NONMETAL = "H,B,C,N"
NETWORK_FORMER = "Si,P,Ge,As,Sb"
POST_TRANSITION = "Al,Ga,In,Tl,Sn,Pb,Bi"
TRANSITION_3D = "Ti,V,Cr,Mn,Fe,Co,Ni,Zn"
EARLY_TRANSITION_4D5D = "Zr,Nb,Mo,Hf,Ta,W,Re"
LATE_TRANSITION_4D5D = "Ru,Rh,Pd,Ag,Cd,Os,Ir,Pt,Au,Hg"

GROUPS = {
    "g2": ("O", "other"),
    "g6": ("O", f"{HALOGEN},{CHALCOGEN},{LIGHT_NONMETAL}", f"{ALKALI},{ALKALINE_EARTH}",
           RARE_EARTH, "Cu", "other"),
    "g9": ("O", HALOGEN, f"{CHALCOGEN},{LIGHT_NONMETAL}", NETWORK_FORMER, ALKALI,
           ALKALINE_EARTH, RARE_EARTH, "Cu", "other"),
    "g11": ("O", HALOGEN, CHALCOGEN, LIGHT_NONMETAL, NETWORK_FORMER, ALKALI, ALKALINE_EARTH,
            RARE_EARTH, "Cu", TRANSITION_3D, "other"),
    "g12": ("O", HALOGEN, CHALCOGEN, LIGHT_NONMETAL, NETWORK_FORMER, POST_TRANSITION, ALKALI,
            ALKALINE_EARTH, RARE_EARTH, "Cu", TRANSITION_3D, "other"),
    "g15": ("O", "F", "Cl,Br,I", CHALCOGEN, "H", "B,C,N", "Si,Ge", "P,As,Sb", POST_TRANSITION,
            "Li", "Na,K,Rb,Cs", ALKALINE_EARTH, RARE_EARTH, "Cu", TRANSITION_3D, "other"),
    "g14": ("O", HALOGEN, CHALCOGEN, LIGHT_NONMETAL, NETWORK_FORMER, POST_TRANSITION, ALKALI,
            ALKALINE_EARTH, RARE_EARTH, "Cu", TRANSITION_3D, EARLY_TRANSITION_4D5D,
            LATE_TRANSITION_4D5D, "other"),
}  # fmt: skip

BASE = {"r_min": 0.0, "r_max": 6.0, "n_g2": 32, "n_g4": 64, "zetas": (1.0, 2.0, 4.0, 8.0)}
OPTIONS: dict[str, dict] = {
    "r6_g2": {"g2_element_groups": GROUPS["g2"]},
    "r6_g6": {"g2_element_groups": GROUPS["g6"]},
    "r6_g9": {"g2_element_groups": GROUPS["g9"]},
    "r6_g11": {"g2_element_groups": GROUPS["g11"]},
    "r6_g12": {"g2_element_groups": GROUPS["g12"]},
    "r7_g12": {"r_max": 7.0, "g2_element_groups": GROUPS["g12"]},
    "r7_g14": {"r_max": 7.0, "g2_element_groups": GROUPS["g14"]},
    "r7_g15": {"r_max": 7.0, "g2_element_groups": GROUPS["g15"]},
    "r7_g15_centred": {
        "r_max": 7.0,
        "g2_parameterisation": "centred",
        "g2_element_groups": GROUPS["g15"],
    },
    "r7_g15_rmin1": {"r_min": 1.0, "r_max": 7.0, "g2_element_groups": GROUPS["g15"]},
    "r7_g15_n24": {"r_max": 7.0, "n_g2": 24, "g2_element_groups": GROUPS["g15"]},
    "r7_g15_n16": {"r_max": 7.0, "n_g2": 16, "g2_element_groups": GROUPS["g15"]},
    "r7_g15_n12": {"r_max": 7.0, "n_g2": 12, "g2_element_groups": GROUPS["g15"]},
    "r7_g15_n8": {"r_max": 7.0, "n_g2": 8, "g2_element_groups": GROUPS["g15"]},
    "r7_g12_n24": {"r_max": 7.0, "n_g2": 24, "g2_element_groups": GROUPS["g12"]},
    "r7_g9": {"r_max": 7.0, "g2_element_groups": GROUPS["g9"]},
    "r8_g9": {"r_max": 8.0, "g2_element_groups": GROUPS["g9"]},
    "r8_g9_n48": {"r_max": 8.0, "n_g2": 48, "g2_element_groups": GROUPS["g9"]},
    "r8_g11": {"r_max": 8.0, "g2_element_groups": GROUPS["g11"]},
    "r7_g11": {"r_max": 7.0, "g2_element_groups": GROUPS["g11"]},
    "r7_g11_fine": {
        "r_max": 7.0,
        "g2_element_groups": GROUPS["g11"],
        "g2_extra_grids": ((1.0, 3.5, 24),),
    },
    "r7_g11_g4z1": {"r_max": 7.0, "zetas": (1.0,), "n_g4": 32, "g2_element_groups": GROUPS["g11"]},
    "r7_g11_g4_128": {"r_max": 7.0, "n_g4": 128, "g2_element_groups": GROUPS["g11"]},
}

TRAIN = TrainConfig(
    network={"hidden": [512, 512], "activation": "silu", "dropout": 0.1},
    epochs=150,
    batch_size=32,
    learning_rate=1e-3,
    weight_decay=0.05,
    schedule="onecycle",
    loss="huber",
    restore_best=False,
)


def run(name: str, n_members: int = 1, kernel: bool = False) -> dict:
    sites = read_sites()
    descriptor = WACSF(**{**BASE, **OPTIONS[name]})
    x = load_features(sites, descriptor)
    y = load_targets(sites, MODEL_GRID)
    parts = split_indices(sites)
    train, inner = parts["train"], parts["early_stop"]
    started = time.perf_counter()
    if kernel:  # seconds: a quick screen of descriptors
        model = fit_kernel_ridge(x[train], y[train], KernelConfig())
        with torch.no_grad():
            pred = model(torch.as_tensor(x[inner], dtype=torch.float32)).numpy()
    else:
        ensemble, _ = train_ensemble(
            x[train], y[train], None, None, replace(TRAIN, n_members=n_members)
        )
        with torch.no_grad():
            pred = ensemble(torch.as_tensor(x[inner], dtype=torch.float32))[0].numpy()
    result = {
        "name": name,
        "model": "kernel ridge"
        if kernel
        else f"{n_members} x 2x512 {TRAIN.network.activation}, {TRAIN.epochs} epochs",
        "n_features": descriptor.n_features,
        "seconds": round(time.perf_counter() - started, 1),
        **eta(pred[:, :141], y[inner, :141], y[train, :141].mean(axis=0)),
    }
    # robustness on inputs only (no val labels): largest prediction over the val sites
    val = [i for i in parts["validation"] if sites[i].split == "val"]
    with torch.no_grad():
        xv = torch.as_tensor(x[val], dtype=torch.float32)
        out = model(xv) if kernel else ensemble(xv)[0]
    result["max_pred_val_inputs"] = float(out.abs().max())
    result["max_train_target"] = float(np.abs(y[train]).max())
    with open(CACHE / "choices.jsonl", "a") as handle:
        handle.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    torch.set_num_threads(1)
    if "--tanh" in sys.argv:  # bounded hidden units: no runaway output for far-out inputs
        TRAIN = replace(TRAIN, network={"hidden": [512, 512], "activation": "tanh", "dropout": 0.1})
    kernel_only = "--kernel" in sys.argv
    for option in [a for a in sys.argv[1:] if not a.startswith("--")]:
        print(json.dumps(run(option, kernel=kernel_only)), flush=True)
