"""CSV output format (``--format csv``): plain text for small jobs.

::

    OUT/
      manifest.json                  job description + committed chunks (replaced atomically)
      chunks/spectra_000042.csv      one set of files per committed chunk, each written as a
      chunks/spread_000042.csv       hidden ``.NAME.partial`` file and then renamed into place
      chunks/errors_000042.csv       (spread: ensembles only)
      predictions.csv                the chunks joined, written at the end of the job
      spread.csv                     (ensembles only)
      errors.csv                     structure_id, reason of every structure that failed
      trust.csv                      structure_id, site_index, predicted_delta_mu (%),
                                     domain_score, outside_domain (0/1), unphysical (0/1)
      no_sites.csv                   structure_id of each structure without a site of the
                                     model's element
      (trust and no_sites: outputs started since they exist, manifest ``trust_fields``;
      chunks/trust_NNNNNN.csv and chunks/no_sites_NNNNNN.csv per chunk)
      multiplicity.csv               unique-sites outputs (manifest ``unique_sites``):
                                     structure_id, site_index, multiplicity (the sites
                                     each row stands for)
      structure_mean.csv             unique-sites outputs: structure_id, E1, E2, ...: each
                                     structure's multiplicity-weighted mean spectrum
      site_info.csv                  outputs started since it exists (manifest
                                     ``site_columns``): structure_id, site_index, source (the
                                     file of the site's structure; <memory> for structures
                                     given in memory), then info.<key> per ``keep_info`` key
                                     ("" where missing); chunks/site_info_NNNNNN.csv per chunk

``predictions.csv`` and ``spread.csv`` have a header ``structure_id,site_index,E1,E2,...``
(energies in eV) and one row per site; values are float32 μ written as the shortest decimal
that reads back, through float64, as the same float32. Reading without xanesnet::

    import numpy as np
    header = open("OUT/predictions.csv").readline().rstrip("\\n").split(",")
    energies = np.array(header[2:], dtype=float)                       # eV
    spectra = np.loadtxt("OUT/predictions.csv", delimiter=",", skiprows=1, quotechar='"',
                         usecols=range(2, len(header)), dtype=np.float32, ndmin=2)
    ids = np.loadtxt("OUT/predictions.csv", delimiter=",", skiprows=1, quotechar='"',
                     usecols=0, dtype=str, ndmin=1)

(or the :mod:`csv` module: ids with commas or quotes are quoted the CSV way). An unfinished job
has no ``predictions.csv`` yet: its committed chunks are the ``chunks/*_NNNNNN.csv`` files of the
chunks listed in ``manifest.json``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store._common import (
    TRUST_FIELD_NAMES,
    TRUST_FIELDS,
    Backend,
    ChunkData,
    ChunkPart,
    fsync_file,
    has_trust,
    has_unique_sites,
    object_strings,
    ordered_chunks,
    site_column_names,
)

#: the per-chunk files: (prefix, consolidated file name)
_TABLES = {
    "spectra": "predictions.csv",
    "spread": "spread.csv",
    "errors": "errors.csv",
    "trust": "trust.csv",
    "no_sites": "no_sites.csv",
    "multiplicity": "multiplicity.csv",
    "structure_mean": "structure_mean.csv",
    "site_info": "site_info.csv",
}
_ERROR_HEADER = ["structure_id", "reason"]
_TRUST_HEADER = ["structure_id", "site_index", *TRUST_FIELD_NAMES]
_NO_SITES_HEADER = ["structure_id"]
_MULTIPLICITY_HEADER = ["structure_id", "site_index", "multiplicity"]


def _decimal(values: np.ndarray) -> np.ndarray:
    """float32 array -> object array of str: the shortest decimal of each value that parses
    (to float64, then rounded to float32) back to the same value; 17 digits where the shortest
    one would not (double rounding)."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    text = np.empty(flat.shape, dtype=object)
    text[:] = [str(v) for v in flat]
    if flat.size:
        back = np.array(text.tolist(), dtype=np.float64).astype(np.float32)
        same = (back == flat) | (np.isnan(back) & np.isnan(flat))
        for i in np.flatnonzero(~same):
            text[i] = repr(float(flat[i]))
    return text.reshape(values.shape)


