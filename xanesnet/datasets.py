"""Training data: (structure, absorber index, spectrum) pairs, and a descriptor cache.

One abstraction, :class:`SpectrumPair`, describes a training example whatever the layout; three
sources make lists of them:

* :func:`fdmnes_pairs`: the Fe FDMNES layout, a folder of structures (``NAME.xyz``, absorber
  at index 0) and a folder of spectra (``NAME.txt``) paired by name (:func:`load_dataset`
  keeps reading it directly, as the commands do for this layout; FEFF folders and tables go
  through :func:`load_pairs`);
* :func:`feff_pairs`: FEFF folders as in the OmniXAS Cu data (``<material>/POSCAR``,
  ``<material>/FEFF-XANES/<site>_<El>/xmu.dat``, optional ``index.csv``);
* :func:`table_pairs`: a CSV table of (structure file, spectrum file[, absorber index]).

:func:`load_pairs` turns pairs into a :class:`SpectrumDataset` on one energy grid, with
descriptors cached in ``.npz`` files keyed by the descriptor configuration, the absorbers and
the hashes of the structure files, so retraining never recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xanesnet.checksums import file_sha256
from xanesnet.config import env_setting
from xanesnet.descriptors.wacsf import WACSF
from xanesnet.io.pairs import (
    SpectrumPair,
    detect_spectrum_format,
    fdmnes_pairs,
    feff_pairs,
    pair_files,
    read_pair_spectrum,
    read_pair_structure,
    table_pairs,
    training_pairs,
)

__all__ = [
    "SpectrumDataset",
    "SpectrumPair",
    "pair_files",
    "load_dataset",
    "cached_descriptors",
    "default_cache_dir",
    "fdmnes_pairs",
    "feff_pairs",
    "table_pairs",
    "training_pairs",
    "detect_spectrum_format",
    "read_pair_structure",
    "read_pair_spectrum",
    "pair_descriptors",
    "load_pairs",
]


def default_cache_dir() -> Path:
    """``$XANESNET_CACHE``, else ``$XDG_CACHE_HOME/xanesnet``, else ``~/.cache/xanesnet``."""
    cache = env_setting("XANESNET_CACHE")
    if cache is not None:
        return Path(cache)
    base = env_setting("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xanesnet"


def _read_cache(cache_file: Path, config: WACSF, n_files: int) -> np.ndarray:
    """The (n_files, n_features) descriptors of a cache file, checked (never unpickled).

    Raises:
        ValueError naming the cache file when it is unreadable or does not hold finite
        descriptors of this configuration and number of files.
    """
    problem = f"{cache_file}: damaged descriptor cache (delete it to recompute)"
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            features = stored["features"]
            stored_config = str(stored["config"]) if "config" in stored.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{problem}: {exc.__class__.__name__}: {exc}") from exc
    expected = (n_files, config.n_features)
    if features.dtype.kind != "f" or features.shape != expected:
        raise ValueError(
            f"{problem}: expected float descriptors of shape {expected}, got "
            f"{features.dtype} {features.shape}"
        )
    if stored_config is not None and stored_config != config.to_json():
        raise ValueError(f"{problem}: made with another descriptor configuration")
    if not np.isfinite(features).all():
        raise ValueError(f"{problem}: non-finite descriptor values")
    return features


def cached_descriptors(
    config: WACSF,
    paths: Sequence[Path],
    *,
    cache_dir: str | os.PathLike | None = None,
    absorber: int = 0,
    backend: str | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Descriptors of one site per structure file, cached on disk.

    The cache key is the SHA-256 of the configuration JSON, the absorber and every file's
    name and content hash, so any change to either recomputes.

    Returns:
        (n_files, config.n_features) float64.
    """
    from xanesnet.io import read_structures

    digest = hashlib.sha256()
    digest.update(config.to_json().encode())
    digest.update(f"absorber={absorber}".encode())
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(file_sha256(Path(path)).encode())
    key = digest.hexdigest()[:32]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = folder / f"wacsf-{key}.npz"
    if cache_file.exists():
        return _read_cache(cache_file, config, len(paths))
    structures = list(read_structures([Path(p) for p in paths]))
    features, _ = config.compute(structures, absorber, backend=backend, n_threads=n_threads)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.stem}.partial.npz")
    np.savez(tmp, features=features, config=np.asarray(config.to_json()))
    os.replace(tmp, cache_file)
    return features


