"""A change between two mappings and its class (see :mod:`esmigrate.schema.diff`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Compatibility(enum.StrEnum):
    """What existing data needs for a change. Ordered: in_place < needs_backfill < needs_reindex."""

    IN_PLACE = "in_place"
    NEEDS_BACKFILL = "needs_backfill"
    NEEDS_REINDEX = "needs_reindex"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    Compatibility.IN_PLACE: 0,
    Compatibility.NEEDS_BACKFILL: 1,
    Compatibility.NEEDS_REINDEX: 2,
}


class ChangeKind(enum.StrEnum):
    """The kinds of mapping change."""

    FIELD_ADDED = "field_added"
    FIELD_REMOVED = "field_removed"
    SUBFIELD_ADDED = "subfield_added"
    SUBFIELD_REMOVED = "subfield_removed"
    TYPE_CHANGED = "type_changed"
    ANALYZER_CHANGED = "analyzer_changed"
    SEARCH_ANALYZER_CHANGED = "search_analyzer_changed"
    COPY_TO_CHANGED = "copy_to_changed"
    PARAMETER_CHANGED = "parameter_changed"
    DYNAMIC_CHANGED = "dynamic_changed"
    MAPPING_OPTION_CHANGED = "mapping_option_changed"
    METADATA_FIELD_CHANGED = "metadata_field_changed"


#: Kinds that add to the schema (a minor version bump when nothing worse happens).
ADDITIVE = frozenset({ChangeKind.FIELD_ADDED, ChangeKind.SUBFIELD_ADDED})


@dataclass(frozen=True)
class Change:
    """One difference between two mappings.

    ``path`` is the field's dotted name as queries see it (``author.name``, and ``title.raw``
    for a multi-field), ``""`` for the mapping root, or the metadata field (``_source``).
    ``old``/``new`` hold the field definitions (added/removed/type changed) or the parameter's
    values (``parameter`` names it).
    """

    kind: ChangeKind
    path: str
    compatibility: Compatibility
    reason: str
    old: Any = None
    new: Any = None
    parameter: str | None = None
    #: The properties path of the definition that carries the change, when not ``path`` itself
    #: (a multi-field's parameters live in its parent's definition).
    owner: str | None = None

    def describe(self) -> str:
        """One line for people: ``title: type text → keyword (needs_reindex: ...)``."""
        where = self.path or "(mapping root)"
        if self.kind in (ChangeKind.FIELD_ADDED, ChangeKind.SUBFIELD_ADDED):
            what = f"added {_short(self.new)}"
        elif self.kind in (ChangeKind.FIELD_REMOVED, ChangeKind.SUBFIELD_REMOVED):
            what = f"removed (was {_short(self.old)})"
        elif self.kind == ChangeKind.TYPE_CHANGED:
            what = f"type {_type_name(self.old)} → {_type_name(self.new)}"
        else:
            what = f"{self.parameter or self.kind.value} {_value(self.old)} → {_value(self.new)}"
        return f"{where}: {what} [{self.compatibility.value}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "path": self.path,
            "compatibility": self.compatibility.value,
            "parameter": self.parameter,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
        }


def _type_name(definition: Any) -> str:
    if isinstance(definition, dict):
        return str(definition.get("type", "object"))
    return repr(definition)


def _short(definition: Any) -> str:
    if isinstance(definition, dict):
        return _type_name(definition)
    return _value(definition)


def _value(value: Any) -> str:
    return "(unset)" if value is None else repr(value)
