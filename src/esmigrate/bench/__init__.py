"""``esmigrate bench``: how fast each way of moving an index to a new mapping is, measured side
by side in one run on the same node and the same documents.

:func:`run_bench` creates the source (``shape``, one index per size), runs every approach of
:data:`APPROACHES` against it in a process of its own (so its peak RSS is its own) and returns a
:class:`BenchReport`: docs/s, MB/s, ratios to the hand-written painless ``_reindex``, esmigrate's
phase seconds and write-block window. :func:`draw_chart` turns it into a PNG (matplotlib: the
``esmigrate[bench]`` extra). Speed is reported, never asserted.

With ``writers``, a live writer (:class:`esmigrate.testing.LiveWriter`) indexes, updates and
deletes through the alias while each approach runs, and the row says what became of its writes:
lost, resurrected, reverted, and the longest time its writes were refused (the write block it
saw). Each approach then gets its own copy of the source (a ``_clone``: instant, hard links), as
the writer changes it.
"""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from esmigrate._livewriter import LiveWriter
from esmigrate.bench._approaches import APPROACHES, ApproachName, Job
from esmigrate.bench._data import SHAPES, Shape, ShapeName, make_source
from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import EsmigrateError, MissingClient, NotFoundError

#: What the ratios compare to: what a user would write by hand instead of esmigrate.
BASELINE: ApproachName = "reindex_painless"


@dataclass
class BenchRow:
    """One approach at one size."""

    approach: ApproachName
    label: str
    size: int
    docs: int
    seconds: float
    docs_per_s: float
    mb_per_s: float
    #: docs/s over the hand painless ``_reindex``'s at the same size (None: not measured).
    ratio: float | None
    copied: int
    peak_rss_mb: float
    phases: dict[str, float] = field(default_factory=dict)
    blocked_seconds: float | None = None
    #: Where the write block's seconds went: drain, final round, positions, reconcile, validate.
    blocked_breakdown: dict[str, float] = field(default_factory=dict)
    #: What became of the live writer's writes (``writers`` runs only).
    writes: WriterFigures | None = None


@dataclass
class WriterFigures:
    """The live writer's operations during one approach's run and what the index kept of
    them: documents lost, deleted ones back, updates reverted (0 each when nothing is lost);
    ``blocked_s``: the longest its writes were refused (a write block) in a row."""

    rate: float
    operations: int
    lost: int
    resurrected: int
    reverted: int
    blocked_s: float

    def text(self) -> str:
        wrong = self.lost + self.resurrected + self.reverted
        return f"{self.operations:,} ops, " + (
            "none lost"
            if not wrong
            else f"{self.lost:,} lost, {self.resurrected:,} back, {self.reverted:,} reverted"
        )


@dataclass
class BenchReport:
    engine: str
    shape: ShapeName
    shards: int
    sizes: list[int]
    #: Documents the guide's approach moved (it waits for a refresh per document).
    sample: int
    rows: list[BenchRow] = field(default_factory=list)
    #: Operations per second of the live writer during each approach (0: none).
    writers: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        """The report as a Markdown table (what docs/performance.md shows)."""
        writing = f" A live writer did {self.writers:g} operations/s through the alias." * bool(
            self.writers
        )
        lines = [
            f"{self.engine}, {self.shape} documents, {self.shards} shards; ratio: docs/s over "
            f"the hand painless `_reindex`'s at the same size.{writing}",
            "",
            "| approach | docs | docs/s | MB/s | ratio | phases (s) | write block (s) | "
            "peak RSS (MB) |" + " live writes | writes refused (s) |" * bool(self.writers),
            "|---|--:|--:|--:|--:|---|--:|--:|" + "---|--:|" * bool(self.writers),
        ]
        for r in self.rows:
            label = r.label.replace("_", "\\_")  # not emphasis: `_reindex`
            line = (
                f"| {label} | {r.docs:,} | {r.docs_per_s:,.0f} | {r.mb_per_s:.1f} | "
                + ("" if r.ratio is None else f"{r.ratio:.2f}")
                + f" | {phase_text(r)} | "
                + ("" if r.blocked_seconds is None else f"{r.blocked_seconds:.2f}")
                + f" | {r.peak_rss_mb:.0f} |"
            )
            if self.writers:
                line += f" {r.writes.text()} | {r.writes.blocked_s:.2f} |" if r.writes else " | |"
            lines.append(line)
        return "\n".join(lines) + "\n"


