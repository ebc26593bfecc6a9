"""Writer, reader and merger of prediction output folders, whatever their format."""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store._common import (
    DEFAULT_FORMAT,
    FORMATS,
    SCHEMA,
    TRUST_FIELD_NAMES,
    Backend,
    ChunkData,
    StoredPredictions,
    atomic_json,
    concatenate,
    drop_partial_dir,
    has_trust,
    has_unique_sites,
    manifest_format,
    ordered_chunks,
    read_manifest,
    remove,
    site_column_names,
)
from xanesnet.store._csv import CSVBackend
from xanesnet.store._hdf5 import HDF5Backend
from xanesnet.store._zarr import ZarrBackend
from xanesnet.store.inputs import INPUTS_NAME, InputFingerprint, describe_change
from xanesnet.store.integrity import (
    LOCK_NAME,
    OutputLock,
    chunk_checksum,
    damage,
    write_error,
)

_BACKENDS: dict[str, Backend] = {b.name: b for b in (HDF5Backend(), ZarrBackend(), CSVBackend())}

# left in a folder by a run that failed before its first manifest was written (disk full,
# killed): such a folder is still a fresh output, not someone else's data
_FRESH_LEFTOVERS = {LOCK_NAME, ".manifest.json.partial", INPUTS_NAME, f".{INPUTS_NAME}.partial"}


class DamagedChunkWarning(UserWarning):
    """A committed chunk did not read back as written; it is recomputed (resume) or refused
    (reading)."""


def format_backend(format: str) -> Backend:
    """The backend of an output format, checked usable here (optional packages installed).

    Raises:
        ValueError: unknown format.
        MissingDependencyError: the format needs a package that is not installed.
    """
    if format not in _BACKENDS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    chosen = _BACKENDS[format]
    chosen.check()
    return chosen


