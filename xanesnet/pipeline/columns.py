"""The per-site text columns of a batch output: where each site's structure came from
(``source``) and the structure metadata the job keeps (``info.<key>`` for each ``keep_info``
key: ASE database key-value pairs, ``unique_id``, extended XYZ comment-line keys, ``info`` of
structures given in memory).

Values are stored as text (numbers as the shortest decimal that reads back the same, "" where a
structure lacks the key); :func:`xanesnet.store.read_predictions` returns a kept column whose
every value given is a number as float64 with NaN where missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from xanesnet.io.chunks import Chunk

__all__ = [
    "SOURCE_COLUMN",
    "StructureColumns",
    "check_keep_info",
    "column_names",
    "info_text",
    "site_columns",
    "structure_columns",
]

#: The column naming each site's input (file path, database, ``<memory>``).
SOURCE_COLUMN = "source"
#: What a kept key may look like (it names a column and a CSV header field).
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def check_keep_info(keys: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"charge,energy"`` or ``["charge", "energy"]`` -> ``("charge", "energy")`` (repeats
    dropped, order kept); None -> ().

    Raises:
        ValueError: a key that is empty or holds other characters than letters, digits and
            ``_ . + -``.
    """
    if keys is None:
        return ()
    parts = [k.strip() for k in keys.split(",")] if isinstance(keys, str) else list(keys)
    for key in parts:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"keep_info: expected info keys such as charge,unique_id (letters, digits, "
                f"_ . + -), got {key!r}"
            )
    return tuple(dict.fromkeys(parts))


def column_names(keep_info: Sequence[str]) -> list[str]:
    """The output's per-site text columns: ``source``, then ``info.<key>`` per kept key."""
    return [SOURCE_COLUMN, *(f"info.{key}" for key in keep_info)]


def info_text(value: Any) -> str:
    """One metadata value as stored text: "" for None, strings as they are, booleans
    ``True``/``False``, integers in decimal, floats as the shortest decimal that reads back
    the same, arrays and other values as JSON where possible."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


class StructureColumns(NamedTuple):
    """The text columns of a chunk's structures: ids (n_structures,) and name -> values."""

    ids: list[str]
    values: dict[str, list[str]]


def structure_columns(chunk: Chunk, keep_info: Sequence[str]) -> StructureColumns:
    """The per-structure values of :func:`column_names` for one chunk."""
    frames = chunk.frames
    sources = list(chunk.sources) or [""] * len(frames)
    values = {SOURCE_COLUMN: sources}
    for key in keep_info:
        values[f"info.{key}"] = [info_text((info or {}).get(key)) for info in frames.info]
    return StructureColumns(list(frames.ids), values)


def site_columns(structures: StructureColumns, site_ids: Sequence[str]) -> dict[str, list[str]]:
    """The columns per site: each site takes its structure's values. Sites come in structure
    order, so site k belongs to the next structure (from the last one matched) with its id;
    failed structures and those without sites are passed over."""
    ids = structures.ids
    rows: list[int] = []
    s = 0
    for site_id in site_ids:
        while s < len(ids) and ids[s] != site_id:
            s += 1
        if s == len(ids):  # not in order (cannot happen with the step's results): by id
            s = ids.index(site_id)
        rows.append(s)
    return {name: [column[r] for r in rows] for name, column in structures.values.items()}
