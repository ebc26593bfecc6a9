"""HDF5 output format (the default): one HDF5 file per chunk, an HDF5 virtual-dataset index.

::

    OUT/
      manifest.json          job description + committed chunks (replaced atomically)
      chunks/chunk_000042.h5 one file per committed chunk (written aside, then renamed)
      predictions.h5         index file written at the end: HDF5 virtual datasets spanning
                             every chunk, so any HDF5 reader sees one table

Each chunk file holds ``ids`` (n,), ``sites`` (n,), ``spectra`` (n, n_energies) float32,
``spread`` (n, n_energies) float32 (ensembles only), the chunk's failures (``error_ids``,
``error_reasons``) and, in outputs started since they exist (manifest ``trust_fields``), the
per-site trust columns ``predicted_delta_mu`` (n,) float32 %, ``domain_score`` (n,) float32,
``outside_domain`` and ``unphysical`` (n,) bool, and ``no_site_ids`` (structures without a
site of the model's element). ``predictions.h5`` holds ``ids``, ``sites``, ``spectra``,
``spread``, the trust columns and the text columns below (virtual: they read through to the
chunk files), ``no_site_ids`` (where the output has them), ``energies`` (n_energies,) eV, the error
table of all chunks (``error_ids``, ``error_reasons``) and the manifest as the JSON attribute
``manifest``. A unique-sites output (manifest ``unique_sites``: one row per symmetry orbit)
also holds, per chunk and in ``predictions.h5``, ``multiplicity`` (n,) int64 (the sites each
row stands for) and the per-structure table ``structure_mean_ids`` (m,) with
``structure_mean`` (m, n_energies) float32 (each structure's multiplicity-weighted mean
spectrum). Outputs started since they exist (manifest ``site_columns``) hold per chunk and in
``predictions.h5`` the per-site text columns ``source`` (n,) str (the file each site's
structure was read from; ``<memory>`` for structures given in memory) and ``info.<key>`` (n,)
str for each key of ``keep_info`` (numbers as their decimal text, "" where missing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store._common import (
    TRUST_FIELDS,
    Backend,
    ChunkData,
    ChunkPart,
    chunk_name,
    has_trust,
    has_unique_sites,
    object_strings,
    ordered_chunks,
    site_column_names,
)
from xanesnet.store._deflate import write_shuffle_deflate
from xanesnet.store.units import output_attributes


def _h5py() -> Any:
    import h5py

    return h5py


def _string_dtype() -> Any:
    return _h5py().string_dtype("utf-8")


def _errors(f: Any) -> list[tuple[str, str]]:
    """The (id, reason) table of an open chunk file."""
    ids, reasons = f["error_ids"].asstr()[()], f["error_reasons"].asstr()[()]
    return [(str(a), str(b)) for a, b in zip(ids, reasons, strict=True)]


class HDF5Backend(Backend):
    """``--format hdf5``."""

    name = "hdf5"

    def prepare(self, out: Path, manifest: dict[str, Any]) -> None:
        (out / "chunks").mkdir(parents=True, exist_ok=True)

    def chunk_file(self, out: Path, index: int) -> Path:
        return out / "chunks" / f"{chunk_name(index)}.h5"

    def chunk_parts(self, out: Path, index: int, manifest: dict[str, Any]) -> dict[str, Path]:
        return {"chunk": self.chunk_file(out, index)}

    def write_part(self, part: ChunkPart, chunk: ChunkData, manifest: dict[str, Any]) -> None:
        with _h5py().File(part.path, "w") as f:
            f.create_dataset("ids", data=chunk.ids, dtype=_string_dtype())
            f.create_dataset("sites", data=chunk.sites)
            # standard shuffle + gzip datasets, encoded by our faster plane-wise deflate
            write_shuffle_deflate(f, "spectra", chunk.spectra)
            if manifest["has_spread"]:
                write_shuffle_deflate(f, "spread", chunk.spread)
            f.create_dataset(
                "error_ids",
                data=object_strings([e[0] for e in chunk.errors]),
                dtype=_string_dtype(),
            )
            f.create_dataset(
                "error_reasons",
                data=object_strings([e[1] for e in chunk.errors]),
                dtype=_string_dtype(),
            )
            if has_trust(manifest):
                for name, dtype in TRUST_FIELDS:
                    f.create_dataset(name, data=np.asarray(chunk.trust[name], dtype=dtype))
                f.create_dataset(
                    "no_site_ids", data=object_strings(chunk.no_sites), dtype=_string_dtype()
                )
            if has_unique_sites(manifest):
                f.create_dataset("multiplicity", data=chunk.multiplicity)
                f.create_dataset("structure_mean_ids", data=chunk.mean_ids, dtype=_string_dtype())
                write_shuffle_deflate(f, "structure_mean", chunk.mean_spectra)
            for name in site_column_names(manifest):
                f.create_dataset(name, data=chunk.columns[name], dtype=_string_dtype())

    def read_chunk(self, out: Path, index: int, manifest: dict[str, Any]) -> ChunkData:
        with _h5py().File(self.chunk_file(out, index), "r") as f:
            return ChunkData(
                ids=object_strings(f["ids"].asstr()[()]),
                sites=f["sites"][()].astype(np.int64),
                spectra=f["spectra"][()],
                spread=f["spread"][()] if manifest["has_spread"] else None,
                errors=_errors(f),
                trust={name: f[name][()].astype(dtype) for name, dtype in TRUST_FIELDS}
                if has_trust(manifest)
                else None,
                no_sites=list(f["no_site_ids"].asstr()[()]) if has_trust(manifest) else [],
                **(_unique_columns(f) if has_unique_sites(manifest) else {}),
                columns={
                    name: object_strings(f[name].asstr()[()])
                    for name in site_column_names(manifest)
                }
                or None,
            )

    def write_index(self, out: Path, manifest: dict[str, Any]) -> Path:
        """``predictions.h5``: virtual datasets over the committed chunks for every per-site
        array, plus the energies, the error and no-site tables and the manifest as an
        attribute. Readable with plain h5py."""
        h5py = _h5py()
        chunks = [
            (self.chunk_file(out, k), manifest["chunks"][str(k)]) for k in ordered_chunks(manifest)
        ]
        n_e = len(manifest["energies"])
        # per-site arrays: (name, trailing shape, dtype as the chunk files store it)
        arrays: list[tuple[str, tuple[int, ...], Any]] = [("spectra", (n_e,), np.float32)]
        if manifest["has_spread"]:
            arrays += [("spread", (n_e,), np.float32)]
        arrays += [("ids", (), _string_dtype()), ("sites", (), np.int64)]
        if has_trust(manifest):
            arrays += [(name, (), dtype) for name, dtype in TRUST_FIELDS]
        if has_unique_sites(manifest):
            arrays += [("multiplicity", (), np.int64)]
        arrays += [(name, (), _string_dtype()) for name in site_column_names(manifest)]
        tmp = out / ".predictions.h5.partial"
        with h5py.File(tmp, "w") as f:
            f.attrs["manifest"] = json.dumps(manifest)
            f.create_dataset("energies", data=np.asarray(manifest["energies"]))
            # every per-site array reads through to the chunk files (none is copied: the
            # index of a million sites is written in milliseconds)
            total = int(sum(record["sites"] for _, record in chunks))
            for name, tail, dtype in arrays:
                layout = h5py.VirtualLayout(shape=(total, *tail), dtype=dtype)
                offset = 0
                for file, record in chunks:
                    n = int(record["sites"])
                    if n:
                        source = h5py.VirtualSource(
                            os.path.relpath(file, out), name, shape=(n, *tail)
                        )
                        layout[offset : offset + n] = source
                    offset += n
                fill = np.nan if np.dtype(dtype).kind == "f" else None
                f.create_virtual_dataset(name, layout, fillvalue=fill)
            # the small per-chunk tables are copied; a chunk file is opened only when it
            # holds one (no-site ids exist in outputs with trust columns only)
            no_sites: list[str] = []
            errors: list[tuple[str, str]] = []
            for file, record in chunks:
                if not (has_trust(manifest) or record.get("errors", 1)):
                    continue
                with h5py.File(file, "r") as c:
                    if has_trust(manifest):
                        no_sites += list(c["no_site_ids"].asstr()[()])
                    errors += _errors(c)
            if has_trust(manifest):
                f.create_dataset(
                    "no_site_ids", data=object_strings(no_sites), dtype=_string_dtype()
                )
            if has_unique_sites(manifest):
                _write_structure_means(f, [file for file, _ in chunks], n_e)
            for column, name in enumerate(("error_ids", "error_reasons")):
                data = object_strings([e[column] for e in errors])
                f.create_dataset(name, data=data, dtype=_string_dtype())
            attributes = output_attributes(manifest)
            attributes["structure_mean"] = attributes["spectra"]
            for name, attrs in attributes.items():  # units of each array
                if name in f:
                    f[name].attrs.update(attrs)
        os.replace(tmp, out / "predictions.h5")
        return out / "predictions.h5"


def _unique_columns(f: Any) -> dict[str, Any]:
    """The unique-sites fields of :class:`ChunkData` from an open chunk file."""
    return {
        "multiplicity": f["multiplicity"][()].astype(np.int64),
        "mean_ids": object_strings(f["structure_mean_ids"].asstr()[()]),
        "mean_spectra": f["structure_mean"][()],
    }


def _write_structure_means(f: Any, files: list[Path], n_energies: int) -> None:
    """``structure_mean_ids`` and ``structure_mean`` of every chunk, joined in order."""
    ids, spectra = [], []
    for file in files:
        with _h5py().File(file, "r") as c:
            ids += list(c["structure_mean_ids"].asstr()[()])
            spectra.append(c["structure_mean"][()])
    data = np.concatenate(spectra) if spectra else np.empty((0, n_energies), np.float32)
    f.create_dataset("structure_mean_ids", data=object_strings(ids), dtype=_string_dtype())
    f.create_dataset("structure_mean", data=data.astype(np.float32))
