"""Mapping diff: the typed changes between two mappings and what each one costs.

Both sides are compared in normal form (:func:`~esmigrate.schema.mapping.normalize_mapping`),
and, when that finds differences and a cluster is at hand, again as the engine stores them
(:mod:`esmigrate.schema.canonical`). Every change is classified by what the engine does with it
and what existing data then needs (checked on real-world mappings and thousands of changes to
them in ``tests/test_mapping_corpus.py``, against each engine):

- ``in_place``: ``PUT /idx/_mapping`` with :meth:`MappingDiff.put_mapping_body` makes it, and
  existing documents are fine as they are (new field, search analyzer, ``ignore_above``
  lowered, ``dynamic``, ``_meta``, an option back to its default...);
- ``needs_backfill``: the put-mapping is accepted, but existing documents must be re-indexed in
  place (``_update_by_query``) before the change shows for them (new multi-field, ``copy_to``
  added, ``ignore_above`` raised, a new field whose values may already sit unindexed in
  ``_source`` under ``dynamic: false``, a new field given a default);
- ``needs_reindex``: the engine refuses the change on an existing index (type, analyzer,
  ``index``, ``doc_values``, ``format``... changed), or accepts it and keeps what it had (a
  field or multi-field left out, an object's ``dynamic`` or a ``null_value`` unset): the data
  must be copied into a new index (blue-green).

The worst class decides the strategy and the version bump: a reindex is a breaking change (major),
an added field or sub-field is additive (minor), anything else is a patch. After a put-mapping,
:func:`require_applied` reads the mapping back: acknowledged is not applied.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster, Engine
from esmigrate.exceptions import MappingNotApplied
from esmigrate.schema._change import ADDITIVE, Change, ChangeKind, Compatibility
from esmigrate.schema._differ import Differ
from esmigrate.schema.canonical import EngineView, canonical_view, live_settings, live_view
from esmigrate.schema.mapping import (
    OBJECT_TYPES,
    ROOT_DEFAULTS,
    default_of,
    engine_field,
    engine_mapping,
    field_type,
    mapping_of,
    settings_of,
)
from esmigrate.schema.mapping import (  # documented here before it moved
    normalize_mapping as normalize_mapping,
)
from esmigrate.schema.versions import Bump

__all__ = [
    "ADDITIVE",
    "Change",
    "ChangeKind",
    "Compatibility",
    "MappingDiff",
    "diff_mappings",
    "normalize_mapping",
    "require_applied",
    "unapplied_changes",
]


@dataclass(frozen=True)
class MappingDiff:
    """The changes from ``old`` to ``new`` (both normalised), worst first within each path order."""

    changes: tuple[Change, ...]
    old: dict[str, Any] = field(repr=False)
    new: dict[str, Any] = field(repr=False)
    #: Every field of ``new`` with its defaults, as the engine reported them (when it was asked).
    new_fields: Mapping[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: The engine the diff was made for (None: offline).
    engine: Engine | None = field(default=None, repr=False)

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
        """The ``PUT _mapping`` body that makes the in-place and backfill changes (the engine
        merges it into the live mapping); breaking changes are left out.

        A changed field is sent whole: its live definition with the compatible changes made, so
        a breaking change on the same field or one of its multi-fields stays out. An option set
        back to its default is sent with the default spelled out (left out, the engine would
        keep the old value); objects carry ``"type"``, which the engine needs when an object
        has no ``properties`` in the body.
        """
        body: dict[str, Any] = {}
        done: set[str] = set()
        for change in self.changes:
            if change.compatibility == Compatibility.NEEDS_REINDEX:
                continue
            if change.path == "" and change.parameter:
                body[change.parameter] = _root_value(self.new, change.parameter, change.old)
                continue
            owner = change.owner or change.path
            if owner in done:
                continue
            done.add(owner)
            definition = self._field_body(owner)
            if definition is not None:
                _place(body, self.new, owner, definition)
        return body

    def _field_body(self, path: str) -> dict[str, Any] | None:
        new = _definition_at(self.new, path)
        if new is None:
            return None
        old = _definition_at(self.old, path)
        if old is None:
            return engine_field(new)  # an added field (with everything under it)
        mine = [
            c
            for c in self.changes
            if (c.owner or c.path) == path and c.compatibility != Compatibility.NEEDS_REINDEX
        ]
        out = {k: copy.deepcopy(v) for k, v in old.items() if k != "properties"}
        for change in mine:
            target = out
            if change.path != path:  # a multi-field of this field
                sub = change.path[len(path) + 1 :]
                subs = out.setdefault("fields", {})
                if change.kind == ChangeKind.SUBFIELD_ADDED:
                    subs[sub] = copy.deepcopy(change.new)
                    continue
                target = subs.setdefault(sub, {})
            if change.parameter is None:
                continue
            if change.new is not None:
                target[change.parameter] = copy.deepcopy(change.new)
                continue
            # Back to the default: spelled out where it is known, as some field types keep
            # the old value of a parameter that is left out.
            default = self._default(change.path, change.parameter, target)
            if default is None:
                target.pop(change.parameter, None)
            else:
                target[change.parameter] = default
        return engine_field(out, field_type(new))

    def _default(self, path: str, parameter: str, definition: dict[str, Any]) -> Any:
        full = self.new_fields.get(path) or {}
        if full.get(parameter) is not None:
            return copy.deepcopy(full[parameter])
        return copy.deepcopy(default_of(field_type(definition), parameter, definition, self.engine))

    def to_dict(self) -> dict[str, Any]:
        return {
            "compatibility": self.compatibility.value if self.compatibility else None,
            "bump": self.bump,
            "strategy": self.strategy,
            "changes": [c.to_dict() for c in self.changes],
        }


def _root_value(new: dict[str, Any], key: str, old: Any) -> Any:
    """A root option's value for a put-mapping body: the new one, or its default spelled out."""
    if key in new:
        return copy.deepcopy(new[key])
    if key == "runtime":
        return {name: None for name in old or {}}  # a runtime field is removed by a null
    return copy.deepcopy(ROOT_DEFAULTS.get(key))


