"""Render a mapping diff as the Python lines of a migration script (for autogenerate).

The lines call the migration operations (``op.put_mapping``, ``op.update_by_query``) for what
can be done on the live index, and leave a ``# TODO(human):`` comment where a person must decide
(a reindex into a new index, a value for existing documents).
"""

from __future__ import annotations

import pprint
from typing import Any

from esmigrate.schema.diff import ChangeKind, Compatibility, MappingDiff


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=max(40, 96 - indent), sort_dicts=False)
    pad = " " * indent
    return text.replace("\n", "\n" + pad)


def render_operations(
    diff: MappingDiff,
    index: str,
    *,
    op: str = "op",
    indent: int = 4,
    target: str | None = None,
) -> list[str]:
    """Source lines (without the leading indentation) a migration's ``upgrade()`` would run.

    Empty when the diff is empty. ``target`` is the source expression of the new schema (a
    Document class name): breaking changes then become ``op.migrate(index, target)`` (the
    migrator moves the data blue-green), with a ``# TODO(human)`` where a transform is needed.
    """
    lines: list[str] = []
    if not diff:
        return lines
    if diff.breaking and target is not None:
        return _render_migrate(diff, index, target, op)
    body = diff.put_mapping_body()
    if body:
        lines.append(f"{op}.put_mapping({index!r}, {_literal(body, indent)})")

    exists_fields: list[str] = []
    whole_index: list[str] = []
    needs_values: list[str] = []
    for change in diff.backfills:
        if change.kind == ChangeKind.FIELD_ADDED and "dynamic" in change.reason:
            whole_index.append(change.path)
        elif change.kind == ChangeKind.FIELD_ADDED:
            needs_values.append(change.path)
        else:
            source = change.owner or change.path
            if source not in exists_fields:
                exists_fields.append(source)
    if whole_index:
        lines.append(
            f"{op}.update_by_query({index!r})  # index values already in _source: "
            + ", ".join(whole_index)
        )
    elif exists_fields:
        query: dict[str, Any] = (
            {"exists": {"field": exists_fields[0]}}
            if len(exists_fields) == 1
            else {
                "bool": {
                    "should": [{"exists": {"field": f}} for f in exists_fields],
                    "minimum_should_match": 1,
                }
            }
        )
        lines.append(
            f"{op}.update_by_query({index!r}, query={_literal(query, indent)})"
            f"  # re-index in place: {', '.join(exists_fields)}"
        )
    for path in needs_values:
        lines.append(
            f"# TODO(human): existing documents need a value for {path!r}: "
            f"{op}.update_by_query({index!r}, script=...) or a transform rule."
        )

    breaking = diff.breaking
    if breaking:
        lines.append(
            "# TODO(human): these changes cannot be made on the live index; copy the data into a"
        )
        lines.append("# new index with the new mapping (blue-green reindex), or keep the old one:")
        for change in breaking:
            lines.append(f"#   - {change.describe()}")
        only_removals = all(
            c.kind in (ChangeKind.FIELD_REMOVED, ChangeKind.SUBFIELD_REMOVED) for c in breaking
        )
        if only_removals:
            lines.append("#   (removed fields may also simply stay mapped and unused)")
    if diff.compatibility == Compatibility.IN_PLACE and not lines:
        lines.append("pass")
    return lines


def _render_migrate(diff: MappingDiff, index: str, target: str, op: str) -> list[str]:
    lines = ["# Breaking changes: the data moves to a new index (blue-green):"]
    lines.extend(f"#   - {change.describe()}" for change in diff.breaking)
    removed = [c.path for c in diff.changes if c.kind == ChangeKind.FIELD_REMOVED]
    added = [c.path for c in diff.changes if c.kind == ChangeKind.FIELD_ADDED]
    if removed and added:
        lines.append(
            f"# TODO(human): {', '.join(removed)} removed and {', '.join(added)} added: if this "
            "is a rename, pass transform=RuleSet(Rename(old, new)) (esmigrate.transform)."
        )
    if any(c.kind == ChangeKind.TYPE_CHANGED for c in diff.breaking):
        lines.append(
            "# TODO(human): a changed type may need its values converted: transform=RuleSet("
            "Cast(field, type))."
        )
    lines.append(f"{op}.migrate({index!r}, {target})")
    return lines
