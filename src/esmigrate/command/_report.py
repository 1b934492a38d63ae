"""``report``: the migration report of a revision or a rebuild, as a self-contained HTML page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.command._base import open_cluster
from esmigrate.config import Config
from esmigrate.exceptions import NoReport
from esmigrate.report import migrations_of, record_id, render
from esmigrate.state import HistoryStore, rebuild_records


def default_report_path(revision: str) -> Path:
    # A rebuild's id (rebuild:ALIAS:RUN) holds colons, which some file systems refuse.
    return Path(f"esmigrate-report-{revision.replace(':', '-')}.html")


def _records(store: HistoryStore) -> dict[str, Mapping[str, Any]]:
    """Every revision and rebuild record, by id."""
    found: dict[str, Mapping[str, Any]] = {r: rec.doc for r, rec in store.revisions().items()}
    found.update((rec.id, rec.doc) for rec in rebuild_records(store))
    return found


def _find(records: dict[str, Mapping[str, Any]], revision: str, index: str) -> Mapping[str, Any]:
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
        f"The history index {index} has no revision or rebuild {revision!r} (recorded: {known}).",
        revision=revision,
        hint="A report exists for revisions and rebuilds that ran against this cluster: "
        "`esmigrate history` lists them.",
    )


def _figures(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the page shows in numbers, for ``--json`` and scripts."""
    out = []
    for record in records:
        for entry in migrations_of(record):
            report = entry["report"]
            figures = report.get("figures") or {}
            out.append(
                {
                    "revision": record_id(record),
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


def write_report(records: Sequence[Mapping[str, Any]], output: Path) -> dict[str, Any]:
    """Write the page of ``records`` (revision or rebuild records, as the history stores them,
    with a timeline) to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(records), encoding="utf-8")
    return {
        "path": str(output),
        "revisions": [record_id(r) for r in records],
        "migrations": _figures(records),
    }


def report_of_run(
    cluster: Cluster, config: Config, revisions: Sequence[str], output: Path
) -> dict[str, Any]:
    """After ``upgrade --report``: the page of the revisions this run applied that moved data;
    ``path`` None (and why) when none did."""
    records = HistoryStore(cluster, config.history_index).revisions()
    chosen = [records[r].doc for r in revisions if r in records and migrations_of(records[r].doc)]
    if not chosen:
        return {"path": None, "reason": "no op.migrate ran in this upgrade: nothing to report"}
    return write_report(chosen, output)


def report(config: Config, revision: str, *, output: Path | None = None) -> dict[str, Any]:
    """Write the migration report of ``revision`` (a revision id, a rebuild's id
    ``rebuild:ALIAS:RUN``, or a unique prefix of one, as recorded in the history) to ``output``
    (default ``esmigrate-report-REV.html``); returns its path and the figures it shows.

    :class:`~esmigrate.exceptions.NoReport` when the history has no such revision or rebuild,
    or it recorded no timeline.
    """
    with open_cluster(config) as cluster:
        records = _records(HistoryStore(cluster, config.history_index))
    record = _find(records, revision, config.history_index)
    name = record_id(record)
    if not migrations_of(record):
        raise NoReport(
            f"{'Rebuild' if name.startswith('rebuild:') else 'Revision'} {name} recorded no "
            "migration timeline: it moved no data with op.migrate (or ran before esmigrate "
            "recorded timelines).",
            revision=name,
            hint="Reports exist for revisions whose op.migrate ran and for rebuilds; "
            "`esmigrate history -v` shows what each did.",
        )
    return write_report([record], output or default_report_path(name))