class PredictionStore:
    """Writer of one output folder; reopening an existing folder resumes it.

    Args:
        path: the output folder.
        job: description of the job (model hash and metadata, inputs, chunk size, shard...).
            Resuming requires the same job; a different one is an error, not a silent mix.
        energies: (n_energies,) the model's grid, eV.
        has_spread: whether chunks carry an ensemble spread.
        format: "hdf5", "zarr" or "csv" (see :mod:`xanesnet.store`). Resuming requires the
            format the output was started with.
        inputs: what identifies the input files (:class:`InputFingerprint`, or a function
            that makes it); a resume whose inputs differ from those the output was started
            with is refused, naming what changed. None (in-memory inputs): not checked. For a
            new output a function runs in a thread (the ``stat`` of every input file overlaps
            the first chunks) and its result is recorded with the first committed chunk, so a
            chunk is never on record without the inputs it came from.
        unique_sites: a new output holds one row per symmetry orbit: its chunks carry
            ``multiplicity`` and ``structure_mean`` (manifest ``unique_sites``).
        site_columns: the per-site text columns of a new output (manifest ``site_columns``;
            ``source``, ``info.<key>``); an output started without them is resumed without.

    Raises:
        ValueError: the folder holds another job, another format, other inputs, or is not an
            output.
        OutputLockedError: another process is writing the folder.
        OutputWriteError: the folder cannot be written (disk full, read-only).
        MissingDependencyError: ``format="zarr"`` without zarr (nothing is written).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        job: dict[str, Any],
        energies: np.ndarray,
        has_spread: bool,
        format: str = DEFAULT_FORMAT,
        inputs: InputFingerprint | Callable[[], InputFingerprint] | None = None,
        unique_sites: bool = False,
        site_columns: Sequence[str] = (),
    ) -> None:
        self.backend = format_backend(format)
        self._manifest_lock = threading.Lock()
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        self.energies = np.asarray(energies, dtype=np.float64)
        self.has_spread = has_spread
        #: (chunk index, why) of committed chunks found damaged on opening: dropped, recomputed
        self.damaged: list[tuple[int, str]] = []
        #: the inputs' fingerprint still being made (new output): recorded with the first chunk
        self._pending_inputs: Future[InputFingerprint] | None = None
        if self.manifest_path.exists():
            manifest = read_manifest(self.path)
            existing = manifest_format(manifest)
            if existing != format:
                raise ValueError(
                    f"{self.path}: holds a {existing} output; this run asks for --format "
                    f"{format}. Resume it with --format {existing}, or choose another output"
                )
            stored = manifest.get("job")
            if stored != job:
                raise ValueError(
                    f"{self.path}: holds the output of a different job "
                    f"({_job_difference(stored, job)}); choose another output or delete it"
                )
            _check_inputs(self.path, manifest, inputs() if callable(inputs) else inputs)
            self.lock = OutputLock(self.path)
            self.manifest = manifest
            self._drop_damaged_chunks()
        else:
            if self.path.exists() and any(
                p.name not in _FRESH_LEFTOVERS for p in self.path.iterdir()
            ):
                raise ValueError(f"{self.path}: exists and is not a xanesnet prediction output")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self.lock = OutputLock(self.path)
                self.manifest = {
                    "schema": SCHEMA,
                    "format": format,
                    "job": job,
                    "energies": self.energies.tolist(),
                    "has_spread": has_spread,
                    "trust_fields": list(TRUST_FIELD_NAMES),
                    "chunks": {},
                    "complete": False,
                }
                if unique_sites:  # absent otherwise: outputs as before
                    self.manifest["unique_sites"] = True
                if site_columns:
                    self.manifest["site_columns"] = list(site_columns)
                if callable(inputs):
                    self._pending_inputs = _in_thread(inputs)
                elif inputs is not None:
                    inputs.write(self.path)
                    self.manifest["inputs"] = inputs.summary()
                atomic_json(self.manifest_path, self.manifest)
            except OSError as exc:
                raise write_error(self.path, exc) from exc
        if not self.complete:
            # chunks on disk without a manifest entry come from a killed commit: rewritten
            try:
                self.backend.prepare(self.path, self.manifest)
            except OSError as exc:
                raise write_error(self.path, exc) from exc

    def _record_inputs(self) -> None:
        """Write the pending input fingerprint (table and manifest entry), once; call with
        the manifest lock held. Raises what making the fingerprint raised."""
        if self._pending_inputs is None:
            return
        inputs = self._pending_inputs.result()
        inputs.write(self.path)
        self.manifest = dict(self.manifest, inputs=inputs.summary())
        atomic_json(self.manifest_path, self.manifest)
        self._pending_inputs = None

    def _drop_damaged_chunks(self) -> None:
        """Check every committed chunk against its checksum; forget the damaged ones (their
        files are deleted) so that this run computes them again, and say so."""
        kept = {}
        for key, entry in self.manifest["chunks"].items():
            index = int(key)
            why = damage(
                lambda index=index: self.backend.read_chunk(self.path, index, self.manifest),
                entry,
            )
            if why is None:
                kept[key] = entry
                continue
            self.damaged.append((index, why))
            for chunk_path in self.backend.chunk_paths(self.path, index, self.manifest):
                remove(chunk_path)
        if not self.damaged:
            return
        listing = ", ".join(f"chunk {i} ({why})" for i, why in self.damaged[:5])
        more = f" and {len(self.damaged) - 5} more" if len(self.damaged) > 5 else ""
        warnings.warn(
            f"{self.path}: {listing}{more} did not read back as committed: recomputing",
            DamagedChunkWarning,
            stacklevel=3,
        )
        self.manifest = dict(self.manifest, chunks=kept, complete=False)
        try:
            atomic_json(self.manifest_path, self.manifest)
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def close(self) -> None:
        """Release the output's lock (also released when the process ends)."""
        self.lock.close()

    @property
    def format(self) -> str:
        return self.backend.name

    @property
    def committed(self) -> set[int]:
        """Indices of the chunks already written."""
        return {int(k) for k in self.manifest["chunks"]}

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def commit(
        self,
        index: int,
        ids: Sequence[str],
        sites: np.ndarray,
        spectra: np.ndarray,
        spread: np.ndarray | None,
        errors: Sequence[tuple[str, str]],
        n_structures: int,
        trust: dict[str, np.ndarray] | None = None,
        no_sites: Sequence[str] = (),
        multiplicity: np.ndarray | None = None,
        structure_mean: tuple[Sequence[str], np.ndarray] | None = None,
        columns: dict[str, Sequence[str]] | None = None,
    ) -> None:
        """Write chunk ``index`` atomically and record it in the manifest.

        Thread-safe for distinct indices: the chunk files are written in parallel (each is
        flushed to disk before it is renamed into place, and fsync waits for the disk, not the
        CPU), the manifest updates one at a time.

        Args:
            index: chunk index (global: position of the chunk in the input).
            ids: (n,) structure id of each site.
            sites: (n,) atom index of each site in its structure.
            spectra: (n, n_energies) μ (stored float32).
            spread: (n, n_energies) ensemble standard deviation, or None without ensemble.
            errors: (id, reason) of the chunk's failed structures.
            n_structures: structures read for the chunk (failed ones included).
            trust: the per-site trust columns by name (``predicted_delta_mu``,
                ``domain_score``, ``outside_domain``, ``unphysical``; (n,) each; a missing one
                is stored as NaN / False). Ignored by an output started before they existed.
            no_sites: ids of the chunk's structures without a site of the model's element
                (not failures).
            multiplicity: (n,) sites of each row's symmetry orbit (unique-sites output:
                required there, ignored elsewhere).
            structure_mean: (ids (m,), spectra (m, n_energies)) each structure's
                multiplicity-weighted mean spectrum (unique-sites output).
            columns: the per-site text columns by name, (n,) each ("" for a missing one);
                those the output does not list (manifest ``site_columns``) are ignored.
        """
        with_trust = has_trust(self.manifest)
        if has_unique_sites(self.manifest):
            if multiplicity is None:
                raise ValueError(f"{self.path}: a unique-sites output needs the multiplicities")
        else:
            multiplicity = structure_mean = None
        chunk = ChunkData.build(
            ids,
            sites,
            spectra,
            spread if self.has_spread else None,
            errors,
            len(self.energies),
            trust=(trust or {}) if with_trust else None,
            no_sites=no_sites if with_trust else (),
            multiplicity=multiplicity,
            structure_mean=structure_mean,
            columns=columns,
            column_names=site_column_names(self.manifest),
        )
        checksum = chunk_checksum(chunk)
        try:
            self.backend.write_chunk(self.path, index, chunk, self.manifest, n_structures)
            with self._manifest_lock:  # commits may run in several threads; chunks in order
                self._record_inputs()
                chunks = dict(self.manifest["chunks"])
                chunks[str(index)] = {
                    "sites": int(len(chunk.ids)),
                    "errors": len(chunk.errors),
                    "structures": int(n_structures),
                    "sha256": checksum,
                }
                manifest = dict(
                    self.manifest, chunks={k: chunks[k] for k in sorted(chunks, key=int)}
                )
                atomic_json(self.manifest_path, manifest)
                self.manifest = manifest
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def finish(self) -> None:
        """Write the consolidated view, then mark the job complete.

        In this order, a job killed in between is not complete: re-running it writes the view
        again (every chunk is already committed) instead of leaving none.
        """
        try:
            with self._manifest_lock:
                self._record_inputs()
            manifest = dict(self.manifest, complete=True)
            self.backend.write_index(self.path, manifest)
            atomic_json(self.manifest_path, manifest)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        self.manifest = manifest
        drop_partial_dir(self.path)
        self.close()  # nothing more to write


