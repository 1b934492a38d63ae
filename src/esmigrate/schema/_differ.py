"""The classification of every difference between two normalised mappings: what the engine
does with each change and what existing data then needs (see :mod:`esmigrate.schema.diff`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from esmigrate.cluster import Engine
from esmigrate.schema._change import Change, ChangeKind, Compatibility
from esmigrate.schema.mapping import (
    OBJECT_TYPES,
    default_of,
    field_type,
    normalize_value,
    same_value,
)

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


_WHY_OBJECT_DYNAMIC_UNSET = (
    "an object's dynamic, once set, cannot be unset: the engine keeps the old value when it is "
    "left out. Set it explicitly ({inherited!r} is what the object inherits now), or copy the "
    "data into a new index without it"
)
_WHY_NULL_VALUE_UNSET = (
    "a null_value cannot be unset on a live index (the engine refuses, or keeps the old value); "
    "only a copy into a new index without it drops it"
)
# Field types whose null_value the engine changes on a live index (it refuses for the others).
_NULL_VALUE_UPDATABLE = frozenset({"geo_point"})
_WHY_ROOT_DEFAULT = (
    "{key} can be updated on a live index (the put-mapping spells the default out: left out, "
    "the engine would keep the old value)"
)

# A parameter value the engine reported for neither side (no view, no known default).
_UNKNOWN = object()


class Differ:
    """Walks two normalised mappings (root options, then fields depth first) and records each
    difference as a classified :class:`Change`. ``old_fields``/``new_fields`` are the engine's
    own view of each field (``include_defaults``), when one was read."""

    def __init__(
        self,
        backfill: frozenset[str],
        engine: Engine | None,
        old_fields: Mapping[str, dict[str, Any]] | None = None,
        new_fields: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.backfill = backfill
        self.engine = engine
        self.old_fields = old_fields or {}
        self.new_fields = new_fields or {}
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
                    "dynamic applies to fields that arrive from now on"
                    + ("" if after is not None else " (the put-mapping spells out dynamic: true)"),
                    before or "true",
                    after or "true",
                    "dynamic",
                )
            elif key in _IN_PLACE_ROOT:
                self.add(
                    ChangeKind.MAPPING_OPTION_CHANGED,
                    "",
                    Compatibility.IN_PLACE,
                    f"{key} can be updated on a live index"
                    if after is not None
                    else _WHY_ROOT_DEFAULT.format(key=key),
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
            self.parameter(path, old_type, param, old, new, owner, parent_dynamic)
        if old_type in OBJECT_TYPES:
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

    def effective(
        self,
        fields: Mapping[str, dict[str, Any]],
        path: str,
        kind: str,
        param: str,
        definition: Any,
    ) -> Any:
        """The value the engine uses: the one set, else the engine's own report, else the
        known default."""
        value = definition.get(param)
        if value is not None:
            return value
        full = fields.get(path)
        if full is not None and param in full:
            return normalize_value(kind, param, full[param])
        default = default_of(kind, param, definition, self.engine)
        return _UNKNOWN if default is None and full is None else default

    def parameter(
        self,
        path: str,
        kind: str,
        param: str,
        old: dict[str, Any],
        new: dict[str, Any],
        owner: str,
        parent_dynamic: str,
    ) -> None:
        before, after = old.get(param), new.get(param)
        if same_value(before, after):
            return
        effective_before = self.effective(self.old_fields, path, kind, param, old)
        effective_after = self.effective(self.new_fields, path, kind, param, new)
        if effective_before is not _UNKNOWN and same_value(effective_before, effective_after):
            return
        change = ChangeKind.PARAMETER_CHANGED
        if param in _ANALYZER_PARAMS:
            change, compat = ChangeKind.ANALYZER_CHANGED, Compatibility.NEEDS_REINDEX
            why = f"documents were analysed with the old {param}; the engine refuses the change"
        elif param in _SEARCH_ANALYZER_PARAMS:
            change, compat = ChangeKind.SEARCH_ANALYZER_CHANGED, Compatibility.IN_PLACE
            why = f"{param} applies at search time only"
        elif param == "dynamic" and after is None:
            change, compat = ChangeKind.DYNAMIC_CHANGED, Compatibility.NEEDS_REINDEX
            why = _WHY_OBJECT_DYNAMIC_UNSET.format(inherited=parent_dynamic)
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
        elif param == "null_value" and after is None:
            compat, why = Compatibility.NEEDS_REINDEX, _WHY_NULL_VALUE_UNSET
        elif param == "null_value" and kind in _NULL_VALUE_UPDATABLE:
            compat = Compatibility.NEEDS_BACKFILL
            why = (
                f"the engine updates a {kind}'s null_value on a live index; documents indexed "
                "with a null before need re-indexing in place to get it"
            )
        elif param == "norms" and effective_after is False:
            compat, why = Compatibility.IN_PLACE, "norms can be disabled on a live index"
        elif param in _IN_PLACE_PARAMS:
            compat, why = Compatibility.IN_PLACE, f"{param} can be updated on a live index"
        else:
            compat, why = Compatibility.NEEDS_REINDEX, _WHY_REINDEX_PARAM.format(param=param)
        self.add(change, path, compat, why, before, after, param, None if owner == path else owner)
