"""Server tasks (``_reindex``, ``_update_by_query``) a migration starts, finds and cancels.

A task lives on the node that runs it: when that node restarts, the task is gone (``GET
_tasks/ID`` answers 404 unless the task stored a result in ``.tasks`` before), and the node
numbers its tasks from 1 again, so a checkpoint's task id may come to name another, unrelated
task. :func:`task_state` checks what the id names before trusting it.
"""

from __future__ import annotations

import time
from typing import Any

from esmigrate.cluster import Cluster, lost_with_node
from esmigrate.exceptions import NotFoundError

#: The actions of the tasks a migration starts (``GET _tasks`` names them so).
REINDEX = "indices:data/write/reindex"
UPDATE_BY_QUERY = "indices:data/write/update/byquery"


def cancel_task(cluster: Cluster, task_id: str, *, wait: bool = False) -> None:
    """Cancel a task (and its slices); with ``wait``, until it has stopped."""
    try:
        cluster.request("POST", f"/_tasks/{task_id}/_cancel")
    except NotFoundError:
        return
    while wait and task_state(cluster, task_id) == "running":
        time.sleep(0.1)


def task_state(
    cluster: Cluster, task_id: str, *, action: str | None = None, mentions: str | None = None
) -> str:
    """``running``, ``completed`` or ``gone`` (the node restarted and the task is lost, it failed
    because a node it read from left the cluster, or it was cancelled, e.g. by Ctrl-C: either way
    its work must be started again).

    With ``action`` and ``mentions`` (a piece of its description, e.g. ``to [target]``), a task
    under this id that is another one (the id reused after a node restart) is ``gone`` too."""
    try:
        task = cluster.task(task_id)
    except NotFoundError:
        return "gone"
    if not is_the_task(task, action=action, mentions=mentions):
        return "gone"
    if not task.get("completed"):
        return "running"
    response = task.get("response") or {}
    status = (task.get("task") or {}).get("status") or {}
    if response.get("canceled") or status.get("canceled"):
        return "gone"
    if lost_with_node(task.get("error")):
        return "gone"  # it failed because a node it read from left: its work is to do again
    return "completed"


def is_the_task(
    task: dict[str, Any], *, action: str | None = None, mentions: str | None = None
) -> bool:
    """Whether ``GET _tasks/ID``'s answer is the task of that ``action`` whose description
    contains ``mentions`` (either None: not checked)."""
    info = task.get("task") or {}
    if action is not None and info.get("action") != action:
        return False
    return mentions is None or mentions in str(info.get("description", ""))


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
