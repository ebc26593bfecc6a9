"""What every output format shares: the manifest, atomic file operations, the format API.

A format ("backend") knows how to write one chunk aside and move it into place atomically, how
to read it back, and how to build the consolidated view at the end. The manifest
(``OUT/manifest.json``, replaced atomically) is the commit point of every chunk, whatever the
format: a chunk on disk that the manifest does not list comes from a killed run and is written
again (identically) on resume.
"""

from __future__ import annotations

import json
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "xanesnet.predictions/1"
FORMATS = ("hdf5", "zarr", "csv")
DEFAULT_FORMAT = "hdf5"
#: folder of an output where folders being written wait (same file system: rename is atomic)
PARTIAL_DIR = ".partial"
#: The per-site trust columns (name, stored dtype): the model's predicted Δμ (%), the
#: out-of-domain score, and the two flags (see :mod:`xanesnet.model.trust`). Outputs started
#: by this version list them in the manifest's ``trust_fields`` and also keep the ids of the
#: structures without any site of the model's element (``no_sites``); older outputs have
#: neither and resume without them.
TRUST_FIELDS: tuple[tuple[str, Any], ...] = (
    ("predicted_delta_mu", np.float32),
    ("domain_score", np.float32),
    ("outside_domain", np.bool_),
    ("unphysical", np.bool_),
)
TRUST_FIELD_NAMES = tuple(name for name, _ in TRUST_FIELDS)


def has_trust(manifest: dict[str, Any]) -> bool:
    """Whether an output's chunks carry the trust columns and the no-site table."""
    return bool(manifest.get("trust_fields"))


def site_column_names(manifest: dict[str, Any]) -> list[str]:
    """The per-site text columns of an output (manifest ``site_columns``): ``source`` (the
    file each site's structure was read from) and ``info.<key>`` for each ``keep_info`` key;
    empty for outputs started before they existed."""
    return [str(name) for name in manifest.get("site_columns") or []]


def has_unique_sites(manifest: dict[str, Any]) -> bool:
    """Whether an output holds one row per symmetry orbit: its chunks carry the per-site
    ``multiplicity`` and the per-structure table ``structure_mean`` (ids + spectrum)."""
    return bool(manifest.get("unique_sites"))


class MissingDependencyError(ImportError, ValueError):
    """An optional package that an output format needs is not installed.

    Also a :class:`ValueError`, so the command-line tools report it as a plain error.
    """


