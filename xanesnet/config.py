"""Configuration files (TOML/YAML, ``--set`` overrides) and the environment settings.

Configuration files are tables of tables (``[data]``, ``[training]``, ...); which tables a
command accepts is the command's business (``sections``). ``--set a.b.c=VALUE`` changes one
value, VALUE parsed as TOML (``--set "training.network.hidden=[256, 256]"``) or kept as a
string when it is not valid TOML.

Environment variables: every one the package reads is in :data:`ENVIRONMENT`, with what it
does, and is read through :func:`env_setting`; so are the thread counts that the OpenMP runtime
and Numba read for it. The test suite and the benchmarks read their own (``XANESNET_SHARED``,
``XANESNET_BENCH_*``), documented where they are used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ENVIRONMENT",
    "EnvSetting",
    "apply_override",
    "env_setting",
    "load_config",
    "read_config",
]


# -- configuration files ---------------------------------------------------------------------


def read_config(path: str | os.PathLike, sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Parse a TOML (or, with PyYAML installed, ``.yaml``/``.yml``) file of these tables
    (``sections=None``: any).

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid TOML/YAML, not a table at the top, or a table not in ``sections``
            (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ValueError(
                f"{path}: YAML configurations need PyYAML (pip install pyyaml)"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings")
    unknown = sorted(set(data) - set(sections)) if sections is not None else []
    if unknown:
        raise ValueError(
            f"{path}: unknown sections {unknown} (expected some of {list(sections or ())})"
        )
    return data


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=VALUE`` to ``config`` in place (VALUE parsed as TOML, else a string).

    Raises:
        ValueError: no ``=``, or a key that goes through a value that is not a table.
    """
    if "=" not in assignment:
        raise ValueError(f"--set: expected KEY=VALUE, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.strip().split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set: {key} is not inside a table")
    node[parts[-1]] = value


def load_config(
    path: str | os.PathLike, sections: tuple[str, ...] | None, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """:func:`read_config`, then each ``KEY=VALUE`` of ``overrides`` in turn."""
    config = read_config(path, sections)
    for assignment in overrides:
        apply_override(config, assignment)
    return config


# -- environment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable the package reads.

    Attributes:
        name: the variable.
        values: what it may hold, in words.
        default: what happens when it is unset or empty.
        meaning: what it changes.
        read_by: the module that reads it.
    """

    name: str
    values: str
    default: str
    meaning: str
    read_by: str


#: every environment variable the package reads (nothing else is read), then those that the
#: libraries underneath read and that change what the package does
ENVIRONMENT: tuple[EnvSetting, ...] = (
    EnvSetting(
        "XANESNET_BACKEND",
        '"cpp" or "numba"',
        '"cpp" when the compiled core is importable, else "numba"',
        "descriptor backend used when none is named",
        "xanesnet.descriptors.dispatch",
    ),
    EnvSetting(
        "XANESNET_KERNEL_BACKEND",
        '"cpp" or "torch"',
        '"cpp" where it applies (TorchScript file, CPU, compiled core), else "torch"',
        "how the kernel-ridge part of a blended model is evaluated",
        "xanesnet.model.runtime",
    ),
    EnvSetting(
        "XANESNET_FAST_XYZ",
        '"0"/"false"/"no"/"off", "1"/"true"/"yes"/"on" or "auto"',
        '"auto": when Numba is already imported or the input has many files',
        "whether XANESNET .xyz files are read by the fast packed reader",
        "xanesnet.io.fast_path",
    ),
    EnvSetting(
        "XANESNET_CACHE",
        "a folder",
        "$XDG_CACHE_HOME/xanesnet, else ~/.cache/xanesnet",
        "where descriptors of training data sets are cached",
        "xanesnet.datasets",
    ),
    EnvSetting(
        "XDG_CACHE_HOME",
        "a folder",
        "~/.cache",
        "the cache folder's parent when XANESNET_CACHE is unset",
        "xanesnet.datasets",
    ),
    # read by the libraries underneath, listed for what they change here
    EnvSetting(
        "OMP_NUM_THREADS",
        "a positive integer",
        "all cores",
        "threads of the compiled core when a call asks for n_threads=0",
        "the OpenMP runtime (xanesnet._core)",
    ),
    EnvSetting(
        "NUMBA_NUM_THREADS",
        "a positive integer",
        "all cores",
        "threads of the Numba backend when a call asks for n_threads=0",
        "numba (xanesnet.descriptors Numba kernels)",
    ),
)

_BY_NAME = {setting.name: setting for setting in ENVIRONMENT}


def env_setting(name: str) -> str | None:
    """The value of a listed environment variable, stripped; ``None`` when unset or empty.

    Raises:
        KeyError: ``name`` is not in :data:`ENVIRONMENT` (every setting must be listed there).
    """
    if name not in _BY_NAME:
        raise KeyError(f"{name} is not a listed xanesnet environment setting (xanesnet.config)")
    value = os.environ.get(name, "").strip()
    return value or None