def write_index(path: str | os.PathLike) -> Path:
    """(Re)write the consolidated view of an output folder from its manifest (the view of
    its format: ``predictions.h5``, ``predictions.zarr`` or ``predictions.csv``)."""
    path = Path(path)
    manifest = read_manifest(path)
    return format_backend(manifest_format(manifest)).write_index(path, manifest)


def read_predictions(path: str | os.PathLike) -> StoredPredictions:
    """Read a prediction output folder of any format (complete or interrupted: committed
    chunks only). The format is the manifest's; the result is the same for all formats.

    Returns:
        :class:`StoredPredictions`: ids (n_sites,), sites (n_sites,), energies (n_energies,) eV,
        spectra and spread (n_sites, n_energies) float32, errors, the manifest, and the trust
        columns and no-site ids (None / empty for outputs written before they existed).
    """
    path = Path(path)
    manifest = read_manifest(path)
    reader = format_backend(manifest_format(manifest))
    n_e = len(manifest["energies"])
    chunks = []
    for k in ordered_chunks(manifest):
        entry = manifest["chunks"][str(k)]
        why = damage(lambda k=k: reader.read_chunk(path, k, manifest), entry)
        if why is not None:
            raise ValueError(
                f"{path}: chunk {k} is damaged ({why}); run the job's command again to recompute it"
            )
        chunks.append(reader.read_chunk(path, k, manifest))
    unique = has_unique_sites(manifest)
    data = concatenate(
        chunks, n_e, bool(manifest["has_spread"]), has_trust(manifest), unique=unique
    )
    trust = data.trust or {}
    return StoredPredictions(
        ids=data.ids,
        sites=data.sites,
        energies=np.asarray(manifest["energies"]),
        spectra=data.spectra,
        spread=data.spread,
        errors=data.errors,
        metadata=manifest,
        predicted_delta_mu=trust.get("predicted_delta_mu"),
        domain_score=trust.get("domain_score"),
        outside_domain=trust.get("outside_domain"),
        unphysical=trust.get("unphysical"),
        no_sites=data.no_sites,
        multiplicity=data.multiplicity,
        structure_mean_ids=data.mean_ids,
        structure_mean=data.mean_spectra,
        columns={name: _typed(name, v) for name, v in (data.columns or {}).items()},
    )