@dataclass(frozen=True)
class StoredPredictions:
    """Everything a prediction output holds.

    Attributes:
        ids: (n_sites,) structure ids (str, object array).
        sites: (n_sites,) int64 atom index of each site in its structure.
        energies: (n_energies,) absolute energies, eV.
        spectra: (n_sites, n_energies) float32 μ.
        spread: (n_sites, n_energies) float32 ensemble standard deviation, or None.
        errors: list of (id, reason) of the structures that failed.
        metadata: the manifest (format, model metadata, inputs, version ...).
        predicted_delta_mu: (n_sites,) float32 expected Δμ (%) of each spectrum (NaN: the
            model has no uncertainty calibration), or None for an output written before
            these columns existed; likewise:
        domain_score: (n_sites,) float32 out-of-domain score (≈ 1 training-like; NaN: the
            model has no domain entry).
        outside_domain: (n_sites,) bool, score above the model's threshold.
        unphysical: (n_sites,) bool, μ < 0 or outside the training spectra's range.
        no_sites: ids of the structures without any site of the model's element (not
            failures; empty for older outputs).
        multiplicity: (n_sites,) int64 number of symmetry-equivalent sites each row stands
            for (a unique-sites job; None otherwise).
        structure_mean_ids: (n_structures,) ids of the structures with sites (unique-sites
            job; None otherwise), and
        structure_mean: (n_structures, n_energies) float32 each one's
            multiplicity-weighted mean spectrum (the mean over all its sites).
        columns: the per-site columns by name (:func:`site_column_names`): ``source``
            (n_sites,) str, the file (or ``<memory>``) of each site's structure, and
            ``info.<key>`` (n_sites,) per kept info key: float64 (NaN where missing) when
            every value given is a number, else str ("" where missing). Empty for outputs
            started before they existed.

    The calibrated σ per energy is not stored (it would add a third (n_sites, n_energies)
    array); it follows from the spread: ``load_model(model).trust_model.calibration
    .sigma(spread)`` with the model of ``metadata["job"]["model_sha256"]``.
    """

    ids: np.ndarray
    sites: np.ndarray
    energies: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray | None
    errors: list[tuple[str, str]]
    metadata: dict[str, Any]
    predicted_delta_mu: np.ndarray | None = None
    domain_score: np.ndarray | None = None
    outside_domain: np.ndarray | None = None
    unphysical: np.ndarray | None = None
    no_sites: list[str] = field(default_factory=list)
    multiplicity: np.ndarray | None = None
    structure_mean_ids: np.ndarray | None = None
    structure_mean: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkData:
    """One chunk's content, normalised.

    Attributes:
        ids: (n,) structure ids (str, object array).
        sites: (n,) int64 atom indices.
        spectra: (n, n_energies) float32 μ.
        spread: (n, n_energies) float32 or None.
        errors: (id, reason) of the chunk's failed structures.
        trust: name -> (n,) column of :data:`TRUST_FIELDS` (their dtypes), or None for an
            output without them.
        no_sites: ids of the chunk's structures without a site of the model's element.
        multiplicity: (n,) int64 sites of each row's symmetry orbit, or None (not a
            unique-sites output).
        mean_ids: (m,) ids of the chunk's structures with sites (unique-sites output), and
        mean_spectra: (m, n_energies) float32 their multiplicity-weighted mean spectra.
        columns: name -> (n,) str (object array) per-site column, or None for an output
            without them (see :func:`site_column_names`).
    """

    ids: np.ndarray
    sites: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray | None
    errors: list[tuple[str, str]]
    trust: dict[str, np.ndarray] | None = None
    no_sites: list[str] = field(default_factory=list)
    multiplicity: np.ndarray | None = None
    mean_ids: np.ndarray | None = None
    mean_spectra: np.ndarray | None = None
    columns: dict[str, np.ndarray] | None = None

    @classmethod
    def build(
        cls,
        ids: Sequence[str] | np.ndarray,
        sites: np.ndarray | Sequence[int],
        spectra: np.ndarray,
        spread: np.ndarray | None,
        errors: Sequence[tuple[str, str]],
        n_energies: int,
        trust: dict[str, Any] | None = None,
        no_sites: Sequence[str] = (),
        multiplicity: np.ndarray | Sequence[int] | None = None,
        structure_mean: tuple[Sequence[str], np.ndarray] | None = None,
        columns: dict[str, Sequence[str]] | None = None,
        column_names: Sequence[str] = (),
    ) -> ChunkData:
        """Normalise dtypes and shapes (spectra and spread reshaped to (n, n_energies); the
        trust columns to :data:`TRUST_FIELDS`, NaN / False where ``trust`` lacks one;
        ``structure_mean``: (ids, (m, n_energies) spectra) of a unique-sites output;
        ``columns``: the per-site text columns named in ``column_names``, "" where absent)."""
        id_array = np.empty(len(ids), dtype=object)
        id_array[:] = [str(i) for i in ids]
        texts = text_columns(columns or {}, column_names, len(ids)) if column_names else None
        unique = {}
        if multiplicity is not None:
            mean_ids, mean_spectra = structure_mean if structure_mean is not None else ([], [])
            unique = {
                "multiplicity": np.asarray(multiplicity, dtype=np.int64).reshape(-1),
                "mean_ids": object_strings(list(mean_ids)),
                "mean_spectra": np.asarray(mean_spectra, dtype=np.float32).reshape(-1, n_energies),
            }
        columns = None
        if trust is not None:
            columns = {}
            for name, dtype in TRUST_FIELDS:
                value = trust.get(name)
                if value is None:
                    value = np.zeros(len(ids), dtype) if dtype is np.bool_ else np.nan
                columns[name] = np.broadcast_to(np.asarray(value, dtype=dtype), len(ids)).copy()
        return cls(
            ids=id_array,
            sites=np.asarray(sites, dtype=np.int64).reshape(-1),
            spectra=np.asarray(spectra, dtype=np.float32).reshape(-1, n_energies),
            spread=None
            if spread is None
            else np.asarray(spread, dtype=np.float32).reshape(-1, n_energies),
            errors=[(str(a), str(b)) for a, b in errors],
            trust=columns,
            no_sites=[str(i) for i in no_sites],
            **unique,
            columns=texts,
        )


