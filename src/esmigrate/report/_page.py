"""The report page: one self-contained HTML document (inline CSS and SVG, no script, no link
to fetch), from revision records as the history stores them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from itertools import pairwise
from typing import Any

from esmigrate._version import __version__
from esmigrate.report._chart import line_chart, phase_chart

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2630;
margin:0;background:#f4f6f8}
main{max-width:820px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5a6572;margin:0 0 12px}
section.migration{background:#fff;border:1px solid #dde2e7;border-radius:8px;padding:16px 20px;
margin:16px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 4px}
.card{border:1px solid #dde2e7;border-radius:6px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#5a6572;font-size:12px}
.card.bad b{color:#c0392b}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e8ecef;vertical-align:top}
th{color:#5a6572;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f0f2f4;padding:1px 4px;
border-radius:3px}
svg.chart{max-width:100%;height:auto;font:11px system-ui,sans-serif;fill:#5a6572}
svg .grid{stroke:#e8ecef}svg .axis{stroke:#9aa5b1}
svg .line{fill:none;stroke:#3d7dd8;stroke-width:2}
svg .block{fill:#e76f51;opacity:.18}
.legend{color:#5a6572;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;
background:#e76f51;opacity:.35;margin-right:4px}
footer{color:#8a95a1;font-size:12px;margin-top:24px}
"""


#: The status a rebuild's section shows for the state of its record (an op.migrate entry's
#: status is its log entry's).
_REBUILD_STATUS = {"applied": "done", "failed": "failed"}


def record_id(record: Mapping[str, Any]) -> str:
    """A revision record's revision, a rebuild record's id."""
    return str(record.get("id") if record.get("kind") == "rebuild" else record.get("revision"))


def migrations_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The migrations of a record that recorded a timeline: a revision's ``op.migrate`` log
    entries, or a rebuild's one run (its record holds the same ``report``)."""
    if record.get("kind") == "rebuild":
        report = record.get("report") or {}
        if not report.get("timeline"):
            return []
        return [
            {
                "op": "migrate",
                "summary": f"rebuild {record.get('alias')} to {record.get('to')}",
                "status": _REBUILD_STATUS.get(str(record.get("state")), "running"),
                "report": report,
                "interrupted_runs": record.get("interrupted_runs") or [],
            }
        ]
    return [
        entry
        for entry in record.get("log") or []
        if entry.get("op") == "migrate" and (entry.get("report") or {}).get("timeline")
    ]


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return escape(str(value))


