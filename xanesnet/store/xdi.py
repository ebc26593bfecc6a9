"""Predicted spectra as XDI files (XAS Data Interchange 1.0), one file per site.

XDI is the plain-text exchange format of the XAS community (read by Larch, Athena and other
XAS tools). Each file written here holds::

    # XDI/1.0 xanesnet/<version>
    # Column.1: energy eV
    # Column.2: mutrans          (normtrans when the model's spectra are edge-step normalised)
    # Column.3: sigma            (only when a calibrated uncertainty is given)
    # Element.symbol: Fe
    # Element.edge: K
    # Scan.edge_energy: 7112 eV  (when known)
    # Sample.id / XANESNET.*: structure id, absorbing atom, model file and SHA-256, units
    # ///
    # free comment lines (what the file is)
    #----
    # energy mutrans sigma
    7097.000000 5.6e-03 ...

:func:`export_xdi` converts a finished batch output (any format, :func:`read_predictions`);
:func:`write_xdi_files` writes in-memory spectra; :func:`read_xdi` reads the files back (header
fields, comments, columns) without any XAS package.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xanesnet.store.units import ENERGY_UNITS, spectrum_units

__all__ = [
    "XdiFile",
    "export_xdi",
    "read_xdi",
    "site_file_name",
    "write_xdi_files",
    "xdi_text",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+()\-]+")


def _clean(text: Any) -> str:
    """A header value on one line (XDI header lines end at the line break)."""
    return " ".join(str(text).split())


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"XDI values must be finite numbers, got {value}")
    return f"{value:.9g}"  # 9 significant digits: float32 values read back exactly


def xdi_text(
    energies: np.ndarray,
    mu: np.ndarray,
    *,
    element: str,
    edge: str,
    structure_id: str,
    site: int,
    sigma: np.ndarray | None = None,
    edge_energy: float | None = None,
    units: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    model_sha256: str | None = None,
    version: str | None = None,
) -> str:
    """The XDI 1.0 text of one predicted spectrum.

    Args:
        energies: (n_energies,) absolute energies, eV.
        mu: (n_energies,) predicted μ.
        element, edge: absorbing element symbol and edge ("Fe", "K").
        structure_id: the structure's id; site: the absorbing atom's index in it.
        sigma: (n_energies,) calibrated standard uncertainty of μ (μ units), or None.
        edge_energy: the model's E0 (eV), written as ``Scan.edge_energy`` when given.
        units: the model's spectrum units entry (:func:`xanesnet.store.units.spectrum_units`).
        model_name, model_sha256: the model file's name and SHA-256, when known.
        version: the writing xanesnet version (default: this one).

    Raises:
        ValueError: shapes that disagree, or a non-finite value (XDI allows none).
    """
    if version is None:
        from xanesnet import __version__ as version
    energies = np.asarray(energies, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    columns = [energies, mu]
    if sigma is not None:
        columns.append(np.asarray(sigma, dtype=np.float64))
    if any(c.shape != energies.shape or c.ndim != 1 for c in columns):
        raise ValueError(
            f"{structure_id} site {site}: energies {energies.shape}, mu {mu.shape}"
            + (f", sigma {columns[2].shape}" if sigma is not None else "")
            + ": expected one (n_energies,) array each"
        )
    units = spectrum_units({"spectrum_units": units} if units else None)
    mu_label = "normtrans" if units["edge_step_normalised"] else "mutrans"
    labels = ["energy", mu_label] + (["sigma"] if sigma is not None else [])
    lines = [f"# XDI/1.0 xanesnet/{version}", f"# Column.1: energy {ENERGY_UNITS}"]
    lines.append(f"# Column.2: {mu_label}")
    if sigma is not None:
        lines.append("# Column.3: sigma")
    lines += [f"# Element.symbol: {element}", f"# Element.edge: {edge}"]
    if edge_energy is not None:
        lines.append(f"# Scan.edge_energy: {_number(float(edge_energy))} {ENERGY_UNITS}")
    lines += [
        f"# Sample.name: {_clean(structure_id)}",
        f"# Sample.id: {_clean(structure_id)} site {int(site)}",
        f"# XANESNET.structure_id: {_clean(structure_id)}",
        f"# XANESNET.site: {int(site)}",
    ]
    if model_name:
        lines.append(f"# XANESNET.model: {_clean(model_name)}")
    if model_sha256:
        lines.append(f"# XANESNET.model_sha256: {_clean(model_sha256)}")
    lines.append(f"# XANESNET.mu_units: {_clean(units['mu'])}")
    lines.append(f"# XANESNET.normalisation: {_clean(units['description'])}")
    lines.append("# ///")
    model = f" with model {_clean(model_name)}" if model_name else ""
    lines.append(
        f"# Predicted (not measured) {element} {edge}-edge XANES{model}: structure "
        f"{_clean(structure_id)}, absorbing atom {int(site)}."
    )
    if model_sha256:
        lines.append(f"# model sha256 {_clean(model_sha256)}")
    if sigma is not None:
        lines.append("# sigma: calibrated standard uncertainty of mu (same units as mu).")
    lines += ["#----", "# " + " ".join(labels)]
    for row in zip(*columns, strict=True):
        lines.append(" ".join(_number(v) for v in row))
    return "\n".join(lines) + "\n"


def site_file_name(structure_id: str, site: int) -> str:
    """``<id>_site<k>.xdi`` with characters other than letters, digits and ``._+()-``
    replaced by ``_`` (ids hold ``:`` and ``/``)."""
    stem = _UNSAFE.sub("_", str(structure_id)).strip("._") or "structure"
    return f"{stem}_site{int(site)}.xdi"


def write_xdi_files(
    out_dir: str | os.PathLike,
    energies: np.ndarray,
    spectra: np.ndarray,
    ids: Sequence[str],
    sites: Sequence[int],
    *,
    element: str,
    edge: str,
    sigma: np.ndarray | None = None,
    **header: Any,
) -> list[Path]:
    """One XDI file per site into ``out_dir`` (created); see :func:`xdi_text`.

    Args:
        out_dir: folder for the files (``<id>_site<k>.xdi``; a name two ids share after the
            replacement of unsafe characters gets ``-2``, ``-3``, ... appended).
        energies: (n_energies,) eV; spectra: (n_sites, n_energies) μ.
        ids: (n_sites,) structure id of each row; sites: (n_sites,) absorbing atom indices.
        element, edge: absorbing element and edge.
        sigma: (n_sites, n_energies) calibrated uncertainty, or None.
        header: ``edge_energy``, ``units``, ``model_name``, ``model_sha256`` of
            :func:`xdi_text`.

    Returns:
        The paths written, in row order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spectra = np.asarray(spectra)
    if not (len(ids) == len(sites) == len(spectra)):
        raise ValueError(
            f"ids ({len(ids)}), sites ({len(sites)}) and spectra ({len(spectra)}) differ in length"
        )
    taken: set[str] = set()
    paths = []
    for row, (structure_id, site) in enumerate(zip(ids, sites, strict=True)):
        name = site_file_name(structure_id, site)
        stem, n = name[: -len(".xdi")], 2
        while name in taken:
            name, n = f"{stem}-{n}.xdi", n + 1
        taken.add(name)
        text = xdi_text(
            energies,
            spectra[row],
            element=element,
            edge=edge,
            structure_id=str(structure_id),
            site=int(site),
            sigma=None if sigma is None else sigma[row],
            **header,
        )
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _model_of_output(
    manifest: Mapping[str, Any], model: str | os.PathLike | None
) -> tuple[Path | None, dict[str, Any] | None]:
    """The model file of a batch output (given, or the shipped file whose SHA-256 the job
    records) and its metadata; (None, None) when neither is found."""
    from xanesnet.checksums import file_sha256
    from xanesnet.model.pretrained import read_metadata, resolve_model_path, shipped_models

    if model is not None:
        path = resolve_model_path(model, "--model")
        return path, read_metadata(path)
    wanted = manifest.get("job", {}).get("model_sha256")
    for row in shipped_models():
        if wanted and file_sha256(row.path) == wanted:
            return row.path, row.metadata()
    return None, None