def text_columns(
    values: dict[str, Sequence[str]], names: Sequence[str], n: int
) -> dict[str, np.ndarray]:
    """The per-site text columns ``names`` as (n,) object arrays of str ("" where absent)."""
    out = {}
    for name in names:
        column = np.empty(n, dtype=object)
        given = values.get(name)
        column[:] = [""] * n if given is None else [str(v) for v in given]
        out[name] = column
    return out


def empty_trust(n: int = 0) -> dict[str, np.ndarray]:
    """Trust columns of ``n`` sites: NaN / False."""
    return {
        name: np.zeros(n, dtype) if dtype is np.bool_ else np.full(n, np.nan, dtype)
        for name, dtype in TRUST_FIELDS
    }


def concatenate(
    chunks: Sequence[ChunkData],
    n_energies: int,
    has_spread: bool,
    trust: bool = False,
    unique: bool = False,
) -> ChunkData:
    """Join chunks in order; empty input gives empty arrays of the right shapes (trust
    columns when ``trust``; multiplicities and structure means when ``unique``)."""
    if not chunks:
        empty = np.empty((0, n_energies), np.float32)
        return ChunkData(
            np.empty(0, dtype=object),
            np.empty(0, np.int64),
            empty,
            empty.copy() if has_spread else None,
            [],
            empty_trust() if trust else None,
            multiplicity=np.empty(0, np.int64) if unique else None,
            mean_ids=np.empty(0, dtype=object) if unique else None,
            mean_spectra=empty.copy() if unique else None,
        )
    names = list(chunks[0].columns or {})
    texts = {
        name: np.concatenate([(c.columns or {})[name] for c in chunks]).astype(object)
        for name in names
    }
    columns = None
    if trust:
        columns = {
            name: np.concatenate(
                [(c.trust or empty_trust(len(c.ids)))[name] for c in chunks]
            ).astype(dtype)
            for name, dtype in TRUST_FIELDS
        }
    return ChunkData(
        ids=np.concatenate([c.ids for c in chunks]).astype(object),
        sites=np.concatenate([c.sites for c in chunks]),
        spectra=np.concatenate([c.spectra for c in chunks]),
        spread=np.concatenate([c.spread for c in chunks]) if has_spread else None,
        errors=[e for c in chunks for e in c.errors],
        trust=columns,
        no_sites=[i for c in chunks for i in c.no_sites],
        multiplicity=np.concatenate([c.multiplicity for c in chunks]) if unique else None,
        mean_ids=np.concatenate([c.mean_ids for c in chunks]).astype(object) if unique else None,
        mean_spectra=np.concatenate([c.mean_spectra for c in chunks]) if unique else None,
        columns=texts if names else None,
    )


def object_strings(values: Any) -> np.ndarray:
    """Any array of strings (bytes, numpy StringDType, ...) -> (n,) object array of str."""
    values = np.asarray(values)
    out = np.empty(values.shape[0] if values.ndim else 0, dtype=object)
    out[:] = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    return out


def atomic_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON next to ``path``, flush it to disk, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a failed write (disk full) leaves no half-written file behind
        tmp.unlink(missing_ok=True)
        raise


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(path: Path) -> None:
    """fsync every file under a folder (or the file itself)."""
    if path.is_file():
        fsync_file(path)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            fsync_file(Path(folder) / name)