def phase_text(row: BenchRow) -> str:
    """esmigrate's phase seconds, in order: ``copy 3.0, catch-up 2.8, block 1.1 (drain 0.30,
    final round 0.10, positions 0.10, reconcile 0.40, validate 0.20)``."""
    names = {"copy": "copy", "catchup": "catch-up", "blocked": "block"}
    text = ", ".join(f"{names.get(k, k)} {v:.1f}" for k, v in row.phases.items())
    if row.blocked_breakdown:
        steps = {"block": "drain", "final_round": "final round"}
        text += (
            " ("
            + ", ".join(f"{steps.get(k, k)} {v:.2f}" for k, v in row.blocked_breakdown.items())
            + ")"
        )
    return text


def run_bench(
    cluster: Cluster,
    settings: ConnectionSettings,
    *,
    sizes: Sequence[int],
    shape: ShapeName = "post",
    shards: int = 2,
    sample: int = 20,
    approaches: Sequence[ApproachName] = tuple(APPROACHES),
    writers: float = 0.0,
    on_row: Callable[[BenchRow], None] | None = None,
) -> BenchReport:
    """Measure ``approaches`` at each of ``sizes`` documents on ``cluster`` (whose connection
    ``settings`` the approach processes and the live writer use), with a live writer at
    ``writers`` operations/s during each (0: none). Leaves nothing behind on the cluster."""
    report = BenchReport(str(cluster.engine), shape, shards, list(sizes), sample, writers=writers)
    approaches = [a for a in APPROACHES if a in approaches]  # always in the table's order
    prefix = f"esmigrate-bench-{uuid.uuid4().hex[:8]}"
    try:
        for size in sizes:
            _one_size(cluster, settings, report, SHAPES[shape], prefix, size, approaches, on_row)
    finally:
        _delete_prefixed(cluster, prefix)
    return report


def _one_size(
    cluster: Cluster,
    settings: ConnectionSettings,
    report: BenchReport,
    shape: Shape,
    prefix: str,
    size: int,
    approaches: Sequence[ApproachName],
    on_row: Callable[[BenchRow], None] | None,
) -> None:
    source = f"{prefix}-{size}-source"
    make_source(cluster, source, size, shape, shards=report.shards)
    stats = cluster.request(
        "GET", f"/{source}/_stats/store", params={"filter_path": "indices.*.primaries.store"}
    )
    per_doc = int(stats["indices"][source]["primaries"]["store"]["size_in_bytes"]) / max(size, 1)
    if report.writers:
        # The writers change the source: each approach copies its own clone of it.
        cluster.request("PUT", f"/{source}/_settings", body={"index.blocks.write": True})
    rows: list[BenchRow] = []
    try:
        for approach in approaches:
            base = f"{prefix}-{size}-{approach.replace('_', '-')}"
            live = bool(report.writers) and approach != "guide"
            if live:
                cluster.request(
                    "POST",
                    f"/{source}/_clone/{base}-source",
                    body={
                        "settings": {"index.blocks.write": False, "number_of_replicas": 0},
                    },
                )
            job = Job(
                approach=approach,
                shape=shape.name,
                source=f"{base}-source" if live else source,
                target=f"{base}-target",
                alias=f"{base}-alias",
                state_index=f"{base}-state",
                dead_letter_index=f"{base}-deadletter",
                shards=report.shards,
                limit=report.sample if approach == "guide" else None,
            )
            cluster.request(
                "POST",
                "/_aliases",
                body={"actions": [{"add": {"index": job.source, "alias": job.alias}}]},
            )
            writes = None
            try:
                if live:
                    measured, writes = _with_writer(cluster, settings, job, shape, size, report)
                else:
                    measured = _in_process(settings, job)
            finally:
                # Still on the source unless the approach moved it to its target.
                with contextlib.suppress(NotFoundError):
                    cluster.request("DELETE", f"/{job.source}/_alias/{job.alias}")
                _delete_prefixed(cluster, base)
            docs = int(measured["copied"]) if approach == "guide" else size
            seconds = float(measured["seconds"])
            row = BenchRow(
                approach=approach,
                label=APPROACHES[approach][0],
                size=size,
                docs=docs,
                seconds=round(seconds, 3),
                docs_per_s=round(docs / seconds, 1),
                mb_per_s=docs * per_doc / seconds / 1e6,
                ratio=None,
                copied=int(measured["copied"]),
                peak_rss_mb=round(float(measured["peak_rss_mb"]), 1),
                phases=dict(measured.get("phases") or {}),
                blocked_seconds=measured.get("blocked_seconds"),
                blocked_breakdown=dict(measured.get("blocked_breakdown") or {}),
                writes=writes,
            )
            rows.append(row)
            if on_row is not None:
                on_row(row)
    finally:
        _delete_prefixed(cluster, source)
    baseline = next((r.docs_per_s for r in rows if r.approach == BASELINE), None)
    for row in rows:
        # Not rounded: a slow approach on a tiny sample is far below 0.01 of the baseline.
        row.ratio = row.docs_per_s / baseline if baseline else None
    report.rows.extend(rows)


