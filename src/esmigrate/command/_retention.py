"""Delayed clean-up of rollback points (``deploy --cleanup-after 24h``), with no daemon.

A deploy that should keep its rollback points for a while records a *scheduled clean-up* in the
history index (``kind: scheduled_cleanup``: the points, when they fall due, the deployment).
Nothing runs in the background: every later ``deploy`` and every ``rollback-point cleanup``
first carries out the scheduled clean-ups that are due (the points, and the indices and
snapshots only they reference, through :func:`esmigrate.rollback.cleanup`), and spares the
points of those not due yet from the retention (``--keep``, ``--older-than``) that follows.

A run killed halfway is completed by the next one: the indices go before the point's document,
and the schedule's document goes last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.rollback import cleanup
from esmigrate.state import HistoryStore, timestamp

KIND = "scheduled_cleanup"


def schedule_cleanup(
    cluster: Cluster,
    state_index: str,
    points: Sequence[str],
    after: timedelta,
    *,
    deployment: str,
) -> dict[str, Any]:
    """Record that ``points`` are to be cleaned up ``after`` from now; returns the record."""
    doc = {
        "kind": KIND,
        "points": list(points),
        "created_at": timestamp(),
        "due_at": timestamp(datetime.now(UTC) + after),
        "deployment": deployment,
    }
    store = HistoryStore(cluster, state_index)
    store.ensure()
    store.create(f"cleanup:{deployment}", doc)
    return {"id": f"cleanup:{deployment}", **doc}


def _merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    out = dict(second)
    for key in ("points_deleted", "indices_deleted", "snapshots_deleted"):
        out[key] = list(dict.fromkeys([*first[key], *second[key]]))
    out["points_kept"] = [p for p in second["points_kept"] if p not in out["points_deleted"]]
    out["protected"] = {**first["protected"], **second["protected"]}
    return out


def clean_up(
    cluster: Cluster,
    state_index: str,
    *,
    keep: int,
    older_than: timedelta | None,
    dry_run: bool,
) -> dict[str, Any]:
    """Carry out the scheduled clean-ups that are due, then the retention (``keep``,
    ``older_than``) sparing the points of the schedules not due yet; returns the merged
    :class:`~esmigrate.rollback.CleanupReport` with ``scheduled_done`` and
    ``scheduled_pending`` (the schedules' records)."""
    store = HistoryStore(cluster, state_index)
    if store.exists():
        cluster.refresh(state_index)
    schedules = store.of_kind(KIND)
    moment = datetime.now(UTC)
    due = [s for s in schedules if datetime.fromisoformat(s.doc["due_at"]) <= moment]
    pending = [s for s in schedules if s not in due]
    due_points = {p for s in due for p in s.doc["points"]}
    spare = {p for s in pending for p in s.doc["points"]} - due_points
    first = (
        cleanup(cluster, state_index=state_index, keep=0, only=due_points, dry_run=dry_run)
        if due_points
        else None
    )
    retention = cleanup(
        cluster,
        state_index=state_index,
        keep=keep,
        older_than=older_than,
        dry_run=dry_run,
        spare=spare,
    ).to_dict()
    report = retention if first is None else _merge(first.to_dict(), retention)
    if not dry_run:
        for schedule in due:
            store.delete(schedule.id, schedule.version)
    report["scheduled_done"] = [{"id": s.id, **s.doc} for s in due]
    report["scheduled_pending"] = [{"id": s.id, **s.doc} for s in pending]
    return report
