"""Zarr output format (``--format zarr``; needs ``pip install "xanesnet[zarr]"``, zarr >= 3).

::

    OUT/
      manifest.json                 job description + committed chunks (replaced atomically)
      chunks/                       a zarr group (attributes: the job, energies ...)
        chunk_000042/               one zarr group per committed chunk: written in
                                    OUT/.partial/, then renamed into place
      predictions.zarr/             consolidated zarr group, written at the end of the job

Every group holds the per-site arrays ``ids`` (n,) str, ``sites`` (n,) int64, ``spectra``
(n, n_energies) float32 μ, ``spread`` (n, n_energies) float32 (ensembles only), the error
table ``error_ids`` / ``error_reasons`` (n_failed,) str and, in outputs started since they
exist (manifest ``trust_fields``), the trust columns ``predicted_delta_mu`` (n,) float32 %,
``domain_score`` (n,) float32, ``outside_domain`` and ``unphysical`` (n,) bool, and
``no_site_ids`` (structures without a site of the model's element); a unique-sites output
(manifest ``unique_sites``) also ``multiplicity`` (n,) int64 and the per-structure table
``structure_mean_ids`` (m,) str with ``structure_mean`` (m, n_energies) float32 (each
structure's multiplicity-weighted mean spectrum); outputs started since they exist (manifest
``site_columns``) the per-site text columns ``source`` (n,) str (the file of each site's
structure; ``<memory>`` for structures given in memory) and ``info.<key>`` (n,) str per
``keep_info`` key ("" where missing); ``predictions.zarr`` also holds
``energies`` (n_energies,) float64 eV. Arrays are chunked by :data:`SITE_ROWS` sites and
compressed (Blosc-zstd with byte shuffle for the spectra). The attributes of
``predictions.zarr`` are the manifest: ``job`` (``model_sha256``, ``model`` with its element,
edge, ensemble size and descriptor configuration, ``inputs``, options, ``xanesnet_version``),
``energies`` (eV), ``has_spread``, ``format``, ``chunks``, ``complete``.

Reading without xanesnet, with plain zarr::

    import zarr
    root = zarr.open_group("OUT/predictions.zarr", mode="r")
    spectra = root["spectra"][:]            # (n_sites, n_energies) float32
    ids, sites = root["ids"][:], root["sites"][:]
    energies = root["energies"][:]          # eV; root.attrs["job"] describes the job

An unfinished job has no ``predictions.zarr`` yet: read the committed chunks in order, e.g.
``[zarr.open_group("OUT/chunks")[f"chunk_{k:06d}"] for k in sorted(map(int, manifest["chunks"]))]``
with ``manifest = json.load(open("OUT/manifest.json"))``. (A chunk group that the manifest does
not list is complete but uncommitted; a resumed run writes it again, identically.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store._common import (
    TRUST_FIELDS,
    Backend,
    ChunkData,
    ChunkPart,
    MissingDependencyError,
    chunk_name,
    fsync_tree,
    has_trust,
    has_unique_sites,
    object_strings,
    ordered_chunks,
    partial_path,
    replace,
    site_column_names,
)
from xanesnet.store.units import output_attributes

#: sites per storage chunk of every per-site array (spectra: SITE_ROWS x n_energies)
SITE_ROWS = 4096

ZARR_HINT = 'the zarr output format (--format zarr) needs the zarr package, version 3 or later: pip install "xanesnet[zarr]"'


def import_zarr() -> Any:
    """The zarr module (>= 3), or :class:`MissingDependencyError` naming the install command."""
    try:
        import zarr
    except ImportError as exc:
        raise MissingDependencyError(ZARR_HINT) from exc
    version = str(getattr(zarr, "__version__", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 3:
        raise MissingDependencyError(f"{ZARR_HINT} (found zarr {version})")
    return zarr


def _float_codecs() -> Any:
    from zarr.codecs import BloscCodec, BloscShuffle

    return [BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle)]


class _Writer:
    """Streams rows into one new zarr array in whole storage chunks (bounded memory)."""

    def __init__(
        self, group: Any, name: str, length: int, dtype: Any, row_shape: tuple[int, ...]
    ) -> None:
        rows = max(1, min(length, SITE_ROWS))
        floating = dtype in (np.float32, np.float64)
        self.array = group.create_array(
            name,
            shape=(length, *row_shape),
            dtype=dtype,
            chunks=(rows, *row_shape),
            **({"compressors": _float_codecs()} if floating else {}),
        )
        self.rows = rows
        self.offset = 0
        self.pending: list[np.ndarray] = []
        self.n_pending = 0

    def add(self, values: np.ndarray) -> None:
        if len(values):
            self.pending.append(values)
            self.n_pending += len(values)
        if self.n_pending >= self.rows:
            self._flush(self.n_pending - self.n_pending % self.rows)

    def close(self) -> None:
        if self.n_pending:
            self._flush(self.n_pending)

    def _flush(self, count: int) -> None:
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.array[self.offset : self.offset + count] = data[:count]
        self.offset += count
        rest = data[count:]
        self.pending = [rest] if len(rest) else []
        self.n_pending = len(rest)


def _write_array(group: Any, name: str, values: np.ndarray, dtype: Any) -> None:
    writer = _Writer(group, name, len(values), dtype, tuple(values.shape[1:]))
    writer.add(values)
    writer.close()


def _arrays(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, zarr dtype) of the per-site arrays."""
    names = [("ids", "string"), ("sites", np.int64), ("spectra", np.float32)]
    names += [("spread", np.float32)] if manifest["has_spread"] else []
    names += [("multiplicity", np.int64)] if has_unique_sites(manifest) else []
    names += list(TRUST_FIELDS) if has_trust(manifest) else []
    return names + [(name, "string") for name in site_column_names(manifest)]


