"""Blue-green: move live data to a new index with a new mapping, then swap the aliases.

Phases (each resumable from the checkpoint document, :mod:`._bluegreen_state`):

1. ``copy``: record per-shard checkpoints C0 of the source O, refresh O, copy everything into the
   new index N (copy mode ``reindex``: a server task; ``python``: a Python transform).
2. ``catchup``: rounds of "record C', refresh O, copy what has ``_seq_no > C``, C := C'" until a
   round is small; a position pass (every document of N checked against O once: deleted if gone,
   its source ``_seq_no`` recorded otherwise — see ``_positions.py``), more rounds, a pass over
   what they copied, and a first delete reconciliation by range counts.
3. ``blocked``: write block on O, a final round, a position pass over what it copied and the exact
   delete reconciliation (all bounded by the last window's changes), the validation gate, one
   atomic ``_aliases`` request, the block lifted (:mod:`._cutover`).

Writers keep writing to O through the alias during 1 and 2; during 3 they get 403 for a short
window and retry; after it their writes land in N.

:class:`BlueGreen` is the phase driver; the work is done by helper objects, one per concern:
:class:`~._copy.Copier` (both copy modes), :class:`~._deletes.Deletes` (positions and
reconciliation), :class:`~._validate.Validation` and :class:`~._cutover.CutOver`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from esmigrate.cluster import Cluster, PlannedRequest, check_name
from esmigrate.exceptions import MigrationError, PreflightError, RequestError
from esmigrate.migrate._bluegreen_run import BlueGreenRun
from esmigrate.migrate._bluegreen_state import BlueGreenState, CopyMode, Journal
from esmigrate.migrate._copy import Copier
from esmigrate.migrate._cutover import CutOver, alias_actions
from esmigrate.migrate._deadletters import DeadLetters, FailureBudget
from esmigrate.migrate._deletes import Deletes
from esmigrate.migrate._layout import (
    LOAD_SETTINGS,
    AliasLayout,
    check_copy_between,
    check_health,
    check_write_copies,
    flatten_settings,
    nest_settings,
    next_index_name,
    refuse_template_aliases,
    resolve,
)
from esmigrate.migrate._plan import PlanStep
from esmigrate.migrate._positions import positions_name
from esmigrate.migrate._python_copy import TokenBucket
from esmigrate.migrate._reindex_copy import refuse_rerouting
from esmigrate.migrate._shards import Layout, layout
from esmigrate.migrate._source_copy import SourceFill
from esmigrate.migrate._validate import Validation, scratch_name
from esmigrate.progress import Meter, ProgressCallback, emitter
from esmigrate.state import Checkpoint, Lease, migration_lease
from esmigrate.transform import Transform
from esmigrate.transform.painless import normalize_script


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
    #: Where the write block's seconds went: the block itself (draining writes), the final
    #: round, positions, reconcile, validate.
    blocked_breakdown: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BlueGreen:
    """A blue-green migration of the data behind ``alias`` to a new index with ``mappings``.

    Parameters:
        cluster: the connected cluster.
        alias: the read alias (also the write alias unless ``write_alias`` is given).
        mappings: the target mapping.
        settings: the target index settings (shards, replicas, analysis...). Shards default to the
            source's count.
        script: painless operating on ``ctx._source`` (copy mode ``reindex``: it runs inside
            ``_reindex``), or
        transform: a Python ``doc -> doc`` (copy mode ``python``: it runs in this process). Not
            both; neither copies the documents as they are.
        target: the new index's name (default ``{alias}-v{n}-{timestamp}``).
        migration_id: names the checkpoint; a rerun with the same id resumes.
        state_index: where the checkpoint lives (default: the project's history index).
        dead_letter_index: where rejected documents go (default ``{alias}-deadletter``).
        max_failures: dead-lettered documents accepted before the cut-over is refused.
        requests_per_second: throttle (both copy modes); change it live with
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
        fill: the application's documents (from its primary database) to fill the new index
            with instead of copying the live one; what the catch-up then copies is in
            :mod:`._source_copy`. A resumed run needs a fresh iterable unless the fill ended.
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
    #: called under the write block, just before the alias swap, with the checkpoint document
    #: (``target_checkpoints`` included): e.g. :func:`esmigrate.rollback.rollback_point_hook`.
    #: If it raises, the block is lifted and the aliases stay where they are.
    on_cut_over: Callable[[dict[str, Any]], None] | None = None
    #: called with the target's name before the write block (after the catch-up rounds), on
    #: every attempt at the cut-over: what writers must find in place when the alias reaches the
    #: target, e.g. its ``index.default_pipeline``. Not under the block: a write resolves its
    #: ingest pipelines from the cluster state a moment before it resolves the alias, so a
    #: pipeline set just before the swap can miss a write that straddles both. Set before the
    #: block, such a write would have to straddle the block, the final round and the swap.
    #: If it raises, nothing is blocked.
    before_block: Callable[[str], None] | None = None
    lease_ttl: float = 30.0
    lock_timeout: float | None = None
    #: (id, routing) of documents the target keeps although the source lacks them: a rollback
    #: keeps in the old index the documents the forward migration dead-lettered.
    keep: Collection[tuple[str, str | None]] = ()
    fill: Iterable[Any] | None = None

    def __post_init__(self) -> None:
        check_name(self.alias, "alias")
        for name, role in (
            (self.write_alias, "write alias"),
            (self.target, "target index"),
            (self.dead_letter_index, "dead-letter index"),
            (self.state_index, "state index"),
        ):
            if name is not None:
                check_name(name, role)
        if self.script is not None and self.transform is not None:
            raise PreflightError(
                "Give either a painless script or a Python transform, not both.",
                problem="two_transforms",
                hint="script= runs inside _reindex; transform= runs in this process.",
            )
        #: The painless script as the ``script`` object of a request.
        self.painless = normalize_script(self.script)
        refuse_rerouting(self.painless)
        self.id = self.migration_id or f"blue-green:{self.write_alias or self.alias}"
        self.dl_index = self.dead_letter_index or f"{self.alias}-deadletter"
        self.mode: CopyMode = "python" if self.transform is not None else "reindex"
        self.emit = emitter(self.on_progress, self.id)
        #: The copy's throttle: :func:`esmigrate.migrate.throttle` changes it while it runs.
        self.bucket = TokenBucket(self.requests_per_second)

    def fingerprint(self) -> str:
        """What a resumed run must share with the one it resumes: mapping, settings, transform."""
        what = {
            "mappings": self.mappings,
            "settings": self.settings,
            "script": self.painless,
            "transform": None
            if self.transform is None
            else getattr(self.transform, "__qualname__", type(self.transform).__name__),
        }
        if self.fill is not None:
            what["fill"] = True  # a run filled from the application resumes only as one
        return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def meter(self, phase: str, total: int | None = None, round: int = 0) -> Meter:
        """A meter reporting ``phase`` of this migration to ``on_progress``."""
        return Meter(phase, self.on_progress, total=total, round=round, migration=self.id)

    def target_settings(self, source_layout: Layout) -> dict[str, Any]:
        """The new index's settings as dotted keys (shards: the source's unless given)."""
        flat = flatten_settings(self.settings)
        if "index.number_of_shards" not in flat:
            flat["index.number_of_shards"] = source_layout.shards
        return flat

    # -- plan ----------------------------------------------------------------------------------

    def plan(self) -> list[PlanStep]:
        """What :meth:`run` will do, as data (resolves the aliases; writes nothing)."""
        check_health(self.cluster, self.alias, self.state_index, self.dl_index)
        where = resolve(self.cluster, self.alias, self.write_alias)
        target = self.target or next_index_name(self.alias, where.source)
        flat = self.target_settings(layout(self.cluster, where.source))
        create = nest_settings({**flat, **LOAD_SETTINGS})
        copy_req: PlannedRequest
        if self.mode == "reindex":
            copy_req = PlannedRequest(
                "POST",
                "/_reindex",
                {"wait_for_completion": "false", "slices": self.slices},
                {
                    "source": {"index": where.source},
                    "dest": {"index": target},
                    **({"script": self.painless} if self.painless else {}),
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
                f"copy in Python {where.source} → {target}: per-shard _seq_no scans, "
                f"transform {getattr(self.transform, '__name__', 'callable')}, bulk"
            )
        if self.fill is not None:
            copy_req = PlannedRequest(
                "POST",
                "/_bulk",
                body="<the application's documents, as yielded>",
                note=f"then the documents of {where.source} that {target} lacks "
                "(op_type=create), through the transform",
            )
            copy_summary = (
                f"fill {target} from the application's documents, then copy from {where.source} "
                "only what they left out"
            )
        restore = {key: flat.get(key) for key in LOAD_SETTINGS}
        actions = alias_actions(where, target)
        return [
            PlanStep(
                "preflight",
                f"{self.alias} → {where.source}; cluster not red; {target} absent",
            ),
            PlanStep(
                "create_index",
                f"create {target} with the target mapping, refresh off, no replicas, writes "
                "waiting for one copy",
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
                f"restore {target}'s refresh interval, replicas and write copies",
                (PlannedRequest("PUT", f"/{target}/_settings", body=restore),),
            ),
            PlanStep(
                "catch_up",
                f"rounds copying writes made to {where.source} since the last checkpoint, until "
                f"a round copies ≤ {self.catchup_threshold} docs (at most {self.max_rounds})",
            ),
            PlanStep(
                "reconcile_deletes",
                f"record each copied document's source _seq_no in {positions_name(target)} "
                f"as the copy writes it (a resumed copy: check {target}'s documents against "
                f"{where.source} once, deleting those gone); from then on deletes are found by "
                "comparing range counts of positions and source",
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

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> MigrationResult:
        """Run (or resume) the migration; returns when the aliases point to the new index.

        Only one process at a time runs a migration: the others wait for its lease (see
        ``lock_timeout``) and then raise :class:`~esmigrate.exceptions.MigrationLocked`.
        """
        return self._run_leased(None)

    def catch_up(
        self, *, source: str, target: str, since: Mapping[int, int], actions: list[dict[str, Any]]
    ) -> MigrationResult:
        """Copy what ``source`` received after ``since`` (shard -> ``_seq_no``) into
        ``target``, which exists already, then cut over with ``actions`` (see
        :func:`~esmigrate.migrate._catchup.catch_up_and_swap`). A rerun resumes an unfinished
        catch-up into the same target; a finished one starts afresh."""
        write_alias = self.write_alias or self.alias
        fresh = BlueGreenState(
            strategy="catch-up",
            mode=self.mode,
            source=source,
            target=target,
            alias=self.alias,
            write_alias=write_alias,
            aliases=sorted({a["add"]["alias"] for a in actions if "add" in a}),
            alias_actions=actions,
            fingerprint=self.fingerprint(),
            dead_letter_index=self.dl_index,
            phase="catchup",
            started_at=time.time(),
            checkpoints=dict(since),
        )
        return self._run_leased(fresh)

    def _run_leased(self, catch_up: BlueGreenState | None) -> MigrationResult:
        with migration_lease(
            self, preflight=self._preflight if catch_up is None else None
        ) as lease:
            result = self._run(lease, catch_up)
            # Done (a run only returns then): the positions served the cut-over.
            self.cluster.request(
                "DELETE",
                f"/{positions_name(result.target)}",
                params={"ignore_unavailable": "true"},
            )
            return result

    def _run(self, lease: Lease, catch_up: BlueGreenState | None) -> MigrationResult:
        store = Checkpoint(self.cluster, self.state_index, self.id)
        doc, journal = Journal.load(store)
        if catch_up is not None:
            # A catch-up resumes only an unfinished one into the same target.
            if (
                journal is None
                or doc.get("phase") not in ("catchup", "blocked")
                or journal.state.target != catch_up.target
            ):
                return self._phases(Journal.start(store, catch_up), lease, resumed=False)
        elif journal is None or doc.get("phase") in ("done", "abandoned"):
            if (
                journal is not None
                and journal.state.phase == "done"
                and journal.state.fingerprint == self.fingerprint()
                and resolve(self.cluster, self.alias, self.write_alias).source
                == journal.state.target
            ):
                return self._result(journal.state, resumed=False, already_done=True)
            return self._phases(self._start(store), lease, resumed=False)
        state = journal.state
        if state.fingerprint != self.fingerprint():
            raise MigrationError(
                f"Migration {self.id!r} was started with a different mapping or transform "
                f"(target {state.target}, phase {state.phase}).",
                hint="Run it with the original definition to finish it, or pass another "
                "migration_id after deleting the unfinished target index.",
            )
        self.emit("resume", f"resuming in phase {state.phase}")
        return self._phases(journal, lease, resumed=True)

    def _phases(self, journal: Journal, lease: Lease, *, resumed: bool) -> MigrationResult:
        run = self._new_run(journal, lease)
        state = journal.state
        if resumed and run.cutover.finish_if_swapped():
            # The swap was applied but its answer was lost: N is live, nothing is left to copy
            # (and reconciling against O now would delete the writes N took since).
            return self._result(state, resumed=True)
        if state.phase == "blocked" and run.cutover.recover_from_block():
            return self._result(state, resumed=True)
        if state.phase == "copy":
            run.copy_phase()
        if state.phase == "catchup":
            run.catch_up_phase()
        return self._result(state, resumed=resumed)

    def _new_run(self, journal: Journal, lease: Lease) -> BlueGreenRun:
        """This process's run of the migration, with its helpers."""
        state = journal.state
        cluster = self.cluster
        dead = DeadLetters(cluster, self.dl_index, self.id)
        dead.ensure()
        cutover = CutOver(
            cluster,
            journal,
            lease=lease,
            dead=dead,
            emit=self.emit,
            on_cut_over=self.on_cut_over,
            before_block=self.before_block,
        )
        return BlueGreenRun(
            cluster,
            journal,
            migration=self.id,
            state_index=self.state_index,
            copier=Copier(
                cluster,
                state.source,
                state.target,
                mode=state.mode,
                dead=dead,
                script=self.painless,
                transform=self.transform,
                bucket=self.bucket,
                requests_per_second=self.requests_per_second,
                slices=self.slices,
                parallelism=self.parallelism,
                page_size=self.page_size,
                cancel=self.cancel,
            ),
            budget=FailureBudget(dead, self.max_failures),
            cutover=cutover,
            deletes=Deletes(
                cluster,
                journal,
                dead=dead,
                meter=self.meter,
                is_live=cutover.is_live,
                parallelism=self.parallelism,
                page_size=self.page_size,
                keep=self.keep,
                cancel=self.cancel,
            ),
            validation=Validation(
                cluster,
                source=state.source,
                target=state.target,
                mappings=self.mappings,
                dead=dead,
                script=self.painless,
                transform=self.transform,
                # Filled from the application: the target's contents are not the source's.
                sample_size=0 if self.fill is not None else self.sample_size,
                keep=self.keep,
            ),
            meter=self.meter,
            emit=self.emit,
            create_target=lambda: self.create_target(
                state.target, self.target_settings(layout(cluster, state.source))
            ),
            catchup_threshold=self.catchup_threshold,
            max_rounds=self.max_rounds,
            cancel=self.cancel,
            fill=SourceFill(self.fill) if self.fill is not None else None,
        )

    def _result(
        self, state: BlueGreenState, *, resumed: bool, already_done: bool = False
    ) -> MigrationResult:
        return MigrationResult(
            migration=self.id,
            source=state.source,
            target=state.target,
            aliases=list(state.aliases),
            copied=state.copied,
            rounds=state.round,
            failures=state.failures,
            count=state.final_count,
            reconciled_deletes=state.reconciled_deletes,
            blocked_seconds=float(state.blocked_seconds),
            resumed=resumed,
            already_done=already_done,
            phases=dict(state.phase_seconds),
            blocked_breakdown=dict(state.blocked_breakdown),
        )

    # -- start ---------------------------------------------------------------------------------

    def _preflight(self) -> tuple[AliasLayout, str, bool, dict[str, Any]]:
        """The checks before a fresh start (reads only): where the aliases point, the new
        index's name, whether an identical empty target is there to reuse, and the new index's
        settings (dotted keys)."""
        check_health(self.cluster, self.alias, self.state_index, self.dl_index)
        where = resolve(self.cluster, self.alias, self.write_alias)
        target = self.target or next_index_name(self.alias, where.source)
        reuse = check_copy_between(self.cluster, where.source, target, self.mappings)
        refuse_template_aliases(self.cluster, [target, self.dl_index, scratch_name(target)])
        flat = self.target_settings(layout(self.cluster, where.source))
        check_write_copies(self.cluster, target, flat)
        return where, target, reuse, flat

    def _start(self, store: Checkpoint) -> Journal:
        self.emit("preflight")
        where, target, reuse, flat = self._preflight()
        journal = Journal.start(
            store,
            BlueGreenState(
                strategy="blue-green",
                mode=self.mode,
                source=where.source,
                target=target,
                alias=where.alias,
                write_alias=where.write_alias,
                aliases=sorted(where.definitions),
                alias_actions=alias_actions(where, target),
                fingerprint=self.fingerprint(),
                dead_letter_index=self.dl_index,
                started_at=time.time(),
                restore_settings={key: flat.get(key) for key in LOAD_SETTINGS},
            ),
        )
        if reuse:
            # Fewer write copies first: the engine checks replicas against the value it has.
            copies = "index.write.wait_for_active_shards"
            self.cluster.request(
                "PUT", f"/{target}/_settings", body={copies: LOAD_SETTINGS[copies]}
            )
            self.cluster.request("PUT", f"/{target}/_settings", body=dict(LOAD_SETTINGS))
            return journal
        try:
            self.create_target(target, flat)
        except RequestError as exc:
            # Nothing to resume: the next run starts afresh.
            journal.state.phase = "abandoned"
            journal.state.error = exc.reason
            journal.save()
            raise PreflightError(
                f"Creating the target index {target} failed: {exc.reason or exc}",
                problem="target_invalid",
                hint="Fix the target mapping or settings; nothing else was written.",
            ) from None
        return journal

    def create_target(self, target: str, flat: Mapping[str, Any]) -> None:
        """Create ``target`` with the target mapping and the settings ``flat`` (dotted keys),
        refresh off, no replicas and writes waiting for one copy while it is loaded."""
        create = nest_settings({**flat, **LOAD_SETTINGS})
        self.cluster.request(
            "PUT", f"/{target}", body={"settings": create, "mappings": dict(self.mappings)}
        )


def migrate(
    cluster: Cluster, alias: str, mappings: Mapping[str, Any], **options: Any
) -> MigrationResult:
    """Blue-green migrate the data behind ``alias`` to ``mappings``; see :class:`BlueGreen`."""
    return BlueGreen(cluster, alias, mappings, **options).run()
