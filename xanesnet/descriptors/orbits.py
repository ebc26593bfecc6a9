"""The absorbing sites of a model's element, one per symmetry orbit (crystals).

:func:`unique_element_sites` is :func:`~xanesnet.descriptors.absorbers.element_sites` with every
absorber element's sites grouped into spglib orbits (:mod:`xanesnet.descriptors.symmetry`):
descriptors are computed for each orbit's representative only (its first site), and each row
carries its orbit's size (multiplicity). A structure that is not periodic in all three
directions, or where spglib finds no symmetry, keeps every site (multiplicity 1). Rows, ids,
errors and no-site structures are as :func:`element_sites` gives them, restricted to the
representatives: each representative's row is the row that site gets there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from xanesnet.descriptors.absorbers import ElementSites, element_sites
from xanesnet.descriptors.symmetry import DEFAULT_SYMPREC, unique_sites
from xanesnet.frames import Frames

__all__ = ["UniqueElementSites", "unique_element_sites"]


class UniqueElementSites(NamedTuple):
    """The representatives' descriptor rows and what they stand for.

    Attributes:
        found: the rows, ids, sites (representative atom indices), errors and no-site ids.
        multiplicity: (n_rows,) int64 sites of each row's orbit (sums, per structure, to the
            structure's sites of the element).
        structure: (n_rows,) int64 position of each row's structure among the structures
            with rows (0, 0, 1, 2, 2, ...): rows of one structure are consecutive.
        structure_ids: id of each structure with rows, in input order.
    """

    found: ElementSites
    multiplicity: np.ndarray
    structure: np.ndarray
    structure_ids: list[str]


def _orbits(atoms: Any, element: str, symprec: float) -> tuple[list[int], list[int]]:
    """(representatives, multiplicities) of the element's sites of one structure."""
    try:
        orbits = unique_sites(atoms, element, symprec=symprec)
    except Exception:  # noqa: BLE001 - a broken structure: every site, the descriptor says why
        sites = np.flatnonzero(np.asarray(atoms.get_chemical_symbols()) == element).tolist()
        return sites, [1] * len(sites)
    return orbits.indices.tolist(), orbits.multiplicities.tolist()


def unique_element_sites(
    config: Any,
    element: str,
    frames: Frames,
    model_label: str,
    *,
    symprec: float = DEFAULT_SYMPREC,
    backend: str | None = None,
    n_threads: int = 0,
) -> UniqueElementSites:
    """:func:`~xanesnet.descriptors.absorbers.element_sites` with the element as absorber,
    one row per symmetry orbit of its sites.

    Args:
        config: the model's descriptor configuration.
        element: the model's absorbing element (every site of it is a candidate).
        frames: the structures.
        model_label: how messages name the model.
        symprec: spglib's distance tolerance, Å.
        backend, n_threads: as :func:`~xanesnet.descriptors.sites.compute_sites`.
    """
    from ase.data import atomic_numbers

    counts = frames.counts
    z = atomic_numbers[element]
    owners = np.searchsorted(frames.offsets, np.flatnonzero(frames.numbers == z), side="right") - 1
    n_candidates = np.bincount(owners, minlength=len(frames))
    no_sites = (n_candidates == 0) & (counts > 0)
    keep = ~no_sites
    kept = frames.take(keep) if no_sites.any() else frames
    kept_candidates = n_candidates[keep]
    representatives: list[list[int]] = []
    multiplicities: list[list[int]] = []
    atoms_of = kept.to_atoms() if len(kept) else []
    for s, atoms in enumerate(atoms_of):
        if kept_candidates[s] == 0:  # no atoms at all: the input checks fail it
            representatives.append([])
            multiplicities.append([])
            continue
        if kept_candidates[s] == 1:  # one site: its own orbit, no symmetry search (~1.5 ms)
            chosen, weights = [int(np.flatnonzero(atoms.numbers == z)[0])], [1]
        else:
            chosen, weights = _orbits(atoms, element, symprec)
        representatives.append(chosen)
        multiplicities.append(weights)
    if len(kept):
        found = element_sites(
            config,
            element,
            kept,
            representatives,
            model_label,
            backend=backend,
            n_threads=n_threads,
        )
    else:
        found = element_sites(config, element, kept, element, model_label)
    # the rows of each structure that did not fail are its representatives, in order
    multiplicity = np.zeros(len(found.ids), dtype=np.int64)
    structure = np.zeros(len(found.ids), dtype=np.int64)
    structure_ids: list[str] = []
    cursor = 0
    for s, chosen in enumerate(representatives):
        stop = cursor + len(chosen)
        if (
            chosen
            and stop <= len(found.ids)
            and found.ids[cursor] == kept.ids[s]
            and found.sites[cursor:stop].tolist() == chosen
        ):
            multiplicity[cursor:stop] = multiplicities[s]
            structure[cursor:stop] = len(structure_ids)
            structure_ids.append(kept.ids[s])
            cursor = stop
    if cursor != len(found.ids):  # cannot happen: rows follow the structures' order
        raise RuntimeError("unique sites: descriptor rows do not follow the structures")
    no_site_ids = [frames.ids[s] for s in np.flatnonzero(no_sites).tolist()]
    found = found._replace(no_sites=no_site_ids)
    return UniqueElementSites(found, multiplicity, structure, structure_ids)