def _with_writer(
    cluster: Cluster,
    settings: ConnectionSettings,
    job: Job,
    shape: Shape,
    size: int,
    report: BenchReport,
) -> tuple[dict[str, Any], WriterFigures]:
    """Run ``job`` while a live writer works through its alias; what it measured and what
    became of the writes (read through the alias, wherever the approach left it)."""
    writer = LiveWriter(
        settings.urls[0],
        job.alias,
        rate=report.writers,
        initial=size,
        initial_prefix="",  # the source's ids are 0, 1, ...
        documents=shape.live_document,
        updates=shape.live_update,
        settings=settings,
    )
    try:
        writer.start()
    except RuntimeError as exc:
        raise EsmigrateError(
            f"The benchmark's live writer did not start: {exc}.",
            hint="Run the benchmark without --writers, or check that this machine reaches the "
            "cluster with the same settings.",
        ) from None
    try:
        measured = _in_process(settings, job)
    finally:
        writer.stop()
    done = writer.report()
    tally = done.tally(cluster, job.alias, map(str, range(size)), fields=shape.kept)
    return measured, WriterFigures(
        rate=report.writers,
        operations=done.operations,
        lost=tally.lost,
        resurrected=tally.resurrected,
        reverted=tally.reverted,
        blocked_s=round(done.blocked_longest_s, 3),
    )


def _in_process(settings: ConnectionSettings, job: Job) -> dict[str, Any]:
    """Run ``job`` in a fresh Python process (see ``_worker``); what it measured."""
    done = subprocess.run(
        [sys.executable, "-m", "esmigrate.bench._worker"],
        input=pickle.dumps((settings, job)),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise EsmigrateError(
            f"The benchmark's {APPROACHES[job.approach][0]!r} run failed: {tail[0]}",
            hint="Check the cluster's health and free disk, then run the benchmark again.",
        )
    measured: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return measured


def _delete_prefixed(cluster: Cluster, prefix: str) -> None:
    """Delete the benchmark's indices (and position indices) named ``prefix``*, one by one
    (Elasticsearch refuses wildcard deletes)."""
    rows = cluster.request(
        "GET",
        f"/_cat/indices/{prefix}*,.esmigrate-positions-{prefix}*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )
    for row in rows:
        name = str(row["index"])
        # A wildcard matches aliases too, and resolves them to their indices: only names.
        if name.startswith((prefix, f".esmigrate-positions-{prefix}")):
            with contextlib.suppress(NotFoundError):
                cluster.request("DELETE", f"/{name}")


def pyplot() -> Any:
    """matplotlib's pyplot (drawing to files); a clear error naming the extra when missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingClient(
            "The benchmark's chart needs matplotlib, which is not installed.",
            library="matplotlib",
            extra="esmigrate[bench]",
        ) from None
    return plt


def draw_chart(report: BenchReport, path: Path) -> None:
    """A small PNG of docs/s per approach, one bar per size."""
    plt = pyplot()
    labels = list(dict.fromkeys(r.label for r in report.rows))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) * len(report.sizes) + 1.2), dpi=90)
    height = 0.8 / max(len(report.sizes), 1)
    for k, size in enumerate(report.sizes):
        rate = {r.label: r.docs_per_s for r in report.rows if r.size == size}
        ys = [i + k * height for i in range(len(labels))]
        values = [rate.get(label, 0.0) for label in labels]
        bars = ax.barh(ys, values, height=height, label=f"{size:,} docs")
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=7)
    ax.set_yticks([i + height * (len(report.sizes) - 1) / 2 for i in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("documents per second (higher is better)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"{report.engine}, {report.shape} documents, {report.shards} shards", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = [
    "APPROACHES",
    "SHAPES",
    "BenchReport",
    "BenchRow",
    "WriterFigures",
    "draw_chart",
    "make_source",
    "phase_text",
    "pyplot",
    "run_bench",
]