def _energy_labels(manifest: dict[str, Any]) -> list[str]:
    return [repr(float(e)) for e in manifest["energies"]]


def _line(row: list[str]) -> bytes:
    """One CSV line, UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue().encode("utf-8")


def _chunk_table(
    table: str, chunk: ChunkData, manifest: dict[str, Any]
) -> tuple[list[str], Iterable[Any]]:
    """(header, rows) of one table of a chunk."""
    if table in ("spectra", "spread"):
        values = chunk.spectra if table == "spectra" else chunk.spread
        header = ["structure_id", "site_index", *_energy_labels(manifest)]
        return header, _site_rows(chunk.ids, chunk.sites, values)
    if table == "errors":
        return _ERROR_HEADER, chunk.errors
    if table == "trust":
        return _TRUST_HEADER, _trust_rows(chunk)
    if table == "no_sites":
        return _NO_SITES_HEADER, [[i] for i in chunk.no_sites]
    if table == "multiplicity":
        rows = zip(chunk.ids, chunk.sites.tolist(), chunk.multiplicity.tolist(), strict=True)
        return _MULTIPLICITY_HEADER, rows
    if table == "structure_mean":
        means = _decimal(chunk.mean_spectra)
        return _mean_header(manifest), ([i, *means[row]] for row, i in enumerate(chunk.mean_ids))
    names = site_column_names(manifest)  # site_info
    columns = [chunk.columns[name] for name in names]
    rows = (
        [chunk.ids[i], int(chunk.sites[i]), *(c[i] for c in columns)] for i in range(len(chunk.ids))
    )
    return _site_info_header(names), rows


def _site_rows(ids: np.ndarray, sites: np.ndarray, values: np.ndarray) -> Iterator[list[Any]]:
    text = _decimal(values)
    for i in range(len(ids)):
        yield [ids[i], int(sites[i]), *text[i]]


def _read_table(path: Path, n_energies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, sites, values (n, n_energies) float32) of a spectra or spread CSV."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if len(header) != n_energies + 2:
            raise ValueError(f"{path}: expected {n_energies + 2} columns, found {len(header)}")
        rows = list(reader)
    ids = np.empty(len(rows), dtype=object)
    ids[:] = [row[0] for row in rows]
    sites = np.array([int(row[1]) for row in rows], dtype=np.int64)
    values = np.array([row[2:] for row in rows], dtype=np.float64).reshape(-1, n_energies)
    return ids, sites, values.astype(np.float32)


def _trust_rows(chunk: ChunkData) -> Iterator[list[Any]]:
    """structure_id, site_index, then the trust columns (floats as in the spectra, flags 0/1)."""
    columns = [
        _decimal(chunk.trust[name]) if dtype is np.float32 else chunk.trust[name].astype(int)
        for name, dtype in TRUST_FIELDS
    ]
    for i in range(len(chunk.ids)):
        yield [chunk.ids[i], int(chunk.sites[i]), *(column[i] for column in columns)]


def _mean_header(manifest: dict[str, Any]) -> list[str]:
    return ["structure_id", *_energy_labels(manifest)]


def _site_info_header(names: list[str]) -> list[str]:
    return ["structure_id", "site_index", *names]


def _read_trust(path: Path, n_sites: int) -> dict[str, np.ndarray]:
    """The trust columns of a chunk's trust CSV."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    if len(rows) != n_sites:
        raise ValueError(f"{path}: {len(rows)} rows, the chunk's spectra {n_sites}")
    out = {}
    for column, (name, dtype) in enumerate(TRUST_FIELDS, start=2):
        values = [row[column] for row in rows]
        if dtype is np.float32:
            out[name] = np.array(values, dtype=np.float64).astype(np.float32)
        else:
            out[name] = np.array([int(v) for v in values], dtype=np.int64).astype(bool)
    return out


