"""What the fitted extras a model file may carry share (the uncertainty calibration and the
domain score): one metadata entry each, tagged with a schema that is checked on reading."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

__all__ = ["MetadataEntry"]

EntryT = TypeVar("EntryT", bound="MetadataEntry")


class MetadataEntry:
    """Base of a class stored as one entry of a model file's metadata.

    A subclass names its entry (``KEY``) and schema tag (``SCHEMA``) and rebuilds itself from
    the entry's dict in :meth:`from_entry`.
    """

    #: the entry's key in the model metadata (also how error messages name it)
    KEY: ClassVar[str] = ""
    #: the ``"schema"`` value of the entries this version reads
    SCHEMA: ClassVar[str] = ""

    @classmethod
    def from_metadata(cls: type[EntryT], data: dict[str, Any]) -> EntryT:
        """Rebuild from :meth:`to_metadata`'s dict.

        Raises:
            ValueError: not an entry of this schema, a missing key, or inconsistent contents.
        """
        if not isinstance(data, dict) or data.get("schema") != cls.SCHEMA:
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
