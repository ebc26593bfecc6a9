"""What predicting each symmetry-unique Cu site once saves on the Cu K-edge crystals.

Runs the shipped Cu K-edge model over the POSCAR cells of ``../shared/data/
cu_k_edge_feff_omnixas`` twice through the batch pipeline, every Cu site and
``unique_sites=True``, and prints the sites predicted and the wall time of each, then checks
that the unique rows expanded to every site of their orbit (``UniqueSites.expand``) equal the
every-site predictions, and the per-structure means the plain mean over every site.

Usage: ``python scripts/cu_k_edge/unique_sites_saving.py [--limit N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from ase.io import read, write

from xanesnet import read_predictions
from xanesnet.descriptors.symmetry import unique_sites
from xanesnet.pipeline.batch import predict_batch

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cu_k_edge_feff_omnixas"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0, help="first N materials (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each setting")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run N x N x N supercells of the cells instead"
    )
    args = parser.parse_args()
    paths = sorted((args.data / "Cu").glob("*/POSCAR"))
    if args.limit:
        paths = paths[: args.limit]
    options = dict(absorber="Cu", chunk_size=args.chunk_size, n_threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.repeat > 1:  # one file per supercell, so that ids stay one per structure
            cells = Path(tmp) / "supercells"
            cells.mkdir()
            for path in paths:
                name = cells / f"{path.parent.name}.extxyz"
                write(name, read(path).repeat(args.repeat), format="extxyz")
            paths = sorted(cells.glob("*.extxyz"))
        # warm-up (model load, compiled kernels) so that neither timing pays for it
        predict_batch([str(p) for p in paths[:4]], Path(tmp) / "warm", progress=False, **options)
        runs, times, summaries = {}, {}, {}
        for repeat in range(args.repeats):  # alternating, best of each: a shared machine
            for name, unique in (("every site", False), ("unique sites", True)):
                folder = Path(tmp) / f"{name.replace(' ', '_')}_{repeat}"
                start = time.perf_counter()
                summaries[name] = predict_batch(
                    [str(p) for p in paths], folder, unique_sites=unique, progress=False, **options
                )
                seconds = time.perf_counter() - start
                times[name] = min(times.get(name, seconds), seconds)
                runs[name] = read_predictions(folder)
        for name, summary in summaries.items():
            print(
                f"{name:>12}: {summary.sites:6d} sites predicted for {summary.structures} "
                f"structures ({summary.failed} failed), {times[name]:7.2f} s wall "
                f"(best of {args.repeats})"
            )
        every, unique = runs["every site"], runs["unique sites"]
        differences: list[float] = []
        n_every = n_unique = 0
        for path in paths:
            atoms = read(path)
            orbits = unique_sites(atoms, "Cu")
            sid = every.ids[n_every]
            rows_every = slice(n_every, n_every + orbits.candidates.size)
            rows_unique = slice(n_unique, n_unique + orbits.n_unique)
            assert (every.ids[rows_every] == sid).all() and (unique.ids[rows_unique] == sid).all()
            assert (every.sites[rows_every] == orbits.candidates).all()
            assert (unique.sites[rows_unique] == orbits.indices).all()
            assert (unique.multiplicity[rows_unique] == orbits.multiplicities).all()
            expanded = orbits.expand(unique.spectra[rows_unique])
            differences.append(float(np.abs(expanded - every.spectra[rows_every]).max()))
            n_every, n_unique = rows_every.stop, rows_unique.stop
        assert n_every == len(every.ids) and n_unique == len(unique.ids)
        plain = np.add.reduceat(every.spectra.astype(np.float64), _starts(every.ids), axis=0)
        counts = np.diff([*_starts(every.ids), len(every.ids)])
        worst_mean = float(np.abs(unique.structure_mean - plain / counts[:, None]).max())
        scale = float(np.abs(every.spectra).max())
        # float32 sums of up to 512 terms in another order: ~4 eps * scale * sqrt(512)
        bound = 4 * float(np.finfo(np.float32).eps) * scale * np.sqrt(512)
        differences_array = np.array(differences)
        above = np.count_nonzero(differences_array > bound)
        print(
            f"expanded unique rows vs every site: max |difference| {differences_array.max():.3g} "
            f"(spectra up to {scale:.3g}; float32 reordering bound {bound:.3g}); "
            f"{above} of {len(paths)} structures above the bound (sites equivalent only within "
            "symprec: their descriptors differ)"
        )
        print(f"structure_mean vs plain mean over every site: max |difference| {worst_mean:.3g}")


def _starts(ids: np.ndarray) -> list[int]:
    """First row of each run of equal consecutive ids."""
    return [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()]


if __name__ == "__main__":
    main()
