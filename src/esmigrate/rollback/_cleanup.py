"""Retention: delete old rollback points and the indices and snapshots only they reference."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import NotFoundError, RollbackError
from esmigrate.migrate._old_writes import pipeline_name
from esmigrate.rollback._points import TIMESTAMP_FORMAT, RollbackPoint, delete_point, list_points


@dataclass
class CleanupReport:
    """What :func:`cleanup` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    points_deleted: list[str] = field(default_factory=list)
    points_kept: list[str] = field(default_factory=list)
    indices_deleted: list[str] = field(default_factory=list)
    snapshots_deleted: list[str] = field(default_factory=list)
    #: index -> why it stays although only deleted points reference it
    protected: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _age_seconds(point: RollbackPoint) -> float:
    created = datetime.strptime(point.created_at, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp()
    return time.time() - created


def _aliased(cluster: Cluster) -> set[str]:
    result = cluster.request("GET", "/_alias")
    return {index for index, entry in result.items() if entry.get("aliases")}


def _referenced(point: RollbackPoint) -> set[str]:
    """The indices the point owns: its clones, and its indices themselves unless it is a clone
    point of live indices (which are not its to delete)."""
    out = set(point.copies.values())
    if point.kind != "clone" or point.cut_over is not None:
        out |= set(point.indices)
    if point.cut_over is not None:
        out |= set(point.cut_over.get("checkpoints", {}))
    return out


def cleanup(
    cluster: Cluster,
    *,
    state_index: str,
    keep: int = 3,
    older_than: timedelta | float | None = None,
    dry_run: bool = False,
    only: Collection[str] | None = None,
    spare: Collection[str] = (),
) -> CleanupReport:
    """Delete all but the newest ``keep`` rollback points (and, with ``older_than``, only those
    older than it), with the indices and snapshots that no kept point references. With
    ``only``, no other point is deleted; a point named in ``spare`` is never deleted (a
    clean-up scheduled for later keeps it).

    An index an alias points to, or that a kept point references, is never deleted (it is listed
    in ``protected`` with the reason). With ``dry_run`` nothing is deleted and the report says
    what would be. Index deletions come before the point's document is deleted, so a run stopped
    halfway is completed by the next one.
    """
    if keep < 0:
        raise RollbackError(
            f"keep must be 0 or more, not {keep}.", hint="Pass how many points to keep."
        )
    limit = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    points = list_points(cluster, state_index=state_index)
    newest = points[len(points) - keep :] if keep else []
    drop = [
        p
        for p in points
        if p not in newest
        and (limit is None or _age_seconds(p) > float(limit))
        and (only is None or p.name in only)
        and p.name not in spare
    ]
    kept = [p for p in points if p not in drop]
    report = CleanupReport(
        dry_run=dry_run,
        points_deleted=[p.name for p in drop],
        points_kept=[p.name for p in kept],
    )
    if not drop:
        return report
    kept_indices = set().union(*(_referenced(p) for p in kept)) if kept else set()
    kept_snapshots = {
        (p.snapshot["repository"], p.snapshot["snapshot"]) for p in kept if p.snapshot
    }
    aliased = _aliased(cluster)
    candidates = sorted(set().union(*(_referenced(p) for p in drop)))
    for index in candidates:
        if index in aliased:
            report.protected[index] = "an alias points to it"
        elif index in kept_indices:
            report.protected[index] = "a kept rollback point references it"
        elif cluster.exists(index):
            report.indices_deleted.append(index)
    for p in drop:
        if p.snapshot and (p.snapshot["repository"], p.snapshot["snapshot"]) not in kept_snapshots:
            report.snapshots_deleted.append(f"{p.snapshot['repository']}/{p.snapshot['snapshot']}")
    if dry_run:
        return report
    # Gone meanwhile is fine: the goal is reached.
    for index in report.indices_deleted:
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/{index}")
        # The index's old-writes upgrade pipeline, if it had one, serves nothing any more.
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/_ingest/pipeline/{pipeline_name(index)}")
    for name in report.snapshots_deleted:
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/_snapshot/{name}")
    for p in drop:
        delete_point(cluster, p, state_index=state_index)
    return report