def _typed(name: str, values: np.ndarray) -> np.ndarray:
    """A stored text column as returned: a kept info column whose every value given is a
    number as float64 (NaN where missing), any other as str."""
    if not name.startswith("info.") or not len(values):
        return values
    given = [v for v in values.tolist() if v != ""]
    try:
        numbers = [float(v) for v in given]
    except ValueError:
        return values
    if not numbers or any(v.strip().lower() in ("true", "false") for v in given):
        return values
    out = np.full(len(values), np.nan)
    out[[i for i, v in enumerate(values.tolist()) if v != ""]] = numbers
    return out


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def merge_outputs(sources: Iterable[str | os.PathLike], target: str | os.PathLike) -> Path:
    """Join shard outputs of one job (``--shard I/N``) into one output folder.

    Chunk indices are global (chunk k of the input belongs to shard k mod N), so the merged
    output is identical to a single-process run. All outputs must have the same format; the
    merged output has it too.
    """
    sources = [Path(s) for s in sources]
    if not sources:
        raise ValueError("merge: no outputs given")
    manifests = []
    for source in sources:
        if not (source / "manifest.json").is_file():
            raise FileNotFoundError(f"merge: not a xanesnet prediction output: {source}")
        manifests.append(read_manifest(source))
    formats = [manifest_format(m) for m in manifests]
    if len(set(formats)) > 1:
        listing = ", ".join(f"{s} ({f})" for s, f in zip(sources, formats, strict=True))
        raise ValueError(
            f"merge: the outputs have different formats: {listing}; merge outputs written "
            "with the same --format"
        )
    jobs = [{k: v for k, v in m["job"].items() if k != "shard"} for m in manifests]
    if any(job != jobs[0] for job in jobs):
        raise ValueError("merge: the outputs come from different jobs (model, inputs or options)")
    incomplete = [str(s) for s, m in zip(sources, manifests, strict=True) if not m["complete"]]
    if incomplete:
        raise ValueError(f"merge: unfinished outputs (run them to completion first): {incomplete}")
    target = Path(target)
    if target.exists():
        raise ValueError(f"merge: output {target} already exists")
    writer = format_backend(formats[0])
    merged = dict(manifests[0])
    merged["job"] = dict(jobs[0], shard=None)
    merged["chunks"] = {}
    merged["complete"] = False
    target.mkdir(parents=True)
    writer.prepare(target, merged)
    for source, manifest in zip(sources, manifests, strict=True):
        for key, entry in manifest["chunks"].items():
            if key in merged["chunks"]:
                raise ValueError(f"merge: chunk {key} appears in more than one output")
            pairs = zip(
                writer.chunk_paths(source, int(key), manifest),
                writer.chunk_paths(target, int(key), merged),
                strict=True,
            )
            for source_path, target_path in pairs:
                _copy(source_path, target_path)
            merged["chunks"][key] = entry
    merged["complete"] = True
    writer.write_index(target, merged)
    atomic_json(target / "manifest.json", merged)
    drop_partial_dir(target)
    return target


def _in_thread(make: Callable[[], InputFingerprint]) -> Future[InputFingerprint]:
    """``make()`` run in a daemon thread (mostly ``stat`` calls, without the GIL)."""
    future: Future[InputFingerprint] = Future()

    def run() -> None:
        try:
            future.set_result(make())
        except BaseException as exc:  # raised where the result is taken
            future.set_exception(exc)

    threading.Thread(target=run, name="xanesnet-inputs", daemon=True).start()
    return future


def _check_inputs(path: Path, manifest: dict[str, Any], inputs: InputFingerprint | None) -> None:
    """Refuse to resume over inputs that changed since the output was started."""
    stored = manifest.get("inputs")
    if inputs is None or stored is None:  # in-memory inputs, or an output of an older version
        return
    if stored.get("sha256") == inputs.digest:
        return
    change = describe_change(InputFingerprint.read(path), inputs)
    raise ValueError(
        f"{path}: the inputs changed since this output was started ({change}); resuming would "
        "mix spectra of different inputs: restore the inputs, or start a new output"
    )


def _job_difference(stored: Any, job: dict[str, Any]) -> str:
    """What differs between a stored job description and this run's, for the refusal message
    (e.g. "chunk_size: 1024 in the output, 4096 now": resume with the stored value)."""
    if not isinstance(stored, dict):
        return "the output's job description is missing or unreadable"
    parts = []
    for key in sorted(set(stored) | set(job)):
        if stored.get(key) != job.get(key):
            old, new = stored.get(key), job.get(key)
            if isinstance(old, (dict, list)) or isinstance(new, (dict, list)):
                parts.append(f"{key} differs")
            else:
                parts.append(f"{key}: {old!r} in the output, {new!r} now")
    return "; ".join(parts) or "model, inputs or options differ"
