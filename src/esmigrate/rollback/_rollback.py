"""Rolling aliases back to a rollback point without losing the writes made since.

After a cut-over, writers write to the new index N. Rolling back to the point (aliases on the old
index O) carries those writes back: N's operations above its checkpoints at the cut-over are
copied into O through the *reverse* transform (the downgrade direction) with the migrator's own
catch-up rounds, deletes are reconciled, then a short write block on N, a final round, one
atomic ``_aliases`` request back, and the block lifted
(:func:`esmigrate.migrate._catchup.catch_up_and_swap`). Without a reverse transform, a rollback
that would drop writes is refused (:class:`~esmigrate.exceptions.WritesAtRisk`) unless
``discard_writes=True`` says so explicitly; the count is re-checked under the write block.

The aliases go back to what keeps the point's state (its kind, :mod:`esmigrate.rollback._points`):
the indices themselves (``retained``), their clones (``clone``), or (``snapshot``) the indices if
unchanged since the point, else restored from the snapshot. So a change made in place (the alias
still on the same index) is rolled back too: the index that changed leaves the aliases, and the
writes it took since the point's checkpoints are carried into the clone or the restored copy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import RestoreImpossible, RollbackError, WritesAtRisk
from esmigrate.migrate._catchup import catch_up_and_swap
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import alias_targets, block_writes, lift_write_block
from esmigrate.migrate._plan import PlanStep
from esmigrate.migrate._shards import checkpoints, settled
from esmigrate.progress import ProgressCallback
from esmigrate.rollback._points import (
    RollbackPoint,
    get_point,
    restored_name,
    save_point,
    snapshot_state,
)
from esmigrate.state import Checkpoint, HistoryStore, record_rollback
from esmigrate.transform import Transform


@dataclass
class RollbackPlan:
    """What :func:`rollback` will do, as data."""

    point: str
    #: "carry" (reverse catch-up), "swap" (nothing to carry), "discard" (drop writes knowingly)
    mode: str
    #: alias -> {"from": [indices now], "to": [indices of the point]}
    aliases: dict[str, dict[str, list[str]]]
    #: indices that leave the aliases -> operations made to them since the cut-over (or, an
    #: index changed in place, since the point)
    at_risk: dict[str, int]
    #: indices of the point to restore from its snapshot first
    restore: list[str]
    alias_actions: list[dict[str, Any]]
    #: {"from": N, "to": O, "since": {shard: seq_no}} when writes are carried back
    carry: dict[str, Any] | None
    #: index of the point -> the index the aliases go back to (itself, its clone, or its copy
    #: restored from the snapshot)
    targets: dict[str, str] = field(default_factory=dict)
    #: indices of the point to restore from its snapshot beside themselves (they changed)
    restore_beside: list[str] = field(default_factory=list)
    operations: list[PlanStep] = field(default_factory=list)

    @property
    def writes_at_risk(self) -> int:
        return sum(self.at_risk.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "mode": self.mode,
            "aliases": self.aliases,
            "at_risk": self.at_risk,
            "writes_at_risk": self.writes_at_risk,
            "restore": self.restore,
            "restore_beside": self.restore_beside,
            "targets": self.targets,
            "carry": self.carry,
            "plan": [op.to_dict() for op in self.operations],
        }


@dataclass
class RollbackResult:
    """What a finished rollback did."""

    point: str
    mode: str
    aliases: dict[str, list[str]]
    at_risk: dict[str, int]
    carried: int = 0
    reconciled_deletes: int = 0
    discarded: int = 0
    restored: list[str] = field(default_factory=list)
    rounds: int = 0
    blocked_seconds: float = 0.0
    #: The revision or rebuild whose change this undid, as the history now records it
    #: (``kind``, ``id``, ``state``); None for a point made by hand.
    recorded: dict[str, Any] | None = None
    #: When the aliases were already where the point's last rollback left them: that
    #: rollback's time (nothing was done now; its figures are the point's ``last_rollback``).
    already: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ops_since(cluster: Cluster, index: str, since: Mapping[int, int] | None) -> int:
    now = checkpoints(cluster, index)
    base = since or {}
    return sum(max(0, top - int(base.get(shard, -1))) for shard, top in now.items())


def _write_index(targets: Mapping[str, Mapping[str, Any]]) -> str | None:
    if len(targets) == 1:
        return next(iter(targets))
    writers = [i for i, d in targets.items() if d.get("is_write_index")]
    return writers[0] if len(writers) == 1 else None


def _since(point: RollbackPoint, index: str) -> dict[int, int] | None:
    """Where the operations to carry from ``index`` start: its checkpoints at the cut-over, or
    (an index of the point that changed in place) at the point."""
    at_cut_over = point.cut_over_checkpoints(index)
    if at_cut_over is not None:
        return at_cut_over
    return point.index_checkpoints(index) if index in point.indices else None


def _changed(cluster: Cluster, point: RollbackPoint, index: str) -> bool:
    """Whether ``index`` took any operation since the point (or is another index by now)."""
    settings = cluster.request("GET", f"/{index}/_settings")[index]["settings"]["index"]
    if settings.get("uuid") != point.indices[index].get("uuid"):
        return True
    return _ops_since(cluster, index, point.index_checkpoints(index)) > 0


def _targets(
    cluster: Cluster, point: RollbackPoint, state_index: str
) -> tuple[dict[str, str], list[str], list[str]]:
    """(index of the point -> index the aliases go back to, indices to restore under their own
    name, indices to restore beside themselves)."""
    targets: dict[str, str] = {}
    beside: list[str] = []
    for index in sorted(point.indices):
        if point.kind == "clone":
            clone = point.copies[index]
            if not cluster.exists(clone):
                raise RestoreImpossible(
                    f"Rollback point {point.name!r} keeps {index} as its clone {clone}, which no "
                    "longer exists. Nothing was changed.",
                    indices=[clone],
                    hint="Choose another point (`esmigrate rollback-point list`).",
                )
            targets[index] = clone
        elif point.kind == "snapshot" and cluster.exists(index) and _changed(cluster, point, index):
            targets[index] = restored_name(index, point.name)
            if not cluster.exists(targets[index]):
                beside.append(index)
        else:
            targets[index] = index
    missing = _restore_check(cluster, point, state_index, beside)
    return targets, missing, beside


def _restore_check(
    cluster: Cluster, point: RollbackPoint, state_index: str, beside: list[str]
) -> list[str]:
    missing = [i for i in sorted(point.indices) if not cluster.exists(i)]
    if point.kind == "clone":
        return []
    if not missing and not beside:
        return []
    snap = point.snapshot
    state = snapshot_state(cluster, point, state_index=state_index)
    usable = (
        snap is not None
        and state == "SUCCESS"
        and all(i in snap.get("indices", []) for i in [*missing, *beside])
    )
    if not usable:
        needed = [*missing, *beside]
        raise RestoreImpossible(
            f"Rollback point {point.name!r} needs {', '.join(needed)} as "
            + (
                "they were, which no longer exist"
                if len(needed) > 1
                else "it was, which no longer exists"
            )
            + " and "
            + ("the point has no snapshot." if snap is None else "its snapshot cannot restore.")
            + " Nothing was changed.",
            indices=needed,
            hint="Restore the index from a snapshot of yours (POST _snapshot/REPO/SNAP/_restore) "
            "and run the rollback again, or choose another point; create points with "
            "--snapshot-repository to make them self-contained.",
        )
    return missing


def plan_rollback(
    cluster: Cluster,
    name: str,
    *,
    state_index: str,
    reverse: bool = False,
    discard_writes: bool = False,
) -> RollbackPlan:
    """What rolling back to point ``name`` will do (writes nothing).

    ``reverse``: whether a reverse transform (or script) will be given; it decides between
    carrying writes back and refusing/discarding them.
    """
    point = get_point(cluster, name, state_index=state_index)
    targets, restore, beside = _targets(cluster, point, state_index)
    current = {alias: alias_targets(cluster, alias) for alias in point.aliases}
    wanted_indices = set(targets.values())
    moves: dict[str, dict[str, list[str]]] = {}
    actions: list[dict[str, Any]] = []
    leaving: set[str] = set()
    writes: list[tuple[str, str, str]] = []  # (alias, leaving write index, point write index)
    for alias, recorded in sorted(point.aliases.items()):
        wanted = {targets[index]: definition for index, definition in recorded.items()}
        now = current[alias]
        moves[alias] = {"from": sorted(now), "to": sorted(wanted)}
        for index in sorted(now):
            if index not in wanted:
                actions.append({"remove": {"index": index, "alias": alias}})
                if index not in wanted_indices:
                    leaving.add(index)
        for index, definition in sorted(wanted.items()):
            actions.append({"add": {"index": index, "alias": alias, **definition}})
        now_writer, point_writer = _write_index(now), _write_index(wanted)
        if now_writer is not None and point_writer is not None and now_writer != point_writer:
            writes.append((alias, now_writer, point_writer))
    if point.kind == "retained" and not leaving:
        changed = [
            i for i in sorted(point.indices) if cluster.exists(i) and _changed(cluster, point, i)
        ]
        if changed:
            raise RollbackError(
                f"Rollback point {name!r} is a retained point and its aliases still point to "
                f"{', '.join(changed)}, which changed since: a retained point keeps no other "
                "copy to go back to. Nothing was changed.",
                hint="Record a point of kind clone or snapshot before a change made in place "
                "(`esmigrate rollback-point create NAME ALIAS --kind clone`, or "
                "rollback_point_kind in esmigrate.toml).",
            )
    at_risk = {index: _ops_since(cluster, index, _since(point, index)) for index in sorted(leaving)}
    carry: dict[str, Any] | None = None
    if discard_writes:
        mode = "discard"
    elif reverse and leaving:
        pairs = {(n, o) for _, n, o in writes if n in leaving}
        if len(pairs) != 1 or len(leaving) != 1:
            raise RollbackError(
                f"Rolling back to {name!r} moves {len(leaving)} indices "
                f"({', '.join(sorted(leaving))}) out of the aliases; carrying writes back works "
                "for one index that takes writes leaving for one that will.",
                hint="Roll back one alias layout at a time, or pass discard_writes=True if the "
                "writes made since the cut-over may be dropped.",
            )
        (source, target) = next(iter(pairs))
        alias = next(a for a, n, _ in writes if n == source)
        since = _since(point, source) or {shard: -1 for shard in checkpoints(cluster, source)}
        carry = {
            "from": source,
            "to": target,
            "alias": alias,
            "since": {str(k): v for k, v in since.items()},
        }
        mode = "carry"
    else:
        mode = "swap"
    plan = RollbackPlan(name, mode, moves, at_risk, restore, actions, carry, targets, beside)
    plan.operations = _operations(point, plan)
    return plan


def _operations(point: RollbackPoint, plan: RollbackPlan) -> list[PlanStep]:
    ops = [
        PlanStep(
            "preflight",
            f"point {point.name!r} ({point.created_at}); "
            f"{plan.writes_at_risk} operation(s) made since the cut-over to the leaving "
            f"indices {sorted(plan.at_risk) or '[]'}",
            details={"at_risk": plan.at_risk},
        )
    ]
    snap = point.snapshot
    if plan.restore_beside and snap is not None:
        ops.append(
            PlanStep(
                "restore_snapshot",
                f"restore {', '.join(plan.restore_beside)} as they were at the point from "
                f"snapshot {snap['snapshot']} ({snap['repository']}), beside the changed "
                "indices, polled until allocated",
                (_restore_request(point, plan.restore_beside, beside=True),),
            )
        )
    if plan.restore and snap is not None:
        ops.append(
            PlanStep(
                "restore_snapshot",
                f"restore {', '.join(plan.restore)} from snapshot {snap['snapshot']} "
                f"({snap['repository']}), polled until allocated",
                (_restore_request(point, plan.restore, beside=False),),
            )
        )
    leaving = sorted(plan.at_risk)
    swap = PlannedRequest("POST", "/_aliases", body={"actions": plan.alias_actions})
    if plan.carry is not None:
        n, o = plan.carry["from"], plan.carry["to"]
        ops += [
            PlanStep(
                "catch_up",
                f"copy the operations {n} received after its cut-over checkpoints into {o} "
                "through the reverse transform, in rounds; reconcile deletes",
                details={"since": plan.carry["since"]},
            ),
            PlanStep(
                "write_block",
                f"block writes on {n}",
                (PlannedRequest("PUT", f"/{n}/_block/write"),),
            ),
            PlanStep("final_catch_up", "final round and delete reconciliation; validation"),
            PlanStep("swap_aliases", "one atomic _aliases request back to the point", (swap,)),
            PlanStep(
                "lift_block",
                f"lift the write block on {n}",
                (PlannedRequest("PUT", f"/{n}/_settings", body={"index.blocks.write": None}),),
            ),
        ]
    else:
        ops += [
            PlanStep(
                "write_block",
                f"block writes on {', '.join(leaving)} and recount the operations at risk"
                + (" (dropped: discard_writes)" if plan.mode == "discard" else " (must be 0)"),
                tuple(PlannedRequest("PUT", f"/{i}/_block/write") for i in leaving),
            ),
            PlanStep("swap_aliases", "one atomic _aliases request back to the point", (swap,)),
            PlanStep(
                "lift_block",
                "lift the write blocks",
                tuple(
                    PlannedRequest("PUT", f"/{i}/_settings", body={"index.blocks.write": None})
                    for i in leaving
                ),
            ),
        ]
    return ops


def _refuse(name: str, plan: RollbackPlan, at_risk: dict[str, int]) -> WritesAtRisk:
    total = sum(at_risk.values())
    where = ", ".join(f"{i}: {n}" for i, n in sorted(at_risk.items()) if n)
    return WritesAtRisk(
        f"Rolling back to {name!r} would drop {total} operation(s) (index, update or delete) "
        f"made since the cut-over ({where}); nothing was changed.",
        point=name,
        at_risk=at_risk,
        hint="Give the downgrade transform so they are carried back (reverse_transform= or "
        "reverse_script=; --reverse-rules module:attr on the command line), or pass "
        "discard_writes=True (--discard-writes) to drop them knowingly.",
    )


def _restore_request(point: RollbackPoint, indices: list[str], *, beside: bool) -> PlannedRequest:
    snap = point.snapshot
    assert snap is not None
    body: dict[str, Any] = {
        "indices": ",".join(indices),
        "include_global_state": False,
        "include_aliases": False,
        # A cut-over's point is snapshotted under the write block; a snapshot that finishes
        # before the block is lifted holds it in the index's settings. The restored index is
        # where the aliases go back to: it takes writes again.
        "ignore_index_settings": "index.blocks.write",
    }
    if beside:
        # restored_name(index, point): the index that changed stays until the aliases leave it.
        body |= {"rename_pattern": "(.+)", "rename_replacement": f"$1-restored-{point.name}"}
    return PlannedRequest(
        "POST",
        f"/_snapshot/{snap['repository']}/{snap['snapshot']}/_restore",
        {"wait_for_completion": "false"},
        body,
    )


def _restore(
    cluster: Cluster, point: RollbackPoint, indices: list[str], *, beside: bool = False
) -> None:
    snap = point.snapshot
    assert snap is not None
    _restore_request(point, indices, beside=beside).send(cluster)
    names = [restored_name(i, point.name) for i in indices] if beside else indices
    for index in names:
        while True:
            health = cluster.health(index, wait_for_status="yellow", timeout="30s")
            if not health.get("timed_out") and health.get("status") in ("yellow", "green"):
                break
            if health.get("status") == "red" and int(health.get("initializing_shards", 0)) == 0:
                raise RollbackError(
                    f"Restoring {index} from snapshot {snap['snapshot']} failed (red).",
                    hint="GET _cluster/allocation/explain says why; the aliases were not moved.",
                )
        # Carrying writes into it reads its per-shard checkpoints, which a shard still
        # recovering from the snapshot does not report (health can be yellow by then).
        deadline = time.monotonic() + 120
        while not _recovered(cluster, index):
            if time.monotonic() > deadline:
                raise RollbackError(
                    f"{index}, restored from snapshot {snap['snapshot']}, is still recovering "
                    "after 120 s.",
                    hint=f"GET {index}/_recovery shows how far it is; the aliases were not "
                    "moved. Run the rollback again once it is done.",
                )
            time.sleep(0.2)


def _recovered(cluster: Cluster, index: str) -> bool:
    """Every shard copy of ``index`` that is being recovered (from a snapshot) is done."""
    shards = cluster.request("GET", f"/{index}/_recovery").get(index, {}).get("shards", [])
    return bool(shards) and all(s.get("stage") == "DONE" for s in shards)


def _swap(
    cluster: Cluster,
    name: str,
    plan: RollbackPlan,
    state_index: str,
    point: RollbackPoint,
) -> tuple[int, float]:
    """Block the leaving indices, recount, swap, lift; returns (discarded, blocked seconds)."""
    state = Checkpoint(cluster, state_index, f"rollback-swap:{name}")
    data = state.load()
    if data.get("phase") == "blocked":
        # A killed run left its blocks: lift them before anything else.
        for index in data.get("blocked", []):
            if cluster.exists(index):
                lift_write_block(cluster, index, error=RollbackError)
    leaving = [i for i in sorted(plan.at_risk) if cluster.exists(i)]
    state.reset()
    state.save(phase="blocked", blocked=leaving, point=name)
    t0 = time.monotonic()
    try:
        for index in leaving:
            block_writes(cluster, index, error=RollbackError)
        for index in leaving:
            deadline = time.monotonic() + 60
            while not settled(cluster, index):
                if time.monotonic() > deadline:
                    raise RollbackError(
                        f"The copies of {index} did not settle under the write block in 60 s.",
                        hint="Check the cluster's health and retry; the block was lifted.",
                    )
                time.sleep(0.05)
        at_risk = {i: _ops_since(cluster, i, _since(point, i)) for i in leaving}
        if sum(at_risk.values()) and plan.mode != "discard":
            raise _refuse(name, plan, at_risk)
        cluster.request("POST", "/_aliases", body={"actions": plan.alias_actions})
    except BaseException:
        unlifted: list[str] = []
        for index in leaving:
            # Lifting the others matters more; the next run lifts this one (the checkpoint
            # keeps it as blocked).
            try:
                lift_write_block(cluster, index, error=RollbackError)
            except Exception:
                unlifted.append(index)
        if unlifted:
            state.save(phase="blocked", blocked=unlifted, point=name)
        else:
            state.save(phase="failed")
        raise
    for index in leaving:
        lift_write_block(cluster, index, error=RollbackError)
    state.save(phase="done")
    return sum(at_risk.values()), time.monotonic() - t0


def _dead_lettered(cluster: Cluster, point: RollbackPoint) -> list[tuple[str, str | None]]:
    """(id, routing) of the documents the forward migration dead-lettered: they never reached
    the new index, so carrying deletes back must not take them out of the old one."""
    cut_over = point.cut_over or {}
    if "dead_lettered" in cut_over:
        # Recorded at the cut-over: the dead-lettered documents N lacked then (not those
        # rewritten validly and copied before it, whose deletes since must be carried back).
        return [(str(i), r) for i, r in cut_over["dead_lettered"]]
    index, migration = cut_over.get("dead_letter_index"), cut_over.get("migration")
    if not index or not migration or not cluster.exists(index):
        return []
    return list(DeadLetters(cluster, index, migration).entries())


def rollback(
    cluster: Cluster,
    name: str,
    *,
    state_index: str,
    reverse_transform: Transform | None = None,
    reverse_script: Mapping[str, Any] | str | None = None,
    discard_writes: bool = False,
    sample_size: int = 200,
    on_progress: ProgressCallback | None = None,
    lease_ttl: float = 30.0,
) -> RollbackResult:
    """Point the aliases of rollback point ``name`` back to its indices, losing nothing.

    Parameters:
        cluster: the connected cluster.
        name: the rollback point.
        state_index: where points (and the rollback's resumable checkpoint) live.
        reverse_transform: ``doc -> doc`` from the new format to the old (copy mode python), or
        reverse_script: the same as painless (runs inside ``_reindex``). Needed when writes were
            made since the cut-over.
        discard_writes: drop those writes knowingly instead.
        sample_size: documents deep-compared (reverse-transformed) before the swap back.
        on_progress: receives the migrator's progress events.
        lease_ttl: seconds the lease on carrying the writes back lives without a heartbeat (the
            project's ``lease_ttl`` from the CLI): a rerun after a kill waits for it to lapse.

    A rerun after a kill resumes (a write block left behind is lifted first), or finishes the
    record of a run killed after its swap; run again once done (the aliases where it left them)
    it does nothing and says so (:attr:`RollbackResult.already`). Raises
    :class:`~esmigrate.exceptions.WritesAtRisk` (nothing changed) and
    :class:`~esmigrate.exceptions.RestoreImpossible`.
    """
    reverse = reverse_transform is not None or reverse_script is not None
    engine_state = Checkpoint(cluster, state_index, f"rollback:{name}").load()
    if engine_state.get("phase") == "blocked" and cluster.exists(engine_state["source"]):
        # A run killed under its write block (possibly after the swap): never leave writers
        # blocked, whatever the plan below decides.
        lift_write_block(cluster, engine_state["source"], error=RollbackError)
    point = get_point(cluster, name, state_index=state_index)
    if _swapped(cluster, point):
        # A run killed after its swap, before its record: the aliases are back (and the
        # application may have written to the old index since, which a fresh plan would take
        # for a change the point cannot undo). Finish the record.
        pending = point.rolling_back or {}
        result = RollbackResult(
            point=name,
            mode=str(pending.get("mode")),
            aliases={a: list(v) for a, v in pending.get("aliases", {}).items()},
            at_risk=dict(pending.get("at_risk") or {}),
            carried=int(engine_state.get("copied") or 0) if pending.get("mode") == "carry" else 0,
            discarded=sum((pending.get("at_risk") or {}).values())
            if pending.get("mode") == "discard"
            else 0,
        )
        return _record(cluster, point, result, state_index)
    last = point.last_rollback or {}
    if last.get("aliases") and _at(cluster, last["aliases"]):
        # Done already (a run killed after its record, before it exited; or run twice): the
        # aliases are where it left them. A fresh plan would take the writes made to the old
        # index since for a change the point cannot undo.
        finished = RollbackResult(
            point=name,
            mode=str(last.get("mode")),
            aliases={a: list(v) for a, v in last["aliases"].items()},
            at_risk={},
            already=str(last.get("at")),
        )
        # What the history records (it adds nothing it holds already).
        finished.recorded = record_rollback(
            HistoryStore(cluster, state_index), point.migration, name, sorted(finished.aliases)
        )
        return finished
    plan = plan_rollback(
        cluster, name, state_index=state_index, reverse=reverse, discard_writes=discard_writes
    )
    if plan.mode == "swap" and plan.writes_at_risk:
        raise _refuse(name, plan, plan.at_risk)
    point = get_point(cluster, name, state_index=state_index)
    point.rolling_back = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": plan.mode,
        "aliases": {a: m["to"] for a, m in plan.aliases.items()},
        "at_risk": plan.at_risk,
    }
    save_point(cluster, state_index, point)
    if plan.restore:
        _restore(cluster, point, plan.restore)
    if plan.restore_beside:
        _restore(cluster, point, plan.restore_beside, beside=True)
    result = RollbackResult(
        point=name,
        mode=plan.mode,
        aliases={a: m["to"] for a, m in plan.aliases.items()},
        at_risk=plan.at_risk,
        restored=plan.restore,
    )
    if plan.carry is not None:
        carry = plan.carry
        done = catch_up_and_swap(
            cluster,
            source=carry["from"],
            target=carry["to"],
            since={int(k): int(v) for k, v in carry["since"].items()},
            alias_actions=plan.alias_actions,
            alias=carry["alias"],
            migration_id=f"rollback:{name}",
            state_index=state_index,
            dead_letter_index=f"{carry['alias']}-deadletter",
            script=reverse_script,
            transform=reverse_transform,
            sample_size=sample_size,
            on_progress=on_progress,
            keep=_dead_lettered(cluster, point),
            lease_ttl=lease_ttl,
        )
        result.carried = done.copied
        result.reconciled_deletes = done.reconciled_deletes
        result.rounds = done.rounds
        result.blocked_seconds = done.blocked_seconds
    else:
        result.discarded, result.blocked_seconds = _swap(cluster, name, plan, state_index, point)
    return _record(cluster, get_point(cluster, name, state_index=state_index), result, state_index)


def _swapped(cluster: Cluster, point: RollbackPoint) -> bool:
    """Whether a rollback to ``point`` under way has moved every alias where it said."""
    pending = point.rolling_back or {}
    return bool(pending.get("aliases")) and _at(cluster, pending["aliases"])


def _at(cluster: Cluster, layout: Mapping[str, list[str]]) -> bool:
    """Whether each alias of ``layout`` points to exactly its indices."""
    return all(
        sorted(alias_targets(cluster, alias)) == sorted(indices)
        for alias, indices in layout.items()
    )


def _record(
    cluster: Cluster, point: RollbackPoint, result: RollbackResult, state_index: str
) -> RollbackResult:
    """Record the finished rollback ``result``: in the history first (it is idempotent), then
    in the point, which clears the rollback under way."""
    # The history says what is live: the revision (or rebuild) this point undid is no longer.
    result.recorded = record_rollback(
        HistoryStore(cluster, state_index), point.migration, point.name, sorted(result.aliases)
    )
    point.last_rollback = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **{
            k: v
            for k, v in result.to_dict().items()
            if k in ("mode", "carried", "discarded", "aliases")
        },
    }
    point.rolling_back = None
    save_point(cluster, state_index, point)
    return result
