"""The runner: plans and applies revisions against one cluster, recording each in the history.

Elasticsearch has no transactions, so a revision is made safe differently: every operation is
idempotent, the history records each operation as it completes, a failure is recorded with the
server's reason and blocks the next ``upgrade`` until ``repair``, and one lease keeps two
runners from ever working at once. Bad input (a script that does not import, a bad graph or
target, a missing ``downgrade``) is found before anything is written.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.exceptions import (
    ChecksumMismatch,
    ConflictError,
    DowngradeNotSupported,
    EsmigrateError,
    HistoryMismatch,
    LeaseLost,
    MigrationCancelled,
    RequestError,
    RevisionError,
    RevisionFailed,
    ScriptError,
    TaskFailed,
)
from esmigrate.operations import ExecContext, Operation, Operations
from esmigrate.progress import ProgressCallback, ProgressEvent, Reporter
from esmigrate.script import RevisionGraph, Route, Script
from esmigrate.state import (
    APPLIED,
    FAILED,
    PENDING,
    ROLLED_BACK,
    RUNNING,
    HistoryStore,
    Identity,
    Lease,
    RevisionRecord,
    read_lease,
    timestamp,
)

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"


def _quiet(_: str) -> None:
    return None


def _no_progress(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True)
class PlannedRevision:
    """One revision of a plan: the script, the direction and the operations it declared."""

    script: Script
    direction: str
    operations: tuple[Operation, ...]

    def to_dict(self, root: Path | None = None, cluster: Cluster | None = None) -> dict[str, Any]:
        return {
            "revision": self.script.revision,
            "message": self.script.message,
            "path": display_path(self.script.path, root),
            "direction": self.direction,
            "operations": [op.to_dict(cluster) for op in self.operations],
        }


def display_path(path: Path, root: Path | None) -> str:
    """``path`` relative to the project root when it is inside it."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def record_operations(script: Script, direction: str) -> tuple[Operation, ...]:
    """Run ``upgrade(op)`` / ``downgrade(op)`` in recording mode: nothing is sent."""
    step = script.upgrade if direction == UPGRADE else script.downgrade
    if step is None:
        raise DowngradeNotSupported(
            f"Revision {script.revision} ({script.path}) has no downgrade(op), so it cannot be "
            "undone; nothing was changed.",
            revision=script.revision,
            path=str(script.path),
            hint="Add a downgrade(op) to that script, or choose a downgrade target that does "
            "not go below it.",
        )
    op = Operations()
    try:
        step(op)
    except Exception as exc:
        line = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename == str(script.path) or f.filename == str(script.path.resolve())
            ),
            None,
        )
        where = f" at line {line}" if line else ""
        raise ScriptError(
            f"{direction}(op) of the migration script {script.path} raised "
            f"{type(exc).__name__}{where}: {exc}.",
            path=str(script.path),
            hint=f"Fix {direction}() in that file. It only declares operations (they run after "
            "it returns), so this is an error in the script; nothing was written to the cluster.",
        ) from None
    return op.operations


def error_details(exc: BaseException) -> dict[str, Any]:
    """What the history records about a failure: the server's words when there are some."""
    if isinstance(exc, RequestError):
        return {
            "type": exc.error_type or type(exc).__name__,
            "reason": exc.reason or exc.message,
            "status": exc.status,
        }
    if isinstance(exc, TaskFailed):
        return {"type": "task_failed", "reason": exc.message, "task": exc.task_id}
    if isinstance(exc, EsmigrateError):
        return {"type": type(exc).__name__, "reason": exc.message}
    return {"type": type(exc).__name__, "reason": str(exc) or type(exc).__name__}


