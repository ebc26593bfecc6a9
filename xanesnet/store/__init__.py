"""Prediction output that loses nothing: chunked, atomic, resumable; HDF5, zarr or CSV.

An output is a folder::

    OUT/
      manifest.json   the job (model hash and metadata, inputs, options, xanesnet version),
                      the format, the energies (eV) and the committed chunks; replaced
                      atomically after every chunk: it is the commit point
      chunks/         one file or folder (set) per committed chunk, written aside, flushed to
                      disk, then renamed into place
      predictions.*   consolidated view over all chunks, written at the end of the job

Formats (``format=`` of :func:`xanesnet.predict_batch`, ``--format`` of ``xanesnet-batch``):

``hdf5`` (default, :mod:`xanesnet.store._hdf5`)
    ``chunks/chunk_NNNNNN.h5``; ``predictions.h5`` spans them with HDF5 virtual datasets.
``zarr`` (:mod:`xanesnet.store._zarr`; ``pip install "xanesnet[zarr]"``)
    ``chunks/`` is a zarr group of chunk groups; ``predictions.zarr`` is one zarr group:
    ``zarr.open_group("OUT/predictions.zarr")["spectra"][:]``.
``csv`` (:mod:`xanesnet.store._csv`; small jobs)
    ``chunks/{spectra,spread,errors}_NNNNNN.csv``; ``predictions.csv``, ``spread.csv`` and
    ``errors.csv`` join them: ``structure_id,site_index`` then one column per energy (eV).

Every format holds the same per-site data: structure ids (n_sites,), site indices (n_sites,),
spectra (n_sites, n_energies) float32, the ensemble spread (same shape, ensembles only), the
trust columns of :data:`TRUST_FIELDS` (predicted Δμ %, out-of-domain score, ``outside_domain``
and ``unphysical`` flags; CSV: ``trust.csv``), the ids of the structures without a site of the
model's element (``no_site_ids``; CSV: ``no_sites.csv``), and the error table (id, reason) of
the structures that failed. (Outputs started before the trust columns existed have neither and
resume without them.) Outputs started since they exist also hold the per-site text columns
named in the manifest's ``site_columns``:
``source``, the input each site's structure came from, and ``info.<key>`` per ``keep_info``
key (CSV: ``site_info.csv``). A chunk is either fully committed
or absent, whatever instant the job is killed at; each committed chunk carries a checksum of
its data in the manifest (:mod:`xanesnet.store.integrity`): a resumed job recomputes any chunk
that no longer reads back as written, and reading refuses one; :func:`read_predictions` reads the committed
chunks of any format and returns the same :class:`StoredPredictions` for all three.
"""

from __future__ import annotations

from xanesnet.store._common import (
    FORMATS,
    SCHEMA,
    TRUST_FIELDS,
    MissingDependencyError,
    StoredPredictions,
)
from xanesnet.store._output import (
    DamagedChunkWarning,
    PredictionStore,
    format_backend,
    merge_outputs,
    read_predictions,
    write_index,
)
from xanesnet.store.integrity import OutputLockedError, OutputWriteError

__all__ = [
    "DamagedChunkWarning",
    "OutputLockedError",
    "OutputWriteError",
    "FORMATS",
    "SCHEMA",
    "TRUST_FIELDS",
    "MissingDependencyError",
    "PredictionStore",
    "StoredPredictions",
    "format_backend",
    "merge_outputs",
    "read_predictions",
    "write_index",
]