def export_xdi(
    output: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
) -> list[Path]:
    """XDI files, one per site, of a batch output (hdf5, zarr or csv; committed chunks).

    Args:
        output: the batch output folder (see :func:`xanesnet.read_predictions`).
        out_dir: folder for the XDI files.
        model: the model file the output was made with, for E0, the units and the calibrated
            uncertainty; by default the shipped model whose SHA-256 the job records (none if
            the output came from another file: then no ``Scan.edge_energy`` and no ``sigma``).

    Returns:
        The paths written.

    Raises:
        ValueError: a given model whose SHA-256 differs from the one the job records, or
            an output without element/edge in its job.
    """
    from xanesnet.checksums import file_sha256
    from xanesnet.store import read_predictions

    stored = read_predictions(output)
    job = stored.metadata.get("job", {})
    recorded = job.get("model_sha256")
    path, meta = _model_of_output(stored.metadata, model)
    if path is not None and model is not None and recorded and file_sha256(path) != recorded:
        raise ValueError(
            f"{path}: not the model of {output} (its SHA-256 differs from the job's {recorded})"
        )
    job_model = job.get("model") or {}
    element = job_model.get("element") or (meta or {}).get("element")
    edge = job_model.get("edge") or (meta or {}).get("edge")
    if not element or not edge:
        raise ValueError(f"{output}: the job records no absorbing element/edge")
    sigma = None
    calibration = (meta or {}).get("uncertainty_calibration")
    if calibration is not None:
        from xanesnet.model.calibration import CalibratedUncertainty

        sigma = CalibratedUncertainty.from_metadata(calibration).sigma(
            stored.spread, n_sites=len(stored.spectra)
        )
    return write_xdi_files(
        out_dir,
        stored.energies,
        stored.spectra,
        [str(i) for i in stored.ids],
        [int(s) for s in stored.sites],
        element=element,
        edge=edge,
        sigma=sigma,
        edge_energy=None if meta is None else float(meta["e0"]),
        units=spectrum_units(meta, None if path is None else path.name),
        model_name=None if path is None else path.name,
        model_sha256=recorded,
    )


