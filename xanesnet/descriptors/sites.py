"""Descriptors of the absorbing sites of many structures, with a status per structure.

:func:`compute_sites` is the one place where a batch of structures becomes descriptor rows:
the input checks (:func:`~xanesnet.descriptors.packing.check_structures`) and the kernel
(a status per site) both report per structure, so a structure that fails is set aside with
its reason while the others' rows are kept, and nothing is computed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from xanesnet.descriptors.dispatch import resolve_backend, run_kernel, site_error
from xanesnet.descriptors.packing import OK, PackedBatch, check_structures, id_labels
from xanesnet.frames import Frames

__all__ = ["SiteDescriptors", "compute_sites", "structure_extras"]

#: Per-structure metadata the descriptor may append: (flag on the configuration, keys looked
#: up in ``info`` in this order, what it is).
_EXTRAS = (("use_spin", ("spin", "S"), "total spin"), ("use_charge", ("charge", "q"), "charge"))


class SiteDescriptors(NamedTuple):
    """The descriptor rows of a batch and the structures that failed.

    Attributes:
        features: (n_sites, n_features) float64.
        ids: (n_sites,) id of each row's structure.
        sites: (n_sites,) int64 atom index of each row's absorber within its structure.
        errors: (id, reason) of each structure that failed, in input order.
    """

    features: np.ndarray
    ids: list[str]
    sites: np.ndarray
    errors: list[tuple[str, str]]


def structure_extras(
    config: Any, info: Sequence[dict[str, Any] | None], labels: Sequence[str]
) -> tuple[np.ndarray, dict[int, str]]:
    """The spin/charge columns the configuration asks for, per structure.

    Args:
        config: the descriptor configuration (``use_spin``, ``use_charge``).
        info: (n_structures,) each structure's metadata (``atoms.info``) or None.
        labels: (n_structures,) names for messages.

    Returns:
        values (n_structures, n_extra) float64 and structure index -> reason for each
        structure without a usable value (the first missing or non-numeric one).
    """
    wanted = [(keys, what) for flag, keys, what in _EXTRAS if getattr(config, flag, False)]
    values = np.zeros((len(info), len(wanted)))
    reasons: dict[int, str] = {}
    for column, (keys, what) in enumerate(wanted):
        for s, entry in enumerate(info):
            if s in reasons:
                continue
            entry = entry or {}
            key = next((k for k in keys if k in entry), None)
            if key is None:
                reasons[s] = f"{labels[s]}: descriptor needs the {what} in atoms.info[{keys[0]!r}]"
                continue
            try:
                value = float(entry[key])
            except (TypeError, ValueError, OverflowError):  # 10**400 overflows a float
                value = float("nan")
            if not np.isfinite(value):
                reasons[s] = (
                    f"{labels[s]}: atoms.info[{key!r}] = {str(entry[key])[:40]} is not a finite "
                    "number"
                )
                continue
            values[s, column] = value
    return values, reasons


def _kernel_by_structure(
    config: Any, batch: PackedBatch, backend: str, n_threads: int
) -> tuple[np.ndarray, dict[int, str]]:
    """The kernel run structure by structure, after it failed on the whole batch: (features
    (n_sites, n_features) with zero rows for failed structures, batch structure -> reason)
    for every structure whose sites failed (kernel status or any exception)."""
    n_extras = sum(bool(getattr(config, flag, False)) for flag, _, _ in _EXTRAS)
    features = np.zeros((batch.n_sites, config.n_features - n_extras))  # extras come later
    reasons: dict[int, str] = {}
    bounds = np.searchsorted(batch.site_structures, np.arange(len(batch.labels) + 1))
    for s in range(len(batch.labels)):
        first, last = int(bounds[s]), int(bounds[s + 1])
        if first == last:
            continue
        a, b = int(batch.atom_offsets[s]), int(batch.atom_offsets[s + 1])
        one = PackedBatch(
            positions=batch.positions[a:b],
            numbers=batch.numbers[a:b],
            atom_offsets=np.array([0, b - a], dtype=np.int64),
            cells=batch.cells[s : s + 1],
            pbc=batch.pbc[s : s + 1],
            site_structures=np.zeros(last - first, dtype=np.int64),
            site_atoms=batch.site_atoms[first:last],
            labels=[batch.labels[s]],
        )
        try:
            rows, status, close_pair, value = run_kernel(config, one, backend, n_threads)
        except ValueError:  # the arguments, as for the whole batch
            raise
        except Exception as exc:  # noqa: BLE001 - this structure's failure, whatever it is
            reasons[s] = f"{batch.labels[s]}: descriptor kernel failed: {type(exc).__name__}: {exc}"
            continue
        bad = np.nonzero(status)[0]
        if bad.size:
            k = int(bad[0])
            reasons[s] = site_error(config, one, k, int(status[k]), close_pair[k], float(value[k]))
            continue
        features[first:last] = rows
    return features, reasons


def compute_sites(
    config: Any,
    structures: Frames | Sequence[Any],
    absorber: int | str | Sequence[Sequence[int]],
    *,
    backend: str | None = None,
    n_threads: int = 0,
) -> SiteDescriptors:
    """Descriptors of every absorbing site; structures that fail are reported, not raised.

    Rows are those of ``config.compute`` on the valid structures, bit for bit (one kernel
    call; each site's row depends on its own structure only).

    Args:
        config: a :class:`~xanesnet.WACSF` configuration.
        structures: :class:`~xanesnet.frames.Frames`, or a sequence of ``ase.Atoms``.
        absorber: atom index, element symbol, or one index list per structure.
        backend: "cpp" or "numba"; None: the default backend.
        n_threads: kernel threads (0 = all cores).

    Returns:
        A :class:`SiteDescriptors`; a structure fails for the first of: an input check
        (no atoms, unknown element, non-finite coordinates, bad cell, absorber), a site the
        kernel refuses (e.g. overlapping atoms), a missing spin/charge value.

    Raises:
        ValueError: unknown backend, bad ``n_threads``, or per-structure absorber lists of
            another length than the structures.
    """
    from xanesnet.io.pymatgen import as_atoms_list  # pymatgen structures too

    structures = structures if isinstance(structures, Frames) else as_atoms_list(structures)
    frames = structures if isinstance(structures, Frames) else Frames.from_atoms(structures)
    n_features = config.n_features
    if len(frames) == 0:
        return SiteDescriptors(np.empty((0, n_features)), [], np.empty(0, dtype=np.int64), [])
    checks = check_structures(
        frames.positions,
        frames.numbers,
        frames.offsets,
        frames.cells,
        frames.pbc,
        absorber,
        id_labels(frames.ids),
    )
    reasons = dict(checks.reasons)
    originals = np.nonzero(checks.status == OK)[0]  # kernel structure -> input structure
    kept = frames.take(checks.status == OK) if reasons else frames
    site_structures = np.searchsorted(originals, checks.site_structures)
    features = np.empty((0, n_features))
    site_atoms = checks.site_atoms
    if site_atoms.size:
        batch = PackedBatch(
            positions=kept.positions,
            numbers=kept.numbers,
            atom_offsets=kept.offsets,
            cells=kept.cells,
            pbc=kept.pbc,
            site_structures=np.ascontiguousarray(site_structures, dtype=np.int64),
            site_atoms=site_atoms,
            labels=id_labels(kept.ids),
        )
        backend = resolve_backend(backend)  # warns once when falling back to Numba
        try:
            features, status, close_pair, value = run_kernel(config, batch, backend, n_threads)
        except ValueError:  # the arguments (backend, n_threads): the whole call is wrong
            raise
        except Exception:  # noqa: BLE001 - some structure broke the kernel: find which
            features, failures = _kernel_by_structure(config, batch, backend, n_threads)
            for s, reason in failures.items():
                reasons[int(originals[s])] = reason
        else:
            failed_sites = np.nonzero(status)[0]
            owners, first = np.unique(site_structures[failed_sites], return_index=True)
            for s, site in zip(owners.tolist(), failed_sites[first].tolist(), strict=True):
                reasons[int(originals[s])] = site_error(
                    config, batch, site, int(status[site]), close_pair[site], float(value[site])
                )
        # rows that are not finite (coordinates near the float range) are no descriptor
        for site in np.nonzero(~np.isfinite(features).all(axis=1))[0].tolist():
            s = int(site_structures[site])
            reasons.setdefault(
                int(originals[s]),
                f"{batch.labels[s]}: the descriptor of atom {int(site_atoms[site])} is not "
                "finite (coordinates or cell too large?)",
            )
        if any(getattr(config, flag, False) for flag, _, _ in _EXTRAS):
            extras, missing = structure_extras(config, kept.info, batch.labels)
            for s, reason in missing.items():
                reasons.setdefault(int(originals[s]), reason)
            features = np.concatenate([features, extras[site_structures]], axis=1)
    rows = originals[site_structures]
    if reasons and rows.size:
        good = np.ones(len(frames), dtype=bool)
        good[list(reasons)] = False
        keep = good[rows]
        if not keep.all():
            features, rows, site_atoms = features[keep], rows[keep], site_atoms[keep]
    ids = frames.ids
    return SiteDescriptors(
        features,
        [ids[s] for s in rows.tolist()],
        site_atoms,
        [(ids[s], reasons[s]) for s in sorted(reasons)],
    )
