"""The round trip: upgrade, go back (each revision's ``downgrade``, or its rollback point), and
compare with the starting state, documents and mapping, on a real cluster.

The starting documents are copied server-side into a scratch index before the upgrade (a
``_reindex`` task), and compared with :func:`~esmigrate.testing.check_integrity` afterwards, so
memory does not grow with the index. A revision without ``downgrade(op)`` is taken back through
the rollback points its blue-green ``op.migrate`` recorded, and the history is then stamped at its
parent, as an operator would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from esmigrate import command
from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config
from esmigrate.exceptions import EsmigrateError, PointNotFound
from esmigrate.operations import Migrate, migration_id, rollback_point_name
from esmigrate.rollback import get_point, rollback
from esmigrate.runtime import UPGRADE, record_operations
from esmigrate.schema import diff_mappings
from esmigrate.schema.diff import ADDITIVE
from esmigrate.schema.mapping import live_mapping
from esmigrate.script import RevisionGraph, ScriptDirectory
from esmigrate.testing._cluster import delete_prefixed, unique_prefix
from esmigrate.testing._integrity import IntegrityReport, check_integrity
from esmigrate.transform import Transform

#: Mapping changes a message lists per index.
SHOWN = 10


@dataclass(frozen=True)
class RoundTripReport:
    """What :func:`assert_round_trip` did and found (returned when the start was restored)."""

    #: The revision the cluster was at before (None: nothing applied).
    start: str | None
    #: The revisions the upgrade applied, in order.
    applied: tuple[str, ...]
    #: How each was undone, last first: ``(revision, "downgrade")`` or ``(revision, point)``.
    undone: tuple[tuple[str, str], ...]
    #: The comparison of each compared index or alias that existed at the start.
    integrity: tuple[IntegrityReport, ...]
    #: Fields the way back left in a mapping (a field cannot be removed from a live index);
    #: not a failure.
    left_in_mapping: Mapping[str, tuple[str, ...]]


def assert_round_trip(
    config: Config,
    target: str = "head",
    *,
    compare: Sequence[str] | None = None,
    reverse_transforms: Mapping[str, Transform] | None = None,
) -> RoundTripReport:
    """Upgrade the config's cluster from where it is to ``target``, undo every revision applied,
    and assert that ``compare`` (indices or aliases; default: the aliases the revisions'
    ``op.migrate`` move) hold what they held before: the same documents, field for field, and the
    same mapping (fields a downgrade cannot remove are allowed and reported). An index absent at
    the start must be absent again.

    A revision is undone by its ``downgrade(op)``; without one, by the rollback points its
    blue-green ``op.migrate`` recorded, carrying the writes made since through
    ``reverse_transforms[alias]`` when given, else dropping them (in a round trip they are the
    later revisions' own writes, already undone). Raises :class:`AssertionError` naming the first
    differing documents and fields, or the revision that cannot be undone.
    """
    graph = ScriptDirectory.from_config(config).load()
    current = command.current(config).revisions
    if len(current) > 1:
        raise EsmigrateError(
            f"The cluster is at {len(current)} revisions ({', '.join(s.revision for s in current)}).",
            hint="Start the round trip from one revision (merge the branches first).",
        )
    start = current[0].revision if current else None
    applied_before = set(graph.ancestors(start)) | {start} if start else set()
    route = graph.upgrade_path(target, applied_before).revisions
    if not route:
        raise EsmigrateError(
            f"Nothing to upgrade: the cluster is at {start or 'base'} and {target} is reached.",
            hint="Start the round trip below the target (upgrade to an earlier revision first).",
        )
    names = list(compare) if compare is not None else _migrated_aliases(graph, route)
    if not names:
        raise EsmigrateError(
            f"Revisions {', '.join(route)} move no alias with op.migrate: nothing to compare.",
            hint="Name the indices or aliases to compare: compare=['posts'].",
        )
    scratch = unique_prefix()
    with connect(config.connection) as cluster:
        try:
            saved = {
                name: _save(cluster, name, f"{scratch}-start-{i}") for i, name in enumerate(names)
            }
            done = command.upgrade(config, target)
            applied = tuple(r["revision"] for r in done["revisions"])
            undone = _undo(config, cluster, graph, applied, reverse_transforms or {})
            return _compare(cluster, start, applied, undone, saved)
        finally:
            delete_prefixed(cluster, scratch)


def _migrated_aliases(graph: RevisionGraph, route: Sequence[str]) -> list[str]:
    found: list[str] = []
    for rev in route:
        for op in record_operations(graph[rev], UPGRADE):
            if isinstance(op, Migrate) and op.alias not in found:
                found.append(op.alias)
    return found


@dataclass(frozen=True)
class _Saved:
    copy: str | None  # None: the name did not exist at the start
    mapping: dict[str, Any]


def _save(cluster: Cluster, name: str, copy: str) -> _Saved:
    """The starting documents copied server-side (ids and routing kept), and the mapping."""
    if not cluster.exists(name):
        return _Saved(None, {})
    cluster.request(
        "PUT",
        f"/{copy}",
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"dynamic": False},
        },
    )
    task = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false", "refresh": "true"},
        body={"source": {"index": name}, "dest": {"index": copy}},
    )
    cluster.wait_task(task["task"])
    cluster.refresh(copy)
    return _Saved(copy, live_mapping(cluster, name))


def _undo(
    config: Config,
    cluster: Cluster,
    graph: RevisionGraph,
    applied: Sequence[str],
    reverse: Mapping[str, Transform],
) -> tuple[tuple[str, str], ...]:
    undone: list[tuple[str, str]] = []
    for rev in reversed(applied):
        script = graph[rev]
        if len(script.down_revisions) > 1:
            raise EsmigrateError(
                f"Revision {rev} is a merge; the round trip goes back one parent at a time.",
                hint="Round-trip each branch up to the revision before the merge.",
            )
        parent = script.down_revisions[0] if script.down_revisions else "base"
        if script.downgrade is not None:
            command.downgrade(config, parent)
            undone.append((rev, "downgrade"))
            continue
        points = [
            (op.alias, rollback_point_name(migration_id(rev, op.alias)))
            for op in record_operations(script, UPGRADE)
            if isinstance(op, Migrate)
        ]
        recorded = [(alias, p) for alias, p in points if _exists(cluster, config, p)]
        if not recorded:
            raise AssertionError(
                f"Revision {rev} ({script.path.name}) cannot be undone: it has no downgrade(op) "
                "and recorded no rollback point (a blue-green op.migrate records one; an "
                "in-place change does not). Add a downgrade(op)."
            )
        for alias, point in reversed(recorded):
            rollback(
                cluster,
                point,
                state_index=config.history_index,
                reverse_transform=reverse.get(alias),
                discard_writes=alias not in reverse,
                lease_ttl=config.lease_ttl,
            )
            undone.append((rev, point))
        command.stamp(config, parent)
    return tuple(undone)


def _exists(cluster: Cluster, config: Config, point: str) -> bool:
    try:
        get_point(cluster, point, state_index=config.history_index)
    except PointNotFound:
        return False
    return True


def _compare(
    cluster: Cluster,
    start: str | None,
    applied: tuple[str, ...],
    undone: tuple[tuple[str, str], ...],
    saved: Mapping[str, _Saved],
) -> RoundTripReport:
    problems: list[str] = []
    reports: list[IntegrityReport] = []
    left: dict[str, tuple[str, ...]] = {}
    for name, before in saved.items():
        exists = cluster.exists(name)
        if before.copy is None:
            if exists:
                problems.append(f"{name} did not exist at the start and exists after the way back")
            continue
        if not exists:
            problems.append(f"{name} existed at the start and is gone after the way back")
            continue
        report = check_integrity(cluster, before.copy, name, deep="all", mapping=False)
        reports.append(report)
        if not report.ok:
            problems.append(report.message().replace(before.copy, f"{name} at the start"))
        diff = diff_mappings(before.mapping, name, cluster=cluster)
        added = tuple(c.path for c in diff if c.kind in ADDITIVE)
        if added:
            left[name] = added
        changed = [c for c in diff if c.kind not in ADDITIVE]
        if changed:
            lines = [f"{name}: the mapping differs from the start:"]
            lines += [f"  {c.describe()}" for c in changed[:SHOWN]]
            problems.append("\n".join(lines))
    if problems:
        back = " ← ".join(f"{rev} ({how})" for rev, how in undone)
        raise AssertionError(
            f"The round trip {start or 'base'} → {applied[-1]} → {start or 'base'} "
            f"(back: {back}) did not restore the start:\n" + "\n".join(problems)
        )
    return RoundTripReport(start, applied, undone, tuple(reports), left)
