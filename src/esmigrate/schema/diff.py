"""Mapping diff: the typed changes between two mappings and what each one costs.

Every change is classified by what existing data needs (checked against the engine's own
put-mapping rules in ``tests/test_schema_diff.py``):

- ``in_place``: ``PUT /idx/_mapping`` applies it and existing documents are fine as they are
  (new field, search analyzer, ``ignore_above`` lowered, ``dynamic``, ``_meta``...);
- ``needs_backfill``: the put-mapping is accepted, but existing documents must be re-indexed in
  place (``_update_by_query``) before the change shows for them (new multi-field, ``copy_to``
  added, ``ignore_above`` raised, a new field whose values may already sit unindexed in
  ``_source`` under ``dynamic: false``, a new field given a default);
- ``needs_reindex``: the engine refuses the change on an existing index (type, analyzer,
  ``index``, ``doc_values``, ``format``... changed) or cannot do it at all (a mapped field cannot
  be removed): the data must be copied into a new index (blue-green).

The worst class decides the strategy and the version bump: a reindex is a breaking change (major),
an added field or sub-field is additive (minor), anything else is a patch.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.schema.mapping import mapping_of
from esmigrate.schema.versions import Bump


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


@dataclass(frozen=True)
class MappingDiff:
    """The changes from ``old`` to ``new`` (both normalised), worst first within each path order."""

    changes: tuple[Change, ...]
    old: dict[str, Any] = field(repr=False)
    new: dict[str, Any] = field(repr=False)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __iter__(self) -> Any:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def compatibility(self) -> Compatibility | None:
        """The worst class among the changes (None when there are none)."""
        if not self.changes:
            return None
        return max((c.compatibility for c in self.changes), key=lambda c: c.rank)

    @property
    def bump(self) -> Bump | None:
        """The version bump the changes imply: major (reindex), minor (additions), patch."""
        if not self.changes:
            return None
        if self.compatibility == Compatibility.NEEDS_REINDEX:
            return "major"
        if any(c.kind in ADDITIVE for c in self.changes):
            return "minor"
        return "patch"

    @property
    def strategy(self) -> str:
        """``none``, ``put_mapping``, ``put_mapping+update_by_query`` or ``reindex``."""
        worst = self.compatibility
        if worst is None:
            return "none"
        return {
            Compatibility.IN_PLACE: "put_mapping",
            Compatibility.NEEDS_BACKFILL: "put_mapping+update_by_query",
            Compatibility.NEEDS_REINDEX: "reindex",
        }[worst]

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.compatibility == Compatibility.NEEDS_REINDEX)

    @property
    def backfills(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.compatibility == Compatibility.NEEDS_BACKFILL)

    def put_mapping_body(self) -> dict[str, Any]:
        """The ``PUT _mapping`` body for the in-place and backfill changes (the engine merges it).

        Fields are sent with their full new definitions; breaking changes are left out.
        """
        body: dict[str, Any] = {}
        for change in self.changes:
            if change.compatibility == Compatibility.NEEDS_REINDEX:
                continue
            if change.kind in (ChangeKind.DYNAMIC_CHANGED, ChangeKind.MAPPING_OPTION_CHANGED) and (
                change.path == ""
            ):
                key = change.parameter or ""
                if key in self.new:
                    body[key] = copy.deepcopy(self.new[key])
                continue
            field_path = _owning_field(change)
            definition = _definition_at(self.new, field_path)
            if definition is None:
                continue
            target = body.setdefault("properties", {})
            parts = field_path.split(".")
            node = self.new
            for part in parts[:-1]:
                node = node["properties"][part]
                holder = target.setdefault(part, {})
                for key, value in node.items():
                    if key != "properties":
                        holder.setdefault(key, copy.deepcopy(value))
                target = holder.setdefault("properties", {})
            target[parts[-1]] = copy.deepcopy(definition)
        return body

    def to_dict(self) -> dict[str, Any]:
        return {
            "compatibility": self.compatibility.value if self.compatibility else None,
            "bump": self.bump,
            "strategy": self.strategy,
            "changes": [c.to_dict() for c in self.changes],
        }


def _owning_field(change: Change) -> str:
    """The properties path whose definition carries ``change`` (multi-fields belong to their parent)."""
    return change.owner or change.path


def _definition_at(mapping: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = mapping
    for part in path.split("."):
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or part not in props:
            return None
        node = props[part]
    return node if isinstance(node, dict) else None


# -- normalisation --------------------------------------------------------------------------------

_OBJECT_TYPES = ("object", "nested")

# Values the engine drops from GET _mapping when they are the default: a mapping from code that
# spells them out must not differ from the live one.
_COMMON_DEFAULTS: dict[str, Any] = {
    "index": True,
    "store": False,
    "boost": 1.0,
    "ignore_malformed": False,
    "coerce": True,
    "eager_global_ordinals": False,
    "meta": {},
    "copy_to": [],
    "fields": {},
}
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {
        "analyzer": "default",
        "norms": True,
        "fielddata": False,
        "index_phrases": False,
        "index_options": "positions",
        "term_vector": "no",
    },
    "match_only_text": {"analyzer": "default"},
    "keyword": {
        "ignore_above": 2147483647,
        "norms": False,
        "index_options": "docs",
        "split_queries_on_whitespace": False,
        "doc_values": True,
    },
    "date": {"format": "strict_date_optional_time||epoch_millis", "doc_values": True},
    "date_nanos": {"format": "strict_date_optional_time_nanos||epoch_millis", "doc_values": True},
    "object": {"enabled": True},
    "nested": {"enabled": True, "include_in_parent": False, "include_in_root": False},
}
for _numeric in (
    "long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long",
    "scaled_float", "boolean", "ip", "geo_point", "version",
):  # fmt: skip
    _TYPE_DEFAULTS[_numeric] = {"doc_values": True}

_BOOLEAN_PARAMS = frozenset(
    {
        "index", "store", "doc_values", "norms", "coerce", "ignore_malformed", "enabled",
        "eager_global_ordinals", "fielddata", "index_phrases", "include_in_parent",
        "include_in_root", "split_queries_on_whitespace", "ignore_z_value",
        "date_detection", "numeric_detection",
    }
)  # fmt: skip


def default_of(field_type: str, parameter: str) -> Any:
    """The engine's default for ``parameter`` on a field of ``field_type`` (None: unknown)."""
    specific = _TYPE_DEFAULTS.get(field_type, {})
    if parameter in specific:
        return specific[parameter]
    return _COMMON_DEFAULTS.get(parameter)


