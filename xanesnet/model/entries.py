"""What the fitted extras a model file may carry share (the uncertainty calibration and the
domain score): one metadata entry each, tagged with a schema that is checked on reading."""

from __future__ import annotations

import base64
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = ["MetadataEntry", "decode_array", "encode_array"]

EntryT = TypeVar("EntryT", bound="MetadataEntry")


class MetadataEntry:
    """Base of a class stored as one entry of a model file's metadata.

    A subclass names its entry (``KEY``) and schema tag (``SCHEMA``) and rebuilds itself from
    the entry's dict in :meth:`from_entry`.
    """

    #: the entry's key in the model metadata (also how error messages name it)
    KEY: ClassVar[str] = ""
    #: the ``"schema"`` value of the entries this version writes
    SCHEMA: ClassVar[str] = ""
    #: older schema values this version still reads (besides ``SCHEMA``)
    OLDER_SCHEMAS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_metadata(cls: type[EntryT], data: dict[str, Any]) -> EntryT:
        """Rebuild from :meth:`to_metadata`'s dict.

        Raises:
            ValueError: not an entry of this schema, a missing key, or inconsistent contents.
        """
        if not isinstance(data, dict) or data.get("schema") not in (cls.SCHEMA, *cls.OLDER_SCHEMAS):
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{cls.KEY}: expected schema {cls.SCHEMA!r}, got {got!r}")
        try:
            return cls.from_entry(data)
        except KeyError as exc:
            raise ValueError(f"{cls.KEY}: missing key {exc}") from exc

    @classmethod
    def from_entry(cls: type[EntryT], data: dict[str, Any]) -> EntryT:
        """Rebuild from an entry whose schema is checked (a missing key raises KeyError)."""
        raise NotImplementedError

    @classmethod
    def from_model_metadata(cls: type[EntryT], metadata: dict[str, Any]) -> EntryT | None:
        """The entry a model file's metadata carries, or None for a file without one."""
        entry = metadata.get(cls.KEY)
        return None if entry is None else cls.from_metadata(entry)


def encode_array(array: np.ndarray, dtype: str) -> dict[str, Any]:
    """JSON-ready ``{dtype, shape, base64}`` of ``array`` stored as little-endian ``dtype``."""
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {
        "dtype": dtype,
        "shape": list(data.shape),
        "base64": base64.b64encode(data.tobytes()).decode("ascii"),
    }


def decode_array(entry: Any, name: str) -> np.ndarray:
    """float64 array of :func:`encode_array`'s dict.

    Raises:
        ValueError: not such a dict, an unsupported dtype, or values that do not fill the
            shape (``name`` says which entry and key).
    """
    if not isinstance(entry, dict) or not {"dtype", "shape", "base64"} <= set(entry):
        raise ValueError(f"{name}: expected {{dtype, shape, base64}}")
    if entry["dtype"] not in ("float16", "float32", "float64"):
        raise ValueError(f"{name}: unsupported dtype {entry['dtype']!r}")
    raw = base64.b64decode(entry["base64"], validate=True)
    array = np.frombuffer(raw, dtype=np.dtype(entry["dtype"]).newbyteorder("<"))
    shape = tuple(int(n) for n in entry["shape"])
    if int(np.prod(shape)) != array.size:
        raise ValueError(f"{name}: {array.size} values do not fill shape {shape}")
    return array.reshape(shape).astype(np.float64)
