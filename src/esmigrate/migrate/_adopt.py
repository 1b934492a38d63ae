"""``adopt``: put an existing concrete index behind an alias of the same name, once.

Steps: write-block ``name``; ``_clone`` it to ``name-v1-<timestamp>`` (hard links: seconds, not a
copy); one atomic ``_aliases`` request that adds the alias ``name`` (write index) to the clone and
removes the index ``name``. Writers see a short 403 window and then write through the alias.
Every step is recorded, so a run killed in between is finished (or its block lifted) by the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster, PlannedRequest, check_name
from esmigrate.exceptions import MigrationError, PreflightError
from esmigrate.migrate._layout import (
    block_writes,
    check_health,
    clone_index,
    is_alias,
    is_write_blocked,
    lift_write_block,
)
from esmigrate.migrate._plan import PlanStep
from esmigrate.migrate._shards import max_seq_nos
from esmigrate.progress import ProgressCallback, ProgressEvent
from esmigrate.state import Checkpoint

EXPLANATION = (
    "{name} is now an alias over {index}, its write index. Reads and writes addressed to "
    "{name} work as before. What changes for the application: responses name {index} in "
    "_index; index-level requests on {name} (_settings, _mapping) go to the indices behind the "
    "alias; DELETE {name} no longer deletes data (delete the versioned index instead); "
    "creating an index called {name} is no longer possible. esmigrate migrations now move the "
    "alias to new versioned indices with no downtime."
)


@dataclass
class AdoptResult:
    alias: str
    index: str
    already: bool
    blocked_seconds: float
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _swap_actions(name: str, clone: str) -> list[dict[str, Any]]:
    """One atomic request: the alias ``name`` onto the clone (its write index), the index
    ``name`` removed."""
    return [
        {"add": {"index": clone, "alias": name, "is_write_index": True}},
        {"remove_index": {"index": name}},
    ]


def plan_adopt(cluster: Cluster, name: str) -> list[PlanStep]:
    check_name(name, "index")
    clone = f"{name}-v1-<timestamp>"
    return [
        PlanStep(
            "write_block",
            f"block writes on {name}",
            (PlannedRequest("PUT", f"/{name}/_block/write"),),
        ),
        PlanStep(
            "clone",
            f"clone {name} to {clone} (hard links)",
            (
                PlannedRequest(
                    "POST",
                    f"/{name}/_clone/{clone}",
                    body={"settings": {"index.blocks.write": None}},
                ),
            ),
        ),
        PlanStep(
            "swap_aliases",
            f"one atomic request: alias {name} → {clone}, remove index {name}",
            (
                PlannedRequest(
                    "POST",
                    "/_aliases",
                    body={"actions": _swap_actions(name, clone)},
                ),
            ),
        ),
    ]


def _check_clone(cluster: Cluster, name: str, clone: str) -> None:
    """Under the block, before ``remove_index``: the clone must hold exactly what ``name`` holds
    (same document count, same highest sequence number on every shard)."""
    cluster.refresh(name)
    cluster.refresh(clone)
    count_o, count_c = cluster.count(name), cluster.count(clone)
    seq_o, seq_c = max_seq_nos(cluster, name), max_seq_nos(cluster, clone)
    if count_o != count_c or seq_o != seq_c:
        raise MigrationError(
            f"The clone {clone} does not match {name} ({count_c} vs {count_o} documents, "
            f"per-shard max _seq_no {seq_c} vs {seq_o}); {name} was not removed.",
            hint=f"Delete {clone} and run adopt again; the block on {name} was lifted.",
        )


def adopt(
    cluster: Cluster,
    name: str,
    *,
    state_index: str = ".esmigrate",
    on_progress: ProgressCallback | None = None,
) -> AdoptResult:
    """Turn the concrete index ``name`` into the alias layout (see the module docstring)."""

    def emit(message: str) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(phase="adopt", message=message, migration=f"adopt:{name}"))

    check_name(name, "index")
    check_name(state_index, "state index")
    state = Checkpoint(cluster, state_index, f"adopt:{name}")
    data = state.load()
    if is_alias(cluster, name):
        clone = data.get("clone") or ""
        if clone and is_write_blocked(cluster, clone):
            lift_write_block(cluster, clone)
        if data and data.get("phase") != "done":
            state.save(phase="done")
        return AdoptResult(
            name, clone or name, True, 0.0, EXPLANATION.format(name=name, index=clone or name)
        )
    if not cluster.exists(name):
        raise PreflightError(
            f"There is no index called {name!r} to adopt.",
            problem="source_missing",
            hint="Check the name and the cluster URL.",
        )
    check_health(cluster, name, state_index)
    if not data or data.get("phase") == "done":
        if is_write_blocked(cluster, name):
            raise PreflightError(
                f"{name} is write-blocked already, by someone else.",
                problem="source_blocked",
                hint="Find out why; lift the block when nobody needs it, then adopt.",
            )
        state.reset()
        clone = f"{name}-v1-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        state.save(strategy="adopt", phase="blocking", index=name, clone=clone)
    clone = state.data["clone"]
    # A clone is a snapshot of ``name`` under the block. If the block was lifted since (a failed
    # run lifts it; so may an operator), writers went back to ``name`` and the clone is stale:
    # swapping to it would delete their writes with ``remove_index``. Clone again.
    stale = state.data.get("phase") == "failed" or not is_write_blocked(cluster, name)
    if stale and cluster.exists(clone):
        cluster.request("DELETE", f"/{clone}")
    t0 = time.monotonic()
    try:
        block_writes(cluster, name)
        emit(f"write block on {name}")
        clone_index(cluster, name, clone)
        emit(f"cloned to {clone}")
        _check_clone(cluster, name, clone)
        cluster.request(
            "POST",
            "/_aliases",
            body={"actions": _swap_actions(name, clone)},
        )
    except BaseException:
        if cluster.exists(name) and not is_alias(cluster, name):
            lift_write_block(cluster, name)
            state.save(phase="failed")
        raise
    if is_write_blocked(cluster, clone):
        lift_write_block(cluster, clone)
    blocked = time.monotonic() - t0
    state.save(phase="done", blocked_seconds=round(blocked, 3))
    emit(f"{name} is now an alias over {clone}")
    return AdoptResult(name, clone, False, blocked, EXPLANATION.format(name=name, index=clone))
