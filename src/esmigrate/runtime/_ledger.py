"""The project's revisions as the history index records them, checked against the scripts.

:class:`Ledger` reads the records, finds what ``validate`` reports (failed, interrupted, edited
and missing revisions), refuses to run past them, and writes records under the runner's lease,
each change with an event. The runner (:class:`~esmigrate.runtime.Runner`) applies revisions
on top of it; :class:`~._edits.LedgerEdits` rewrites records without running anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    ChecksumMismatch,
    ConflictError,
    HistoryMismatch,
    LeaseLost,
    RevisionFailed,
)
from esmigrate.progress import Reporter
from esmigrate.runtime._revisions import display_path, fix_for, quiet, runner_alive
from esmigrate.script import RevisionGraph
from esmigrate.state import (
    APPLIED,
    FAILED,
    PENDING,
    RUNNING,
    HistoryStore,
    Identity,
    Lease,
    RevisionRecord,
    read_lease,
    timestamp,
)


class Ledger:
    """The revision records of one project (``graph``) in one history index."""

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
    ) -> None:
        self.cluster = cluster
        self.graph = graph
        self.store = HistoryStore(cluster, history_index)
        self.root = root
        self.lease_ttl = lease_ttl
        self.report = reporter or quiet
        self.identity = identity or Identity.current()
        self._lease: Lease | None = None

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
                    {
                        **base,
                        "problem": "failed",
                        "error": rec.doc.get("error"),
                        **fix_for("failed"),
                    }
                )
            elif rec.state == RUNNING and not runner_alive(rec, lease):
                found.append(
                    {**base, "problem": "interrupted", "owner": rec.owner, **fix_for("interrupted")}
                )
            if rec.state in (APPLIED, FAILED, RUNNING):
                if rev not in self.graph:
                    found.append({**base, "problem": "missing_file", **fix_for("missing_file")})
                elif rec.state == APPLIED and rec.checksum != self.graph[rev].checksum:
                    found.append(
                        {
                            **base,
                            "problem": "checksum",
                            "recorded": rec.checksum,
                            "file": self.graph[rev].checksum,
                            **fix_for("checksum"),
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

    # -- writing under the lease ------------------------------------------------------------------

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

    def _event(self, rec: RevisionRecord, action: str, outcome: str, **extra: Any) -> None:
        events = list(rec.doc.get("events") or [])
        events.append(
            {"at": timestamp(), "action": action, "outcome": outcome, **extra}
            | {"by": self.identity.owner, "user": self.identity.user}
        )
        rec.doc["events"] = events

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
                {**records[r].summary(), "alive": runner_alive(records[r], lease)}
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
