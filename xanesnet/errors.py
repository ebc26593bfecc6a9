"""Errors of bad input, with where the problem is as attributes as well as in the message."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input that cannot be read: a malformed file, a bad database row, an invalid structure.

    A ``ValueError``, so code that catches ``ValueError`` keeps working; the message alone is
    what batch jobs record, so it names the file (and line, where there is one) itself.

    Attributes:
        source: the file path or database (URL without password), where known.
        structure_id: the structure's id, where known.
        line: 1-based line number in ``source``, for line-based text formats.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        structure_id: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.structure_id = structure_id
        self.line = line
