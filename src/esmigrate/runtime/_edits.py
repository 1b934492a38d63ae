"""Rewriting revision records without running anything: ``stamp``, ``baseline``, ``repair``."""

from __future__ import annotations

from typing import Any

from esmigrate.exceptions import RevisionError
from esmigrate.runtime._ledger import Ledger
from esmigrate.runtime._revisions import UPGRADE, display_path
from esmigrate.state import (
    APPLIED,
    FAILED,
    PENDING,
    ROLLED_BACK,
    RUNNING,
    RevisionRecord,
    timestamp,
)


class LedgerEdits(Ledger):
    """The ledger's records rewritten on request (always under the runner's lease)."""

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
