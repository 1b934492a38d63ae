"""``report``: the migration report of a revision, as a self-contained HTML page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.command._base import open_cluster
from esmigrate.config import Config
from esmigrate.exceptions import NoReport
from esmigrate.report import migrations_of, render
from esmigrate.state import HistoryStore, RevisionRecord


def default_report_path(revision: str) -> Path:
    return Path(f"esmigrate-report-{revision}.html")


def _find(records: dict[str, RevisionRecord], revision: str, index: str) -> RevisionRecord:
    if revision in records:
        return records[revision]
    found = sorted(r for r in records if r.startswith(revision))
    if len(found) == 1:
        return records[found[0]]
    known = ", ".join(sorted(records)[-8:]) or "none"
    if found:
        raise NoReport(
            f"Revision {revision!r} is ambiguous in the history index {index}: "
            f"{', '.join(found[:8])}.",
            revision=revision,
            hint="Give more characters of the revision id.",
        )
    raise NoReport(
        f"The history index {index} has no revision {revision!r} (recorded: {known}).",
        revision=revision,
        hint="A report exists for revisions that ran against this cluster: "
        "`esmigrate history` lists them.",
    )


def _figures(records: Sequence[RevisionRecord]) -> list[dict[str, Any]]:
    """What the page shows in numbers, for ``--json`` and scripts."""
    out = []
    for record in records:
        for entry in migrations_of(record.doc):
            report = entry["report"]
            figures = report.get("figures") or {}
            out.append(
                {
                    "revision": record.revision,
                    "summary": entry.get("summary"),
                    "status": entry.get("status", "running"),
                    "documents": figures.get("final_count"),
                    "copied": report["timeline"].get("copied"),
                    "rounds": sum(
                        1 for p in report["timeline"]["phases"] if p["phase"] == "catchup"
                    ),
                    "blocked_seconds": figures.get("blocked_seconds"),
                    "dead_letters": (report.get("dead_letters") or {}).get("count", 0),
                    "validation_differences": (report.get("validation") or {}).get("found"),
                    "rollback_point": (report.get("rollback_point") or {}).get("name"),
                }
            )
    return out


def write_report(records: Sequence[RevisionRecord], output: Path) -> dict[str, Any]:
    """Write the page of ``records`` (those with a timeline) to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render([r.doc for r in records]), encoding="utf-8")
    return {
        "path": str(output),
        "revisions": [r.revision for r in records],
        "migrations": _figures(records),
    }


def report_of_run(
    cluster: Cluster, config: Config, revisions: Sequence[str], output: Path
) -> dict[str, Any]:
    """After ``upgrade --report``: the page of the revisions this run applied that moved data;
    ``path`` None (and why) when none did."""
    records = HistoryStore(cluster, config.history_index).revisions()
    chosen = [records[r] for r in revisions if r in records and migrations_of(records[r].doc)]
    if not chosen:
        return {"path": None, "reason": "no op.migrate ran in this upgrade: nothing to report"}
    return write_report(chosen, output)


def report(config: Config, revision: str, *, output: Path | None = None) -> dict[str, Any]:
    """Write the migration report of ``revision`` (an id or a unique prefix, as recorded in the
    history) to ``output`` (default ``esmigrate-report-REV.html``); returns its path and the
    figures it shows.

    :class:`~esmigrate.exceptions.NoReport` when the history has no such revision or the
    revision recorded no timeline.
    """
    with open_cluster(config) as cluster:
        records = HistoryStore(cluster, config.history_index).revisions()
    record = _find(records, revision, config.history_index)
    if not migrations_of(record.doc):
        raise NoReport(
            f"Revision {record.revision} recorded no migration timeline: it moved no data with "
            "op.migrate (or ran before esmigrate recorded timelines).",
            revision=record.revision,
            hint="Reports exist for revisions whose op.migrate ran; `esmigrate history -v` shows "
            "what each revision did.",
        )
    return write_report([record], output or default_report_path(record.revision))
