"""Rebuild records: one ``kind: "rebuild"`` document per run of ``esmigrate rebuild``.

A rebuild is not a revision: it has no script and no place in the revision graph, so the runner
never sees it (it reads ``kind: "revision"`` only). It is recorded beside the revisions, in the
same history index and with the same fields where they mean the same (``state``, ``started_at``,
``duration_s``, ``by``, ``error``), so ``status`` and ``history`` show both. Written
compare-and-set, as every document of the history index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esmigrate.state._history import HistoryStore, Version, timestamp

#: The ``kind`` of a rebuild record.
REBUILD = "rebuild"


@dataclass
class RebuildRecord:
    """The history of one rebuild run (``doc["id"]`` is ``rebuild:<alias>:<run>``)."""

    doc: dict[str, Any]
    version: Version | None = None

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def alias(self) -> str:
        return str(self.doc["alias"])

    @property
    def state(self) -> str:
        return str(self.doc.get("state", ""))

    def summary(self) -> dict[str, Any]:
        """The public view: everything but the events and the report's record (a page of its
        own: ``esmigrate report ID``)."""
        return {
            k: v for k, v in self.doc.items() if k not in ("events", "report", "interrupted_runs")
        }


def save_rebuild(store: HistoryStore, record: RebuildRecord) -> None:
    """Create or compare-and-set the record's document; updates ``record.version``."""
    record.doc["kind"] = REBUILD
    record.doc["updated_at"] = timestamp()
    if record.version is None:
        record.version = store.create(record.id, record.doc)
    else:
        record.version = store.replace(record.id, record.doc, record.version)


def rebuild_records(store: HistoryStore, alias: str | None = None) -> list[RebuildRecord]:
    """Every rebuild record (of ``alias``), oldest first; none when the index does not exist."""
    records = [RebuildRecord(stored.doc, stored.version) for stored in store.of_kind(REBUILD)]
    if alias is not None:
        records = [r for r in records if r.alias == alias]
    return sorted(records, key=lambda r: str(r.doc.get("started_at") or ""))