def remove(path: Path) -> None:
    """Delete a file or a folder tree; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def partial_path(out: Path, name: str) -> Path:
    """A fresh place ``OUT/.partial/NAME`` to write a folder before renaming it into place.
    Left-overs of a killed run there are deleted."""
    folder = out / PARTIAL_DIR
    folder.mkdir(exist_ok=True)
    path = folder / name
    remove(path)
    return path


def replace(tmp: Path, final: Path) -> None:
    """Move a written file or folder into place atomically.

    A file replaces its target in one ``os.replace``. A folder cannot be renamed over a
    non-empty one, so an existing target (an uncommitted chunk from a killed run) is first
    renamed aside into ``.partial/`` and deleted afterwards: a reader sees the old folder, no
    folder or the new one, never a half-written one. ``tmp`` must be on the file system of ``final``.
    """
    if tmp.is_dir() and final.exists():
        trash = tmp.parent / f"{final.name}.old"
        remove(trash)
        os.replace(final, trash)
        os.replace(tmp, final)
        remove(trash)
    else:
        os.replace(tmp, final)


def drop_partial_dir(out: Path) -> None:
    """Remove ``OUT/.partial`` when it is empty (at the end of a job)."""
    try:
        (out / PARTIAL_DIR).rmdir()
    except OSError:
        pass


def manifest_format(manifest: dict[str, Any]) -> str:
    """The format of an output; manifests written before formats existed are HDF5."""
    return str(manifest.get("format", DEFAULT_FORMAT))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of output folder ``path``; a clear error when it is not an output."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"not a xanesnet prediction output (no manifest.json): {path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest_path}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("chunks"), dict):
        raise ValueError(f"{manifest_path}: not a xanesnet manifest (no chunk table)")
    if manifest.get("schema") != SCHEMA:
        raise ValueError(f"{path}: unsupported output schema {manifest.get('schema')!r}")
    if manifest_format(manifest) not in FORMATS:
        raise ValueError(f"{path}: unknown output format {manifest_format(manifest)!r}")
    return manifest


def ordered_chunks(manifest: dict[str, Any]) -> list[int]:
    """Indices of the committed chunks, in input order."""
    return sorted(int(k) for k in manifest["chunks"])


def chunk_name(index: int) -> str:
    return f"chunk_{index:06d}"


@dataclass(frozen=True)
class ChunkPart:
    """One file or folder of a chunk being written.

    Attributes:
        name: which part (a CSV table; ``"chunk"`` for a format with one file or folder
            per chunk).
        path: where to write it, aside (:meth:`Backend.write_chunk` renames it into place).
        index: the chunk's index.
        n_structures: the chunk's structures (failed and site-less ones included).
    """

    name: str
    path: Path
    index: int
    n_structures: int


class Backend(ABC):
    """One output format: how chunks are written, read and consolidated.

    Every method takes the output folder ``out`` and its manifest (a dict; the ``chunks``
    table lists the committed chunks, ``energies`` the grid in eV, ``has_spread`` whether
    chunks carry an ensemble spread).
    """

    name: str = ""
    #: whether a chunk's parts are folders (written in ``OUT/.partial/``) rather than files
    #: (written next to their place)
    folder_parts: bool = False

    def check(self) -> None:
        """Raise :class:`MissingDependencyError` when this format cannot be used here."""
        return None

    @abstractmethod
    def prepare(self, out: Path, manifest: dict[str, Any]) -> None:
        """Create the chunk folder (idempotent; touches nothing that exists)."""

    @abstractmethod
    def chunk_parts(self, out: Path, index: int, manifest: dict[str, Any]) -> dict[str, Path]:
        """The files or folders that hold chunk ``index``, by part name, in writing order."""

    def chunk_paths(self, out: Path, index: int, manifest: dict[str, Any]) -> list[Path]:
        """The files or folders that hold chunk ``index``."""
        return list(self.chunk_parts(out, index, manifest).values())

    def write_chunk(
        self,
        out: Path,
        index: int,
        chunk: ChunkData,
        manifest: dict[str, Any],
        n_structures: int,
    ) -> None:
        """Write chunk ``index`` aside, flush it, and rename it into place (each path
        atomically). The caller commits it by updating the manifest afterwards."""
        for name, final in self.chunk_parts(out, index, manifest).items():
            if self.folder_parts:
                tmp = partial_path(out, final.name)
            else:
                tmp = final.with_name(f".{final.name}.partial")
            self.write_part(ChunkPart(name, tmp, index, n_structures), chunk, manifest)
            fsync_tree(tmp)
            replace(tmp, final)

    @abstractmethod
    def write_part(self, part: ChunkPart, chunk: ChunkData, manifest: dict[str, Any]) -> None:
        """Write ``part`` of ``chunk`` at ``part.path`` (:meth:`write_chunk` flushes it and
        renames it into place)."""

    @abstractmethod
    def read_chunk(self, out: Path, index: int, manifest: dict[str, Any]) -> ChunkData:
        """Read committed chunk ``index``."""

    @abstractmethod
    def write_index(self, out: Path, manifest: dict[str, Any]) -> Path:
        """Write the consolidated view over the committed chunks (atomically replaced);
        returns its path."""