def _header(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest less its chunk table: attributes of the ``chunks`` group."""
    return {k: v for k, v in manifest.items() if k not in ("chunks", "complete")}


class ZarrBackend(Backend):
    """``--format zarr``."""

    name = "zarr"
    folder_parts = True

    def check(self) -> None:
        import_zarr()

    def prepare(self, out: Path, manifest: dict[str, Any]) -> None:
        root = out / "chunks"
        if (root / "zarr.json").is_file():
            return
        zarr = import_zarr()
        if root.exists():  # an empty folder (e.g. made by hand): turn it into the group
            zarr.create_group(store=zarr.storage.LocalStore(root), attributes=_header(manifest))
            return
        tmp = partial_path(out, "chunks")
        zarr.create_group(store=zarr.storage.LocalStore(tmp), attributes=_header(manifest))
        fsync_tree(tmp)
        replace(tmp, root)

    def chunk_parts(self, out: Path, index: int, manifest: dict[str, Any]) -> dict[str, Path]:
        return {"chunk": out / "chunks" / chunk_name(index)}

    def write_part(self, part: ChunkPart, chunk: ChunkData, manifest: dict[str, Any]) -> None:
        zarr = import_zarr()
        group = zarr.create_group(
            store=zarr.storage.LocalStore(part.path),
            attributes={"chunk": part.index, "structures": int(part.n_structures)},
        )
        values: dict[str, Any] = {"ids": chunk.ids, "sites": chunk.sites, "spectra": chunk.spectra}
        if manifest["has_spread"]:
            values["spread"] = chunk.spread
        if has_trust(manifest):
            values.update(chunk.trust)
        if has_unique_sites(manifest):
            values["multiplicity"] = chunk.multiplicity
            _write_structure_means(group, chunk.mean_ids, chunk.mean_spectra)
        values.update(chunk.columns or {})
        for name, dtype in _arrays(manifest):
            _write_array(group, name, values[name], dtype)
        _write_errors(group, chunk.errors)
        if has_trust(manifest):
            _write_array(group, "no_site_ids", object_strings(chunk.no_sites), "string")

    def read_chunk(self, out: Path, index: int, manifest: dict[str, Any]) -> ChunkData:
        zarr = import_zarr()
        path = self.chunk_paths(out, index, manifest)[0]
        group = zarr.open_group(store=zarr.storage.LocalStore(path, read_only=True), mode="r")
        chunk = _read_group(group, manifest["has_spread"], has_trust(manifest))
        names = site_column_names(manifest)
        if names:
            columns = {name: object_strings(group[name][...]) for name in names}
            chunk = dataclasses.replace(chunk, columns=columns)
        if not has_unique_sites(manifest):
            return chunk
        return dataclasses.replace(
            chunk,
            multiplicity=np.asarray(group["multiplicity"][...], dtype=np.int64),
            mean_ids=object_strings(group["structure_mean_ids"][...]),
            mean_spectra=np.asarray(group["structure_mean"][...], dtype=np.float32).reshape(
                -1, len(manifest["energies"])
            ),
        )

    def write_index(self, out: Path, manifest: dict[str, Any]) -> Path:
        """``predictions.zarr``: the committed chunks copied, in order, into one group."""
        zarr = import_zarr()
        tmp = partial_path(out, "predictions.zarr")
        root = zarr.create_group(store=zarr.storage.LocalStore(tmp), attributes=manifest)
        _write_array(root, "energies", np.asarray(manifest["energies"], np.float64), np.float64)
        chunks = ordered_chunks(manifest)
        total = int(sum(manifest["chunks"][str(k)]["sites"] for k in chunks))
        n_e = len(manifest["energies"])
        writers = {
            name: _Writer(root, name, total, dtype, (n_e,) if name in ("spectra", "spread") else ())
            for name, dtype in _arrays(manifest)
        }
        errors: list[tuple[str, str]] = []
        no_sites: list[str] = []
        mean_ids: list[str] = []
        means: list[np.ndarray] = []
        for k in chunks:
            chunk = self.read_chunk(out, k, manifest)
            named = {**(chunk.trust or {}), **(chunk.columns or {})}
            for name, writer in writers.items():
                writer.add(named[name] if name in named else getattr(chunk, name))
            errors += chunk.errors
            no_sites += chunk.no_sites
            if chunk.multiplicity is not None:
                mean_ids += chunk.mean_ids.tolist()
                means.append(chunk.mean_spectra)
        for writer in writers.values():
            writer.close()
        _write_errors(root, errors)
        if has_trust(manifest):
            _write_array(root, "no_site_ids", object_strings(no_sites), "string")
        if has_unique_sites(manifest):
            empty = np.empty((0, n_e), np.float32)
            _write_structure_means(
                root, object_strings(mean_ids), np.concatenate(means) if means else empty
            )
        attributes = output_attributes(manifest)
        attributes["structure_mean"] = attributes["spectra"]
        for name, attrs in attributes.items():  # units of each array
            if name in root:
                root[name].attrs.update(attrs)
        fsync_tree(tmp)
        final = out / "predictions.zarr"
        replace(tmp, final)
        return final


def _write_structure_means(group: Any, ids: np.ndarray, spectra: np.ndarray) -> None:
    """The per-structure table of a unique-sites output: ids and mean spectra."""
    _write_array(group, "structure_mean_ids", object_strings(ids), "string")
    _write_array(group, "structure_mean", np.asarray(spectra, dtype=np.float32), np.float32)


def _write_errors(group: Any, errors: list[tuple[str, str]]) -> None:
    _write_array(group, "error_ids", object_strings([e[0] for e in errors]), "string")
    _write_array(group, "error_reasons", object_strings([e[1] for e in errors]), "string")


def _read_group(group: Any, has_spread: bool, trust: bool) -> ChunkData:
    return ChunkData(
        ids=object_strings(group["ids"][...]),
        sites=np.asarray(group["sites"][...], dtype=np.int64),
        spectra=np.asarray(group["spectra"][...], dtype=np.float32),
        spread=np.asarray(group["spread"][...], dtype=np.float32) if has_spread else None,
        errors=list(
            zip(
                object_strings(group["error_ids"][...]).tolist(),
                object_strings(group["error_reasons"][...]).tolist(),
                strict=True,
            )
        ),
        trust={name: np.asarray(group[name][...], dtype=dtype) for name, dtype in TRUST_FIELDS}
        if trust
        else None,
        no_sites=object_strings(group["no_site_ids"][...]).tolist() if trust else [],
    )
