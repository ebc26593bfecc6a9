"""The package version: from the installed package's metadata, else from ``pyproject.toml``
beside the package (a source tree used without installing)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["__version__"]

#: reported when neither metadata nor a pyproject.toml is found
UNKNOWN = "0+unknown"


def _source_tree_version() -> str:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN
    if project.get("name") != "xanesnet":
        return UNKNOWN
    return str(project.get("version", UNKNOWN))


def _package_version() -> str:
    try:
        return metadata.version("xanesnet")
    except metadata.PackageNotFoundError:
        return _source_tree_version()


__version__ = _package_version()
