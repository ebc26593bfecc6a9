"""Training data: structures paired with spectra by name, and a descriptor cache.

A data set is a folder of structures (``NAME.xyz``) and a folder of spectra (``NAME.txt``).
Descriptors are cached in ``.npz`` files keyed by the descriptor configuration and the hashes
of the structure files, so retraining never recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xanesnet.descriptors.wacsf import WACSF

__all__ = [
    "SpectrumDataset",
    "pair_files",
    "load_dataset",
    "cached_descriptors",
    "default_cache_dir",
]


def default_cache_dir() -> Path:
    """``$XANESNET_CACHE``, else ``$XDG_CACHE_HOME/xanesnet``, else ``~/.cache/xanesnet``."""
    if os.environ.get("XANESNET_CACHE"):
        return Path(os.environ["XANESNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xanesnet"


def pair_files(
    xyz_dir: str | os.PathLike, xanes_dir: str | os.PathLike, *, names: Sequence[str] | None = None
) -> list[tuple[str, Path, Path]]:
    """(name, structure path, spectrum path) for every name present in both folders.

    Args:
        xyz_dir: folder of ``NAME.xyz`` structures.
        xanes_dir: folder of ``NAME.txt`` spectra.
        names: restrict to these names (each must exist in both folders).

    Raises:
        FileNotFoundError: a folder is missing, or a requested name lacks a file.
        ValueError: no pairs at all.
    """
    xyz_dir, xanes_dir = Path(xyz_dir), Path(xanes_dir)
    for folder in (xyz_dir, xanes_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder not found: {folder}")
    structures = {p.stem: p for p in xyz_dir.glob("*.xyz")}
    spectra = {p.stem: p for p in xanes_dir.glob("*.txt")}
    if names is None:
        chosen = sorted(set(structures) & set(spectra))
    else:
        chosen = list(names)
        for name in chosen:
            if name not in structures:
                raise FileNotFoundError(f"{xyz_dir}: no structure file {name}.xyz")
            if name not in spectra:
                raise FileNotFoundError(f"{xanes_dir}: no spectrum file {name}.txt")
    if not chosen:
        raise ValueError(f"no structure/spectrum pairs in {xyz_dir} and {xanes_dir}")
    return [(n, structures[n], spectra[n]) for n in chosen]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    from xanesnet.structures import read_structures

    digest = hashlib.sha256()
    digest.update(config.to_json().encode())
    digest.update(f"absorber={absorber}".encode())
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(_file_digest(Path(path)).encode())
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
        names: (n,) structure names.
        features: (n, n_features) descriptors.
        spectra: (n, n_energies) μ on ``energies``.
        energies: (n_energies,) absolute energies, eV.
        descriptor: the configuration that made ``features``.
    """

    names: tuple[str, ...]
    features: np.ndarray
    spectra: np.ndarray
    energies: np.ndarray
    descriptor: WACSF

    def subset(self, names: Sequence[str]) -> SpectrumDataset:
        """The rows of the given names, in that order."""
        where = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in where]
        if missing:
            raise KeyError(f"names not in the data set: {missing[:5]}")
        rows = np.array([where[n] for n in names], dtype=np.int64)
        return SpectrumDataset(
            tuple(names), self.features[rows], self.spectra[rows], self.energies, self.descriptor
        )

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
