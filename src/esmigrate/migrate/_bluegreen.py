"""Blue-green: move live data to a new index with a new mapping, then swap the aliases.

Phases (each resumable from the checkpoint document):

1. ``copy``: record per-shard checkpoints C0 of the source O, refresh O, copy everything into the
   new index N (server ``_reindex`` task, or the Python pipeline for Python transforms).
2. ``catchup``: rounds of "record C', refresh O, copy what has ``_seq_no > C``, C := C'" until a
   round is small; a position pass (every document of N checked against O once: deleted if gone,
   its source ``_seq_no`` recorded otherwise — see ``_positions.py``), more rounds, a pass over
   what they copied, and a first delete reconciliation by range counts.
3. ``blocked``: write block on O, a final round, a position pass over what it copied and the exact
   delete reconciliation (all bounded by the last window's changes), the validation gate, one
   atomic ``_aliases`` request, the block lifted.

Writers keep writing to O through the alias during 1 and 2; during 3 they get 403 for a short
window and retry; after it their writes land in N.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import orjson

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import (
    MigrationCancelled,
    MigrationError,
    NotFoundError,
    PreflightError,
    RequestError,
    TooManyFailures,
    ValidationFailed,
)
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import (
    AliasLayout,
    block_writes,
    check_health,
    is_write_blocked,
    lift_write_block,
    mapping_missing,
    next_index_name,
    refuse_template_aliases,
    resolve,
)
from esmigrate.migrate._plan import PlanStep
from esmigrate.migrate._positions import PassStats, Positions, positions_name
from esmigrate.migrate._progress import Meter, ProgressCallback, ProgressEvent
from esmigrate.migrate._python_copy import CopyStats, PythonCopier, TokenBucket
from esmigrate.migrate._reindex_copy import ReindexCopier, normalize_script, refuse_rerouting
from esmigrate.migrate._shards import Layout, checkpoints, layout, settled
from esmigrate.migrate._tasks import cancel_task, running_tasks_into, task_state
from esmigrate.schema.mapping import live_mapping
from esmigrate.state import Checkpoint, Lease
from esmigrate.transform import Transform

log = logging.getLogger("esmigrate.migrate")

LOAD_SETTINGS = {"index.refresh_interval": "-1", "index.number_of_replicas": 0}


@dataclass
class MigrationResult:
    """What a finished migration did."""

    migration: str
    source: str
    target: str
    aliases: list[str]
    copied: int
    rounds: int
    failures: int
    count: int
    reconciled_deletes: int
    blocked_seconds: float
    resumed: bool
    already_done: bool = False
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _flatten_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"index": {"number_of_replicas": 1}}`` and ``{"number_of_replicas": 1}`` → dotted keys."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and not (
            prefix.endswith("analysis") or "analysis." in prefix
        ):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", dict(settings or {}))
    fixed: dict[str, Any] = {}
    for key, value in out.items():
        fixed[key if key.startswith("index.") else f"index.{key}"] = value
    return fixed


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class BlueGreen:
    """A blue-green migration of the data behind ``alias`` to a new index with ``mappings``.

    Parameters:
        cluster: the connected cluster.
        alias: the read alias (also the write alias unless ``write_alias`` is given).
        mappings: the target mapping.
        settings: the target index settings (shards, replicas, analysis...). Shards default to the
            source's count.
        script: painless operating on ``ctx._source`` (runs inside ``_reindex``), or
        transform: a pure Python ``doc -> doc`` (runs in the Python pipeline). Not both.
        target: the new index's name (default ``{alias}-v{n}-{timestamp}``).
        migration_id: names the checkpoint; a rerun with the same id resumes.
        state_index: where the checkpoint lives (default: the project's history index).
        dead_letter_index: where rejected documents go (default ``{alias}-deadletter``).
        max_failures: dead-lettered documents accepted before the cut-over is refused.
        requests_per_second: throttle (``_reindex`` and the pipeline); change it live with
            :func:`esmigrate.migrate.throttle`.
        catchup_threshold / max_rounds: catch-up rounds continue until one copies at most
            ``catchup_threshold`` documents, or ``max_rounds`` rounds ran; then the write block.
        sample_size: documents deep-compared by the validation gate.
        on_progress: receives :class:`ProgressEvent`\\ s (possibly from worker threads).
        cancel: set it (e.g. from a SIGINT handler) to stop cleanly; the next run resumes.
        lease_ttl: seconds the per-migration lease lives without a heartbeat; a process killed
            mid-run blocks a successor that long.
        lock_timeout: seconds to wait for another process's lease of this migration before
            :class:`~esmigrate.exceptions.MigrationLocked` (default ``lease_ttl + 5``: a restarted
            job waits out the lease of the run it replaces).
    """

    cluster: Cluster
    alias: str
    mappings: Mapping[str, Any]
    settings: Mapping[str, Any] | None = None
    script: Mapping[str, Any] | str | None = None
    transform: Transform | None = None
    write_alias: str | None = None
    target: str | None = None
    migration_id: str | None = None
    state_index: str = ".esmigrate"
    dead_letter_index: str | None = None
    max_failures: int = 0
    requests_per_second: float | None = None
    slices: int | str = "auto"
    parallelism: int = 4
    page_size: int = 1000
    catchup_threshold: int = 1000
    max_rounds: int = 20
    sample_size: int = 200
    on_progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    #: called under the write block, just before the alias swap, with the checkpoint data
    #: (``target_checkpoints`` included): e.g. :func:`esmigrate.rollback.rollback_point_hook`.
    #: If it raises, the block is lifted and the aliases stay where they are.
    on_cut_over: Callable[[dict[str, Any]], None] | None = None
    lease_ttl: float = 30.0
    lock_timeout: float | None = None
    #: (id, routing) of documents the target keeps although the source lacks them: a rollback
    #: keeps in the old index the documents the forward migration dead-lettered.
    keep: Collection[tuple[str, str | None]] = ()

    # -- derived -----------------------------------------------------------------------------

    def __post_init__(self) -> None:
        if self.script is not None and self.transform is not None:
            raise PreflightError(
                "Give either a painless script or a Python transform, not both.",
                problem="two_transforms",
                hint="script= runs inside _reindex; transform= runs in the Python pipeline.",
            )
        self._script = normalize_script(self.script)
        refuse_rerouting(self._script)
        self.id = self.migration_id or f"blue-green:{self.write_alias or self.alias}"
        self.dl_index = self.dead_letter_index or f"{self.alias}-deadletter"
        self.mode = "pipeline" if self.transform is not None else "reindex"
        self._stats = CopyStats()
        self._bucket = TokenBucket(self.requests_per_second)
        self._lock = threading.Lock()
        self._phase_times: dict[str, float] = {}
        self._blocked_seconds = 0.0
        self._deleted = 0

    def _fingerprint(self) -> str:
        what = {
            "mappings": self.mappings,
            "settings": self.settings,
            "script": self._script,
            "transform": None
            if self.transform is None
            else getattr(self.transform, "__qualname__", type(self.transform).__name__),
        }
        return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def _emit(self, phase: str, message: str = "", **numbers: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(
                ProgressEvent(
                    phase=phase,
                    message=message,
                    migration=self.id,
                    done=int(numbers.get("done", 0)),
                    total=numbers.get("total"),
                    round=int(numbers.get("round", 0)),
                )
            )

    def _meter(self, phase: str, total: int | None = None, round: int = 0) -> Meter:
        return Meter(phase, self.on_progress, total=total, round=round, migration=self.id)

    # -- plan ----------------------------------------------------------------------------------

    def _target_settings(self, source_layout: Layout | None) -> dict[str, Any]:
        flat = _flatten_settings(self.settings)
        if "index.number_of_shards" not in flat and source_layout is not None:
            flat["index.number_of_shards"] = source_layout.shards
        return flat

    def plan(self) -> list[PlanStep]:
        """What :meth:`run` will do, as data (resolves the aliases; writes nothing)."""
        check_health(self.cluster)
        where = resolve(self.cluster, self.alias, self.write_alias)
        target = self.target or next_index_name(self.alias, where.source)
        flat = self._target_settings(layout(self.cluster, where.source))
        create = _nest({**flat, **LOAD_SETTINGS})
        copy_req: PlannedRequest
        if self.mode == "reindex":
            copy_req = PlannedRequest(
                "POST",
                "/_reindex",
                {"wait_for_completion": "false", "slices": self.slices},
                {
                    "source": {"index": where.source},
                    "dest": {"index": target},
                    **({"script": self._script} if self._script else {}),
                },
            )
            copy_summary = f"server-side _reindex {where.source} → {target} (polled task)"
        else:
            copy_req = PlannedRequest(
                "POST",
                f"/{where.source}/_search",
                {"preference": "_shards:N"},
                {"query": {"range": {"_seq_no": {"gt": "cursor", "lte": "C0"}}}},
            )
            copy_summary = (
                f"Python pipeline {where.source} → {target}: per-shard _seq_no scans, "
                f"transform {getattr(self.transform, '__name__', 'callable')}, bulk"
            )
        restore = {k: flat.get(k) for k in ("index.refresh_interval", "index.number_of_replicas")}
        actions = self._alias_actions(where, target)
        return [
            PlanStep(
                "preflight",
                f"{self.alias} → {where.source}; cluster not red; {target} absent",
            ),
            PlanStep(
                "create_index",
                f"create {target} with the target mapping, refresh off and no replicas",
                (
                    PlannedRequest(
                        "PUT", f"/{target}", body={"settings": create, "mappings": self.mappings}
                    ),
                ),
            ),
            PlanStep(
                "checkpoint",
                f"record per-shard _seq_no checkpoints of {where.source}, refresh it",
                (
                    PlannedRequest("GET", f"/{where.source}/_stats", {"level": "shards"}),
                    PlannedRequest("POST", f"/{where.source}/_refresh"),
                ),
            ),
            PlanStep("copy", copy_summary, (copy_req,), {"mode": self.mode}),
            PlanStep(
                "restore_settings",
                f"restore {target}'s refresh interval and replicas",
                (PlannedRequest("PUT", f"/{target}/_settings", body=restore),),
            ),
            PlanStep(
                "catch_up",
                f"rounds copying writes made to {where.source} since the last checkpoint, until "
                f"a round copies ≤ {self.catchup_threshold} docs (at most {self.max_rounds})",
            ),
            PlanStep(
                "reconcile_deletes",
                f"check {target}'s documents against {where.source} once (deleting those gone) "
                f"and record their source _seq_no in {positions_name(target)}; from then on "
                "deletes are found by comparing range counts of positions and source",
            ),
            PlanStep(
                "write_block",
                f"block writes on {where.source} (writers get 403 and retry)",
                (PlannedRequest("PUT", f"/{where.source}/_block/write"),),
            ),
            PlanStep(
                "final_catch_up",
                "final round, position check of what it copied, and the range-count delete "
                "reconciliation (its work follows the last window's deletes, not the index)",
            ),
            PlanStep(
                "validate",
                f"counts equal, {self.sample_size} random documents transformed and "
                "deep-compared, target mapping present",
            ),
            PlanStep(
                "swap_aliases",
                "one atomic _aliases request",
                (PlannedRequest("POST", "/_aliases", body={"actions": actions}),),
            ),
            PlanStep(
                "lift_block",
                f"lift the write block on {where.source} (kept as the rollback point)",
                (
                    PlannedRequest(
                        "PUT", f"/{where.source}/_settings", body={"index.blocks.write": None}
                    ),
                ),
            ),
        ]

    def _alias_actions(self, where: AliasLayout, target: str) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        for name, definition in where.definitions.items():
            actions.append({"remove": {"index": where.source, "alias": name}})
            add: dict[str, Any] = {"index": target, "alias": name}
            for key in ("filter", "index_routing", "search_routing", "is_hidden"):
                if key in definition:
                    add[key] = definition[key]
            if name == where.write_alias:
                add["is_write_index"] = True
            actions.append({"add": add})
        return actions

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> MigrationResult:
        """Run (or resume) the migration; returns when the aliases point to the new index.

        Only one process at a time runs a migration: the others wait for its lease (see
        ``lock_timeout``) and then raise :class:`~esmigrate.exceptions.MigrationLocked`.
        """
        Checkpoint(self.cluster, self.state_index, self.id).ensure_index()
        timeout = self.lease_ttl + 5 if self.lock_timeout is None else self.lock_timeout
        self._lease = Lease.for_migration(
            self.cluster, self.state_index, self.id, ttl=self.lease_ttl
        )
        with self._lease.acquire(timeout):
            result = self._run()
            # Done (a run only returns then): the positions served the cut-over.
            self.cluster.request(
                "DELETE",
                f"/{positions_name(result.target)}",
                params={"ignore_unavailable": "true"},
            )
            return result

    def _run(self) -> MigrationResult:
        state = Checkpoint(self.cluster, self.state_index, self.id)
        data = state.load()
        resumed = bool(data) and data.get("phase") not in ("done", "abandoned")
        if (
            data.get("phase") == "done"
            and data.get("fingerprint") == self._fingerprint()
            and resolve(self.cluster, self.alias, self.write_alias).source == data["target"]
        ):
            return self._result(state, resumed=False, already_done=True)
        if not resumed:
            self._start(state)
        else:
            if data.get("fingerprint") != self._fingerprint():
                raise MigrationError(
                    f"Migration {self.id!r} was started with a different mapping or transform "
                    f"(target {data.get('target')}, phase {data.get('phase')}).",
                    hint="Run it with the original definition to finish it, or pass another "
                    "migration_id after deleting the unfinished target index.",
                )
            self._emit("resume", f"resuming in phase {data['phase']}")
        self._dead = DeadLetters(self.cluster, self.dl_index, self.id)
        self._dead.ensure()
        if resumed and self._finish_if_swapped(state):
            # The swap was applied but its answer was lost: N is live, nothing is left to copy
            # (and reconciling against O now would delete the writes N took since).
            return self._result(state, resumed=True)
        if state.data["phase"] == "blocked" and self._recover_from_block(state):
            return self._result(state, resumed=True)
        if state.data["phase"] == "copy":
            self._copy(state)
        if state.data["phase"] == "catchup":
            self._cut_over(state)
        return self._result(state, resumed=resumed)

    def _result(
        self, state: Checkpoint, *, resumed: bool, already_done: bool = False
    ) -> MigrationResult:
        d = state.data
        return MigrationResult(
            migration=self.id,
            source=d["source"],
            target=d["target"],
            aliases=list(d["aliases"]),
            copied=int(d.get("copied", 0)),
            rounds=int(d.get("round", 0)),
            failures=int(d.get("failures", 0)),
            count=int(d.get("final_count", 0)),
            reconciled_deletes=int(d.get("reconciled_deletes", 0)),
            blocked_seconds=float(d.get("blocked_seconds", 0.0)),
            resumed=resumed,
            already_done=already_done,
            phases=dict(d.get("phase_seconds", {})),
        )

    # -- start ---------------------------------------------------------------------------------

    def _start(self, state: Checkpoint) -> None:
        self._emit("preflight")
        check_health(self.cluster)
        where = resolve(self.cluster, self.alias, self.write_alias)
        target = self.target or next_index_name(self.alias, where.source)
        if target == where.source:
            raise PreflightError(
                f"The target {target!r} is the source index itself.",
                problem="target_is_source",
                hint="Choose another target name, or let esmigrate name it.",
            )
        if is_write_blocked(self.cluster, where.source):
            raise PreflightError(
                f"{where.source} is write-blocked already (index.blocks.write), by another "
                "process or an earlier failure outside esmigrate.",
                problem="source_blocked",
                hint=f"Find out who blocked it; lift it with PUT {where.source}/_settings "
                '{"index.blocks.write": null} if nobody should.',
            )
        reuse = False
        if self.cluster.exists(target):
            differs = mapping_missing(live_mapping(self.cluster, target), self.mappings)
            if differs:
                raise PreflightError(
                    f"The target index {target!r} already exists with another mapping "
                    f"(differs at {', '.join(differs[:5])}).",
                    problem="target_exists",
                    hint="Delete it if it is a leftover, or choose another target name.",
                )
            reuse = True
        source_mapping = live_mapping(self.cluster, where.source)
        if str(source_mapping.get("_source", {}).get("enabled", True)).lower() == "false":
            raise PreflightError(
                f"{where.source} does not store _source, so its documents cannot be copied.",
                problem="source_disabled",
                hint="Documents without _source can only be re-created from their origin.",
            )
        refuse_template_aliases(
            self.cluster, [target, self.dl_index, self._scratch_name_for(target)]
        )
        source_layout = layout(self.cluster, where.source)
        flat = self._target_settings(source_layout)
        restore = {
            "index.refresh_interval": flat.get("index.refresh_interval"),
            "index.number_of_replicas": flat.get("index.number_of_replicas"),
        }
        state.reset()
        state.save(
            strategy="blue-green",
            phase="copy",
            mode=self.mode,
            source=where.source,
            target=target,
            alias=where.alias,
            write_alias=where.write_alias,
            aliases=sorted(where.definitions),
            alias_actions=self._alias_actions(where, target),
            restore_settings=restore,
            fingerprint=self._fingerprint(),
            dead_letter_index=self.dl_index,
            started_at=time.time(),
            copy={},
            round=0,
            copied=0,
        )
        if not reuse:
            try:
                self._create_target(target, flat)
            except RequestError as exc:
                # Nothing to resume: the next run starts afresh.
                state.save(phase="abandoned", error=exc.reason)
                raise PreflightError(
                    f"Creating the target index {target} failed: {exc.reason or exc}",
                    problem="target_invalid",
                    hint="Fix the target mapping or settings; nothing else was written.",
                ) from None
        else:
            self._put_settings(target, LOAD_SETTINGS)

    def _create_target(self, target: str, flat: Mapping[str, Any]) -> None:
        create = _nest({**flat, **LOAD_SETTINGS})
        self.cluster.request(
            "PUT", f"/{target}", body={"settings": create, "mappings": dict(self.mappings)}
        )

    def _put_settings(self, index: str, settings: Mapping[str, Any]) -> None:
        self.cluster.request("PUT", f"/{index}/_settings", body=dict(settings))

    # -- copy ----------------------------------------------------------------------------------

    def _copy(self, state: Checkpoint) -> None:
        d = state.data
        source, target = d["source"], d["target"]
        t0 = time.monotonic()
        if not self.cluster.exists(target):
            copied_some = bool((d.get("copy") or {}).get("started") or d.get("cursors"))
            if copied_some:
                raise MigrationError(
                    f"The target index {target} of unfinished migration {self.id!r} is gone.",
                    hint="Delete the checkpoint document or use another migration_id to start "
                    "over.",
                )
            # The previous run recorded the phase but died (or timed out) before creating it.
            self._create_target(target, self._target_settings(layout(self.cluster, source)))
        if "checkpoints" not in d:
            c0 = checkpoints(self.cluster, source)
            self.cluster.refresh(source)
            total = self.cluster.count(source)
            state.save(checkpoints={str(k): v for k, v in c0.items()}, copy_total=total)
        total = int(d["copy_total"])
        meter = self._meter("copy", total=total)
        if d["mode"] == "reindex":
            self._copy_reindex(state, meter)
        else:
            c0 = {int(k): v for k, v in d["checkpoints"].items()}
            self._copy_pipeline(state, meter, c0, cursor_key="cursors")
        meter.update(message="copy complete")
        state.data["progress"] = meter.numbers()
        self._check_failures(state)
        restore = {k: v for k, v in d["restore_settings"].items()}
        self._put_settings(target, restore)
        self.cluster.health(target, wait_for_status="yellow", timeout="120s")
        self._phase_time(state, "copy", time.monotonic() - t0)
        state.save(phase="catchup", copied=self._stats.copied + int(d.get("copied", 0)))

    def _phase_time(self, state: Checkpoint, phase: str, seconds: float) -> None:
        times = dict(state.data.get("phase_seconds", {}))
        times[phase] = round(times.get(phase, 0.0) + seconds, 3)
        state.data["phase_seconds"] = times

    def _reindexer(self, state: Checkpoint) -> ReindexCopier:
        d = state.data
        return ReindexCopier(
            self.cluster,
            d["source"],
            d["target"],
            self._script,
            self._dead,
            slices=self.slices,
            requests_per_second=self.requests_per_second,
            batch_size=self.page_size,
            cancel=self.cancel,
        )

    def _run_reindex(
        self,
        state: Checkpoint,
        meter: Meter | None,
        query: Mapping[str, Any] | None,
        *,
        key: str,
        restart_create: bool,
        poll: float = 0.5,
    ) -> int:
        """Run one ``_reindex`` to completion (resuming a task left by a dead process).

        ``restart_create``: a restarted task skips documents already in the target (right for the
        initial copy, whose later changes are caught up by ``_seq_no``) instead of overwriting.
        """
        copier = self._reindexer(state)
        d = state.data
        step: dict[str, Any] = dict(d.get(key) or {})
        if step.get("done"):
            return 0  # finished before a crash: do not copy it all again
        copied = 0
        # After the main pass: a pass over the ids a set-based exclusion hid (see
        # ReindexCopier.body), excluding only what that pass itself rejects, exactly.
        follow_up: list[dict[str, Any]] | None = None
        while True:
            task_id = step.get("task")
            if task_id and task_state(self.cluster, task_id) == "gone":
                # The node restarted and the task died with it: start again, skipping what
                # is there already (documents changed since are caught up by seq_no).
                task_id = None
            if not task_id:
                # A task a dead process started but never recorded must not race this one.
                for stray in running_tasks_into(self.cluster, d["target"]):
                    cancel_task(self.cluster, stray, wait=True)
                task_id = copier.start(
                    query,
                    create=restart_create and bool(step.get("started")),
                    excluded=follow_up if follow_up is not None else d.get("excluded", []),
                )
                step.update(task=task_id, started=True)
                state.save(**{key: step})
            response, failures = copier.wait(
                task_id, meter, poll, check=lambda: self._budget_check(state)
            )
            copied += int(response.get("created", 0)) + int(response.get("updated", 0))
            if not failures:
                if follow_up is not None:
                    break
                hidden = copier.hidden_by_exclusion(query, d.get("excluded", []))
                if not hidden:
                    break
                base = dict(query) if query else {"match_all": {}}
                query = {"bool": {"filter": [base, {"ids": {"values": hidden}}]}}
                follow_up = []
                step.update(task=None)
                continue
            excluded = copier.dead_letter_failures(failures)
            # Forget the finished task before the failure budget may stop this run: a resumed
            # run must start a new task with these exclusions, not read this task's failures
            # again (by then a rejected document may have been rewritten validly, and looking
            # it up again would exclude its new version).
            step.update(task=None)
            state.save(excluded=list(d.get("excluded", [])) + excluded, **{key: step})
            if follow_up is not None:
                follow_up.extend(excluded)
            self._check_failures(state)
        step.update(task=None, done=True)
        state.save(**{key: step})
        return copied

    def _budget_check(self, state: Checkpoint) -> None:
        """While a task runs (the guarded script dead-letters documents itself): raise
        TooManyFailures once the budget is exceeded, at most every 2 s."""
        now = time.monotonic()
        if now - getattr(self, "_budget_checked", 0.0) < 2.0:
            return
        self._budget_checked = now
        self._check_failures(state)

    def _copy_reindex(self, state: Checkpoint, meter: Meter) -> None:
        copied = self._run_reindex(state, meter, None, key="copy", restart_create=True)
        self._stats.add(copied=copied)

    def _copy_pipeline(
        self,
        state: Checkpoint,
        meter: Meter | None,
        upto: dict[int, int],
        *,
        cursor_key: str,
        start: dict[int, int] | None = None,
    ) -> int:
        """Copy every shard's ``(cursor, upto]`` range in parallel threads; resumable."""
        d = state.data
        # Workers stop at their next page when this is set: on cancel, Ctrl-C or a failure.
        stop = threading.Event()
        stats = CopyStats()
        stored = {int(k): int(v) for k, v in (d.get(cursor_key) or {}).items()}
        begin = start or {s: -1 for s in upto}
        cursors = {s: max(stored.get(s, begin[s]), begin[s]) for s in upto}
        copier = PythonCopier(
            self.cluster,
            d["source"],
            d["target"],
            self.transform,
            self._dead,
            page=self.page_size,
            bucket=self._bucket,
            cancel=stop,
        )
        last_save = [time.monotonic()]
        base = meter.done if meter else 0
        dead_base = self._dead.count()

        def save(force: bool = False) -> None:
            with self._lock:
                if not force and time.monotonic() - last_save[0] < 2.0:
                    return
                last_save[0] = time.monotonic()
                self._refresh_throttle(state)
                state.save(**{cursor_key: {str(k): v for k, v in cursors.items()}})

        def on_cursor(shard: int, cursor: int) -> None:
            with self._lock:
                cursors[shard] = max(cursors[shard], cursor)
            if meter is not None:
                meter.update(base + stats.copied + stats.failed)
            save()

        def work(shard: int) -> None:
            copier.copy_shard(
                shard,
                cursors[shard],
                upto[shard],
                stats,
                on_cursor=lambda c: on_cursor(shard, c),
            )

        with ThreadPoolExecutor(max_workers=max(1, min(self.parallelism, len(upto)))) as pool:
            futures = [pool.submit(work, s) for s in sorted(upto) if cursors[s] < upto[s]]
            over_budget = False
            try:
                while wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION).not_done:
                    if self.cancel is not None and self.cancel.is_set():
                        stop.set()
                    if any(f.done() and f.exception() for f in futures):
                        break
                    if dead_base + stats.failed > self.max_failures:
                        # Over the failure budget: stop now rather than dead-letter the index.
                        over_budget = True
                        stop.set()
                        break
                if over_budget:
                    wait(futures)
                    save(force=True)
                    self._check_failures(state)
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                raise
        save(force=True)
        self._stats.add(copied=stats.copied, failed=stats.failed, retries=stats.retries)
        return stats.copied + stats.failed

    def _refresh_throttle(self, state: Checkpoint) -> None:
        """Pick up a throttle set by another process (:func:`throttle`)."""
        try:
            doc = self.cluster.request("GET", f"/{self.state_index}/_doc/throttle:{self.id}")
        except NotFoundError:
            return
        rps = doc["_source"].get("requests_per_second")
        self._bucket.rate = float(rps) if rps not in (None, -1) else None

    # -- catch-up and cut-over -----------------------------------------------------------------

    def _round(self, state: Checkpoint, poll: float = 0.5) -> int:
        """One catch-up round: everything written to O since the stored checkpoints."""
        d = state.data
        source = d["source"]
        previous = {int(k): int(v) for k, v in d["checkpoints"].items()}
        number = int(d.get("round", 0)) + 1
        pending = d.get("pending") or {}
        if pending.get("round") == number:
            # Resuming this round: a task the dead process started read a snapshot taken after
            # *these* checkpoints, so they (not fresh ones) are what the round guarantees.
            fresh = {int(k): int(v) for k, v in pending["checkpoints"].items()}
        else:
            fresh = checkpoints(self.cluster, source)
            state.save(
                pending={"round": number, "checkpoints": {str(k): v for k, v in fresh.items()}}
            )
        self.cluster.refresh(source)
        meter = self._meter("catchup", round=number)
        if d["mode"] == "reindex":
            lowest = min(previous.values())
            query = {"range": {"_seq_no": {"gt": lowest}}}
            copied = self._run_reindex(
                state, meter, query, key=f"round{number}", restart_create=False, poll=poll
            )
            state.data.pop(f"round{number}", None)
        else:
            copied = self._copy_pipeline(
                state, meter, fresh, cursor_key="round_cursors", start=previous
            )
            state.data.pop("round_cursors", None)
        meter.update(copied)
        state.save(
            progress=meter.numbers(),
            checkpoints={str(k): v for k, v in fresh.items()},
            round=number,
            last_delta=copied,
            copied=int(d.get("copied", 0)) + copied,
        )
        return copied

    def _cut_over(self, state: Checkpoint) -> None:
        t0 = time.monotonic()
        self._catch_up(state)
        # The first position pass checks all of N, which takes a while; then rounds, a pass over
        # what they wrote and a reconciliation repeat while they keep finding deletes, so that
        # under the block only the last short window's writes and deletes are left.
        self._record_positions(state)
        previous = None
        for _ in range(5):
            self._catch_up(state)
            self._record_positions(state)
            found = self._reconcile(state, exact=False)
            if found <= 10 or (previous is not None and found >= previous):
                break
            previous = found
        self._check_failures(state)
        self._phase_time(state, "catchup", time.monotonic() - t0)
        self._prepare_scratch(state)
        try:
            self._blocked(state)
        finally:
            self._drop_scratch(state)

    def _catch_up(self, state: Checkpoint) -> None:
        """Rounds until one copies at most ``catchup_threshold`` documents (or ``max_rounds``)."""
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise MigrationCancelled(
                    "The migration was cancelled.", hint="Run it again to resume."
                )
            delta = self._round(state)
            if delta <= self.catchup_threshold or int(state.data["round"]) >= self.max_rounds:
                return

    def _blocked(self, state: Checkpoint) -> None:
        d = state.data
        source, target = d["source"], d["target"]
        # Record the intent first: a successor that finds phase "blocked" lifts the block.
        state.save(phase="blocked")
        t0 = time.monotonic()
        swapped = False
        try:
            self._lease.check()
            block_writes(self.cluster, source)
            self._emit("blocked", f"write block on {source}")
            deadline = time.monotonic() + 60
            while not settled(self.cluster, source):
                # _block/write drained in-flight writes on the primaries; replicas follow.
                if time.monotonic() > deadline:
                    raise MigrationError(
                        f"The copies of {source} did not settle under the write block in 60 s.",
                        hint="Check the cluster's health and retry; the block was lifted.",
                    )
                time.sleep(0.05)
            # Where the window goes, for the report (and anyone tuning it).
            spent: dict[str, float] = {}
            mark = [time.monotonic()]

            def lap(name: str) -> None:
                now = time.monotonic()
                spent[name] = round(now - mark[0], 3)
                mark[0] = now

            lap("block")
            self._round(state, poll=0.05)
            lap("final_round")
            self._record_positions(state)
            lap("positions")
            self._reconcile(state, exact=True)
            lap("reconcile")
            self._check_failures(state)
            self._validate(state)
            lap("validate")
            state.data["blocked_breakdown"] = spent
            log.info("under the write block: %s", spent)
            # What the target holds before any writer reaches it: a rollback carries back
            # exactly the operations above these checkpoints.
            state.save(
                target_checkpoints={
                    str(k): v for k, v in checkpoints(self.cluster, target).items()
                },
                cut_over_at=time.time(),
            )
            if self.on_cut_over is not None:
                self.on_cut_over(dict(state.data))
            self._emit("cutover", "swapping aliases")
            self._lease.check()
            self.cluster.request("POST", "/_aliases", body={"actions": d["alias_actions"]})
            swapped = True
            self._emit("cutover", f"aliases moved to {target}", done=1, total=1)
        except BaseException:
            # Never leave writers blocked: lift the block whatever happened.
            blocked = time.monotonic() - t0
            if not self._lease.held:
                # Another process took the migration over (our lease lapsed): the block is its
                # to lift, possibly in the middle of its own final round.
                log.error("lease lost; leaving the write block on %s to its holder", source)
                raise
            try:
                if not swapped and self._finish_if_swapped(state, blocked=blocked):
                    # The _aliases request was applied although it answered with an error (a
                    # timeout, or a client retry that found the alias moved): it is done.
                    self._emit("done", f"aliases now on {target}")
                    return
                lift_write_block(self.cluster, source)
                if not swapped:
                    state.save(phase="catchup", blocked_seconds=blocked)
            except Exception:
                log.exception("could not lift the write block on %s", source)
            raise
        lift_write_block(self.cluster, source)
        blocked = time.monotonic() - t0
        self._phase_time(state, "blocked", blocked)
        final = self.cluster.count(target)
        state.save(
            phase="done",
            finished_at=time.time(),
            blocked_seconds=round(blocked, 3),
            final_count=final,
            failures=self._dead.count(),
        )
        self._emit("done", f"aliases now on {target}", done=final, total=final)

    def _target_is_live(self, state: Checkpoint) -> bool:
        d = state.data
        try:
            where = resolve(self.cluster, d["alias"], d["write_alias"])
        except PreflightError:
            return False
        return bool(where.source == d["target"])

    def _finish_if_swapped(self, state: Checkpoint, *, blocked: float | None = None) -> bool:
        """If the write alias already points at N, record the migration as done (lifting the
        block on O, kept as the rollback point) and return True."""
        if not self._target_is_live(state):
            return False
        d = state.data
        if is_write_blocked(self.cluster, d["source"]):
            lift_write_block(self.cluster, d["source"])
        extra: dict[str, Any] = {}
        if blocked is not None:
            extra["blocked_seconds"] = round(blocked, 3)
        state.save(
            phase="done",
            finished_at=time.time(),
            final_count=self.cluster.count(d["target"]),
            failures=self._dead.count(),
            **extra,
        )
        return True

    def _recover_from_block(self, state: Checkpoint) -> bool:
        """The previous process died with O blocked. Lift it; True if the swap had happened."""
        d = state.data
        self._lease.check()
        lift_write_block(self.cluster, d["source"])
        where = resolve(self.cluster, d["alias"], d["write_alias"])
        if where.source == d["target"]:
            state.save(phase="done", finished_at=time.time(), failures=self._dead.count())
            return True
        state.save(phase="catchup")
        return False

    # -- deletes -------------------------------------------------------------------------------

    def _positions(self, state: Checkpoint) -> Positions:
        d = state.data
        return Positions(
            self.cluster,
            source=d["source"],
            target=d["target"],
            name=positions_name(d["target"]),
            parallelism=self.parallelism,
            page=max(self.page_size, 1000),
            keep=self.keep,
            cancel=self.cancel,
        )

    def _refuse_if_live(self, state: Checkpoint) -> None:
        d = state.data
        if self._target_is_live(state):
            raise MigrationError(
                f"{d['target']} is already the write index of {d['write_alias']}: reconciling "
                f"it against {d['source']} would delete the writes it took since the swap.",
                hint="Run the migration again: it records the swap as done.",
            )

    def _record_positions(self, state: Checkpoint) -> None:
        """Check the documents written to N since the last pass against O (all of N the first
        time): delete those O no longer has, record the positions of the others."""
        self._refuse_if_live(state)
        d = state.data
        positions = self._positions(state)
        after = {int(k): int(v) for k, v in (d.get("positions") or {}).items()}
        if not after or not positions.exists():
            # A first pass starts from an empty index (not from what an abandoned run left).
            positions.drop()
            positions.create()
            after = {}
        cursors = dict(after)
        last_save = [time.monotonic()]
        # The first pass reads all of N: give it a total for the ETA.
        total = None if after else self.cluster.count(positions.target)
        meter = self._meter("reconcile", total=total, round=int(d.get("round", 0)))

        def on_cursor(shard: int, cursor: int) -> None:
            with self._lock:
                cursors[shard] = max(cursors.get(shard, -1), cursor)
                if time.monotonic() - last_save[0] >= 2.0:
                    last_save[0] = time.monotonic()
                    state.save(positions={str(k): v for k, v in cursors.items()})

        def on_progress(stats: PassStats) -> None:
            meter.update(stats.checked, message=f"{stats.deleted} deleted")

        upto, stats = positions.record(after, on_cursor=on_cursor, on_progress=on_progress)
        self._deleted += stats.deleted
        state.save(
            positions={str(k): v for k, v in upto.items()},
            reconciled_deletes=int(d.get("reconciled_deletes", 0)) + stats.deleted,
        )

    def _reconcile(self, state: Checkpoint, *, exact: bool) -> int:
        """Delete from N what O no longer has, found by range counts over the positions.

        ``exact``: under the write block, after the final round and its position pass.
        Otherwise a best effort over the sequence numbers the last round covered. Returns the
        number of documents deleted.
        """
        self._refuse_if_live(state)
        d = state.data
        positions = self._positions(state)
        copied = None
        if exact:
            if self._dead.count():
                positions.add_dead_letters(self._dead.entries())
        else:
            # The last round copied (and the last pass positioned) everything up to these.
            copied = {int(k): int(v) for k, v in d["checkpoints"].items()}
        meter = self._meter("reconcile", round=int(d.get("round", 0)))
        stats = positions.reconcile(
            copied=copied,
            on_progress=lambda s: meter.update(s.checked, message=f"{s.deleted} deleted"),
        )
        self._deleted += stats.deleted
        state.save(reconciled_deletes=int(d.get("reconciled_deletes", 0)) + stats.deleted)
        return stats.deleted

    # -- failures and validation ---------------------------------------------------------------

    def _check_failures(self, state: Checkpoint) -> None:
        failures = self._dead.count()
        state.data["failures"] = failures
        if failures > self.max_failures:
            state.save(failures=failures)
            samples = self._dead.samples()
            shown = "; ".join(
                f"{s.get('id')}: {s.get('error_type')}: {str(s.get('reason'))[:120]}"
                for s in samples[:3]
            )
            raise TooManyFailures(
                f"{failures} document(s) could not be migrated (allowed: {self.max_failures}); "
                f"the aliases were not moved. They are in {self.dl_index} with the reason. "
                f"First: {shown}",
                failures=failures,
                max_failures=self.max_failures,
                dead_letter_index=self.dl_index,
                samples=samples,
                hint="Fix the transform or the mapping and run again (it resumes), or accept "
                "them with --max-failures N.",
            )

    def _expected(self, state: Checkpoint, sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What N should hold for these O documents: the transform applied."""
        if self.transform is not None:
            return {i: self.transform(json.loads(json.dumps(s))) for i, s in sources.items()}
        if self._script is None:
            return dict(sources)
        # Painless runs server-side: apply it to the sample through the scratch index (created
        # before the write block, see _prepare_scratch).
        d = state.data
        scratch = self._scratch_name(state)
        self.cluster.request(
            "POST",
            "/_reindex",
            params={"refresh": "true"},
            body={
                "source": {"index": d["source"], "query": {"ids": {"values": list(sources)}}},
                "dest": {"index": scratch},
                "script": self._script,
            },
        )
        docs = self.cluster.request("POST", f"/{scratch}/_mget", body={"ids": list(sources)})
        return {doc["_id"]: doc["_source"] for doc in docs["docs"] if doc.get("found")}

    def _scratch_name(self, state: Checkpoint) -> str:
        return self._scratch_name_for(state.data["target"])

    @staticmethod
    def _scratch_name_for(target: str) -> str:
        return f"{target}-validate"

    def _prepare_scratch(self, state: Checkpoint) -> None:
        """An empty index to run the painless transform on the validation sample."""
        self._drop_scratch(state)
        if self._script is not None and self.sample_size > 0:
            self.cluster.request(
                "PUT",
                f"/{self._scratch_name(state)}",
                body={
                    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                    "mappings": {"dynamic": False},
                },
            )

    def _drop_scratch(self, state: Checkpoint) -> None:
        if self.cluster.exists(self._scratch_name(state)):
            self.cluster.request("DELETE", f"/{self._scratch_name(state)}")

    def _mget(
        self, index: str, docs: list[dict[str, Any]], *, source: bool = False
    ) -> list[dict[str, Any]]:
        """``_mget`` with each document's routing (custom routing puts it on another shard)."""
        if not docs:
            return []
        result = self.cluster.request(
            "POST",
            f"/{index}/_mget",
            body={"docs": docs},
            params=None if source else {"_source": "false"},
        )
        found: list[dict[str, Any]] = result["docs"]
        return found

    def _validate(self, state: Checkpoint) -> None:
        d = state.data
        source, target = d["source"], d["target"]
        self._emit("validate")
        self.cluster.refresh(source)
        self.cluster.refresh(target)
        differences: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        # Dead-lettered documents O has and N lacks: the count allows for them, and a rollback
        # must keep exactly these in O (they never reached N).
        missing: list[list[str | None]] = []

        def find_missing(docs: list[dict[str, Any]]) -> None:
            in_o = self._mget(source, docs)
            in_n = self._mget(target, docs)
            for doc, a, b in zip(docs, in_o, in_n, strict=True):
                if a.get("found") and not b.get("found"):
                    missing.append([doc["_id"], doc.get("routing")])

        for doc_id, routing in self._dead.entries():
            batch.append({"_id": doc_id, **({"routing": routing} if routing else {})})
            if len(batch) >= 1000:
                find_missing(batch)
                batch = []
        if batch:
            find_missing(batch)
        missing_dead = len(missing)
        state.data["dead_lettered_missing"] = missing
        kept = 0
        refs = [{"_id": i, **({"routing": r} if r is not None else {})} for i, r in self.keep]
        for start in range(0, len(refs), 1000):
            chunk = refs[start : start + 1000]
            in_o, in_n = self._mget(source, chunk), self._mget(target, chunk)
            kept += sum(
                1 for a, b in zip(in_o, in_n, strict=True) if b.get("found") and not a.get("found")
            )
        count_o, count_n = self.cluster.count(source), self.cluster.count(target)
        if count_n - kept + missing_dead != count_o:
            differences.append(
                {
                    "check": "count",
                    "source": count_o,
                    "target": count_n,
                    "dead_lettered": missing_dead,
                    **({"kept": kept} if self.keep else {}),
                }
            )
        unmapped = mapping_missing(live_mapping(self.cluster, target), self.mappings)
        if unmapped:
            differences.append({"check": "mapping", "paths": unmapped[:20]})
        if self.sample_size > 0 and count_o:
            hits = self.cluster.search(
                source,
                {
                    "size": self.sample_size,
                    "query": {
                        "function_score": {
                            "query": {"match_all": {}},
                            "random_score": {"seed": int(time.time()), "field": "_seq_no"},
                        }
                    },
                },
            )["hits"]["hits"]
            dead = self._dead.among([h["_id"] for h in hits])
            hits = [h for h in hits if h["_id"] not in dead]
            sources = {h["_id"]: h["_source"] for h in hits}
            expected = self._expected(state, sources)
            got = self._mget(
                target,
                [
                    {"_id": h["_id"], **({"routing": h["_routing"]} if "_routing" in h else {})}
                    for h in hits
                ],
                source=True,
            )
            for doc in got:
                want = expected.get(doc["_id"])
                have = doc.get("_source") if doc.get("found") else None
                if want != have:
                    differences.append(
                        {"check": "sample", "id": doc["_id"], "expected": want, "actual": have}
                    )
        if differences:
            raise ValidationFailed(
                f"The validation gate found {len(differences)} difference(s) between "
                f"{source} and {target}; the aliases were not moved and writes are unblocked. "
                f"First: {json.dumps(differences[0], default=str)[:400]}",
                differences=differences,
                hint="Inspect the differences (ValidationFailed.differences); the target index "
                "is kept for inspection. Running again resumes with more catch-up rounds.",
            )


def migrate(
    cluster: Cluster, alias: str, mappings: Mapping[str, Any], **options: Any
) -> MigrationResult:
    """Blue-green migrate the data behind ``alias`` to ``mappings``; see :class:`BlueGreen`."""
    return BlueGreen(cluster, alias, mappings, **options).run()


Callback = Callable[[ProgressEvent], None]
