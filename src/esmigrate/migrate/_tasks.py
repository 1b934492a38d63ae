"""Server tasks (``_reindex``, ``_update_by_query``) a migration starts, finds and cancels."""

from __future__ import annotations

import time

from esmigrate.cluster import Cluster
from esmigrate.exceptions import NotFoundError


def cancel_task(cluster: Cluster, task_id: str, *, wait: bool = False) -> None:
    """Cancel a task (and its slices); with ``wait``, until it has stopped."""
    try:
        cluster.request("POST", f"/_tasks/{task_id}/_cancel")
    except NotFoundError:
        return
    while wait and task_state(cluster, task_id) == "running":
        time.sleep(0.1)


def task_state(cluster: Cluster, task_id: str) -> str:
    """``running``, ``completed`` or ``gone`` (the node restarted and the task is lost, or it was
    cancelled, e.g. by Ctrl-C: either way its work must be started again)."""
    try:
        task = cluster.task(task_id)
    except NotFoundError:
        return "gone"
    if not task.get("completed"):
        return "running"
    response = task.get("response") or {}
    status = (task.get("task") or {}).get("status") or {}
    if response.get("canceled") or status.get("canceled"):
        return "gone"
    return "completed"


def running_tasks_into(cluster: Cluster, target: str) -> list[str]:
    """Ids of running ``_reindex`` tasks that write into ``target`` (e.g. left by a dead process)."""
    result = cluster.request(
        "GET", "/_tasks", params={"actions": "*reindex", "detailed": "true", "parent_task_id": None}
    )
    ids = []
    for node in (result.get("nodes") or {}).values():
        for tid, task in (node.get("tasks") or {}).items():
            if "parent_task_id" in task:
                continue
            if f"to [{target}]" in str(task.get("description", "")):
                ids.append(tid)
    return ids