def _card(label: str, value: Any, figure: str, *, bad: bool = False) -> str:
    return (
        f'<div class="card{" bad" if bad else ""}"><b data-figure="{figure}">{_num(value)}</b>'
        f"<span>{escape(label)}</span></div>"
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: int = 0) -> str:
    """``numeric``: how many trailing columns are right-aligned numbers."""
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="n"' if i >= len(row) - numeric else ""
            out.append(f"<td{cls}>{_num(cell)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def rates(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Docs/s between consecutive ``(seconds, copied)`` samples, at the later one."""
    out: list[tuple[float, float]] = []
    for (t0, c0), (t1, c1) in pairwise(points):
        if t1 > t0:
            out.append((float(t1), max(0.0, (c1 - c0) / (t1 - t0))))
    return out


def block_window(
    timeline: Mapping[str, Any], figures: Mapping[str, Any]
) -> tuple[float, float] | None:
    """Where the write block sits on the timeline: from the ``blocked`` event, as long as the
    migrator measured it."""
    starts = [float(p["start"]) for p in timeline.get("phases", []) if p["phase"] == "blocked"]
    seconds = figures.get("blocked_seconds")
    if not starts or not seconds:
        return None
    return starts[-1], starts[-1] + float(seconds)


def _migration(entry: Mapping[str, Any]) -> str:
    report: Mapping[str, Any] = entry["report"]
    timeline: Mapping[str, Any] = report["timeline"]
    figures: Mapping[str, Any] = report.get("figures") or {}
    points = [(float(t), float(c)) for t, c in timeline.get("points", [])]
    phases = timeline.get("phases", [])
    x_max = max(float(timeline.get("elapsed_s") or 0), max((t for t, _ in points), default=0.0))
    window = block_window(timeline, figures)
    dead = report.get("dead_letters") or {}
    validation = report.get("validation") or {}
    rounds = [p for p in phases if p["phase"] == "catchup"]
    status = entry.get("status", "running")
    out = [
        '<section class="migration">',
        f"<h2>{escape(str(entry.get('summary', 'migrate')))}</h2>",
        f'<p class="meta">status <b data-figure="status">{escape(str(status))}</b>'
        + (
            f" · {escape(str(figures.get('source')))} → {escape(str(figures.get('target')))}"
            if figures.get("target")
            else ""
        )
        + f" · started {escape(str(timeline.get('started_at', '')))}</p>",
        '<div class="cards">',
        _card("documents in the new index", figures.get("final_count"), "documents"),
        _card("documents copied", timeline.get("copied"), "copied"),
        _card("catch-up rounds", len(rounds), "rounds"),
        _card("write block (s)", figures.get("blocked_seconds"), "write-block-seconds"),
        _card("dead letters", dead.get("count", 0), "dead-letters", bad=bool(dead.get("count"))),
        _card(
            "validation differences",
            validation.get("found", 0) if validation else None,
            "validation-differences",
            bad=bool(validation.get("found")),
        ),
        _card("duration (s)", float(timeline.get("elapsed_s") or 0.0), "duration"),
        "</div>",
        "<h3>Timeline</h3>",
        phase_chart(phases, x_max=x_max, window=window),
        '<p class="legend"><i></i>write block</p>',
        "<h3>Documents copied over time</h3>",
        line_chart(
            "copied", "Documents copied", points, x_max=x_max, y_label="documents", window=window
        ),
        "<h3>Copy rate</h3>",
        line_chart("rate", "Docs/s", rates(points), x_max=x_max, y_label="docs/s", window=window),
        "<h3>Phases</h3>",
        _table(
            ["phase", "round", "start (s)", "end (s)", "documents"],
            (
                (p["phase"], p["round"] or "", float(p["start"]), float(p["end"]), int(p["done"]))
                for p in phases
            ),
            numeric=3,
        ),
    ]
    if timeline.get("dropped_phases"):
        out.append(f"<p>{int(timeline['dropped_phases'])} later phase changes merged.</p>")
    earlier = entry.get("interrupted_runs") or []
    if earlier:
        out.append("<h3>Interrupted runs</h3>")
        out.append(
            f'<p><b data-figure="interrupted-runs">{len(earlier)}</b> earlier run(s) stopped '
            "before this one resumed the migration from its checkpoint (the charts are this "
            "run's):</p>"
        )
        out.append(
            _table(
                ["started", "last phase", "seconds", "documents copied"],
                (
                    (
                        run["timeline"].get("started_at"),
                        (run["timeline"].get("phases") or [{"phase": "—"}])[-1]["phase"],
                        float(run["timeline"].get("elapsed_s") or 0.0),
                        int(run["timeline"].get("copied") or 0),
                    )
                    for run in earlier
                    if run.get("timeline")
                ),
                numeric=2,
            )
        )
    out.append("<h3>Catch-up rounds</h3>")
    if rounds:
        out.append(
            _table(
                ["round", "documents", "seconds", "under the write block"],
                (
                    (
                        int(r["round"]),
                        int(r["done"]),
                        float(r["end"]) - float(r["start"]),
                        "yes" if window and float(r["start"]) >= window[0] else "no",
                    )
                    for r in rounds
                ),
                numeric=3,
            )
        )
    else:
        out.append("<p>None.</p>")
    out.append("<h3>Write-block window</h3>")
    if figures.get("blocked_seconds") is not None and figures.get("cut_over_at"):
        out.append(
            f"<p>Writes to <code>{escape(str(figures.get('source')))}</code> were blocked for "
            f'<b data-figure="write-block">{float(figures["blocked_seconds"]):.3f}</b> s '
            "(writers got 403 and retried); where the window went:</p>"
        )
        breakdown = figures.get("blocked_breakdown") or {}
        out.append(_table(["step", "seconds"], breakdown.items(), numeric=1))
    else:
        out.append("<p>No write block (the migration did not reach its cut-over).</p>")
    out.append("<h3>Dead letters</h3>")
    first = dead.get("first") or []
    if dead.get("count"):
        out.append(
            f"<p>{_num(dead.get('count'))} document(s) rejected, in "
            f"<code>{escape(str(dead.get('index')))}</code>"
            + (f"; the first {len(first)}:" if first else ".")
            + "</p>"
        )
        if first:
            out.append(
                _table(
                    ["id", "stage", "error", "reason"],
                    (
                        (d.get("id"), d.get("stage"), d.get("error_type"), d.get("reason"))
                        for d in first
                    ),
                )
            )
    else:
        out.append("<p>None.</p>")
    out.append("<h3>Validation</h3>")
    if validation:
        diffs = validation.get("differences") or []
        size = validation.get("sample_size")
        out.append(
            f"<p>{_num(validation.get('found', 0))} difference(s)"
            + (f"; a sample of {_num(size)} documents deep-compared" if size else "")
            + ".</p>"
        )
        if diffs:
            out.append(
                _table(
                    ["check", "document", "expected", "actual"],
                    (
                        (
                            d.get("check"),
                            d.get("id") or d.get("paths"),
                            d.get("expected"),
                            d.get("actual"),
                        )
                        for d in diffs
                    ),
                )
            )
    else:
        out.append("<p>Not run.</p>")
    out.append("<h3>Rollback point</h3>")
    point = report.get("rollback_point")
    if point:
        out.append(
            f'<p><code data-figure="rollback-point">{escape(str(point["name"]))}</code>: the old '
            f"index <code>{escape(str(point.get('index')))}</code> is kept; "
            f"<code>esmigrate rollback {escape(str(point['name']))}</code> points the aliases back "
            "to it, carrying the writes made since the cut-over.</p>"
        )
    else:
        out.append("<p>None recorded.</p>")
    out.append("</section>")
    return "".join(out)


def render(records: Sequence[Mapping[str, Any]], *, title: str = "Migration report") -> str:
    """The report page of ``records`` (revision or rebuild records with a timeline)."""
    body = []
    for record in records:
        rebuild = record.get("kind") == "rebuild"
        body.append(
            f"<h1>{'Rebuild' if rebuild else 'Revision'} <code>{escape(record_id(record))}</code>: "
            f"{escape(str(record.get('message') or ''))}</h1>"
            f'<p class="meta">{escape(str(record.get("state", "")))} · '
            f"{escape(str(record.get('direction', 'rebuild' if rebuild else 'upgrade')))} · started "
            f"{escape(str(record.get('started_at') or ''))}"
            + (
                f" · {float(record['duration_s']):.1f} s"
                if record.get("duration_s") is not None
                else ""
            )
            + "</p>"
        )
        body.extend(_migration(entry) for entry in migrations_of(record))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(body)
        + f"<footer>esmigrate {escape(__version__)}</footer></main></body></html>\n"
    )
