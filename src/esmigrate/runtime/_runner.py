"""The runner: plans and applies revisions against one cluster, recording each in the history.

Elasticsearch has no transactions, so a revision is made safe differently: every operation is
idempotent, the history records each operation as it completes, a failure is recorded with the
server's reason and blocks the next ``upgrade`` until ``repair`` (the cluster going away under
a resumable operation is no failure: the next ``upgrade`` resumes it), and one lease keeps two
runners from ever working at once. Bad input (a script that does not import, a bad graph or
target, a missing ``downgrade``) is found before anything is written.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.exceptions import (
    ClusterUnavailable,
    EsmigrateError,
    LeaseLost,
    MigrationCancelled,
    MigrationConflict,
    RevisionFailed,
    TaskLost,
)
from esmigrate.operations import MAX_INTERRUPTED_RUNS, ExecContext, Operation
from esmigrate.progress import ProgressCallback, Reporter
from esmigrate.runtime._edits import LedgerEdits
from esmigrate.runtime._revisions import (
    UPGRADE,
    PlannedRevision,
    display_path,
    error_details,
    no_progress,
    plan_dict,
    record_operations,
    runner_alive,
)
from esmigrate.script import RevisionGraph, Route
from esmigrate.state import (
    APPLIED,
    FAILED,
    ROLLED_BACK,
    RUNNING,
    Identity,
    RevisionRecord,
    read_lease,
    timestamp,
)

#: Errors that interrupt a resumable operation rather than fail it: the cluster unreachable (a
#: node restarting), a server task lost with its node, the operation's own lease lapsed
#: meanwhile (the runner's own, LeaseLost, likewise). Nothing is wrong with the revision, so it
#: is left to resume, not to repair.
INTERRUPTIONS = (ClusterUnavailable, TaskLost, MigrationConflict)


class Runner(LedgerEdits):
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
        rollback_point_kind: str = "retained",
        snapshot_repository: str | None = None,
    ) -> None:
        super().__init__(
            cluster,
            graph,
            history_index=history_index,
            root=root,
            lease_ttl=lease_ttl,
            reporter=reporter,
            identity=identity,
        )
        #: Set it (the CLI's SIGINT handler does) to stop at the next safe point; the revision
        #: is left for the next ``upgrade`` to resume.
        self.cancel = cancel or threading.Event()
        self._resume: dict[str, int] = {}
        #: Receives the progress events of long operations (their server tasks, op.migrate).
        self.on_progress = on_progress or no_progress
        self.poll_interval = poll_interval
        #: What migrations record as their rollback points (the project's settings).
        self.rollback_point_kind = rollback_point_kind
        self.snapshot_repository = snapshot_repository
        self._recorded: dict[tuple[str, str], tuple[Operation, ...]] = {}

    @classmethod
    def from_config(
        cls, config: Config, cluster: Cluster, graph: RevisionGraph, **kwargs: Any
    ) -> Runner:
        kwargs.setdefault("lease_ttl", config.lease_ttl)
        kwargs.setdefault("rollback_point_kind", config.rollback_point_kind)
        kwargs.setdefault("snapshot_repository", config.snapshot_repository)
        return cls(cluster, graph, history_index=config.history_index, root=config.root, **kwargs)

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

    def planned_revision(self, rev: str, direction: str) -> PlannedRevision:
        key = (rev, direction)
        if key not in self._recorded:
            self._recorded[key] = record_operations(self.graph[rev], direction)
        return PlannedRevision(self.graph[rev], direction, self._recorded[key])

    def _resumable(self, rec: RevisionRecord, direction: str) -> str | None:
        """Why ``rec`` (left running) can be resumed, or None (then it is recorded as failed):
        it was stopped cleanly (Ctrl-C), or its in-flight operation keeps its own checkpoints."""
        rev = rec.revision
        if rec.direction != direction or rev not in self.graph:
            return None
        if rec.checksum != self.graph[rev].checksum:
            return None
        unfinished = rec.unfinished
        if not unfinished:
            # Each operation is logged before it runs: with none unfinished, none was in flight
            # (stopped with Ctrl-C, or killed between two history writes), so nothing is half
            # done and the next operation can simply run.
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

    def resumes(self, revision: str) -> str | None:
        """Why the next upgrade resumes ``revision``, left running by a runner that is gone;
        None when it would record it as failed (or it is not left running)."""
        record = self.records().get(revision)
        if record is None or record.state != RUNNING:
            return None
        return self._resumable(record, UPGRADE)

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

    # -- running --------------------------------------------------------------------------------

    def plan(self, target: str, direction: str) -> dict[str, Any]:
        """What :meth:`run` would do now, request by request, without writing anything."""
        records = self.records()
        route = self.route(target, direction, records)
        planned = self.planned(route)
        self._preflight(records, direction)
        lease = read_lease(self.store)
        busy = [
            {"revision": r, "owner": rec.owner, "alive": runner_alive(rec, lease)}
            for r, rec in records.items()
            if rec.state == RUNNING
        ]
        settings = ExecContext(
            state_index=self.store.index,
            rollback_point_kind=self.rollback_point_kind,
            snapshot_repository=self.snapshot_repository,
        )
        return plan_dict(planned, route, self.store.index, self.root, self.cluster, settings) | {
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
        # The operation this run resumes: what its interrupted runs recorded for the report.
        interrupted = {e.get("n"): e for e in record.unfinished if e.get("report")}
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
            rolled_back_to=None,
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
            previous = interrupted.get(number) if number == first else None
            if previous is not None:
                # Bounded: the last few interrupted runs (a job restarted in a loop adds one each).
                runs = [*previous.get("interrupted_runs", []), previous["report"]]
                entry["interrupted_runs"] = runs[-MAX_INTERRUPTED_RUNS:]
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
                rollback_point_kind=self.rollback_point_kind,
                snapshot_repository=self.snapshot_repository,
            )
            try:
                outcome = operation.execute(self.cluster, ctx)
            except LeaseLost as exc:
                if operation.resumable:
                    # Lapsed while the cluster was away (a node restarting): resumable as below.
                    self._interrupted(record, exc, number, total, operation)
                raise  # the new holder records this revision as interrupted
            except MigrationCancelled:
                # Stopped at a safe point: left running (the lease is released on the way out),
                # so the next upgrade resumes it from the operation's checkpoint.
                self._event(record, "cancel", RUNNING, operation=number)
                self._save(record)
                raise self._cancelled(record, number, total, operation) from None
            except BaseException as exc:
                if isinstance(exc, INTERRUPTIONS) and operation.resumable:
                    self._interrupted(record, exc, number, total, operation)
                    raise
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

    def _interrupted(
        self,
        record: RevisionRecord,
        exc: EsmigrateError,
        number: int,
        total: int,
        operation: Operation,
    ) -> None:
        """The cluster went away under a resumable operation: left running (as a Ctrl-C
        leaves it), so the next run resumes it from the operation's checkpoint, with no
        ``repair``; ``exc`` is told so."""
        if not isinstance(exc, LeaseLost):  # the history is no longer this runner's to write
            self._event(record, "interrupt", RUNNING, operation=number, reason=exc.message[:300])
            with contextlib.suppress(EsmigrateError):
                # Unreachable still, or this runner's lease lapsed meanwhile: the next runner
                # finds the revision running all the same, and resumes it.
                self._save(record)
        exc.message = (
            f"Revision {record.revision} ({record.doc.get('path')}) was interrupted in "
            f"operation {number} of {total} ({operation.summary()}): {exc.message}"
        )
        again = (
            f"`esmigrate {record.direction}` resumes revision {record.revision} where it stopped"
        )
        if isinstance(exc, LeaseLost):
            exc.hint = (
                "Another runner may have taken the revision over and resumed it: `esmigrate "
                f"status` says where it stands. If none runs it, {again} (no repair needed)."
            )
        else:
            exc.hint = (
                f"Nothing is lost: once the cluster answers, {again} (no repair needed), after "
                f"this run's lease lapses (within {self.lease_ttl:g} s) if it could not be "
                "released."
            )

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