class Runner:
    """Plans, applies and records revisions of one project against one cluster.

    ``command.upgrade`` and friends build one; use it directly to run on a
    :class:`~esmigrate.cluster.Cluster` you already hold.
    """

    def __init__(
        self,
        cluster: Cluster,
        graph: RevisionGraph,
        *,
        history_index: str = ".esmigrate",
        root: Path | None = None,
        lease_ttl: float = 60.0,
        reporter: Reporter | None = None,
        identity: Identity | None = None,
        poll_interval: float = 1.0,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.cluster = cluster
        #: Set it (the CLI's SIGINT handler does) to stop at the next safe point; the revision
        #: is left for the next ``upgrade`` to resume.
        self.cancel = cancel or threading.Event()
        self._resume: dict[str, int] = {}
        self.graph = graph
        self.store = HistoryStore(cluster, history_index)
        self.root = root
        self.lease_ttl = lease_ttl
        self.report = reporter or _quiet
        #: Receives the progress events of long operations (their server tasks, op.migrate).
        self.on_progress = on_progress or _no_progress
        self.identity = identity or Identity.current()
        self.poll_interval = poll_interval
        self._recorded: dict[tuple[str, str], tuple[Operation, ...]] = {}
        self._lease: Lease | None = None

    @classmethod
    def from_config(
        cls, config: Config, cluster: Cluster, graph: RevisionGraph, **kwargs: Any
    ) -> Runner:
        kwargs.setdefault("lease_ttl", config.lease_ttl)
        return cls(cluster, graph, history_index=config.history_index, root=config.root, **kwargs)

    # -- reading --------------------------------------------------------------------------------

    def records(self) -> dict[str, RevisionRecord]:
        return self.store.revisions()

    @staticmethod
    def applied(records: dict[str, RevisionRecord]) -> set[str]:
        return {rev for rev, rec in records.items() if rec.state == APPLIED}

    def _path(self, revision: str) -> str:
        if revision in self.graph:
            return display_path(self.graph[revision].path, self.root)
        return "(no file)"

    def route(self, target: str, direction: str, records: dict[str, RevisionRecord]) -> Route:
        applied = self.applied(records)
        if direction == UPGRADE:
            return self.graph.upgrade_path(target, applied)
        return self.graph.downgrade_path(target, applied)

    def planned(self, route: Route) -> list[PlannedRevision]:
        """Record the operations of every revision on ``route`` (scripts run, nothing sent)."""
        plan = []
        for revision in route.revisions:
            key = (revision, route.direction)
            if key not in self._recorded:
                self._recorded[key] = record_operations(self.graph[revision], route.direction)
            plan.append(PlannedRevision(self.graph[revision], route.direction, self._recorded[key]))
        return plan

    def problems(
        self, records: dict[str, RevisionRecord], lease: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """What ``validate`` reports: failed, interrupted, edited and missing revisions."""
        found: list[dict[str, Any]] = []
        for rev in self._ordered(records):
            rec = records[rev]
            base = {"revision": rev, "path": self._path(rev), "state": rec.state}
            if rec.state == FAILED:
                found.append(
                    {**base, "problem": "failed", "error": rec.doc.get("error"), **_fix("failed")}
                )
            elif rec.state == RUNNING and not _alive(rec, lease):
                found.append(
                    {**base, "problem": "interrupted", "owner": rec.owner, **_fix("interrupted")}
                )
            if rec.state in (APPLIED, FAILED, RUNNING):
                if rev not in self.graph:
                    found.append({**base, "problem": "missing_file", **_fix("missing_file")})
                elif rec.state == APPLIED and rec.checksum != self.graph[rev].checksum:
                    found.append(
                        {
                            **base,
                            "problem": "checksum",
                            "recorded": rec.checksum,
                            "file": self.graph[rev].checksum,
                            **_fix("checksum"),
                        }
                    )
        return found

    def _ordered(self, records: dict[str, RevisionRecord]) -> list[str]:
        known = self.graph.sort(records)
        return known + sorted(r for r in records if r not in self.graph)

    def _preflight(self, records: dict[str, RevisionRecord], verb: str) -> None:
        """Refuse to run past failed revisions or against edited/missing applied scripts."""
        failed = [r for r in self._ordered(records) if records[r].state == FAILED]
        if failed:
            raise self._blocked(records[failed[0]], failed, verb)
        found = self.problems(records)
        edited = [p for p in found if p["problem"] == "checksum"]
        if edited:
            names = ", ".join(f"{p['revision']} ({p['path']})" for p in edited)
            raise ChecksumMismatch(
                f"Applied migration script(s) changed since they ran: {names}. esmigrate will "
                f"not {verb} until the history and the scripts agree.",
                problems=edited,
                hint="If the edit was intended (comments, formatting, a fix already applied by "
                "hand), run `esmigrate repair` to record the new checksum; otherwise restore "
                "the file and write a new revision for the change.",
            )
        missing = [p for p in found if p["problem"] == "missing_file"]
        if missing:
            names = ", ".join(p["revision"] for p in missing)
            raise HistoryMismatch(
                f"Revision(s) {names} are recorded in {self.store.index} but have no script in "
                f"{self.graph.where}. esmigrate will not {verb} past a history it cannot read.",
                problems=missing,
                hint="Restore the missing file(s) (another branch?), or, if they were removed "
                "on purpose, run `esmigrate repair --forget-missing` to drop their entries.",
            )

    def _blocked(self, record: RevisionRecord, failed: list[str], verb: str) -> RevisionFailed:
        error = record.doc.get("error") or {}
        reason = str(error.get("reason") or "no reason recorded").rstrip(".")
        others = f" (also failed: {', '.join(failed[1:])})" if len(failed) > 1 else ""
        return RevisionFailed(
            f"Revision {record.revision} ({self._path(record.revision)}) is recorded as failed "
            f"during {record.direction}: {reason}{others}. esmigrate will not {verb} past a "
            "failed revision.",
            revision=record.revision,
            reason=reason,
            path=self._path(record.revision),
            hint="Fix the cause (in the cluster or in the script), then run `esmigrate repair` "
            "to clear the failed state; the next run applies the revision again, and its "
            "operations converge where they had already run.",
        )

    # -- the lease ------------------------------------------------------------------------------

    def _acquire(self, command: str, lock_timeout: float | None) -> Lease:
        self.store.ensure()
        lease = Lease(
            self.store, self.identity, ttl=self.lease_ttl, command=command, reporter=self.report
        )
        # By default a waiting runner outlasts a dead holder's lease (at most one TTL old).
        lease.acquire(2 * self.lease_ttl if lock_timeout is None else lock_timeout)
        self._lease = lease
        return lease

    def _save(self, record: RevisionRecord) -> None:
        assert self._lease is not None
        self._lease.check()
        try:
            self.store.write_revision(record)
        except ConflictError:
            raise LeaseLost(
                f"The history entry of revision {record.revision} was changed by another runner "
                "while this one held the lease; it stopped.",
                hint="Run `esmigrate status` to see the state it left.",
            ) from None

    def _resumable(self, rec: RevisionRecord, direction: str) -> str | None:
        """Why ``rec`` (left running) can be resumed, or None (then it is recorded as failed):
        it was stopped cleanly (Ctrl-C), or its in-flight operation keeps its own checkpoints."""
        rev = rec.revision
        if rec.direction != direction or rev not in self.graph:
            return None
        if rec.checksum != self.graph[rev].checksum:
            return None
        unfinished = rec.unfinished
        if rec.doc.get("resumable") and not unfinished:
            return f"resuming revision {rev}: it was stopped between operations"
        if len(unfinished) != 1:
            return None
        entry = unfinished[0]
        operations = self.planned_revision(rev, direction).operations
        number = int(entry.get("n") or 0)
        if not 1 <= number <= len(operations):
            return None
        operation = operations[number - 1]
        if operation.kind != entry.get("op") or not operation.resumable:
            return None
        ctx = ExecContext(revision=rev, state_index=self.store.index)
        phase = operation.interrupted(self.cluster, ctx) or "its last step"
        what = getattr(operation, "alias", None)
        return (
            f"resuming revision {rev}: {operation.kind}"
            + (f" of {what}" if what else "")
            + f" was interrupted in phase {phase}"
        )

    def planned_revision(self, rev: str, direction: str) -> PlannedRevision:
        key = (rev, direction)
        if key not in self._recorded:
            self._recorded[key] = record_operations(self.graph[rev], direction)
        return PlannedRevision(self.graph[rev], direction, self._recorded[key])

    def _recover_interrupted(
        self, records: dict[str, RevisionRecord], direction: str | None = None
    ) -> None:
        """Revisions left ``running`` by a dead (or stopped) runner: resumed when their
        in-flight operation is resumable, otherwise recorded as failed (we hold the lease, so
        whoever was running them is gone)."""
        for rev in self._ordered(records):
            rec = records[rev]
            if rec.state != RUNNING:
                continue
            why = self._resumable(rec, direction) if direction else None
            if why is not None:
                self._resume[rev] = len(rec.completed) + 1
                self._event(rec, "resume", RUNNING, why=why)
                self._save(rec)
                self.report(why[0].upper() + why[1:] + ".")
                continue
            by = rec.doc.get("by") or {}
            done = len(rec.completed)
            unfinished = rec.unfinished
            where = (
                f"in operation {unfinished[0].get('n')} ({unfinished[0].get('summary')}), "
                if unfinished
                else ""
            )
            rec.doc["state"] = FAILED
            rec.doc["ended_at"] = timestamp()
            rec.doc["error"] = {
                "type": "runner_died",
                "reason": f"the runner {by.get('owner')} on {by.get('host')} (pid "
                f"{by.get('pid')}) stopped during {rec.direction} {where}after {done} "
                "completed operation(s), and its lease expired",
            }
            for entry in unfinished:
                entry.update(status="interrupted", ended_at=rec.doc["ended_at"])
            self._event(rec, "recover", FAILED)
            self._save(rec)
            self.report(f"Revision {rev} was left running by a dead runner: recorded as failed.")

    def _event(self, rec: RevisionRecord, action: str, outcome: str, **extra: Any) -> None:
        events = list(rec.doc.get("events") or [])
        events.append(
            {"at": timestamp(), "action": action, "outcome": outcome, **extra}
            | {"by": self.identity.owner, "user": self.identity.user}
        )
        rec.doc["events"] = events

    # -- running --------------------------------------------------------------------------------

    def plan(self, target: str, direction: str) -> dict[str, Any]:
        """What :meth:`run` would do now, request by request, without writing anything."""
        records = self.records()
        route = self.route(target, direction, records)
        planned = self.planned(route)
        self._preflight(records, direction)
        lease = read_lease(self.store)
        busy = [
            {"revision": r, "owner": rec.owner, "alive": _alive(rec, lease)}
            for r, rec in records.items()
            if rec.state == RUNNING
        ]
        return plan_dict(planned, route, self.store.index, self.root, self.cluster) | {
            "running": busy
        }

    def run(
        self, target: str, direction: str, *, lock_timeout: float | None = None
    ) -> dict[str, Any]:
        """Upgrade or downgrade to ``target``; returns what was done."""
        verb = direction
        records = self.records()
        route = self.route(target, direction, records)
        self.planned(route)  # every script's operations, before anything is written
        self._preflight(records, verb)
        result: dict[str, Any] = {
            "direction": direction,
            "target": target,
            "history_index": self.store.index,
            "revisions": [],
        }
        if not route.revisions and not any(r.state == RUNNING for r in records.values()):
            return result
        lease = self._acquire(direction, lock_timeout)
        with lease:
            if lease.taken_over is not None:
                result["lease_taken_over_from"] = lease.taken_over.get("owner")
            records = self.records()
            self._recover_interrupted(records, direction)
            self._preflight(records, verb)
            route = self.route(target, direction, records)
            for planned in self.planned(route):
                result["revisions"].append(self._apply(planned, records))
        return result

    def _apply(
        self, planned: PlannedRevision, records: dict[str, RevisionRecord]
    ) -> dict[str, Any]:
        assert self._lease is not None
        script = planned.script
        rev = script.revision
        up = planned.direction == UPGRADE
        self._lease.check()
        record = records.get(rev) or RevisionRecord({"revision": rev})
        doc = record.doc
        started = time.monotonic()
        first = self._resume.pop(rev, 1)
        kept = record.completed[: first - 1]
        doc.update(
            revision=rev,
            down_revisions=list(script.down_revisions),
            message=script.message,
            path=display_path(script.path, self.root),
            checksum=script.checksum,
            state=RUNNING,
            direction=planned.direction,
            started_at=timestamp(),
            ended_at=None,
            duration_s=None,
            by=self.identity.to_dict(),
            runs=int(doc.get("runs") or 0) + 1,
            log=kept,
            error=None,
            resumable=None,
        )
        self._save(record)
        records[rev] = record
        total = len(planned.operations)
        self.report(
            f"{'Applying' if up else 'Reverting'} {rev} ({script.message or script.name}): "
            f"{total} operation(s)"
        )
        log: list[dict[str, Any]] = doc["log"]
        for number, operation in enumerate(planned.operations, start=1):
            if number < first:
                continue  # completed before the interruption this run resumes
            self._lease.check()
            if self.cancel.is_set():
                doc["resumable"] = True
                self._event(record, "cancel", RUNNING, before=number)
                self._save(record)
                raise self._cancelled(record, number, total, None)
            entry: dict[str, Any] = {
                "n": number,
                "op": operation.kind,
                "summary": operation.summary(),
                "started_at": timestamp(),
            }
            log.append(entry)
            # Recorded before it runs: after a crash the history names the operation in flight.
            self._save(record)

            def on_task(task_id: str, entry: dict[str, Any] = entry) -> None:
                entry["task"] = task_id
                self._save(record)

            def on_record(data: Any, entry: dict[str, Any] = entry) -> None:
                entry.update(data)
                self._save(record)

            ctx = ExecContext(
                checkpoint=self._lease.check,
                on_task=on_task,
                say=self.report,
                on_progress=self.on_progress,
                poll_interval=self.poll_interval,
                revision=rev,
                state_index=self.store.index,
                cancel=self.cancel,
                record=on_record,
            )
            try:
                outcome = operation.execute(self.cluster, ctx)
            except LeaseLost:
                raise  # the new holder records this revision as interrupted
            except MigrationCancelled:
                # Stopped at a safe point: left running (the lease is released on the way out),
                # so the next upgrade resumes it from the operation's checkpoint.
                self._event(record, "cancel", RUNNING, operation=number)
                self._save(record)
                raise self._cancelled(record, number, total, operation) from None
            except BaseException as exc:
                try:
                    self._fail(record, entry, exc, number, total, started)
                except EsmigrateError as unrecorded:
                    if not isinstance(exc, Exception):
                        raise exc from None
                    # The revision stays "running" in the history; the next runner, once this
                    # lease has lapsed, records it as interrupted.
                    note = (
                        f"Recording the failure in {self.store.index} failed too "
                        f"({unrecorded.message}); the next run will find it interrupted."
                    )
                    raise self._failed_error(record, exc, number, total, operation, note) from exc
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt: recorded, then let it end the program
                note = f"It is recorded as failed in {self.store.index}."
                raise self._failed_error(record, exc, number, total, operation, note) from exc
            entry.update(outcome.to_dict())
            entry["ended_at"] = timestamp()
            self._save(record)
            self.report(f"  {number}/{total} {operation.summary()}: {outcome.status}")
        final = APPLIED if up else ROLLED_BACK
        doc.update(
            state=final,
            ended_at=timestamp(),
            duration_s=round(time.monotonic() - started, 3),
        )
        self._event(record, planned.direction, final)
        self._save(record)
        return {
            "revision": rev,
            "message": script.message,
            "path": doc["path"],
            "state": final,
            "duration_s": doc["duration_s"],
            "operations": log,
        }

    def _cancelled(
        self, record: RevisionRecord, number: int, total: int, operation: Operation | None
    ) -> MigrationCancelled:
        where = (
            f"in operation {number} of {total} ({operation.summary()})"
            if operation is not None
            else f"before operation {number} of {total}"
        )
        return MigrationCancelled(
            f"Stopped on request: revision {record.revision} ({record.doc.get('path')}) was "
            f"interrupted {where}. Nothing is lost and no write block is left on.",
            hint=f"Run `esmigrate {record.direction}` again to resume it where it stopped.",
        )

    def _fail(
        self,
        record: RevisionRecord,
        entry: dict[str, Any],
        exc: BaseException,
        number: int,
        total: int,
        started: float,
    ) -> None:
        details = error_details(exc)
        if not isinstance(exc, Exception):
            details = {"type": "interrupted", "reason": f"interrupted ({type(exc).__name__})"}
        entry.update(status="failed", ended_at=timestamp(), error=details)
        record.doc.update(
            state=FAILED,
            ended_at=timestamp(),
            duration_s=round(time.monotonic() - started, 3),
            error={**details, "operation": number, "of": total, "summary": entry["summary"]},
        )
        self._event(record, record.direction, FAILED)
        self._save(record)

    def _failed_error(
        self,
        record: RevisionRecord,
        exc: Exception,
        number: int,
        total: int,
        operation: Operation,
        note: str,
    ) -> RevisionFailed:
        reason = str(record.doc["error"].get("reason")).rstrip(".")
        fix = f"{exc.hint} " if isinstance(exc, EsmigrateError) and exc.hint else "Fix the cause. "
        return RevisionFailed(
            f"Revision {record.revision} ({record.doc.get('path')}) failed at operation "
            f"{number} of {total} ({operation.summary()}): {reason}. {note}",
            revision=record.revision,
            reason=reason,
            path=str(record.doc.get("path")),
            hint=f"{fix}Then run `esmigrate repair` to clear the failed state and "
            f"`esmigrate {record.direction}` to run the revision again; operations that already "
            "ran converge.",
        )

    # -- rewriting the record without running anything ------------------------------------------

    def stamp(self, target: str, *, lock_timeout: float | None = None) -> dict[str, Any]:
        """Record the cluster as being exactly at ``target`` without running anything."""
        wanted = self._wanted(target)
        changes: list[dict[str, Any]] = []
        with self._acquire("stamp", lock_timeout):
            records = self.records()
            for rev in self.graph.order:
                if rev in wanted and (rev not in records or records[rev].state != APPLIED):
                    changes.append(self._mark(records, rev, APPLIED, "stamp"))
            for rev in self._ordered(records):
                rec = records[rev]
                if rev in wanted:
                    continue
                if rec.state == APPLIED:
                    changes.append(self._mark(records, rev, ROLLED_BACK, "stamp"))
                elif rec.state in (FAILED, RUNNING):
                    changes.append(self._mark(records, rev, PENDING, "stamp"))
        return {"target": target, "history_index": self.store.index, "changes": changes}

    def baseline(self, target: str, *, lock_timeout: float | None = None) -> dict[str, Any]:
        """Adopt a cluster that predates esmigrate: ``target`` and its ancestors count as
        applied. Refused when the history already records revisions."""
        wanted = self._wanted(target)
        if not wanted:
            raise RevisionError(
                "baseline needs a revision, not `base`.",
                hint="Name the revision the existing cluster corresponds to.",
            )
        changes: list[dict[str, Any]] = []
        with self._acquire("baseline", lock_timeout):
            records = self.records()
            live = [r for r, rec in records.items() if rec.state != ROLLED_BACK]
            if live:
                raise RevisionError(
                    f"The history index {self.store.index} already records revisions "
                    f"({', '.join(sorted(live)[:5])}); baseline only adopts a cluster that "
                    "esmigrate has not managed yet. Nothing was changed.",
                    hint="Use `esmigrate stamp REV` to rewrite the recorded state, or "
                    "`esmigrate status` to see it.",
                )
            for rev in self.graph.order:
                if rev in wanted:
                    changes.append(self._mark(records, rev, APPLIED, "baseline"))
        return {"target": target, "history_index": self.store.index, "changes": changes}

    def _wanted(self, target: str) -> set[str]:
        if target == "base":
            return set()
        if target == "head":
            return self.graph.ancestors(self.graph.head())
        if target == "heads":
            wanted: set[str] = set()
            for head in self.graph.heads:
                wanted |= self.graph.ancestors(head)
            return wanted
        return self.graph.ancestors(self.graph.resolve(target).revision)

    def _mark(
        self, records: dict[str, RevisionRecord], rev: str, state: str, action: str
    ) -> dict[str, Any]:
        record = records.get(rev) or RevisionRecord({"revision": rev})
        before = record.state or None
        doc = record.doc
        if rev in self.graph:
            script = self.graph[rev]
            doc.update(
                down_revisions=list(script.down_revisions),
                message=script.message,
                path=display_path(script.path, self.root),
                checksum=script.checksum,
            )
        doc.update(state=state, ended_at=timestamp(), by=self.identity.to_dict())
        doc.setdefault("started_at", doc["ended_at"])
        doc.setdefault("runs", 0)
        if action == "baseline":
            doc["baseline"] = True
        self._event(record, action, state)
        self._save(record)
        records[rev] = record
        self.report(f"{action}: {rev} {before or 'unrecorded'} -> {state}")
        return {"revision": rev, "path": self._path(rev), "before": before, "after": state}

    def repair(
        self, *, forget_missing: bool = False, lock_timeout: float | None = None
    ) -> dict[str, Any]:
        """Clear failed and interrupted states, re-align checksums of edited applied scripts,
        and (with ``forget_missing``) drop entries whose script is gone. Says what it did."""
        changes: list[dict[str, Any]] = []
        left: list[dict[str, Any]] = []
        with self._acquire("repair", lock_timeout):
            records = self.records()
            for rev in self._ordered(records):
                rec = records[rev]
                path = self._path(rev)
                if rec.state in (FAILED, RUNNING):
                    # A failed upgrade is pending again; a failed downgrade is still applied
                    # (its remaining undo steps can run again).
                    after = PENDING if rec.direction == UPGRADE else APPLIED
                    before = rec.state
                    why = (
                        f"{rec.state} during {rec.direction}: "
                        f"{(rec.doc.get('error') or {}).get('reason', 'interrupted runner')}"
                    )
                    if after == APPLIED and rev in self.graph:
                        rec.doc["checksum"] = self.graph[rev].checksum
                    rec.doc["state"] = after
                    self._event(rec, "repair", after, was=why)
                    self._save(rec)
                    changes.append(
                        {
                            "revision": rev,
                            "path": path,
                            "change": f"cleared the {before} state; the next "
                            f"{rec.direction} runs it again",
                            "before": why,
                            "after": after,
                        }
                    )
                elif rec.state == APPLIED and rev in self.graph:
                    new = self.graph[rev].checksum
                    if rec.checksum != new:
                        old = rec.checksum
                        rec.doc["checksum"] = new
                        self._event(rec, "repair", APPLIED, checksum_was=old)
                        self._save(rec)
                        changes.append(
                            {
                                "revision": rev,
                                "path": path,
                                "change": "re-aligned the checksum with the edited script",
                                "before": old,
                                "after": new,
                            }
                        )
                if rec.state in (APPLIED, PENDING) and rev not in self.graph:
                    if forget_missing:
                        self.store.delete_revision(rec)
                        changes.append(
                            {
                                "revision": rev,
                                "path": path,
                                "change": "dropped the entry of a script that no longer exists",
                                "before": rec.state,
                                "after": None,
                            }
                        )
                    elif rec.state == APPLIED:
                        left.append(
                            {
                                "revision": rev,
                                "problem": "missing_file",
                                "explanation": "recorded as applied but its script is gone; "
                                "restore it, or rerun with --forget-missing to drop the entry",
                            }
                        )
        return {"history_index": self.store.index, "changes": changes, "left": left}

    # -- reports --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        records = self.records()
        lease = read_lease(self.store)
        applied = self.applied(records)
        current = [
            r
            for r in self.graph.sort(applied)
            if not any(c in applied for c in self.graph.children[r])
        ] + sorted(r for r in applied if r not in self.graph)
        pending = [r for r in self.graph.order if r not in applied]
        return {
            "history_index": self.store.index,
            "current": current,
            "heads": list(self.graph.heads),
            "up_to_date": not pending,
            "applied": [records[r].summary() for r in self._ordered(records) if r in applied],
            "pending": [
                {
                    "revision": r,
                    "message": self.graph[r].message,
                    "path": self._path(r),
                    "state": records[r].state if r in records else PENDING,
                }
                for r in pending
            ],
            "failed": [
                records[r].summary() for r in self._ordered(records) if records[r].state == FAILED
            ],
            "running": [
                {**records[r].summary(), "alive": _alive(records[r], lease)}
                for r in self._ordered(records)
                if records[r].state == RUNNING
            ],
            "lease": lease,
            "problems": self.problems(records, lease),
        }

    def history(self, *, verbose: bool = False) -> list[dict[str, Any]]:
        records = self.records()
        rows = sorted(records.values(), key=lambda r: str(r.doc.get("started_at") or ""))
        if verbose:
            return [{k: v for k, v in r.doc.items() if k != "kind"} for r in rows]
        return [r.summary() for r in rows]

    def validate(self) -> dict[str, Any]:
        records = self.records()
        lease = read_lease(self.store)
        found = self.problems(records, lease)
        return {
            "ok": not found,
            "history_index": self.store.index,
            "checked": len(records),
            "problems": found,
        }


def plan_dict(
    planned: list[PlannedRevision],
    route: Route,
    history_index: str,
    root: Path | None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """The data form of a plan (``plan --json``); with ``cluster``, operations that depend on
    the live state (``migrate``) say what they decided from it."""
    revisions = [p.to_dict(root, cluster) for p in planned]
    return {
        "direction": route.direction,
        "target": route.target,
        "history_index": history_index,
        "revisions": revisions,
        "requests": sum(len(op["requests"]) for r in revisions for op in r["operations"]),
    }


def _alive(record: RevisionRecord, lease: dict[str, Any] | None) -> bool:
    """A ``running`` revision is alive while its runner still holds an unexpired lease."""
    return bool(lease and not lease.get("expired") and lease.get("owner") == record.owner)


def _fix(problem: str) -> dict[str, str]:
    fixes = {
        "failed": "fix the cause, then `esmigrate repair` and run again",
        "interrupted": "its runner died; the next upgrade records it as failed, or run "
        "`esmigrate repair` after checking the cluster",
        "missing_file": "restore the script, or `esmigrate repair --forget-missing`",
        "checksum": "the script was edited after it ran: restore it, or `esmigrate repair` "
        "if the edit was intended",
    }
    return {"fix": fixes[problem]}