@dataclass(frozen=True)
class SpectrumDataset:
    """Descriptors and spectra of named structures.

    Attributes:
        names: (n,) structure (or site) names.
        features: (n, n_features) descriptors.
        spectra: (n, n_energies) μ on ``energies``.
        energies: (n_energies,) absolute energies, eV (relative to each spectrum's edge
            energy when ``relative``).
        descriptor: the configuration that made ``features``.
        groups: (n,) the unit a split must keep together (the material of a crystal site),
            or None (every row its own group).
        absorbers: (n,) absorber index of each row in its structure, or None (all 0).
        relative: whether ``energies`` are relative to each spectrum's edge energy.
    """

    names: tuple[str, ...]
    features: np.ndarray
    spectra: np.ndarray
    energies: np.ndarray
    descriptor: WACSF
    groups: tuple[str, ...] | None = None
    absorbers: tuple[int, ...] | None = None
    relative: bool = False

    def subset(self, names: Sequence[str]) -> SpectrumDataset:
        """The rows of the given names, in that order."""
        where = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in where]
        if missing:
            raise KeyError(f"names not in the data set: {missing[:5]}")
        rows = np.array([where[n] for n in names], dtype=np.int64)
        return replace(
            self,
            names=tuple(names),
            features=self.features[rows],
            spectra=self.spectra[rows],
            groups=None if self.groups is None else tuple(self.groups[i] for i in rows),
            absorbers=None if self.absorbers is None else tuple(self.absorbers[i] for i in rows),
        )

    def group_subset(self, groups: Sequence[str]) -> SpectrumDataset:
        """The rows whose group is in ``groups`` (every site of those materials), in row order."""
        wanted = set(groups)
        own = self.groups if self.groups is not None else self.names
        return self.subset([n for n, g in zip(self.names, own) if g in wanted])

    def content_hash(self) -> str:
        """SHA-256 over names, descriptors and spectra (identifies a training set)."""
        digest = hashlib.sha256()
        digest.update(json.dumps(list(self.names)).encode())
        digest.update(np.ascontiguousarray(self.features).tobytes())
        digest.update(np.ascontiguousarray(self.spectra).tobytes())
        return digest.hexdigest()


def load_dataset(
    xyz_dir: str | os.PathLike,
    xanes_dir: str | os.PathLike,
    descriptor: WACSF,
    *,
    names: Sequence[str] | None = None,
    energies: np.ndarray | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_threads: int = 0,
) -> SpectrumDataset:
    """Pair structures with processed spectra and compute (or load cached) descriptors.

    Args:
        xyz_dir, xanes_dir: folders of ``NAME.xyz`` and ``NAME.txt``.
        descriptor: descriptor configuration.
        names: restrict to these names (default: every pair, sorted).
        energies: resample every spectrum onto these absolute energies (eV); default: the grid
            of the first spectrum, which all others must share.
        cache_dir: descriptor cache folder (default :func:`default_cache_dir`).
    """
    from xanesnet.spectra import read_processed_spectrum

    pairs = pair_files(xyz_dir, xanes_dir, names=names)
    spectra = []
    grid = None if energies is None else np.asarray(energies, dtype=np.float64)
    for _, _, spectrum_path in pairs:
        e, mu = read_processed_spectrum(spectrum_path)
        if grid is None:
            grid = e
        if e.shape != grid.shape or not np.allclose(e, grid, atol=6e-3):
            mu = np.interp(grid, e, mu)
        spectra.append(mu)
    features = cached_descriptors(
        descriptor, [p[1] for p in pairs], cache_dir=cache_dir, n_threads=n_threads
    )
    return SpectrumDataset(
        names=tuple(p[0] for p in pairs),
        features=features,
        spectra=np.asarray(spectra, dtype=np.float64),
        energies=np.asarray(grid, dtype=np.float64),
        descriptor=descriptor,
    )