@dataclass(frozen=True)
class XdiFile:
    """An XDI file read back: ``version`` (the first line after ``# ``), ``fields``
    (``"Namespace.tag"`` → value, as written), ``comments`` (the free lines), ``labels`` and
    ``data`` ((n_rows, n_columns) float64)."""

    version: str
    fields: dict[str, str]
    comments: list[str]
    labels: list[str]
    data: np.ndarray


def read_xdi(path: str | os.PathLike) -> XdiFile:
    """Read an XDI file (as written here, or any XDI 1.0 file with a ``#----`` line).

    Raises:
        ValueError: no ``# XDI/`` first line, or no ``#----`` line before the data; naming
            the file.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("# XDI/"):
        raise ValueError(f"{path}: line 1: not an XDI file (expected '# XDI/1.0 ...')")
    fields: dict[str, str] = {}
    comments: list[str] = []
    in_comments = False
    for n, line in enumerate(lines[1:], start=2):
        body = line[1:].strip() if line.startswith("#") else None
        if body is None:
            raise ValueError(f"{path}: line {n}: data before the '#----' line")
        if body.startswith("----"):
            labels = lines[n].lstrip("#").split() if n < len(lines) else []
            rows = [r for r in lines[n + 1 :] if r.strip() and not r.startswith("#")]
            data = np.array([[float(v) for v in r.split()] for r in rows], dtype=np.float64)
            return XdiFile(lines[0][2:], fields, comments, labels, data)
        if body.startswith("///"):
            in_comments = True
        elif in_comments:
            comments.append(body)
        else:
            key, _, value = body.partition(":")
            fields[key.strip()] = value.strip()
    raise ValueError(f"{path}: no '#----' line before the data")
