"""Change the speed of a running migration, from any process."""

from __future__ import annotations

from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError, NotFoundError
from esmigrate.migrate._tasks import task_state
from esmigrate.state import Checkpoint


def rethrottle(cluster: Cluster, task_id: str, requests_per_second: float | None) -> None:
    """Rethrottle a running ``_reindex`` / ``_update_by_query`` task (None or <= 0: unlimited)."""
    rps = requests_per_second if requests_per_second and requests_per_second > 0 else -1
    task = cluster.task(task_id)
    action = str(task.get("task", {}).get("action", ""))
    endpoint = "_update_by_query" if "update" in action else "_reindex"
    cluster.request(
        "POST", f"/{endpoint}/{task_id}/_rethrottle", params={"requests_per_second": rps}
    )


def throttle(
    cluster: Cluster,
    migration_id: str,
    requests_per_second: float | None,
    *,
    state_index: str = ".esmigrate",
) -> dict[str, Any]:
    """Set the throttle of migration ``migration_id``: running tasks are rethrottled now, the
    copy in Python picks the new rate up within seconds (it re-reads the throttle document)."""
    state = Checkpoint(cluster, state_index, migration_id)
    data = state.load()
    if not data:
        known = _known_migrations(cluster, state_index)
        raise MigrationError(
            f"There is no migration {migration_id!r} in {state_index}"
            + (f"; known: {', '.join(known)}." if known else " (it holds none)."),
            hint="Pass the id of a started migration (blue-green ids are "
            "'blue-green:<alias>' unless migration_id was given), or the right state index.",
        )
    cluster.request(
        "PUT",
        f"/{state_index}/_doc/throttle:{migration_id}",
        body={
            "kind": "throttle",
            "migration": migration_id,
            "requests_per_second": requests_per_second,
        },
    )
    tasks = []
    for key, value in data.items():
        if isinstance(value, dict) and value.get("task"):
            tasks.append(str(value["task"]))
        elif key in ("copy_tasks", "round_tasks") and isinstance(value, dict):
            # One task per shard of the source: {"0": {"task": ...}, ...}.
            tasks.extend(
                str(step["task"])
                for step in value.values()
                if isinstance(step, dict) and step.get("task")
            )
        elif key == "task" and value:
            tasks.append(str(value))
    rethrottled = []
    for task_id in tasks:
        try:
            if task_state(cluster, task_id) == "running":
                rethrottle(cluster, task_id, requests_per_second)
                rethrottled.append(task_id)
        except NotFoundError:
            continue
    return {
        "migration": migration_id,
        "requests_per_second": requests_per_second,
        "tasks": rethrottled,
    }


def throttle_of(cluster: Cluster, state_index: str, migration_id: str) -> tuple[bool, float | None]:
    """``(set, rate)``: whether :func:`throttle` was called for ``migration_id``, and the rate
    it set (None: unlimited). A running copy in Python reads it again every few seconds."""
    try:
        doc = cluster.request("GET", f"/{state_index}/_doc/throttle:{migration_id}")
    except NotFoundError:
        return False, None
    rps = doc["_source"].get("requests_per_second")
    return True, (float(rps) if rps not in (None, -1) else None)


def _known_migrations(cluster: Cluster, state_index: str, limit: int = 20) -> list[str]:
    cluster.refresh(state_index)
    hits = cluster.search(
        state_index,
        {"size": limit, "query": {"term": {"kind": "checkpoint"}}, "_source": ["migration"]},
    )["hits"]["hits"]
    return sorted(str(h["_source"].get("migration")) for h in hits)