def _place(body: dict[str, Any], mapping: dict[str, Any], path: str, definition: Any) -> None:
    """Put ``definition`` at ``path`` in ``body``; the objects on the way carry only their type
    (their other options stay as they are on the live index)."""
    target = body.setdefault("properties", {})
    node: Any = mapping
    parts = path.split(".")
    for part in parts[:-1]:
        node = node["properties"][part]
        holder = target.setdefault(part, {})
        holder["type"] = field_type(node)
        target = holder.setdefault("properties", {})
    existing = target.get(parts[-1])
    if isinstance(existing, dict) and "properties" in existing:
        definition = {**definition, "properties": existing["properties"]}
    target[parts[-1]] = definition


def _definition_at(mapping: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = mapping
    for part in path.split("."):
        props = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(props, dict) or part not in props:
            return None
        node = props[part]
    return node if isinstance(node, dict) else None


def _compare(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    backfill: frozenset[str],
    engine: Engine | None,
    old_view: EngineView | None = None,
    new_view: EngineView | None = None,
) -> MappingDiff:
    before = normalize_mapping(old_view.mapping if old_view is not None else old, engine)
    after = normalize_mapping(new_view.mapping if new_view is not None else new, engine)
    differ = Differ(
        backfill,
        engine,
        old_view.fields if old_view is not None else None,
        new_view.fields if new_view is not None else None,
    )
    differ.root(before, after)
    return MappingDiff(tuple(differ.changes), before, after, differ.new_fields, engine)


@dataclass(frozen=True)
class _Side:
    """One side of a diff: its mapping, the live index it was read from, its own settings."""

    mapping: dict[str, Any]
    index: str | None
    settings: dict[str, Any]

    def view(self, cluster: Cluster, settings: Mapping[str, Any]) -> EngineView | None:
        if self.index is not None:
            return live_view(cluster, self.index, self.mapping)
        return canonical_view(cluster, self.mapping, settings)


def _side(obj: Any, cluster: Cluster | None) -> _Side:
    if isinstance(obj, str):
        return _Side(mapping_of(obj, cluster), obj, {})
    return _Side(mapping_of(obj, cluster), None, settings_of(obj))


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

    The two mappings are compared in normal form first. When that finds differences and a
    ``cluster`` is given, both sides are compared again as that engine stores them (see
    :mod:`esmigrate.schema.canonical`), so defaults and spellings the normal form does not know
    of are not reported as changes.
    """
    return _diff(_side(old, cluster), _side(new, cluster), cluster, frozenset(backfill))


def _diff(
    before: _Side, after: _Side, cluster: Cluster | None, backfill: frozenset[str]
) -> MappingDiff:
    engine = cluster.engine if cluster is not None else None
    diff = _compare(before.mapping, after.mapping, backfill, engine)
    if not diff or cluster is None:
        return diff
    live = before.index or after.index
    settings = (
        live_settings(cluster, live) if live is not None else after.settings or before.settings
    )
    old_view, new_view = before.view(cluster, settings), after.view(cluster, settings)
    if old_view is None and new_view is None:
        return diff
    return _compare(before.mapping, after.mapping, backfill, engine, old_view, new_view)


# -- read-back ------------------------------------------------------------------------------------


def unapplied_changes(cluster: Cluster, index: str, body: Mapping[str, Any]) -> list[Change]:
    """What of the put-mapping ``body`` the live mapping of ``index`` does not hold.

    The expected mapping is the live one with ``body`` merged in as the engine merges it (root
    options and object options given replace, fields given replace their definition but keep
    their multi-fields, fields not given stay); each concrete index behind ``index`` is
    compared with it. Empty when the change is there.
    """
    raw = mapping_of(body)
    wanted = normalize_mapping(raw, cluster.engine)
    answer = cluster.request("GET", f"/{index}/_mapping")
    missing: list[Change] = []
    for name in sorted(answer):
        live = answer[name].get("mappings") or {}
        expected = engine_mapping(_merged(normalize_mapping(live, cluster.engine), wanted, raw))
        diff = _diff(_Side(live, name, {}), _Side(expected, None, {}), cluster, frozenset())
        missing.extend(diff.changes)
    return missing


def require_applied(cluster: Cluster, index: str, body: Mapping[str, Any]) -> None:
    """Raise :class:`~esmigrate.exceptions.MappingNotApplied` when the live mapping of ``index``
    lacks part of the put-mapping ``body`` the engine just acknowledged."""
    missing = unapplied_changes(cluster, index, body)
    if missing:
        shown = "; ".join(c.describe() for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise MappingNotApplied(
            f"The engine acknowledged the mapping change on {index}, but the live mapping does "
            f"not hold it: {shown}.",
            index=index,
            differences=[c.describe() for c in missing],
            hint="The engine ignores some changes it accepts (an option left out keeps its old "
            "value, a field or multi-field left out stays mapped). Spell the value out in the "
            "put-mapping, or copy the data into a new index with the new mapping (op.migrate).",
        )


def _merged(live: dict[str, Any], wanted: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """``live`` (normal form) with the put-mapping ``wanted`` (normal form; ``raw`` as given)
    merged in as the engine merges it."""
    out = {k: copy.deepcopy(v) for k, v in live.items() if k != "properties"}
    for key in raw:
        if key == "properties":
            continue
        if key in wanted:
            out[key] = copy.deepcopy(wanted[key])
        else:
            out.pop(key, None)  # set to its default, which the normal form leaves out
    props = _merged_properties(
        live.get("properties") or {}, wanted.get("properties") or {}, raw.get("properties") or {}
    )
    if props:
        out["properties"] = props
    return out


def _merged_properties(
    live: dict[str, Any], wanted: dict[str, Any], raw: Mapping[str, Any]
) -> dict[str, Any]:
    out = copy.deepcopy(live)
    for name, definition in wanted.items():
        current = live.get(name)
        given: Mapping[str, Any] = raw.get(name) or definition
        if current is None:
            out[name] = copy.deepcopy(definition)
        elif field_type(current) in OBJECT_TYPES and field_type(definition) in OBJECT_TYPES:
            merged = {k: copy.deepcopy(v) for k, v in current.items() if k != "properties"}
            for key in given:
                if key in ("properties", "type"):
                    continue
                if key in definition:
                    merged[key] = copy.deepcopy(definition[key])
                else:
                    merged.pop(key, None)
            if field_type(definition) != "object":
                merged["type"] = definition["type"]
            props = _merged_properties(
                current.get("properties") or {},
                definition.get("properties") or {},
                given.get("properties") or {},
            )
            if props:
                merged["properties"] = props
            out[name] = dict(sorted(merged.items()))
        else:
            merged = {k: copy.deepcopy(v) for k, v in definition.items() if k != "fields"}
            fields = {**(current.get("fields") or {}), **(definition.get("fields") or {})}
            if fields:
                merged["fields"] = dict(sorted(fields.items()))
            out[name] = dict(sorted(merged.items()))
    return dict(sorted(out.items()))