def pair_descriptors(
    config: WACSF,
    pairs: Sequence[SpectrumPair],
    *,
    cache_dir: str | os.PathLike | None = None,
    backend: str | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Descriptors of every pair's absorbing site, cached on disk.

    Each structure file is read once and all its absorbers computed together. The cache key
    is the SHA-256 of the configuration JSON and, per structure file, its name, format,
    content hash and absorbers.

    Returns:
        (len(pairs), config.n_features) float64, in pair order.
    """
    files: dict[tuple[Path, str | None], list[int]] = {}
    for pair in pairs:
        sites = files.setdefault((Path(pair.structure), pair.structure_format), [])
        if pair.absorber not in sites:
            sites.append(pair.absorber)
    digest = hashlib.sha256()
    digest.update(config.to_json().encode())
    for (path, fmt), sites in files.items():
        digest.update(f"{path.name}|{fmt}|{sites}|{file_sha256(path)}".encode())
    digest.update(json.dumps([[str(p.structure), p.absorber] for p in pairs]).encode())
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = folder / f"wacsf-pairs-{digest.hexdigest()[:32]}.npz"
    if cache_file.exists():
        return _read_cache(cache_file, config, len(pairs))
    first = {}
    for pair in pairs:
        first.setdefault((Path(pair.structure), pair.structure_format), pair)
    keys = list(files)
    structures = [
        read_pair_structure(replace(first[key], absorber=max(files[key]))) for key in keys
    ]
    features, index = config.compute(
        structures, [files[key] for key in keys], backend=backend, n_threads=n_threads
    )
    row_of = {(keys[int(s)], int(a)): r for r, (s, a) in enumerate(index)}
    out = features[[row_of[((Path(p.structure), p.structure_format), p.absorber)] for p in pairs]]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.stem}.partial.npz")
    np.savez(tmp, features=out, config=np.asarray(config.to_json()))
    os.replace(tmp, cache_file)
    return out


def load_pairs(
    pairs: Sequence[SpectrumPair],
    descriptor: WACSF,
    energies: np.ndarray | None = None,
    *,
    relative: bool = False,
    feff_target: str = "mu",
    cache_dir: str | os.PathLike | None = None,
    n_threads: int = 0,
    on_error: Callable[[SpectrumPair, Exception], None] | None = None,
) -> SpectrumDataset:
    """Spectra on one grid and (cached) descriptors of the pairs, as a :class:`SpectrumDataset`.

    Args:
        pairs: from :func:`training_pairs` (or any source above).
        descriptor: descriptor configuration.
        energies: (m,) grid, eV (absolute, or relative to each edge energy if ``relative``);
            None: the grid of the first spectrum, only for processed spectra.
        feff_target: see :func:`read_pair_spectrum`.
        on_error: when given, a pair whose spectrum or structure cannot be read is reported
            as ``on_error(pair, error)`` and left out; without it the first error is raised.
    """
    from xanesnet import spectra

    if energies is None:
        if not pairs or pairs[0].spectrum_format != "processed" or relative:
            raise ValueError("energies: give the grid (only processed spectra supply their own)")
        energies, _ = spectra.read_processed_spectrum(pairs[0].spectrum)
    grid = np.asarray(energies, dtype=np.float64)
    kept, rows = [], []
    for pair in pairs:
        try:
            rows.append(read_pair_spectrum(pair, grid, relative=relative, feff_target=feff_target))
            if on_error is not None:
                read_pair_structure(pair)
        except (OSError, ValueError) as error:
            if on_error is None:
                raise
            rows = rows[: len(kept)]
            on_error(pair, error)
            continue
        kept.append(pair)
    if not kept:
        raise ValueError("no readable pairs")
    features = pair_descriptors(descriptor, kept, cache_dir=cache_dir, n_threads=n_threads)
    return SpectrumDataset(
        names=tuple(p.name for p in kept),
        features=features,
        spectra=np.asarray(rows, dtype=np.float64),
        energies=grid,
        descriptor=descriptor,
        groups=tuple(p.group or p.name for p in kept),
        absorbers=tuple(p.absorber for p in kept),
        relative=relative,
    )
