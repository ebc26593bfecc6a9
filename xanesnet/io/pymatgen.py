"""pymatgen input and output (optional dependency: ``pip install "xanesnet[pymatgen]"``).

Structures: pymatgen ``Structure`` (periodic: lattice and ``pbc`` kept) and ``Molecule``
become ``ase.Atoms`` through pymatgen's own :class:`pymatgen.io.ase.AseAtomsAdaptor`, so every
function that takes ``ase.Atoms`` takes them too. Materials Project JSON files (a
``Structure.as_dict()`` / ``Molecule.as_dict()`` document, an MP API document holding it under
``"structure"``, a list of these, or an API response ``{"data": [...]}``) are read with
:mod:`json` and ``from_dict``: never with pickle, so a file cannot run code.

Spectra: :func:`to_pymatgen_xas` turns one predicted site into a
``pymatgen.analysis.xas.spectrum.XAS`` with the absorbing atom's index and element.

pymatgen is imported only when a pymatgen object or file is met: callers that never pass one
never pay for the import.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xanesnet.errors import InputError
from xanesnet.io.ase_files import validate_atoms

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.analysis.xas.spectrum import XAS
    from pymatgen.core import Molecule, Structure

__all__ = [
    "as_atoms",
    "as_atoms_list",
    "holds_pymatgen_structure",
    "is_pymatgen_structure",
    "iter_as_atoms",
    "iter_mp_json",
    "pymatgen_to_atoms",
    "read_mp_json",
    "structure_from_document",
    "to_pymatgen_xas",
    "xas_of_sites",
]

#: Keys of ``Structure.properties`` (or an MP document) tried, in order, for a structure's id.
ID_KEYS = ("id", "material_id", "task_id")


def _require_pymatgen() -> None:
    try:
        import pymatgen.core  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test environment has pymatgen
        raise ImportError(
            'pymatgen input/output needs the optional dependency: pip install "xanesnet[pymatgen]"'
        ) from exc


def is_pymatgen_structure(obj: Any) -> bool:
    """Whether ``obj`` is a pymatgen ``Structure`` or ``Molecule`` (any ``SiteCollection``).

    Does not import pymatgen: an object of a pymatgen class exists only once pymatgen is
    imported.
    """
    if "pymatgen.core" not in sys.modules or not type(obj).__module__.startswith("pymatgen"):
        return False
    from pymatgen.core.structure import SiteCollection

    return isinstance(obj, SiteCollection)


def _id_of(properties: dict[str, Any] | None) -> str | None:
    for key in ID_KEYS:
        value = (properties or {}).get(key)
        if value is not None and str(value):
            return str(value)
    return None


def pymatgen_to_atoms(structure: Structure | Molecule, structure_id: str | None = None) -> Atoms:
    """One pymatgen ``Structure`` / ``Molecule`` as ``ase.Atoms`` (pymatgen's own adaptor).

    Args:
        structure: an ordered pymatgen ``Structure`` (cell and periodicity kept) or
            ``Molecule`` (no cell, not periodic).
        structure_id: the id to set in ``atoms.info["id"]``; by default the first of
            ``structure.properties["id"]``, ``["material_id"]``, ``["task_id"]`` present, else
            none (as for ``ase.Atoms`` without one).

    Returns:
        ``ase.Atoms`` (positions in Å) whose ``info`` holds ``structure.properties``, the id,
        and for a ``Molecule`` its total ``"charge"`` (unless the properties give one), as the
        descriptor's ``use_charge`` reads it. The spin multiplicity is kept as
        ``info["spin_multiplicity"]``, not converted into the descriptor's ``"spin"``.

    Raises:
        InputError: a disordered structure (partial occupancies), naming the structure.
    """
    _require_pymatgen()
    from pymatgen.core import Molecule
    from pymatgen.io.ase import AseAtomsAdaptor

    label = structure_id or _id_of(structure.properties) or structure.composition.reduced_formula
    if not structure.is_ordered:
        raise InputError(
            f"{label}: a disordered structure (partial occupancies) has no single set of "
            "atoms; order it first (e.g. pymatgen's OrderDisorderedStructureTransformation)",
            structure_id=label,
        )
    atoms = AseAtomsAdaptor.get_atoms(structure, msonable=False)
    info = dict(atoms.info)
    if isinstance(structure, Molecule):
        info.setdefault("charge", float(structure.charge))
        info.setdefault("spin_multiplicity", int(structure.spin_multiplicity))
    chosen = structure_id if structure_id is not None else _id_of(structure.properties)
    if chosen is not None:
        info["id"] = chosen
    atoms.info = info
    return atoms


def as_atoms(obj: Any, structure_id: str | None = None) -> Atoms:
    """``ase.Atoms`` as they are; a pymatgen structure converted (:func:`pymatgen_to_atoms`).

    Raises:
        TypeError: anything else.
    """
    from ase import Atoms

    if isinstance(obj, Atoms):
        return obj
    if is_pymatgen_structure(obj):
        return pymatgen_to_atoms(obj, structure_id)
    raise TypeError(
        f"structures: expected ase.Atoms or a pymatgen Structure/Molecule, got {type(obj).__name__}"
    )


def iter_as_atoms(structures: Iterable[Any]) -> Iterator[Any]:
    """The items of ``structures`` lazily, pymatgen structures converted to ``ase.Atoms``
    and everything else passed on unchanged (for the caller to check)."""
    for item in structures:
        yield pymatgen_to_atoms(item) if is_pymatgen_structure(item) else item


def as_atoms_list(structures: Any) -> list[Any]:
    """One structure or an iterable of them as a list, pymatgen structures converted.

    Args:
        structures: one ``ase.Atoms`` or pymatgen ``Structure``/``Molecule``, or an iterable
            (list, generator) of them.

    Returns:
        A list; ``ase.Atoms`` are the caller's own objects, not copies.

    Raises:
        TypeError: ``structures`` is neither a structure nor an iterable (a path string is
            refused too: read files with :func:`xanesnet.read_structures`).
    """
    from ase import Atoms

    if isinstance(structures, Atoms):
        return [structures]
    if is_pymatgen_structure(structures):
        return [pymatgen_to_atoms(structures)]
    if isinstance(structures, (str, bytes, os.PathLike)) or not isinstance(structures, Iterable):
        raise TypeError(
            "structures: expected ase.Atoms, a pymatgen Structure/Molecule or an iterable of "
            f"them, got {type(structures).__name__} (read files with xanesnet.read_structures)"
        )
    return list(iter_as_atoms(structures))


# -- Materials Project JSON -------------------------------------------------------------------


def _is_site_collection_dict(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("sites"), list)


def _documents(data: Any) -> list[Any] | None:
    """The structure documents of a loaded JSON value, or None if it holds none."""
    if isinstance(data, dict) and isinstance(data.get("data"), list):  # an MP API response
        data = data["data"]
    items = data if isinstance(data, list) else [data]
    if not items:
        return None
    for item in items:
        if not (
            _is_site_collection_dict(item)
            or (isinstance(item, dict) and _is_site_collection_dict(item.get("structure")))
        ):
            return None
    return items


def structure_from_document(document: dict[str, Any], source: str = "") -> Structure | Molecule:
    """A pymatgen ``Structure``/``Molecule`` from one JSON document.

    Args:
        document: ``Structure.as_dict()`` / ``Molecule.as_dict()`` output, or a Materials
            Project document holding one under ``"structure"`` (its ``material_id`` /
            ``task_id`` are copied into the structure's ``properties`` unless present).
        source: the file it came from, for error messages.

    Raises:
        InputError: the document is not a structure, or pymatgen refuses it; naming ``source``.
    """
    _require_pymatgen()
    from pymatgen.core import Molecule, Structure

    where = source or "JSON document"
    body = document.get("structure", document) if isinstance(document, dict) else None
    if not _is_site_collection_dict(body):
        raise InputError(
            f"{where}: not a structure: expected a pymatgen Structure/Molecule dict (with "
            "'sites') or a Materials Project document with a 'structure'",
            source=source or None,
        )
    # a Structure has a lattice; a Molecule has none ("@class" may be absent in hand-made files)
    cls = Structure if "lattice" in body else Molecule
    try:
        structure = cls.from_dict(body)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(
            f"{where}: invalid pymatgen {cls.__name__} dict: {type(exc).__name__}: {exc}",
            source=source or None,
        ) from exc
    if body is not document:
        for key in ID_KEYS[1:]:
            if document.get(key) is not None:
                structure.properties.setdefault(key, str(document[key]))
    return structure


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})", source=path, line=exc.lineno
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 JSON text file", source=path) from exc


def holds_pymatgen_structure(path: str | os.PathLike) -> bool:
    """Whether a ``.json`` file holds pymatgen/Materials Project structures (as
    :func:`read_mp_json` reads them) rather than, e.g., an ASE JSON database. Reads the file;
    False for anything unreadable (the file's own reader then reports it)."""
    try:
        return _documents(_load_json(os.fspath(path))) is not None
    except (OSError, InputError):
        return False


def iter_mp_json(path: str | os.PathLike) -> Iterator[Atoms]:
    """The structures of a Materials Project / pymatgen JSON file as ``ase.Atoms``.

    Ids (``atoms.info["id"]``): the document's ``material_id`` (or ``task_id``, or the
    structure's ``properties["id"]``), else the file stem, with ``:<n>`` (0-based position)
    appended for files holding several structures; ``info["source"]`` is the path.

    Raises:
        InputError: invalid JSON (naming the line), JSON that holds no structure, or a
            document pymatgen refuses; always naming the file.
    """
    path = os.fspath(path)
    data = _load_json(path)
    documents = _documents(data)
    if documents is None:
        kind = type(data).__name__
        keys = f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else ""
        raise InputError(
            f"{path}: not a structure file: expected a pymatgen Structure/Molecule JSON "
            f"(Structure.as_dict()) or a Materials Project document with a 'structure' key "
            f"(or a list of them); found a JSON {kind}{keys}",
            source=path,
        )
    stem = Path(path).stem
    for n, document in enumerate(documents):
        structure = structure_from_document(document, path)
        fallback = stem if len(documents) == 1 else f"{stem}:{n}"
        atoms = pymatgen_to_atoms(structure, _id_of(structure.properties) or fallback)
        validate_atoms(atoms, f"{path}: structure {n}", None, source=path)
        atoms.info["source"] = path
        yield atoms


def read_mp_json(path: str | os.PathLike) -> list[Atoms]:
    """All structures of a Materials Project / pymatgen JSON file (see :func:`iter_mp_json`)."""
    return list(iter_mp_json(path))


# -- spectra as pymatgen XAS ---------------------------------------------------------------------


def _as_pymatgen(structure: Any) -> Structure | Molecule:
    if is_pymatgen_structure(structure):
        return structure
    _require_pymatgen()
    from pymatgen.io.ase import AseAtomsAdaptor

    if any(structure.pbc):
        return AseAtomsAdaptor.get_structure(structure)
    return AseAtomsAdaptor.get_molecule(structure, charge_spin_check=False)


def _site_atom(prediction: Any, site: int) -> int:
    """The atom index of row ``site`` of an in-memory ``Prediction`` (``index``) or a stored
    one (``sites``)."""
    index = getattr(prediction, "index", None)
    if index is not None:
        return int(index[site][1])
    return int(prediction.sites[site])


def to_pymatgen_xas(
    prediction: Any, structure: Any, site: int, *, edge: str = "K", spectrum_type: str = "XANES"
) -> XAS:
    """One predicted spectrum as a pymatgen ``XAS``.

    Args:
        prediction: a :class:`xanesnet.model.runtime.Prediction` (or the
            :class:`xanesnet.store.StoredPredictions` of a batch output): ``energies`` (eV)
            and ``spectra`` (n_sites, n_energies).
        structure: the structure of that site (``ase.Atoms`` or pymatgen), converted to a
            pymatgen ``Structure`` (periodic) or ``Molecule``.
        site: row of ``prediction.spectra`` (not the atom index: that is read from the
            prediction).
        edge: absorption edge, "K" for the shipped models (``model.edge``).
        spectrum_type: pymatgen's spectrum type, "XANES".

    Returns:
        ``XAS`` with x = energies (eV), y = μ of that site (float64), ``absorbing_index`` the
        atom index and ``absorbing_element`` its element.

    Raises:
        IndexError: ``site`` outside the prediction.
        ValueError: the prediction's atom index lies outside ``structure``.
    """
    _require_pymatgen()
    import numpy as np
    from pymatgen.analysis.xas.spectrum import XAS

    n_sites = len(prediction.spectra)
    if not -n_sites <= site < n_sites:
        raise IndexError(f"site {site} outside the prediction's {n_sites} sites")
    pmg = _as_pymatgen(structure)
    atom = _site_atom(prediction, site)
    if not 0 <= atom < len(pmg):
        raise ValueError(
            f"site {site}: absorbing atom {atom} outside the structure's {len(pmg)} atoms "
            "(is this the structure the prediction was made for?)"
        )
    return XAS(
        np.asarray(prediction.energies, dtype=np.float64),
        np.asarray(prediction.spectra[site], dtype=np.float64),
        pmg,
        pmg[atom].specie.symbol,
        edge=edge,
        spectrum_type=spectrum_type,
        absorbing_index=atom,
    )


def xas_of_sites(prediction: Any, structures: Any, *, edge: str = "K") -> list[XAS]:
    """Every site of an in-memory prediction as a pymatgen ``XAS`` (in the prediction's order).

    Args:
        prediction: :class:`xanesnet.model.runtime.Prediction` (``index`` (n_sites, 2) =
            (structure position, atom index)).
        structures: the structures given to ``predict`` (one structure or a sequence; a
            consumed generator cannot be replayed: pass a list).
        edge: absorption edge ("K").
    """
    from ase import Atoms

    if isinstance(structures, Atoms) or is_pymatgen_structure(structures):
        structures = [structures]
    if not isinstance(structures, Sequence):
        structures = list(structures)
    converted: dict[int, Any] = {}
    out = []
    for row, position in enumerate(prediction.index[:, 0].tolist()):
        if position >= len(structures):
            raise ValueError(
                f"site {row} belongs to structure {position}, but {len(structures)} structures "
                "were given (pass the list given to predict)"
            )
        if position not in converted:
            converted[position] = _as_pymatgen(structures[position])
        out.append(to_pymatgen_xas(prediction, converted[position], row, edge=edge))
    return out
