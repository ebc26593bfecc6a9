"""Model files: a TorchScript archive (``.pt``) with embedded JSON metadata and a checksum.

A model file holds the standardiser and network(s) of a :class:`SpectrumEnsemble` and, as an
embedded JSON file (``xanesnet.json``), everything needed to use it: the descriptor
configuration, the energy grid, element and edge, a hash of the training set, the package
version, validation metrics and, optionally, an uncertainty calibration and an applicability
domain (JSON objects kept verbatim).

Safety: loading never unpickles arbitrary Python objects. TorchScript archives are read by
torch's restricted loader and the metadata is plain JSON. ``torch.export`` archives (``.pt2``)
are neither written nor read: they may hold weights and constants stored with Python's pickle,
which runs code when loaded.

Size: archive entries that deflate well are stored deflated (torch's reader inflates them;
lossless): a kernel ridge member's float16 centres, many of them zero in element channels a
structure lacks, and the JSON metadata; network weights, which barely shrink, stay as they are
so that loading does not pay for inflating them. Before torch reads an archive, its declared
inflated size is checked against :data:`MAX_INFLATED_BYTES`, so that a small crafted file
cannot claim gigabytes of memory.

Integrity: the metadata carries a SHA-256 of every tensor of the network state (by name, in
sorted order, with dtype and shape) and of the canonical metadata JSON itself (without the
checksum). Loading verifies it and checks the metadata against the network (input and output
widths, number of members, energies, element), refusing a file that disagrees with a message
naming the field. The checksum detects damage and edits, not a forger who recomputes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ase.data import chemical_symbols

from xanesnet.checksums import file_sha256  # re-exported: the model file's checksum helper
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.model.network import SpectrumEnsemble
from xanesnet.model.runtime import XanesModel

__all__ = [
    "CHECKSUM_KEY",
    "MAX_INFLATED_BYTES",
    "METADATA_NAME",
    "OPTIONAL_OBJECT_KEYS",
    "SCHEMA",
    "check_against_network",
    "check_metadata",
    "file_sha256",
    "load_model",
    "quiet_torchscript",
    "read_model_file",
    "save_model",
    "update_model_metadata",
    "weights_checksum",
]

SCHEMA = "xanesnet.model/1"
METADATA_NAME = "xanesnet.json"
#: Metadata entry holding ``"sha256:<hex>"`` of the weights and the rest of the metadata.
CHECKSUM_KEY = "checksum"
#: Optional metadata entries that must be JSON objects when present (kept verbatim, covered by
#: the checksum): the uncertainty calibration, the applicability domain and the latent distance
#: of a model, and the units/normalisation of its spectra (keys in
#: xanesnet.store.units.SPECTRUM_UNITS_KEYS).
OPTIONAL_OBJECT_KEYS = ("uncertainty_calibration", "domain", "latent_distance", "spectrum_units")
#: Largest total inflated size of a model archive's entries that is read (bytes): far above
#: any model of this package (the largest shipped is under 10 MB), far below a machine's memory.
MAX_INFLATED_BYTES = 1 << 31
#: An archive entry is stored deflated when that takes it to at most this share of its size:
#: kernel ridge centres (float16, zeros in absent element channels) and the JSON metadata shrink
#: 2.5x; float16 network weights only by ~8 %, which is not worth inflating them at every load.
DEFLATE_WORTH = 0.8
#: Suffix of ``torch.export`` archives, refused on save and load (see the module docstring).
EXPORT_ARCHIVE_SUFFIX = ".pt2"
_REQUIRED = (
    "schema",
    "descriptor",
    "energies",
    "e0",
    "element",
    "edge",
    "n_features",
    "n_energies",
    "n_members",
    "xanesnet_version",
)
# element symbols H..Og (ase's list starts with the placeholder "X")
_ELEMENTS = frozenset(chemical_symbols[1:])


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """TorchScript is deprecated upstream but is still the portable format we ship (see the
    README); its deprecation warnings say nothing actionable to a user loading a model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def _canonical_json(meta: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def weights_checksum(state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of a network state and its metadata.

    Args:
        state: the module's ``state_dict()`` (every parameter and buffer, by name).
        metadata: the model metadata; its ``checksum`` entry, if any, is left out.

    The digest covers, for each tensor in sorted name order, its name, dtype, shape and raw
    bytes, then the metadata as sorted, compact JSON.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        header = f"{name}\0{str(tensor.dtype).removeprefix('torch.')}\0{tuple(tensor.shape)}\0"
        digest.update(header.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(b"metadata\0")
    digest.update(_canonical_json(metadata))
    return f"sha256:{digest.hexdigest()}"


def _refuse_export_archive(path: Path) -> None:
    if path.suffix.lower() == EXPORT_ARCHIVE_SUFFIX:
        raise ValueError(
            f"{path}: {EXPORT_ARCHIVE_SUFFIX} files are not loaded or written because "
            "torch.export archives may contain pickled objects, which run code when loaded; "
            "re-export the model as .pt (TorchScript)"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_metadata(meta: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The metadata, checked field by field (not against the network).

    Raises:
        ValueError naming ``path`` and the field that is missing or wrong.
    """
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: model metadata is not a JSON object")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"{path}: model metadata lacks {missing}")
    if meta["schema"] != SCHEMA:
        raise ValueError(
            f"{path}: unsupported model schema {meta['schema']!r} (expected {SCHEMA!r})"
        )
    for key in ("n_features", "n_energies", "n_members"):
        if not _is_int(meta[key]) or meta[key] < 1:
            raise ValueError(
                f"{path}: metadata {key}: expected a positive integer, got {meta[key]!r}"
            )
    energies = meta["energies"]
    if not isinstance(energies, list) or len(energies) != meta["n_energies"]:
        got = len(energies) if isinstance(energies, list) else type(energies).__name__
        raise ValueError(
            f"{path}: metadata energies do not match n_energies: {got} energies, "
            f"n_energies {meta['n_energies']}"
        )
    if not all(isinstance(e, (int, float)) and math.isfinite(e) for e in energies):
        raise ValueError(f"{path}: metadata energies: expected finite numbers (eV)")
    if any(b <= a for a, b in zip(energies, energies[1:])):
        raise ValueError(f"{path}: metadata energies: expected a strictly increasing grid (eV)")
    if not isinstance(meta["e0"], (int, float)) or not math.isfinite(meta["e0"]):
        raise ValueError(f"{path}: metadata e0: expected a finite energy (eV), got {meta['e0']!r}")
    if meta["element"] not in _ELEMENTS:
        raise ValueError(
            f"{path}: metadata element: expected a chemical symbol (H..Og), got {meta['element']!r}"
        )
    if not isinstance(meta["edge"], str) or not meta["edge"]:
        raise ValueError(f"{path}: metadata edge: expected an edge name, got {meta['edge']!r}")
    try:
        descriptor = WACSF.from_dict(meta["descriptor"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid descriptor configuration in metadata: {exc}") from exc
    if descriptor.n_features != meta["n_features"]:
        raise ValueError(
            f"{path}: metadata n_features: the descriptor configuration gives "
            f"{descriptor.n_features} features, n_features says {meta['n_features']} "
            "(descriptor length does not match the network input)"
        )
    kernel = meta.get("kernel")
    if kernel is not None and not (
        isinstance(kernel, dict)
        and isinstance(kernel.get("weight"), (int, float))
        and 0.0 <= kernel["weight"] <= 1.0
    ):
        raise ValueError(f"{path}: metadata kernel: invalid entry {kernel!r}")
    for key in OPTIONAL_OBJECT_KEYS:
        if key in meta and not isinstance(meta[key], dict):
            raise ValueError(f"{path}: metadata {key}: expected a JSON object")
    return meta


def _members(module: Any) -> list[Any]:
    # a loaded TorchScript ModuleList cannot be iterated; its children are named 0, 1, ...
    children = dict(module.members.named_children())
    return [children[str(i)] for i in range(len(children))]


def check_against_network(module: Any, meta: Mapping[str, Any], path: str | os.PathLike) -> None:
    """The metadata agrees with the network: members, kernel, input and output widths.

    Raises:
        ValueError naming ``path`` and the field that disagrees.
    """

    def kind(m: Any) -> str:  # the Python class a TorchScript module was compiled from
        return str(getattr(m, "original_name", type(m).__name__))

    if kind(module) != "SpectrumEnsemble" or not hasattr(module, "members"):
        raise ValueError(
            f"{path}: the network is a {kind(module)}, not a xanesnet SpectrumEnsemble"
        )
    members = _members(module)
    foreign = sorted({kind(m) for m in members} - {"SpectrumMLP"})
    if foreign:
        raise ValueError(
            f"{path}: ensemble members of unknown kind {foreign} (expected SpectrumMLP)"
        )
    if len(members) != meta["n_members"]:
        raise ValueError(
            f"{path}: metadata n_members: says {meta['n_members']}, the file holds "
            f"{len(members)} network(s)"
        )
    has_kernel = module.kernel is not None
    if has_kernel != (meta.get("kernel") is not None):
        raise ValueError(
            f"{path}: metadata kernel: says {'none' if meta.get('kernel') is None else 'one'}, "
            f"the file holds {'a' if has_kernel else 'no'} kernel ridge member"
        )
    if has_kernel and float(module.kernel_weight) != float(meta["kernel"]["weight"]):
        raise ValueError(
            f"{path}: metadata kernel weight {meta['kernel']['weight']} differs from the "
            f"file's {float(module.kernel_weight)}"
        )
    n_features, n_energies = meta["n_features"], meta["n_energies"]
    for i, member in enumerate(members):
        width = int(member.x_mean.shape[0]) if hasattr(member, "x_mean") else n_features
        if width != n_features:
            raise ValueError(
                f"{path}: metadata n_features: network {i} takes {width} inputs, the "
                f"descriptor configuration gives {n_features}"
            )
    try:
        # a two-row probe of the output width, unoptimised: TorchScript's first optimised
        # call of a module costs ~10x more (profiling and graph passes), and this call only
        # checks shapes (batches run the members rebuilt in eager code)
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            mean, _ = module(torch.zeros(2, n_features))
    except RuntimeError as exc:
        raise ValueError(
            f"{path}: metadata n_features: the network does not take {n_features} inputs "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else 'RuntimeError'})"
        ) from exc
    if tuple(mean.shape) != (2, n_energies):
        width = mean.shape[1] if mean.dim() == 2 else tuple(mean.shape)
        raise ValueError(
            f"{path}: metadata energies: {n_energies} energies, the network outputs "
            f"{width} values per site"
        )


def _kernel_metadata(ensemble: SpectrumEnsemble) -> dict[str, Any] | None:
    """What the file says of its kernel ridge member (None without one)."""
    kernel = ensemble.kernel
    if kernel is None:
        return None
    return {
        "kind": "laplacian",
        "weight": ensemble.kernel_weight,
        "gamma": kernel.gamma,
        "n_centres": int(kernel.centres.shape[0]),
        "centre_dtype": str(kernel.centres.dtype).removeprefix("torch."),
        "n_components": int(kernel.n_components) or None,
    }


def _deflate_archive(src: Path, dst: Path) -> None:
    """Copy the zip archive ``src`` to ``dst``, deflating the entries that shrink to at most
    :data:`DEFLATE_WORTH` of their size and storing the others as they are (names, order and
    timestamps kept; the bytes inside are unchanged, so the weights checksum is too)."""
    with zipfile.ZipFile(src) as source, zipfile.ZipFile(dst, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.external_attr = info.external_attr
            packed = zlib.compressobj(9, zlib.DEFLATED, -15)
            size = len(packed.compress(data)) + len(packed.flush())
            worth = size <= DEFLATE_WORTH * len(data)
            entry.compress_type = zipfile.ZIP_DEFLATED if worth else zipfile.ZIP_STORED
            target.writestr(entry, data, compresslevel=9 if worth else None)


def _check_inflated_size(path: Path) -> None:
    """Refuse an archive whose entries declare more than :data:`MAX_INFLATED_BYTES` in all
    (the check reads only the zip directory). Files that are not zip archives pass: torch's
    loader refuses them."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if total > MAX_INFLATED_BYTES:
        raise ValueError(
            f"{path}: model archive declares {total} bytes once inflated, more than the "
            f"{MAX_INFLATED_BYTES} a model file may hold: not read"
        )


def _write_archive(module: Any, meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check ``meta`` against ``module``, add the checksum and write atomically to ``path``."""
    meta = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    check_metadata(meta, path)
    check_against_network(module, meta, path)
    meta[CHECKSUM_KEY] = weights_checksum(module.state_dict(), meta)
    text = json.dumps(meta, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written under its final name in a scratch folder beside it (the archive's root folder
    # is named after the file), then renamed into place when complete
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    stored = scratch / "stored"
    stored.mkdir()
    tmp = scratch / path.name
    try:
        with quiet_torchscript():
            torch.jit.save(module, str(stored / path.name), _extra_files={METADATA_NAME: text})
        _deflate_archive(stored / path.name, tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return meta


def save_model(
    ensemble: SpectrumEnsemble,
    path: str | os.PathLike,
    *,
    descriptor: WACSF,
    energies: Sequence[float],
    e0: float,
    element: str,
    edge: str = "K",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a TorchScript model file (``.pt``; ``.pt2`` is refused, see the module docstring).

    Args:
        ensemble: trained networks (one or more members).
        path: output file.
        descriptor: the descriptor configuration the networks were trained on.
        energies: (n_energies,) absolute energies of the output grid, eV, increasing.
        e0: edge energy, eV.
        element, edge: absorbing element symbol and edge name (e.g. "Fe", "K").
        extra: more JSON-ready metadata (training set hash, metrics, training config,
            ``uncertainty_calibration``, ``domain``...).

    Returns:
        The metadata written, checksum included.

    Raises:
        ValueError: metadata that disagrees with the networks, naming the field.
    """
    from xanesnet import __version__

    path = Path(path)
    _refuse_export_archive(path)
    first = ensemble.members[0]
    if descriptor.n_features != first.n_features:
        raise ValueError(
            f"{path}: descriptor has {descriptor.n_features} features, the network takes "
            f"{first.n_features} (descriptor length does not match the network input)"
        )
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "descriptor": descriptor.to_dict(),
        "energies": [float(e) for e in energies],
        "e0": float(e0),
        "element": element,
        "edge": edge,
        "n_features": int(first.n_features),
        "n_energies": int(first.n_energies),
        "n_members": int(ensemble.n_members),
        "kernel": _kernel_metadata(ensemble),
        "xanesnet_version": __version__,
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    check_metadata(meta, path)  # plain field errors before the (slower) scripting
    with quiet_torchscript():
        scripted = torch.jit.script(ensemble.eval())
    return _write_archive(scripted, meta, path)


def read_model_file(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """The TorchScript module and metadata of a model file, verified.

    Raises:
        FileNotFoundError: no such file.
        ValueError naming the file (and the field): not a model file, ``.pt2``, metadata
            missing or invalid or disagreeing with the network, no checksum or a wrong one.
    """
    path = Path(path)
    _refuse_export_archive(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    _check_inflated_size(path)
    extra = {METADATA_NAME: ""}
    try:
        # torch.jit.load reads only TorchScript archives (its own restricted unpickler); a
        # torch.export or torch.save archive under another name fails here without being
        # unpickled
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a xanesnet model file ({exc.__class__.__name__})") from exc
    text = extra[METADATA_NAME]
    if not text:
        raise ValueError(f"{path}: model file has no xanesnet metadata ({METADATA_NAME})")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: model metadata is not valid JSON: {exc}") from exc
    check_metadata(meta, path)
    check_against_network(module, meta, path)
    stored = meta.get(CHECKSUM_KEY)
    if stored is None:
        raise ValueError(
            f"{path}: model metadata has no {CHECKSUM_KEY} (written by an older xanesnet); "
            "re-export the model with this version (save_model) to add one, or, for a file you "
            "made yourself, run scripts/add_model_checksum.py from the source tree"
        )
    if stored != weights_checksum(module.state_dict(), meta):
        raise ValueError(
            f"{path}: metadata {CHECKSUM_KEY} does not match the file's weights and metadata: "
            "the file is damaged or was edited"
        )
    return module, meta


def load_model(path: str | os.PathLike) -> XanesModel:
    """Load a model file written by :func:`save_model` (see :func:`read_model_file`)."""
    module, meta = read_model_file(path)
    return XanesModel(module, meta, Path(path))


def update_model_metadata(
    src_path: str | os.PathLike, dst_path: str | os.PathLike, updates: dict[str, Any]
) -> None:
    """Rewrite a model file with added or changed metadata entries, checksum recomputed.

    The source is verified first; the networks are copied unchanged. ``dst_path`` may equal
    ``src_path`` (the file is replaced atomically).

    Args:
        src_path: a model file written by :func:`save_model`.
        dst_path: the file to write (``.pt``).
        updates: JSON-ready entries to set, e.g. ``{"uncertainty_calibration": {...}}``; the
            ``checksum`` entry cannot be set.

    Raises:
        ValueError: the source fails verification, or the updated metadata is invalid or
            disagrees with the networks (naming the field).
    """
    dst = Path(dst_path)
    _refuse_export_archive(dst)
    if CHECKSUM_KEY in updates:
        raise ValueError(f"updates: {CHECKSUM_KEY!r} is computed, not set")
    try:
        json.dumps(updates, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"updates: not JSON-ready ({exc})") from exc
    module, meta = read_model_file(src_path)
    _write_archive(module, {**meta, **updates}, dst)