def _bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _dynamic(value: Any) -> str:
    return str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")


def field_type(definition: dict[str, Any]) -> str:
    """A field definition's type; ``object`` when it has none."""
    return str(definition.get("type") or "object")


def _normalize_field(definition: dict[str, Any]) -> dict[str, Any]:
    kind = field_type(definition)
    out: dict[str, Any] = {}
    for key, value in definition.items():
        if key == "type":
            continue
        if key == "properties":
            props = {name: _normalize_field(sub) for name, sub in (value or {}).items()}
            if props:
                out["properties"] = props
            continue
        if key == "fields":
            subs = {name: _normalize_field(sub) for name, sub in (value or {}).items()}
            if subs:
                out["fields"] = subs
            continue
        if key == "copy_to":
            targets = sorted([value] if isinstance(value, str) else list(value or []))
            if targets:
                out["copy_to"] = targets
            continue
        if key == "dynamic":
            out["dynamic"] = _dynamic(value)
            continue
        if key in _BOOLEAN_PARAMS:
            value = _bool(value)
        default = default_of(kind, key)
        if (
            default is not None
            and value == default
            and isinstance(value, bool) == isinstance(default, bool)
        ):
            continue
        out[key] = value
    if kind != "object":
        out["type"] = kind
    return dict(sorted(out.items()))