class CSVBackend(Backend):
    """``--format csv``."""

    name = "csv"

    def prepare(self, out: Path, manifest: dict[str, Any]) -> None:
        (out / "chunks").mkdir(parents=True, exist_ok=True)

    def _file(self, out: Path, table: str, index: int) -> Path:
        return out / "chunks" / f"{table}_{index:06d}.csv"

    def _tables(self, manifest: dict[str, Any]) -> list[str]:
        tables = (
            ["spectra", "spread", "errors"] if manifest["has_spread"] else ["spectra", "errors"]
        )
        tables += ["trust", "no_sites"] if has_trust(manifest) else []
        tables += ["multiplicity", "structure_mean"] if has_unique_sites(manifest) else []
        return tables + (["site_info"] if site_column_names(manifest) else [])

    def chunk_parts(self, out: Path, index: int, manifest: dict[str, Any]) -> dict[str, Path]:
        return {table: self._file(out, table, index) for table in self._tables(manifest)}

    def write_part(self, part: ChunkPart, chunk: ChunkData, manifest: dict[str, Any]) -> None:
        header, rows = _chunk_table(part.name, chunk, manifest)
        with open(part.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    def read_chunk(self, out: Path, index: int, manifest: dict[str, Any]) -> ChunkData:
        n_e = len(manifest["energies"])
        ids, sites, spectra = _read_table(self._file(out, "spectra", index), n_e)
        spread = None
        if manifest["has_spread"]:
            _, _, spread = _read_table(self._file(out, "spread", index), n_e)
        with open(self._file(out, "errors", index), newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            errors = [(row[0], row[1]) for row in reader]
        trust, no_sites = None, []
        if has_trust(manifest):
            trust = _read_trust(self._file(out, "trust", index), len(ids))
            with open(self._file(out, "no_sites", index), newline="", encoding="utf-8") as handle:
                no_sites = [row[0] for row in list(csv.reader(handle))[1:]]
        unique: dict[str, Any] = {}
        if has_unique_sites(manifest):
            unique = self._read_unique(out, index, n_e, len(ids))
        columns = None
        names = site_column_names(manifest)
        if names:
            path = self._file(out, "site_info", index)
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))[1:]
            if len(rows) != len(ids):
                raise ValueError(f"{path}: {len(rows)} rows, the chunk's spectra {len(ids)}")
            columns = {
                name: object_strings([row[2 + c] for row in rows]) for c, name in enumerate(names)
            }
        return ChunkData(
            ids, sites, spectra, spread, errors, trust, no_sites, **unique, columns=columns
        )

    def _read_unique(self, out: Path, index: int, n_e: int, n_sites: int) -> dict[str, Any]:
        """The unique-sites fields of :class:`ChunkData` from a chunk's CSV files."""
        path = self._file(out, "multiplicity", index)
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))[1:]
        if len(rows) != n_sites:
            raise ValueError(f"{path}: {len(rows)} rows, the chunk's spectra {n_sites}")
        path = self._file(out, "structure_mean", index)
        with open(path, newline="", encoding="utf-8") as handle:
            means = list(csv.reader(handle))[1:]
        values = np.array([row[1:] for row in means], dtype=np.float64).reshape(-1, n_e)
        return {
            "multiplicity": np.array([int(row[2]) for row in rows], dtype=np.int64),
            "mean_ids": object_strings([row[0] for row in means]),
            "mean_spectra": values.astype(np.float32),
        }

    def write_index(self, out: Path, manifest: dict[str, Any]) -> Path:
        """``predictions.csv`` (+ ``spread.csv``) and ``errors.csv``: the committed chunks'
        files joined in order under one header."""
        chunks = ordered_chunks(manifest)
        header = {
            "spectra": ["structure_id", "site_index", *_energy_labels(manifest)],
            "errors": _ERROR_HEADER,
            "trust": _TRUST_HEADER,
            "no_sites": _NO_SITES_HEADER,
            "multiplicity": _MULTIPLICITY_HEADER,
            "structure_mean": _mean_header(manifest),
            "site_info": _site_info_header(site_column_names(manifest)),
        }
        header["spread"] = header["spectra"]
        for table in self._tables(manifest):
            final = out / _TABLES[table]
            tmp = final.with_name(f".{final.name}.partial")
            with open(tmp, "wb") as target:
                target.write(_line(header[table]))
                for k in chunks:
                    with open(self._file(out, table, k), "rb") as source:
                        source.readline()  # the header (one line: never quoted)
                        shutil.copyfileobj(source, target)
            fsync_file(tmp)
            os.replace(tmp, final)
        return out / _TABLES["spectra"]
