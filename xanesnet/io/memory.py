"""Structures held in memory (``ase.Atoms``, pymatgen ``Structure`` / ``Molecule``) as the chunks
of a batch job, with ids, and a digest of their content per chunk.

A screening script holds its structures in memory; :func:`xanesnet.predict_batch` takes them as
they are. Their ids are ``atoms.info["id"]`` (pymatgen: the ``id``, ``material_id`` or
``task_id`` property) where given, else ``mem:<n>`` with n the 0-based position in the input.
Nothing is read from disk, so what a resume can check is the content: the digest of each
chunk's structures (atomic numbers, positions, cell, periodicity and id; other ``info`` keys
are not part of it) is recorded in the output, and a resume whose structures differ from those
the output was started with is refused. An in-memory job is therefore resumable only when the
same structures come again in the same order (and the same chunk size).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from xanesnet.errors import InputError
from xanesnet.io.chunks import Chunk, FrameBuilder
from xanesnet.io.pymatgen import is_pymatgen_structure, pymatgen_to_atoms

__all__ = ["MEMORY_SOURCE", "MemoryStructures", "holds_structures"]

#: The ``source`` of a structure given in memory (files have their path).
MEMORY_SOURCE = "<memory>"


def _is_structure(item: Any) -> bool:
    from ase import Atoms

    return isinstance(item, Atoms) or is_pymatgen_structure(item)


def holds_structures(items: Sequence[Any]) -> bool:
    """Whether ``items`` (the inputs of a batch job, as a list) are structures in memory rather
    than paths: at least one structure and no path (anything else among structures is that
    item's recorded failure); an empty list or paths give False.

    Raises:
        TypeError: structures and paths (str, os.PathLike) mixed in one input list.
    """
    structures = paths = False
    for item in items:
        if _is_structure(item):
            structures = True
        elif isinstance(item, (str, os.PathLike)):
            paths = True
    if structures and paths:
        raise TypeError(
            "inputs: structures in memory (ase.Atoms, pymatgen) and paths mixed in one list; "
            "give one kind per job"
        )
    return structures


class MemoryStructures:
    """Structures given in memory, read in chunks (see the module docstring).

    Args:
        structures: ``ase.Atoms`` and pymatgen ``Structure`` / ``Molecule`` objects; a
            sequence is kept as it is (not copied), any other iterable is gathered into a list
            first (the content digest needs every structure before the first chunk).
    """

    def __init__(self, structures: Iterable[Any]) -> None:
        self.structures: Sequence[Any] = (
            structures if isinstance(structures, Sequence) else list(structures)
        )

    def __len__(self) -> int:
        return len(self.structures)

    def _items(self) -> Iterator[tuple[str, Any]]:
        """(id, ``ase.Atoms`` or the error met converting it) of every structure, in order."""
        for n, item in enumerate(self.structures):
            fallback = f"mem:{n}"
            try:
                if is_pymatgen_structure(item):
                    item = pymatgen_to_atoms(item)
                elif not _is_structure(item):
                    raise InputError(
                        f"{fallback}: expected ase.Atoms or a pymatgen Structure/Molecule, got "
                        f"{type(item).__name__}",
                        structure_id=fallback,
                    )
            except (InputError, ValueError, TypeError) as exc:
                yield fallback, exc
                continue
            given = item.info.get("id")
            yield (fallback if given is None or str(given) == "" else str(given)), item

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        """Chunks of ``chunk_size`` structures, in input order; a structure that is not one
        (or a disordered pymatgen structure) is its chunk's error, named by its id."""
        builder = FrameBuilder(chunk_size)
        errors: list[tuple[str, str]] = []
        index = taken = 0
        for structure_id, item in self._items():
            taken += 1
            if isinstance(item, Exception):
                errors.append((structure_id, str(item)))
            else:
                info = dict(item.info)  # the caller's objects are left as they are
                info.setdefault("source", MEMORY_SOURCE)  # e.g. kept from read_structures
                builder.add_frame(
                    item.arrays["numbers"],
                    item.arrays["positions"],
                    item.cell.array,
                    np.asarray(item.pbc),
                    structure_id,
                    info,
                    str(info["source"]),
                )
            if taken == chunk_size:
                yield builder.take_chunk(index, errors)
                index += 1
                taken = 0
        if taken:
            yield builder.take_chunk(index, errors)

    def digests(self, chunk_size: int) -> list[tuple[int, str]]:
        """(structures, SHA-256 hex of their content) of each chunk of ``chunk_size``."""
        out: list[tuple[int, str]] = []
        digest = hashlib.sha256()
        count = 0
        for structure_id, item in self._items():
            digest.update(f"\0{structure_id}\0".encode("utf-8", "surrogateescape"))
            if isinstance(item, Exception):
                digest.update(f"error {item}".encode("utf-8", "surrogateescape"))
            else:
                for values, dtype in (
                    (item.arrays["numbers"], "<i8"),
                    (item.arrays["positions"], "<f8"),
                    (item.cell.array, "<f8"),
                    (np.asarray(item.pbc), "u1"),
                ):
                    digest.update(np.ascontiguousarray(values, dtype=dtype).tobytes())
            count += 1
            if count == chunk_size:
                out.append((count, digest.hexdigest()))
                digest, count = hashlib.sha256(), 0
        if count:
            out.append((count, digest.hexdigest()))
        return out