def normalize_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """The normal form used for comparing: explicit defaults dropped, ``type: object`` implied,
    ``dynamic`` as a string, ``copy_to`` as a sorted list, empty ``properties``/``fields`` gone."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "properties":
            props = {name: _normalize_field(sub) for name, sub in (value or {}).items()}
            if props:
                out["properties"] = props
        elif key == "dynamic":
            out["dynamic"] = _dynamic(value)
        elif key in ("date_detection", "numeric_detection"):
            out[key] = _bool(value)
        elif value in ({}, []) and key in ("dynamic_templates", "_meta", "runtime"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if out.get("dynamic") == "true":
        del out["dynamic"]
    if out.get("date_detection") is True:
        del out["date_detection"]
    if out.get("numeric_detection") is False:
        del out["numeric_detection"]
    return dict(sorted(out.items()))


# -- classification -------------------------------------------------------------------------------

# Parameters the engine updates on an existing field, with nothing needed from existing data.
_IN_PLACE_PARAMS = frozenset(
    {
        "eager_global_ordinals", "fielddata", "fielddata_frequency_filter", "coerce", "meta",
        "split_queries_on_whitespace", "boost", "ignore_z_value", "ignore_malformed",
    }
)  # fmt: skip
_ANALYZER_PARAMS = frozenset({"analyzer", "normalizer"})
_SEARCH_ANALYZER_PARAMS = frozenset({"search_analyzer", "search_quote_analyzer"})
_IN_PLACE_ROOT = frozenset(
    {
        "dynamic_templates", "date_detection", "numeric_detection", "dynamic_date_formats",
        "_meta", "runtime",
    }
)  # fmt: skip

_WHY_REINDEX_PARAM = (
    "the engine cannot change {param!r} on an existing field; the data must be copied into a "
    "new index with the new mapping"
)
_WHY_REMOVED = (
    "a mapped field cannot be removed from an index; only a copy into a new index without it "
    "drops it (if it may stay mapped and unused, no migration is needed)"
)


class _Differ:
    def __init__(self, backfill: frozenset[str]) -> None:
        self.backfill = backfill
        self.changes: list[Change] = []

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.changes.append(Change(*args, **kwargs))

    def root(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for key in sorted(set(old) | set(new)):
            if key == "properties":
                continue
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if key == "dynamic":
                self.add(
                    ChangeKind.DYNAMIC_CHANGED,
                    "",
                    Compatibility.IN_PLACE,
                    "dynamic applies to fields that arrive from now on",
                    before or "true",
                    after or "true",
                    "dynamic",
                )
            elif key in _IN_PLACE_ROOT:
                self.add(
                    ChangeKind.MAPPING_OPTION_CHANGED,
                    "",
                    Compatibility.IN_PLACE,
                    f"{key} can be updated on a live index",
                    before,
                    after,
                    key,
                )
            else:
                self.add(
                    ChangeKind.METADATA_FIELD_CHANGED,
                    key,
                    Compatibility.NEEDS_REINDEX,
                    f"{key} is fixed when an index is created",
                    before,
                    after,
                    key,
                )
        self.properties(
            old.get("properties") or {},
            new.get("properties") or {},
            "",
            old.get("dynamic", "true"),
        )

    def properties(
        self, old: dict[str, Any], new: dict[str, Any], prefix: str, parent_dynamic: str
    ) -> None:
        for name in sorted(set(old) | set(new)):
            path = f"{prefix}{name}"
            before, after = old.get(name), new.get(name)
            if before is None:
                self.added(path, after, parent_dynamic)
            elif after is None:
                self.add(
                    ChangeKind.FIELD_REMOVED,
                    path,
                    Compatibility.NEEDS_REINDEX,
                    _WHY_REMOVED,
                    before,
                )
            else:
                self.field(path, before, after, parent_dynamic, path)

    def added(self, path: str, definition: Any, parent_dynamic: str) -> None:
        if path in self.backfill:
            compat, why = (
                Compatibility.NEEDS_BACKFILL,
                "existing documents need the new field's value written (a default or computed value)",
            )
        elif parent_dynamic in ("false", "runtime"):
            compat, why = (
                Compatibility.NEEDS_BACKFILL,
                f"the enclosing object has dynamic: {parent_dynamic}, so existing documents may "
                "already hold unindexed values for this field in _source; re-index them in place",
            )
        else:
            compat, why = (
                Compatibility.IN_PLACE,
                "a new field applies to documents written from now on",
            )
        self.add(ChangeKind.FIELD_ADDED, path, compat, why, None, definition)

    def field(
        self,
        path: str,
        old: dict[str, Any],
        new: dict[str, Any],
        parent_dynamic: str,
        owner: str,
    ) -> None:
        old_type, new_type = field_type(old), field_type(new)
        if old_type != new_type:
            self.add(
                ChangeKind.TYPE_CHANGED,
                path,
                Compatibility.NEEDS_REINDEX,
                f"the engine cannot change a field's type ({old_type} → {new_type}) in place",
                old,
                new,
                "type",
                None if owner == path else owner,
            )
            return
        for param in sorted((set(old) | set(new)) - {"type", "properties", "fields"}):
            self.parameter(path, old_type, param, old.get(param), new.get(param), owner)
        if old_type in _OBJECT_TYPES:
            own = old.get("dynamic")
            self.properties(
                old.get("properties") or {},
                new.get("properties") or {},
                f"{path}.",
                own if isinstance(own, str) else parent_dynamic,
            )
            return
        old_subs, new_subs = old.get("fields") or {}, new.get("fields") or {}
        for sub in sorted(set(old_subs) | set(new_subs)):
            sub_path = f"{path}.{sub}"
            if sub not in old_subs:
                self.add(
                    ChangeKind.SUBFIELD_ADDED,
                    sub_path,
                    Compatibility.NEEDS_BACKFILL,
                    f"existing documents get {sub_path} only when re-indexed (update_by_query)",
                    None,
                    new_subs[sub],
                    None,
                    owner,
                )
            elif sub not in new_subs:
                self.add(
                    ChangeKind.SUBFIELD_REMOVED,
                    sub_path,
                    Compatibility.NEEDS_REINDEX,
                    _WHY_REMOVED,
                    old_subs[sub],
                    None,
                    None,
                    owner,
                )
            else:
                self.field(sub_path, old_subs[sub], new_subs[sub], parent_dynamic, owner)

    def parameter(
        self, path: str, kind: str, param: str, before: Any, after: Any, owner: str
    ) -> None:
        if before == after:
            return
        default = default_of(kind, param)
        effective_before = default if before is None else before
        effective_after = default if after is None else after
        if effective_before == effective_after and default is not None:
            return
        change = ChangeKind.PARAMETER_CHANGED
        if param in _ANALYZER_PARAMS:
            change, compat = ChangeKind.ANALYZER_CHANGED, Compatibility.NEEDS_REINDEX
            why = f"documents were analysed with the old {param}; the engine refuses the change"
        elif param in _SEARCH_ANALYZER_PARAMS:
            change, compat = ChangeKind.SEARCH_ANALYZER_CHANGED, Compatibility.IN_PLACE
            why = f"{param} applies at search time only"
        elif param == "dynamic":
            change, compat = ChangeKind.DYNAMIC_CHANGED, Compatibility.IN_PLACE
            why = "dynamic applies to fields that arrive from now on"
        elif param == "copy_to":
            change = ChangeKind.COPY_TO_CHANGED
            added = set(after or []) - set(before or [])
            if added:
                compat = Compatibility.NEEDS_BACKFILL
                why = (
                    "existing documents are copied into "
                    + ", ".join(sorted(added))
                    + " only when re-indexed (update_by_query)"
                )
            else:
                compat = Compatibility.IN_PLACE
                why = "copy_to changes apply to documents written from now on"
        elif param == "ignore_above":
            low = effective_before if isinstance(effective_before, int) else 0
            high = effective_after if isinstance(effective_after, int) else 0
            if high > low:
                compat = Compatibility.NEEDS_BACKFILL
                why = (
                    "values longer than the old limit were not indexed; existing documents need "
                    "re-indexing in place to index them"
                )
            else:
                compat, why = Compatibility.IN_PLACE, "a lower ignore_above applies to new writes"
        elif param == "norms" and effective_after is False:
            compat, why = Compatibility.IN_PLACE, "norms can be disabled on a live index"
        elif param in _IN_PLACE_PARAMS:
            compat, why = Compatibility.IN_PLACE, f"{param} can be updated on a live index"
        else:
            compat, why = Compatibility.NEEDS_REINDEX, _WHY_REINDEX_PARAM.format(param=param)
        self.add(change, path, compat, why, before, after, param, None if owner == path else owner)


def diff_mappings(
    old: Any,
    new: Any,
    *,
    cluster: Cluster | None = None,
    backfill: Iterable[str] = (),
) -> MappingDiff:
    """The changes from ``old`` to ``new``, each classified.

    ``old`` and ``new`` are anything :func:`~esmigrate.schema.mapping.mapping_of` accepts (an
    index name needs ``cluster``). ``backfill`` names new fields that existing documents must
    receive a value for (a default): those are ``needs_backfill`` instead of ``in_place``.
    """
    before = normalize_mapping(mapping_of(old, cluster))
    after = normalize_mapping(mapping_of(new, cluster))
    differ = _Differ(frozenset(backfill))
    differ.root(before, after)
    return MappingDiff(tuple(differ.changes), before, after)
