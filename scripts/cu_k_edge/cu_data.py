"""Cu K-edge FEFF data (OmniXAS tutorial set): sites, targets, split and cached descriptors.

Shared by the scripts of this folder (run them from the repository root, with ../shared beside
it). Targets follow OmniXAS's definition (see docs/model.md, "Cu K-edge"): the rows of
``xmu.dat`` with μ > 0, scaled to y = 1000 · μ · xsedge / a0² (xsedge from the file header,
a0 the Bohr radius in Å), linearly interpolated on ``omega`` (absolute photon energy, eV) onto
a uniform grid; beyond the first / last row the end value is held (``numpy.interp``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xanesnet.io.feff import read_xmu as read_feff_xmu

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cu_k_edge_feff_omnixas"
SPLIT = Path(__file__).resolve().parent / "split.json"
CACHE = Path("/tmp/cu_k_edge_cache")

#: Bohr radius in Å (CODATA 2018).
BOHR_ANGSTROM = 0.529177210903
#: OmniXAS's Cu window: 141 points, 8983.173 ... 9018.173 eV in 0.25 eV steps.
OMNIXAS_GRID = 8983.173 + 0.25 * np.arange(141)
#: The shipped model's grid: OmniXAS's window continued to +75 eV (301 points, 8983.173 ...
#: 9058.173 eV), about -13 ... +62 eV around the Fermi level of a typical site; its first 141
#: points are OmniXAS's window, so η needs no interpolation of predictions.
MODEL_GRID = 8983.173 + 0.25 * np.arange(301)


@dataclass(frozen=True)
class Site:
    material: str
    site: int  # absorber index in POSCAR
    split: str  # OmniXAS split: train / val / -
    xmu_path: Path


def read_sites() -> list[Site]:
    """Rows of index.csv."""
    with open(DATA / "index.csv", newline="") as handle:
        return [
            Site(row["material"], int(row["site"]), row["omnixas_split"], DATA / row["xmu_path"])
            for row in csv.DictReader(handle)
        ]


def read_xmu(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(omega eV, mu, xsedge) of a FEFF xmu.dat (the package reader)."""
    spectrum = read_feff_xmu(path)
    if spectrum.xsedge is None:
        raise ValueError(f"{path}: no 'xsedge+ 50' line in the header")
    return spectrum.omega, spectrum.mu, spectrum.xsedge


def read_e0(path: Path) -> float:
    """FEFF's edge energy of a site (omega at e = 0), eV."""
    return float(read_feff_xmu(path).e0)


def omnixas_target(
    omega: np.ndarray, mu: np.ndarray, xsedge: float, grid: np.ndarray
) -> np.ndarray:
    """y = 1000 · μ · xsedge / a0² on ``grid`` (rows with μ > 0, linear in omega)."""
    keep = mu > 0
    y = 1000.0 * mu[keep] * xsedge / BOHR_ANGSTROM**2
    return np.interp(grid, omega[keep], y)


def load_targets(sites: list[Site], grid: np.ndarray) -> np.ndarray:
    """(n_sites, len(grid)) targets, cached by grid."""
    key = hashlib.sha1(np.asarray(grid, dtype=np.float64).tobytes()).hexdigest()[:12]
    path = CACHE / f"targets_{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    out = np.empty((len(sites), len(grid)))
    for i, site in enumerate(sites):
        out[i] = omnixas_target(*read_xmu(site.xmu_path), grid)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def read_cells(sites: list[Site]) -> dict[str, object]:
    """ase.Atoms of every material's POSCAR (periodic)."""
    from ase.io import read

    cells = {}
    for site in sites:
        if site.material not in cells:
            atoms = read(DATA / "Cu" / site.material / "POSCAR", format="vasp")
            atoms.info["id"] = site.material
            cells[site.material] = atoms
    return cells


def load_features(sites: list[Site], descriptor: object) -> np.ndarray:
    """(n_sites, n_features) descriptors of every site, cached by configuration."""
    text = descriptor.to_json()
    key = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = CACHE / f"features_{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    cells = read_cells(sites)
    materials = list(cells)
    position = {m: i for i, m in enumerate(materials)}
    absorbers: list[list[int]] = [[] for _ in materials]
    for site in sites:
        absorbers[position[site.material]].append(site.site)
    for atoms, idx in zip(cells.values(), absorbers):
        symbols = atoms.get_chemical_symbols()
        if any(symbols[i] != "Cu" for i in idx):
            raise ValueError(f"{atoms.info['id']}: an index.csv site is not a Cu atom")
    features, index = descriptor.compute(list(cells.values()), absorbers)
    row = {(materials[s], int(a)): r for r, (s, a) in enumerate(index)}
    out = features[[row[(site.material, site.site)] for site in sites]]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    (CACHE / f"features_{key}.json").write_text(text)
    return out


def split_indices(sites: list[Site]) -> dict[str, np.ndarray]:
    """Site indices of the split.json parts: "train", "early_stop", "validation"."""
    split = json.loads(SPLIT.read_text())
    part_of = {m: part for part, members in split["materials"].items() for m in members}
    parts: dict[str, list[int]] = {part: [] for part in split["materials"]}
    for i, site in enumerate(sites):
        parts[part_of[site.material]].append(i)
    return {part: np.asarray(idx, dtype=np.int64) for part, idx in parts.items()}


def eta(prediction: np.ndarray, target: np.ndarray, train_mean: np.ndarray) -> dict[str, float]:
    """OmniXAS's η = MSE(mean training spectrum) / MSE(prediction), and both MSEs."""
    mse = float(np.mean((prediction - target) ** 2))
    baseline = float(np.mean((train_mean[None, :] - target) ** 2))
    return {"eta": baseline / mse, "mse": mse, "baseline_mse": baseline}
