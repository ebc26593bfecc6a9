"""How many Cu sites of the Cu K-edge crystals are symmetry-unique (issue 19).

Run from the repository root with ../shared beside it::

    OMP_NUM_THREADS=1 python scripts/cu_k_edge/symmetry_saving.py

For every POSCAR of the OmniXAS Cu data and several spglib tolerances: all Cu sites against
symmetry-unique ones (:func:`xanesnet.descriptors.symmetry.unique_sites`), how the sites of
``index.csv`` fall into the orbits, and the largest wACSF difference between members of an
orbit (the error of predicting one representative per orbit).
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from ase.io import read

from xanesnet.descriptors.symmetry import unique_sites
from xanesnet.descriptors.wacsf import WACSF

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cu_k_edge_feff_omnixas"
TOLERANCES = (1e-5, 1e-3, 1e-2, 1e-1)


def main() -> None:
    with open(DATA / "index.csv", newline="") as handle:
        indexed: dict[str, list[int]] = defaultdict(list)
        for row in csv.DictReader(handle):
            indexed[row["material"]].append(int(row["site"]))
    cells = {p.parent.name: read(p, format="vasp") for p in sorted(DATA.glob("Cu/*/POSCAR"))}
    n_cu = sum(int(np.count_nonzero(a.numbers == 29)) for a in cells.values())
    print(
        f"{len(cells)} POSCARs ({len(indexed)} with index.csv sites), {n_cu} Cu sites in them, "
        f"{sum(map(len, indexed.values()))} sites in index.csv"
    )
    descriptor = WACSF()
    features = {}
    for name, atoms in cells.items():
        cu = np.flatnonzero(atoms.numbers == 29)
        features[name] = (
            cu,
            descriptor.compute([atoms], [cu.tolist()], backend="numba", n_threads=1)[0],
        )
    for symprec in TOLERANCES:
        start = time.perf_counter()
        n_unique = shared = uncovered = 0
        worst = 0.0
        for name, atoms in cells.items():
            sites = unique_sites(atoms, "Cu", symprec=symprec)
            n_unique += sites.n_unique
            cu, values = features[name]
            assert np.array_equal(cu, sites.candidates)
            spread = np.abs(values - sites.expand(values[np.searchsorted(cu, sites.indices)]))
            worst = max(worst, float(spread.max() / max(np.abs(values).max(), 1e-300)))
            if name in indexed:
                where = {int(c): k for k, c in enumerate(sites.candidates)}
                orbits = [int(sites.orbit[where[s]]) for s in indexed[name]]
                shared += len(orbits) - len(set(orbits))
                uncovered += sites.n_unique - len(set(orbits))
        seconds = time.perf_counter() - start
        print(
            f"symprec {symprec:g} A: {n_unique} unique Cu sites = {n_unique / n_cu:.1%} of {n_cu} "
            f"({n_cu / n_unique:.2f}x fewer predictions); index.csv sites sharing an orbit: "
            f"{shared}; orbits with no index.csv site: {uncovered}; largest wACSF difference in "
            f"an orbit, relative to the largest value: {worst:.1e}; {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
