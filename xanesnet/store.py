"""Prediction output that loses nothing: chunked, atomic, resumable (HDF5).

An output is a folder::

    OUT/
      manifest.json          job description + committed chunks (replaced atomically)
      chunks/chunk_000042.h5 one file per committed chunk (written aside, then renamed)
      predictions.h5         index file: HDF5 virtual datasets spanning every chunk, so any
                             HDF5 reader sees one table (rewritten after each commit)

Each chunk file holds ``ids`` (n,), ``sites`` (n,), ``spectra`` (n, n_energies) float32,
``spread`` (n, n_energies) float32 (ensembles only) and the chunk's failures (``error_ids``,
``error_reasons``). A chunk is either fully present or absent, whatever instant the job is
killed at; :func:`read_predictions` reads the committed chunks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PredictionStore", "Predictions", "read_predictions", "merge_outputs"]

SCHEMA = "xanesnet.predictions/1"
_STR = None  # set lazily: h5py string dtype


def _h5py() -> Any:
    import h5py

    return h5py


def _string_dtype() -> Any:
    return _h5py().string_dtype("utf-8")


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Predictions:
    """Everything a prediction output holds.

    Attributes:
        ids: (n_sites,) structure ids.
        sites: (n_sites,) atom index of each site in its structure.
        energies: (n_energies,) absolute energies, eV.
        spectra: (n_sites, n_energies) float32 μ.
        spread: (n_sites, n_energies) float32 ensemble standard deviation, or None.
        errors: list of (id, reason) of the structures that failed.
        metadata: the manifest (model metadata, inputs, version ...).
    """

    ids: np.ndarray
    sites: np.ndarray
    energies: np.ndarray
    spectra: np.ndarray
    spread: np.ndarray | None
    errors: list[tuple[str, str]]
    metadata: dict[str, Any]


class PredictionStore:
    """Writer of one output folder; reopening an existing folder resumes it.

    Args:
        path: the output folder.
        job: description of the job (model hash and metadata, inputs, chunk size, shard...).
            Resuming requires the same job; a different one is an error, not a silent mix.
        energies: (n_energies,) the model's grid, eV.
        has_spread: whether chunks carry an ensemble spread.
    """

    def __init__(
        self, path: str | os.PathLike, job: dict[str, Any], energies: np.ndarray, has_spread: bool
    ) -> None:
        self.path = Path(path)
        self.chunk_dir = self.path / "chunks"
        self.manifest_path = self.path / "manifest.json"
        self.energies = np.asarray(energies, dtype=np.float64)
        self.has_spread = has_spread
        if self.manifest_path.exists():
            manifest = json.loads(self.manifest_path.read_text())
            if manifest.get("job") != job:
                raise ValueError(
                    f"{self.path}: holds the output of a different job (model, inputs or "
                    "options differ); choose another output or delete it"
                )
            self.manifest = manifest
        else:
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(f"{self.path}: exists and is not a xanesnet prediction output")
            self.chunk_dir.mkdir(parents=True, exist_ok=True)
            self.manifest = {
                "schema": SCHEMA,
                "job": job,
                "energies": self.energies.tolist(),
                "has_spread": has_spread,
                "chunks": {},
                "complete": False,
            }
            _atomic_json(self.manifest_path, self.manifest)
        # chunk files without a manifest entry come from a killed commit: ignore them
        self.chunk_dir.mkdir(parents=True, exist_ok=True)

    @property
    def committed(self) -> set[int]:
        """Indices of the chunks already written."""
        return {int(k) for k in self.manifest["chunks"]}

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def chunk_file(self, index: int) -> Path:
        return self.chunk_dir / f"chunk_{index:06d}.h5"

    def commit(
        self,
        index: int,
        ids: Sequence[str],
        sites: np.ndarray,
        spectra: np.ndarray,
        spread: np.ndarray | None,
        errors: Sequence[tuple[str, str]],
        n_structures: int,
    ) -> None:
        """Write chunk ``index`` atomically and record it in the manifest."""
        h5py = _h5py()
        final = self.chunk_file(index)
        tmp = final.with_name(f".{final.name}.partial")
        n_e = len(self.energies)
        with h5py.File(tmp, "w") as f:
            f.create_dataset("ids", data=np.asarray(list(ids), dtype=object), dtype=_string_dtype())
            f.create_dataset("sites", data=np.asarray(sites, dtype=np.int64))
            f.create_dataset(
                "spectra",
                data=np.asarray(spectra, dtype=np.float32).reshape(-1, n_e),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
            )
            if self.has_spread:
                f.create_dataset(
                    "spread",
                    data=np.asarray(spread, dtype=np.float32).reshape(-1, n_e),
                    compression="gzip",
                    compression_opts=1,
                    shuffle=True,
                )
            f.create_dataset(
                "error_ids",
                data=np.asarray([e[0] for e in errors], dtype=object),
                dtype=_string_dtype(),
            )
            f.create_dataset(
                "error_reasons",
                data=np.asarray([e[1] for e in errors], dtype=object),
                dtype=_string_dtype(),
            )
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        self.manifest["chunks"][str(index)] = {
            "sites": int(len(ids)),
            "errors": len(errors),
            "structures": int(n_structures),
        }
        _atomic_json(self.manifest_path, self.manifest)

    def finish(self) -> None:
        """Mark the job complete and write the index file."""
        self.manifest["complete"] = True
        _atomic_json(self.manifest_path, self.manifest)
        write_index(self.path)


def _ordered_chunks(path: Path) -> list[tuple[int, Path]]:
    manifest = json.loads((path / "manifest.json").read_text())
    return sorted((int(k), path / "chunks" / f"chunk_{int(k):06d}.h5") for k in manifest["chunks"])


def write_index(path: str | os.PathLike) -> Path:
    """(Re)write ``predictions.h5``: virtual datasets over the committed chunks, plus the
    energies and the manifest as an attribute. Readable with plain h5py."""
    h5py = _h5py()
    path = Path(path)
    manifest = json.loads((path / "manifest.json").read_text())
    chunks = _ordered_chunks(path)
    counts = [manifest["chunks"][str(k)]["sites"] for k, _ in chunks]
    total = int(sum(counts))
    n_e = len(manifest["energies"])
    names = ["spectra", "spread"] if manifest["has_spread"] else ["spectra"]
    tmp = path / ".predictions.h5.partial"
    with h5py.File(tmp, "w") as f:
        f.attrs["manifest"] = json.dumps(manifest)
        f.create_dataset("energies", data=np.asarray(manifest["energies"]))
        for name in names:
            layout = h5py.VirtualLayout(shape=(total, n_e), dtype=np.float32)
            offset = 0
            for (_, file), n in zip(chunks, counts, strict=True):
                if n:
                    source = h5py.VirtualSource(os.path.relpath(file, path), name, shape=(n, n_e))
                    layout[offset : offset + n] = source
                offset += n
            f.create_virtual_dataset(name, layout, fillvalue=np.nan)
        for name, dtype in (("ids", _string_dtype()), ("sites", np.int64)):
            values = []
            for (_, file), n in zip(chunks, counts, strict=True):
                if n:
                    with h5py.File(file, "r") as c:
                        values.append(c[name][()])
            data = np.concatenate(values) if values else np.empty(0, dtype=object)
            f.create_dataset(name, data=data, dtype=dtype)
    os.replace(tmp, path / "predictions.h5")
    return path / "predictions.h5"


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read a prediction output folder (complete or interrupted: committed chunks only)."""
    h5py = _h5py()
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"not a xanesnet prediction output (no manifest.json): {path}")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("schema") != SCHEMA:
        raise ValueError(f"{path}: unsupported output schema {manifest.get('schema')!r}")
    ids, sites, spectra, spread, errors = [], [], [], [], []
    for _, file in _ordered_chunks(path):
        with h5py.File(file, "r") as f:
            ids.append(f["ids"].asstr()[()])
            sites.append(f["sites"][()])
            spectra.append(f["spectra"][()])
            if manifest["has_spread"]:
                spread.append(f["spread"][()])
            errors += list(
                zip(f["error_ids"].asstr()[()], f["error_reasons"].asstr()[()], strict=True)
            )
    n_e = len(manifest["energies"])
    return Predictions(
        ids=np.concatenate(ids) if ids else np.empty(0, dtype=object),
        sites=np.concatenate(sites) if sites else np.empty(0, dtype=np.int64),
        energies=np.asarray(manifest["energies"]),
        spectra=np.concatenate(spectra) if spectra else np.empty((0, n_e), np.float32),
        spread=(np.concatenate(spread) if spread else np.empty((0, n_e), np.float32))
        if manifest["has_spread"]
        else None,
        errors=[(str(a), str(b)) for a, b in errors],
        metadata=manifest,
    )


