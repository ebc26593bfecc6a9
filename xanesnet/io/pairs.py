"""Training pairs: (structure file, absorber index, spectrum file), whatever the layout.

:class:`SpectrumPair` describes one training example; three sources list them:

* :func:`fdmnes_pairs`: the Fe FDMNES layout, a folder of structures (``NAME.xyz``, absorber
  at index 0) and a folder of processed spectra (``NAME.txt``) paired by name;
* :func:`feff_pairs`: FEFF folders as in the OmniXAS Cu data (``<material>/POSCAR``,
  ``<material>/FEFF-XANES/<site>_<El>/xmu.dat``, optional ``index.csv``);
* :func:`table_pairs`: a CSV table of (structure file, spectrum file[, absorber index]).

:func:`read_pair_structure` and :func:`read_pair_spectrum` read one pair (the spectrum on a
given grid); :func:`xanesnet.datasets.load_pairs` makes a training set of them.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "SPECTRUM_FORMATS",
    "SpectrumPair",
    "pair_files",
    "fdmnes_pairs",
    "feff_pairs",
    "table_pairs",
    "training_pairs",
    "detect_spectrum_format",
    "read_pair_structure",
    "read_pair_spectrum",
]


def pair_files(
    xyz_dir: str | os.PathLike, xanes_dir: str | os.PathLike, *, names: Sequence[str] | None = None
) -> list[tuple[str, Path, Path]]:
    """(name, structure path, spectrum path) for every name present in both folders.

    Args:
        xyz_dir: folder of ``NAME.xyz`` structures.
        xanes_dir: folder of ``NAME.txt`` spectra.
        names: restrict to these names (each must exist in both folders).

    Raises:
        FileNotFoundError: a folder is missing, or a requested name lacks a file.
        ValueError: no pairs at all.
    """
    xyz_dir, xanes_dir = Path(xyz_dir), Path(xanes_dir)
    for folder in (xyz_dir, xanes_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder not found: {folder}")
    structures = {p.stem: p for p in xyz_dir.glob("*.xyz")}
    spectra = {p.stem: p for p in xanes_dir.glob("*.txt")}
    if names is None:
        chosen = sorted(set(structures) & set(spectra))
    else:
        chosen = list(names)
        for name in chosen:
            if name not in structures:
                raise FileNotFoundError(f"{xyz_dir}: no structure file {name}.xyz")
            if name not in spectra:
                raise FileNotFoundError(f"{xanes_dir}: no spectrum file {name}.txt")
    if not chosen:
        raise ValueError(f"no structure/spectrum pairs in {xyz_dir} and {xanes_dir}")
    return [(n, structures[n], spectra[n]) for n in chosen]


#: Spectrum file formats: XANESNET processed, raw FDMNES (E0 on line 1), FEFF ``xmu.dat``.
SPECTRUM_FORMATS = ("processed", "fdmnes", "feff")
_FEFF_SITE_FOLDER = re.compile(r"^(\d+)_([A-Z][a-z]?)$")


@dataclass(frozen=True)
class SpectrumPair:
    """One training example: a structure file, the absorber in it, and its spectrum file.

    Attributes:
        name: unique name of the example (e.g. ``"mp-1005792_008"``, or a file stem).
        structure: structure file (anything :func:`xanesnet.io.read_structures` reads, e.g.
            XANESNET xyz or a POSCAR; or a FEFF ``feff.inp`` with ``structure_format="feff"``).
        spectrum: spectrum file.
        absorber: index of the absorbing atom in the structure (0-based).
        spectrum_format: one of :data:`SPECTRUM_FORMATS`.
        structure_format: None to detect, ``"feff"`` for ``feff.inp``, else an ``ase.io`` name.
        group: the unit a split keeps together (the material); None: the name.
        tags: extra text columns of the source (e.g. ``omnixas_split``).
    """

    name: str
    structure: Path
    spectrum: Path
    absorber: int = 0
    spectrum_format: str = "processed"
    structure_format: str | None = None
    group: str | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=False)


def detect_spectrum_format(path: str | os.PathLike) -> str:
    """``"feff"`` (file ``xmu.dat`` or a ``#`` header), ``"fdmnes"`` (line 1 starts with a
    number, the edge energy) or ``"processed"`` (XANESNET's 2 header lines)."""
    path = Path(path)
    if path.name == "xmu.dat":
        return "feff"
    with open(path, errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    if first.lstrip().startswith("#"):
        return "feff"
    try:
        float(first.split()[0])
    except (ValueError, IndexError):
        return "processed"
    return "fdmnes"


def fdmnes_pairs(
    xyz_dir: str | os.PathLike, xanes_dir: str | os.PathLike, *, names: Sequence[str] | None = None
) -> list[SpectrumPair]:
    """Pairs of the Fe FDMNES layout (``NAME.xyz`` + processed ``NAME.txt``, absorber 0)."""
    return [
        SpectrumPair(name, xyz, txt, 0, "processed")
        for name, xyz, txt in pair_files(xyz_dir, xanes_dir, names=names)
    ]


def feff_pairs(
    root: str | os.PathLike, *, names: Sequence[str] | None = None, use_index: bool = True
) -> list[SpectrumPair]:
    """Pairs of FEFF folders laid out as the OmniXAS data.

    With ``root/index.csv`` (columns ``material``, ``site``, ``xmu_path``; ``key`` optional
    as the name; other columns go to ``tags``) its rows are used. Otherwise every
    ``**/FEFF-XANES/<site>_<El>/xmu.dat`` under ``root``: the material is the folder holding
    ``FEFF-XANES``, the site (absorber index in its ``POSCAR``) comes from the folder name.
    The structure is ``<material>/POSCAR`` (periodic cell); without one, the site's
    ``feff.inp`` cluster (absorber at index 0). Names are ``<material>_<site>`` (3 digits).

    Raises:
        FileNotFoundError: ``root`` missing, or a listed file missing (naming index line).
        ValueError: no sites, a malformed index row, duplicate or unknown ``names``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"FEFF data folder not found: {root}")
    index = root / "index.csv"
    pairs: list[SpectrumPair] = []
    if use_index and index.is_file():
        with open(index, newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    site, xmu = int(row["site"]), root / row["xmu_path"]
                    material = row["material"]
                except (KeyError, TypeError, ValueError):
                    raise ValueError(
                        f"{index}, line {line}: expected columns material, site (integer), xmu_path"
                    ) from None
                tags = {k: v for k, v in row.items() if k not in ("material", "site", "xmu_path")}
                name = row.get("key") or f"{material}_{site:03d}"
                pairs.append(_feff_site(xmu, material, site, name, tags, f"{index}, line {line}"))
    else:
        for xmu in sorted(root.glob("**/FEFF-XANES/*/xmu.dat")):
            match = _FEFF_SITE_FOLDER.match(xmu.parent.name)
            if match is None:
                continue
            material, site = xmu.parent.parent.parent.name, int(match.group(1))
            pairs.append(_feff_site(xmu, material, site, f"{material}_{site:03d}", {}, str(xmu)))
    if not pairs:
        raise ValueError(f"{root}: no FEFF sites (no index.csv rows, no FEFF-XANES/*/xmu.dat)")
    return _select(pairs, names, str(root))


def _feff_site(
    xmu: Path, material: str, site: int, name: str, tags: dict[str, str], where: str
) -> SpectrumPair:
    if not xmu.is_file():
        raise FileNotFoundError(f"{where}: no spectrum file {xmu}")
    poscar = xmu.parent.parent.parent / "POSCAR"
    if poscar.is_file():
        return SpectrumPair(name, poscar, xmu, site, "feff", "vasp", material, tags)
    feff_inp = xmu.with_name("feff.inp")
    if not feff_inp.is_file():
        raise FileNotFoundError(f"{where}: neither {poscar} nor {feff_inp} exists")
    return SpectrumPair(name, feff_inp, xmu, 0, "feff", "feff", material, tags)


def _select(
    pairs: list[SpectrumPair], names: Sequence[str] | None, where: str
) -> list[SpectrumPair]:
    by_name: dict[str, SpectrumPair] = {}
    for pair in pairs:
        if pair.name in by_name:
            raise ValueError(f"{where}: name {pair.name!r} appears twice")
        by_name[pair.name] = pair
    if names is None:
        return pairs
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{where}: names not in the data: {missing[:5]}")
    return [by_name[n] for n in names]


def table_pairs(
    table: str | os.PathLike, *, names: Sequence[str] | None = None
) -> list[SpectrumPair]:
    """Pairs from a CSV table with a header row.

    Columns: ``structure`` and ``spectrum`` (paths, relative to the table's folder unless
    absolute), optional ``absorber`` (index, default 0), ``name`` (default: the structure
    file's stem, plus ``_<absorber>`` when it is not 0), ``group``, ``spectrum_format``
    (default: :func:`detect_spectrum_format`), ``structure_format``. Other columns go to
    ``tags``.

    Raises:
        FileNotFoundError: the table or a listed file is missing (naming the line).
        ValueError: a missing column, a bad absorber or format, duplicate names.
    """
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"pair table not found: {table}")
    known = {"structure", "spectrum", "absorber", "name", "group", "spectrum_format"}
    known.add("structure_format")
    pairs = []
    with open(table, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"structure", "spectrum"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{table}: missing column(s) {sorted(missing)} in the header row")
        for line, row in enumerate(reader, start=2):
            where = f"{table}, line {line}"
            structure, spectrum = (table.parent / row[k].strip() for k in ("structure", "spectrum"))
            for path in (structure, spectrum):
                if not path.is_file():
                    raise FileNotFoundError(f"{where}: file not found: {path}")
            try:
                absorber = int(row.get("absorber") or 0)
            except ValueError:
                raise ValueError(
                    f"{where}: absorber {row['absorber']!r} is not an integer"
                ) from None
            if absorber < 0:
                raise ValueError(f"{where}: negative absorber index {absorber}")
            spectrum_format = row.get("spectrum_format") or detect_spectrum_format(spectrum)
            if spectrum_format not in SPECTRUM_FORMATS:
                raise ValueError(
                    f"{where}: spectrum_format {spectrum_format!r} not one of {SPECTRUM_FORMATS}"
                )
            default_name = structure.stem + (f"_{absorber}" if absorber else "")
            tags = {k: v for k, v in row.items() if k not in known and v is not None}
            pairs.append(
                SpectrumPair(
                    name=row.get("name") or default_name,
                    structure=structure,
                    spectrum=spectrum,
                    absorber=absorber,
                    spectrum_format=spectrum_format,
                    structure_format=row.get("structure_format") or None,
                    group=row.get("group") or None,
                    tags=tags,
                )
            )
    if not pairs:
        raise ValueError(f"{table}: no rows")
    return _select(pairs, names, str(table))


def training_pairs(
    source: str | os.PathLike | tuple[str | os.PathLike, str | os.PathLike],
    *,
    names: Sequence[str] | None = None,
) -> list[SpectrumPair]:
    """Pairs from any supported source: ``(xyz_dir, xanes_dir)`` (FDMNES layout), a ``.csv``
    table (:func:`table_pairs`) or a FEFF data folder (:func:`feff_pairs`)."""
    if isinstance(source, tuple):
        return fdmnes_pairs(*source, names=names)
    path = Path(source)
    if path.is_file():
        return table_pairs(path, names=names)
    return feff_pairs(path, names=names)


def read_pair_structure(pair: SpectrumPair) -> Atoms:
    """The pair's structure (one frame), its absorber checked to exist.

    Raises:
        ValueError: naming the file: not exactly one structure in it, or the absorber index
            out of range.
    """
    if pair.structure_format == "feff":
        from xanesnet.io.feff import read_feff_inp

        frames = [read_feff_inp(pair.structure)]
    else:
        from xanesnet.io.read import read_structures

        frames = list(read_structures([pair.structure], format=pair.structure_format))
    if len(frames) != 1:
        raise ValueError(f"{pair.structure}: {len(frames)} structures, expected exactly one")
    atoms = frames[0]
    if not 0 <= pair.absorber < len(atoms):
        raise ValueError(
            f"{pair.structure}: absorber index {pair.absorber} out of range ({len(atoms)} atoms)"
        )
    atoms.info["id"] = pair.name
    return atoms


def read_pair_spectrum(
    pair: SpectrumPair,
    energies: np.ndarray,
    *,
    relative: bool = False,
    feff_target: str = "mu",
) -> np.ndarray:
    """The pair's spectrum linearly interpolated onto ``energies`` (constant beyond the data).

    Args:
        energies: (m,) eV, absolute, or relative to the spectrum's edge energy if ``relative``
            (E0 of the FDMNES header or FEFF's ``omega - e``; processed files carry no E0
            and are refused).
        feff_target: FEFF only: ``"mu"`` (FEFF's normalised μ) or ``"omnixas"`` (OmniXAS's
            y = 1000 · μ · xsedge / a0², rows with μ > 0; see
            :func:`xanesnet.spectra.omnixas_target`).

    Returns:
        (m,) float64.
    """
    from xanesnet import spectra

    grid = np.asarray(energies, dtype=np.float64)
    if pair.spectrum_format == "feff":
        from xanesnet.io.feff import read_xmu

        xmu = read_xmu(pair.spectrum)
        if feff_target == "omnixas":
            return spectra.omnixas_target(xmu, grid + xmu.e0 if relative else grid)
        if feff_target != "mu":
            raise ValueError(f"feff_target must be 'mu' or 'omnixas', got {feff_target!r}")
        return spectra.resample_feff(xmu, grid, relative=relative)
    if pair.spectrum_format == "fdmnes":
        e0, e, mu = spectra.read_fdmnes_spectrum(pair.spectrum)
        return spectra.resample(e - e0 if relative else e, mu, grid)
    if pair.spectrum_format != "processed":
        raise ValueError(f"{pair.spectrum}: unknown spectrum format {pair.spectrum_format!r}")
    if relative:
        raise ValueError(f"{pair.spectrum}: a processed spectrum has no edge energy; use absolute")
    e, mu = spectra.read_processed_spectrum(pair.spectrum)
    if e.shape == grid.shape and np.allclose(e, grid, atol=6e-3):
        return mu
    return spectra.resample(e, mu, grid)
