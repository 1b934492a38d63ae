"""``op.migrate``: move the live data behind an alias to a new mapping, from a revision script.

The strategy is chosen from the classified mapping diff (live mapping → target) unless forced:
``in_place`` changes are put on the live index, ``needs_backfill`` changes are put and the
documents re-indexed in place, ``needs_reindex`` changes (and any transform) move the data to a
new index blue-green. The migrator (:mod:`esmigrate.migrate`) does the work; its checkpoint lives
in the history index under an id made of the revision and the alias, so an interrupted run (a
killed runner, Ctrl-C, a lost lease) is resumed by the next ``upgrade``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from esmigrate.cluster import Cluster, PlannedRequest, name_problem
from esmigrate.config import POINT_KINDS
from esmigrate.exceptions import EsmigrateError, MigrationError, PointNotFound
from esmigrate.migrate import BlueGreen, InPlace, PlanStep
from esmigrate.migrate._old_writes import OldWrites, old_writes
from esmigrate.operations._base import ExecContext, Operation, OpResult
from esmigrate.operations._migrate_record import failure_record, recording, success_record
from esmigrate.progress import ProgressCallback, ProgressEvent, Timeline
from esmigrate.rollback import create_point, get_point, rollback_point_hook
from esmigrate.schema.diff import Compatibility, diff_mappings
from esmigrate.state import Checkpoint, stop_on_cancel_or_lost_lease
from esmigrate.transform import Condition

Strategy = Literal["auto", "blue_green", "in_place"]
STRATEGIES = ("auto", "blue_green", "in_place")


def migration_id(revision: str, alias: str) -> str:
    """The migrator's checkpoint name of ``op.migrate(alias)`` in ``revision`` (stable: reruns
    resume)."""
    return f"rev:{revision}:{alias}"


def rollback_point_name(mid: str) -> str:
    """The rollback point a blue-green ``op.migrate`` with checkpoint ``mid`` records at its
    cut-over: ``rev:0003:blog_posts`` → ``before-0003-blog_posts``."""
    raw = "before-" + mid.removeprefix("rev:")
    return re.sub(r"[^a-z0-9._-]+", "-", raw.lower())[:100]


@dataclass(frozen=True)
class Decision:
    """The strategy for one run and why."""

    strategy: str  # "none", "in_place", "in_place+backfill", "blue_green", or "run time"
    reasons: tuple[str, ...] = ()
    changes: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "reasons": list(self.reasons),
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class Migrate(Operation):
    """Move the data behind ``alias`` to ``mappings`` with the zero-downtime migrator.

    ``transform`` is a :class:`~esmigrate.transform.RuleSet` (run server-side in ``_reindex`` when
    it has a Painless form) or any ``doc -> doc`` callable (copy mode python); ``script`` is
    Painless on ``ctx._source``. ``backfill`` (``True`` or Painless) is for the in-place strategy.
    ``upgrade_old_writes`` (``True``: by the version field the rule set sets; or a
    :class:`~esmigrate.transform.Condition` naming old documents by their shape) makes the new
    index upgrade, from the cut-over on, the documents writers still send in the old shape
    (:mod:`esmigrate.migrate._old_writes`).
    """

    kind: ClassVar[str] = "migrate"
    resumable: ClassVar[bool] = True
    alias: str
    mappings: dict[str, Any]
    settings: dict[str, Any] | None = None
    transform: Callable[[dict[str, Any]], Any] | None = None
    script: dict[str, Any] | None = None
    strategy: Strategy = "auto"
    backfill: bool | dict[str, Any] | str | None = None
    max_failures: int = 0
    requests_per_second: float | None = None
    write_alias: str | None = None
    upgrade_old_writes: bool | Condition = False
    #: The kind of the rollback point (None: the project's ``rollback_point_kind``).
    rollback_point_kind: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, role in ((self.alias, "alias"), (self.write_alias, "write_alias")):
            problem = None if name is None else name_problem(name)
            if problem is not None:
                raise ValueError(f"{role} {name!r} is not a valid alias name: {problem}")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}"
            )
        if self.transform is not None and self.script is not None:
            raise ValueError("migrate takes transform= or script=, not both")
        if self.transform is not None and not callable(self.transform):
            raise TypeError(
                "transform must be a RuleSet or a function taking and returning a document"
            )
        if self.strategy == "in_place" and (self.transform is not None or self.script is not None):
            raise ValueError(
                "strategy='in_place' keeps the documents as they are; a transform or script "
                "needs strategy='blue_green' (or backfill= with a painless script)"
            )
        if self.rollback_point_kind not in (None, *POINT_KINDS):
            raise MigrationError(
                f"rollback_point_kind={self.rollback_point_kind!r} is not a kind of rollback "
                "point.",
                hint=f"Choose one of {', '.join(POINT_KINDS)}, or leave it out for the "
                "project's rollback_point_kind.",
            )
        if self.upgrade_old_writes is not False:
            # Refused here, when the script runs (also under `plan`), not at the cut-over.
            self._old_writes()

    def _old_writes(self) -> OldWrites | None:
        if self.upgrade_old_writes is False:
            return None
        if self.strategy == "in_place":
            raise MigrationError(
                "upgrade_old_writes needs a blue-green migration through a rule set; "
                "strategy='in_place' keeps the documents as they are.",
                hint="Leave out upgrade_old_writes, or migrate blue-green with transform=RuleSet(...).",
            )
        return old_writes(self.transform, self.upgrade_old_writes)

    # -- what it will do ---------------------------------------------------------------------

    def _painless(self) -> dict[str, Any] | None:
        """The server-side form of the transform: the script, or the RuleSet's Painless."""
        if self.script is not None:
            return self.script
        to_painless = getattr(self.transform, "painless", None)
        if callable(to_painless):
            compiled = to_painless()
            if isinstance(compiled, Mapping):
                return dict(compiled)
        return None

    def _python_transform(self) -> Callable[[dict[str, Any]], Any] | None:
        return None if self._painless() is not None else self.transform

    def decide(self, cluster: Cluster | None) -> Decision:
        """Which strategy now, and why (``cluster`` None: decided at run time)."""
        if self.strategy == "blue_green":
            return Decision("blue_green", ("forced: strategy='blue_green'",))
        if self.strategy == "in_place":
            why = "forced: strategy='in_place'"
            return Decision("in_place+backfill" if self.backfill else "in_place", (why,))
        if self.transform is not None or self.script is not None:
            return Decision(
                "blue_green",
                ("a transform rewrites every document: they are copied to a new index",),
            )
        if cluster is None:
            return Decision(
                "run time",
                (
                    "the live mapping is unknown offline: the strategy is decided at run time from "
                    "the diff of the live mapping and the target",
                ),
            )
        diff = diff_mappings(self.alias, self.mappings, cluster=cluster)
        changes = tuple(
            {
                "path": c.path or "(root)",
                "change": str(c.kind),
                "class": str(c.compatibility),
                "reason": c.reason,
            }
            for c in diff.changes
        )
        reasons = tuple(
            f"{c['path']}: {c['change']} ({c['class']}): {c['reason']}" for c in changes
        )
        worst = diff.compatibility
        if worst is None:
            return Decision("none", ("the live mapping already matches the target",))
        if worst == Compatibility.NEEDS_REINDEX:
            return Decision("blue_green", reasons, changes)
        if worst == Compatibility.NEEDS_BACKFILL or self.backfill:
            return Decision("in_place+backfill", reasons, changes)
        return Decision("in_place", reasons, changes)

    def explain(self, cluster: Cluster | None) -> dict[str, Any]:
        decision = self.decide(cluster)
        data = decision.to_dict()
        if cluster is not None and decision.strategy not in ("none", "run time"):
            steps = self._plan(cluster, decision.strategy)
            data["steps"] = [f"{s.kind}: {s.summary}" for s in steps]
        return data

    def describe(self) -> list[PlannedRequest]:
        return self.describe_on(None)

    def describe_on(self, cluster: Cluster | None) -> list[PlannedRequest]:
        decision = self.decide(cluster)
        if cluster is None or decision.strategy == "run time":
            return [
                PlannedRequest(
                    "GET",
                    f"/{self.alias}/_mapping",
                    note=f"strategy {decision.strategy}: {'; '.join(decision.reasons)}; then "
                    "the migrator's requests (esmigrate plan against the cluster lists them)",
                )
            ]
        if decision.strategy == "none":
            return []
        steps = self._plan(cluster, decision.strategy)
        return [
            PlannedRequest(r.method, r.path, r.params, r.body, note=f"{s.kind}: {s.summary}")
            if r.note is None
            else r
            for s in steps
            for r in s.requests
        ]

    def _plan(self, cluster: Cluster, strategy: str) -> list[PlanStep]:
        """The migrator's steps, with the upgrade pipeline's just before the write block."""
        steps = self._migrator(cluster, strategy, None, None, "plan").plan()
        upgrade = self._old_writes()
        created = next((s for s in steps if s.kind == "create_index" and s.requests), None)
        if upgrade is None or created is None:
            return steps
        target = created.requests[0].path.strip("/")
        step = PlanStep(
            "upgrade_old_writes",
            f"just before the write block: documents written to {target} in the old "
            f"shape ({upgrade.old}) are upgraded by {upgrade.rules} (ingest pipeline)",
            tuple(upgrade.requests(target)),
        )
        at = next((i for i, s in enumerate(steps) if s.kind == "write_block"), len(steps))
        return [*steps[:at], step, *steps[at:]]

    def summary(self) -> str:
        how = "" if self.strategy == "auto" else f" ({self.strategy})"
        if self.transform is not None:
            name = getattr(self.transform, "__qualname__", None) or type(self.transform).__name__
            how += f" through {name}"
        elif self.script is not None:
            how += " with a painless script"
        return f"migrate {self.alias} to the new mapping{how}"

    # -- running -------------------------------------------------------------------------------

    def _migrator(
        self,
        cluster: Cluster,
        strategy: str,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
        mid: str,
        state_index: str = ".esmigrate",
        ctx: ExecContext | None = None,
    ) -> BlueGreen | InPlace:
        if strategy == "blue_green":
            # Planning has no project context: the kind is checked when it runs.
            kind = (
                (self.rollback_point_kind or "retained") if ctx is None else self._point_kind(ctx)
            )
            options = dict(self.options)
            # The old index stays as the rollback point, recorded (with the new index's
            # checkpoints at the swap) under the migration's id: `esmigrate rollback <id>`.
            options.setdefault(
                "on_cut_over",
                rollback_point_hook(
                    cluster,
                    rollback_point_name(mid),
                    state_index=state_index,
                    note=f"{mid}: before {self.summary()}",
                    kind=kind,
                    snapshot_repository=None if ctx is None else ctx.snapshot_repository,
                ),
            )
            upgrade = self._old_writes()
            if upgrade is not None:
                # A before_block hook given to op.migrate still runs, after the install.
                options["before_block"] = upgrade.before_block(cluster, options.get("before_block"))
            return BlueGreen(
                cluster,
                self.alias,
                self.mappings,
                settings=self.settings,
                script=self._painless(),
                transform=self._python_transform(),
                write_alias=self.write_alias,
                migration_id=mid,
                state_index=state_index,
                max_failures=self.max_failures,
                requests_per_second=self.requests_per_second,
                on_progress=on_progress,
                cancel=cancel,
                **options,
            )
        # Of the other keywords, the in-place migrator takes only its lease's (the rest are
        # the copy's, which it does not make).
        lease = {k: self.options[k] for k in ("lease_ttl", "lock_timeout") if k in self.options}
        return InPlace(
            cluster,
            self.write_alias or self.alias,
            self._additions(cluster),
            backfill=(self.backfill or True) if strategy == "in_place+backfill" else None,
            requests_per_second=self.requests_per_second,
            migration_id=mid,
            state_index=state_index,
            on_progress=on_progress,
            cancel=cancel,
            **lease,
        )

    def _additions(self, cluster: Cluster) -> dict[str, Any]:
        """The part of the target the live index lacks: what in-place puts and backfills (a
        backfill query on "documents missing a new field" must not name every field)."""
        try:
            body = diff_mappings(self.alias, self.mappings, cluster=cluster).put_mapping_body()
        except EsmigrateError:
            return dict(self.mappings)  # no live index yet: the migrator's preflight says so
        return body or dict(self.mappings)

    def _point_kind(self, ctx: ExecContext) -> str:
        """The kind of rollback point to record, checked before any work (a snapshot point
        found impossible at the cut-over would waste the whole copy)."""
        kind = self.rollback_point_kind or ctx.rollback_point_kind
        if kind == "snapshot" and ctx.snapshot_repository is None:
            raise MigrationError(
                f"The migration of {self.alias} records a snapshot rollback point, and the "
                "project names no snapshot repository.",
                hint='Set snapshot_repository = "NAME" in esmigrate.toml (a repository '
                "registered with PUT _snapshot/NAME), or choose another rollback_point_kind.",
            )
        return kind

    def planned_point(self, cluster: Cluster | None, ctx: ExecContext) -> dict[str, Any] | None:
        decision = self.decide(cluster)
        if decision.strategy in ("none", "run time"):
            return None
        kind = self.rollback_point_kind or ctx.rollback_point_kind
        name = rollback_point_name(migration_id(ctx.revision, self.alias))
        if decision.strategy == "blue_green":
            point: dict[str, Any] = {"name": name, "kind": kind, "when": "at the cut-over"}
        elif kind == "retained":
            return {
                "name": None,
                "kind": kind,
                "when": "before the change",
                "note": "none: the index changes in place and a retained point keeps no copy of "
                'it; set rollback_point_kind = "clone" (or "snapshot") to record one',
            }
        else:
            point = {"name": name, "kind": kind, "when": "before the change"}
        if kind == "snapshot" and ctx.snapshot_repository is None:
            point["note"] = "refused when it runs: the project names no snapshot_repository"
        elif kind == "snapshot":
            point["repository"] = ctx.snapshot_repository
        return point

    def _point_before_in_place(self, cluster: Cluster, ctx: ExecContext, mid: str) -> None:
        """A clone or snapshot point before a change made in place (a retained point would
        keep nothing: the index itself changes). A resumed run keeps the point its first run
        recorded before the change began."""
        kind = self._point_kind(ctx)
        if kind == "retained":
            return
        name = rollback_point_name(mid)
        try:
            get_point(cluster, name, state_index=ctx.state_index)
            return
        except PointNotFound:
            pass
        ctx.say(f"  rollback point {name} ({kind}) before the in-place change")
        create_point(
            cluster,
            name,
            [self.write_alias or self.alias],
            state_index=ctx.state_index,
            kind=kind,
            snapshot_repository=ctx.snapshot_repository,
            note=f"{mid}: before {self.summary()} (in place)",
            before=mid,
        )

    def _stored(self, cluster: Cluster, ctx: ExecContext) -> dict[str, Any]:
        return Checkpoint(cluster, ctx.state_index, migration_id(ctx.revision, self.alias)).load()

    def interrupted(self, cluster: Cluster, ctx: ExecContext) -> str | None:
        data = self._stored(cluster, ctx)
        phase = data.get("phase")
        if not data or phase in ("done", "abandoned"):
            return None
        return str(phase)

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        mid = migration_id(ctx.revision, self.alias)
        stored = self._stored(cluster, ctx)
        if stored and stored.get("phase") not in ("done", "abandoned"):
            # Resume what the checkpoint says was running, whatever the mapping now says (after
            # an in-place run put its mapping, the diff finds nothing left to do, while its
            # backfill may not have run).
            kind = {
                "blue-green": "blue_green",
                "in-place": "in_place+backfill" if self.backfill else "in_place",
            }.get(str(stored.get("strategy")))
            decision = (
                Decision(kind, (f"resuming the interrupted run (phase {stored.get('phase')})",))
                if kind
                else self.decide(cluster)
            )
        else:
            decision = self.decide(cluster)
        ctx.record({"strategy": decision.strategy, "reasons": list(decision.reasons)})
        ctx.say(f"  migrate {self.alias}: {decision.strategy} ({'; '.join(decision.reasons)})")
        if decision.strategy == "none":
            return OpResult("unchanged", {"strategy": "none", "migration": mid})
        # The report's record (bounded): saved with the progress, so a killed run keeps it too.
        timeline = Timeline()
        record_progress = recording(timeline, ctx.record)

        def on_progress(event: ProgressEvent) -> None:
            ctx.on_progress(event)
            record_progress(event)

        with stop_on_cancel_or_lost_lease(
            ctx.checkpoint, ctx.cancel, name="esmigrate-migrate-watch"
        ) as stop:
            migrator = self._migrator(
                cluster, decision.strategy, on_progress, stop, mid, ctx.state_index, ctx
            )
            if isinstance(migrator, InPlace):
                self._point_before_in_place(cluster, ctx, mid)
            try:
                result = migrator.run()
            except EsmigrateError as exc:
                ctx.record({"report": failure_record(timeline, exc)})
                raise
        detail = {"strategy": decision.strategy, "migration": mid, **_plain(result)}
        detail["report"] = success_record(
            cluster,
            timeline,
            state_index=ctx.state_index,
            mid=mid,
            sample_size=getattr(migrator, "sample_size", 0),
            rollback_point=rollback_point_name(mid)
            if decision.strategy == "blue_green" and "on_cut_over" not in self.options
            else None,
        )
        if getattr(result, "already_done", False):
            return OpResult("unchanged", detail)
        return OpResult("done", detail)


def _plain(result: Any) -> dict[str, Any]:
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result.__dict__)
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, list, dict))}