def merge_outputs(sources: Iterable[str | os.PathLike], target: str | os.PathLike) -> Path:
    """Join shard outputs of one job (``--shard I/N``) into one output folder.

    Chunk indices are global (chunk k of the input belongs to shard k mod N), so the merged
    output is identical to a single-process run.
    """
    import shutil

    sources = [Path(s) for s in sources]
    if not sources:
        raise ValueError("merge: no outputs given")
    manifests = []
    for source in sources:
        if not (source / "manifest.json").is_file():
            raise FileNotFoundError(f"merge: not a xanesnet prediction output: {source}")
        manifests.append(json.loads((source / "manifest.json").read_text()))
    jobs = [{k: v for k, v in m["job"].items() if k != "shard"} for m in manifests]
    if any(job != jobs[0] for job in jobs):
        raise ValueError("merge: the outputs come from different jobs (model, inputs or options)")
    incomplete = [str(s) for s, m in zip(sources, manifests, strict=True) if not m["complete"]]
    if incomplete:
        raise ValueError(f"merge: unfinished outputs (run them to completion first): {incomplete}")
    target = Path(target)
    if target.exists():
        raise ValueError(f"merge: output {target} already exists")
    (target / "chunks").mkdir(parents=True)
    merged = dict(manifests[0])
    merged["job"] = dict(jobs[0], shard=None)
    merged["chunks"] = {}
    for source, manifest in zip(sources, manifests, strict=True):
        for key, entry in manifest["chunks"].items():
            if key in merged["chunks"]:
                raise ValueError(f"merge: chunk {key} appears in more than one output")
            name = f"chunk_{int(key):06d}.h5"
            shutil.copyfile(source / "chunks" / name, target / "chunks" / name)
            merged["chunks"][key] = entry
    merged["complete"] = True
    _atomic_json(target / "manifest.json", merged)
    write_index(target)
    return target
