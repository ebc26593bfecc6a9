"""The absorber contract between a model and the structures it is run on.

A model predicts the spectra of one element's edge, so its sites must be atoms of that
element: :func:`resolve_absorber` makes the model's element the default absorber and refuses
another element outright; :func:`check_absorber_elements` refuses, structure by structure, an
atom index (or index list) selecting an atom of another element, and sets apart the structures
without any atom of the element ("no sites": nothing to predict there, which is not a failure).
:func:`element_sites` is :func:`~xanesnet.descriptors.sites.compute_sites` under that contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from xanesnet.descriptors.packing import id_labels
from xanesnet.descriptors.sites import compute_sites
from xanesnet.frames import Frames

__all__ = [
    "AbsorberCheck",
    "ElementSites",
    "check_absorber_elements",
    "element_sites",
    "refuse_other_elements",
    "resolve_absorber",
    "structures_with_sites",
]

Absorber = int | str | Sequence[Sequence[int]]


def resolve_absorber(absorber: Absorber | None, element: str, model_label: str) -> Absorber:
    """The absorber a model runs with: its element by default; another element is refused.

    Args:
        absorber: None (every site of the model's element), the element symbol, an atom index
            used in every structure, or one index list per structure.
        element: the model's absorbing element.
        model_label: how messages name the model (e.g. "the Fe K-edge model Fe_K_edge.pt").

    Raises:
        ValueError: an element symbol other than ``element``.
    """
    if absorber is None:
        return element
    if isinstance(absorber, str):
        if absorber != element:
            raise ValueError(
                f"absorber {absorber!r}: {model_label} predicts {element} spectra only; "
                f"leave the absorber out (every {element} site) or use a model for {absorber}"
            )
        return absorber
    if isinstance(absorber, (int, np.integer)) and not isinstance(absorber, bool):
        return int(absorber)
    return absorber


@dataclass(frozen=True)
class AbsorberCheck:
    """Which structures break the absorber contract.

    Attributes:
        refused: structure index -> message, for a selected atom of another element.
        no_sites: (n_structures,) bool, structures without any atom of the element (an
            element absorber only).
    """

    refused: dict[int, str]
    no_sites: np.ndarray


def _symbol(number: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[number] if 0 < number < len(chemical_symbols) else f"Z={number}"


def check_absorber_elements(
    numbers: np.ndarray,
    offsets: np.ndarray,
    absorber: Absorber,
    element: str,
    labels: Sequence[str],
    model_label: str,
) -> AbsorberCheck:
    """Check the selected sites' elements against the model's, per structure.

    Indices out of range are left to the input checks of
    :func:`~xanesnet.descriptors.packing.check_structures` (which name them).

    Args:
        numbers: (n_atoms_total,) atomic numbers.
        offsets: (n_structures + 1,) int64 structure offsets into ``numbers``.
        absorber: as returned by :func:`resolve_absorber`.
        element: the model's absorbing element.
        labels: (n_structures,) names of the structures for messages.
        model_label: how messages name the model.
    """
    from ase.data import atomic_numbers

    z = atomic_numbers[element]
    counts = np.diff(offsets)
    n = len(counts)
    refused: dict[int, str] = {}
    no_sites = np.zeros(n, dtype=bool)

    def refuse(s: int, atom: int) -> None:
        found = _symbol(int(numbers[offsets[s] + atom]))
        refused[s] = (
            f"{labels[s]}: site {atom} is {found}, not {element}: {model_label} predicts "
            f"{element} spectra only (leave the absorber out for every {element} site)"
        )

    if isinstance(absorber, str):
        owners = np.searchsorted(offsets, np.nonzero(numbers == z)[0], side="right") - 1
        no_sites = (np.bincount(owners, minlength=n) == 0) & (counts > 0)
    elif isinstance(absorber, int):
        inside = np.nonzero((absorber >= 0) & (absorber < counts))[0]
        wrong = inside[numbers[offsets[inside] + absorber] != z]
        for s in wrong.tolist():
            refuse(s, absorber)
    else:
        for s, chosen in enumerate(absorber) if len(absorber) == n else ():
            atoms = np.asarray(chosen, dtype=np.int64).reshape(-1)
            atoms = atoms[(atoms >= 0) & (atoms < counts[s])]
            wrong = atoms[numbers[offsets[s] + atoms] != z]
            if wrong.size:
                refuse(s, int(wrong[0]))
    return AbsorberCheck(refused, no_sites)


def _check_atoms(
    structures: Sequence[Any], absorber: Absorber, element: str, model_label: str
) -> tuple[AbsorberCheck, list[str]]:
    """:func:`check_absorber_elements` of ``ase.Atoms``, and their names for messages."""
    from xanesnet.descriptors.packing import structure_label

    counts = np.fromiter((len(a) for a in structures), dtype=np.int64, count=len(structures))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    numbers = np.concatenate([a.numbers for a in structures])
    labels = [structure_label(a, s) for s, a in enumerate(structures)]
    check = check_absorber_elements(numbers, offsets, absorber, element, labels, model_label)
    return check, labels


def structures_with_sites(
    structures: Sequence[Any], absorber: Absorber, element: str, model_label: str
) -> np.ndarray:
    """Positions of the structures that have sites under the contract (``model.predict``).

    Args:
        structures: ``ase.Atoms``.
        absorber: as returned by :func:`resolve_absorber`.
        element, model_label: the model's element and how messages name the model.

    Returns:
        (n_kept,) int64 positions, in order: every structure but those without a site of
        ``element`` (an element absorber).

    Raises:
        ValueError: a selected atom of another element (the first such structure named), or
            no structure with a site at all.
    """
    if not structures:
        return np.zeros(0, dtype=np.int64)
    check, labels = _check_atoms(structures, absorber, element, model_label)
    if check.refused:
        raise ValueError(check.refused[min(check.refused)])
    if check.no_sites.all():
        more = ", ..." if len(structures) > 1 else ""
        raise ValueError(
            f"no {element} site in the {len(structures)} structure(s) given ({labels[0]}{more}): "
            f"{model_label} predicts {element} spectra only"
        )
    return np.nonzero(~check.no_sites)[0]


def refuse_other_elements(
    structures: Sequence[Any], absorber: int, element: str, model_label: str
) -> None:
    """Raise for the first structure whose atom ``absorber`` is not of the model's element
    (the data-set commands, whose absorber is fixed by the data layout).

    Args:
        structures: ``ase.Atoms`` (``info["id"]`` or ``"name"`` names them in the message).
        absorber: the absorber's atom index in every structure.
        element: the model's absorbing element.
        model_label: how the message names the model.

    Raises:
        ValueError: naming the structure, the site and the model.
    """
    if not structures:
        return
    check, _ = _check_atoms(structures, absorber, element, model_label)
    if check.refused:
        raise ValueError(check.refused[min(check.refused)])


class ElementSites(NamedTuple):
    """Descriptor rows of the sites of a model's element, and the structures set apart.

    Attributes:
        features: (n_sites, n_features) float64.
        ids: (n_sites,) id of each row's structure.
        sites: (n_sites,) int64 atom index of each row's absorber.
        errors: (id, reason) of each structure that failed (refused absorbers included), in
            input order.
        no_sites: ids of the structures without any site of the element, in input order.
    """

    features: np.ndarray
    ids: list[str]
    sites: np.ndarray
    errors: list[tuple[str, str]]
    no_sites: list[str]


def element_sites(
    config: Any,
    element: str,
    frames: Frames,
    absorber: Absorber,
    model_label: str,
    *,
    backend: str | None = None,
    n_threads: int = 0,
) -> ElementSites:
    """:func:`~xanesnet.descriptors.sites.compute_sites` under the absorber contract.

    Args:
        config: the model's descriptor configuration.
        element: the model's absorbing element.
        frames: the structures.
        absorber: as returned by :func:`resolve_absorber`.
        model_label: how messages name the model.
        backend, n_threads: as :func:`~xanesnet.descriptors.sites.compute_sites`.
    """
    if len(frames) == 0:
        empty = compute_sites(config, frames, absorber, backend=backend, n_threads=n_threads)
        return ElementSites(*empty, [])
    check = check_absorber_elements(
        frames.numbers, frames.offsets, absorber, element, id_labels(frames.ids), model_label
    )
    no_site_ids = [frames.ids[s] for s in np.nonzero(check.no_sites)[0].tolist()]
    if not check.refused:
        result = compute_sites(config, frames, absorber, backend=backend, n_threads=n_threads)
        errors = result.errors
        if no_site_ids:  # reported apart, not as failures
            no_site = {int(s) for s in np.nonzero(check.no_sites)[0]}
            errors = _drop_positions(errors, frames.ids, range(len(frames)), no_site)
        return ElementSites(result.features, result.ids, result.sites, errors, no_site_ids)
    keep = np.ones(len(frames), dtype=bool)
    keep[list(check.refused)] = False
    kept_positions = np.nonzero(keep)[0].tolist()
    kept_absorber = (
        absorber if isinstance(absorber, (str, int)) else [absorber[s] for s in kept_positions]
    )
    result = (
        compute_sites(
            config, frames.take(keep), kept_absorber, backend=backend, n_threads=n_threads
        )
        if kept_positions
        else compute_sites(config, Frames.empty(), absorber)
    )
    positioned = [(s, (frames.ids[s], reason)) for s, reason in check.refused.items()]
    positioned += _positions(result.errors, frames.ids, kept_positions)
    errors = [error for _, error in sorted(positioned, key=lambda item: item[0])]
    return ElementSites(result.features, result.ids, result.sites, errors, no_site_ids)


def _positions(
    errors: list[tuple[str, str]], ids: Sequence[str], positions: Sequence[int]
) -> list[tuple[int, tuple[str, str]]]:
    """The input position of each error (errors in input order, matched to ``positions``
    by id in order, so repeated ids are matched one by one)."""
    out, cursor = [], 0
    positions = list(positions)
    for error in errors:
        while cursor < len(positions) and ids[positions[cursor]] != error[0]:
            cursor += 1
        out.append((positions[min(cursor, len(positions) - 1)], error))
        cursor += 1
    return out


def _drop_positions(
    errors: list[tuple[str, str]], ids: Sequence[str], positions: Any, dropped: set[int]
) -> list[tuple[str, str]]:
    return [e for s, e in _positions(errors, ids, positions) if s not in dropped]
