from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from esmigrate import command
from esmigrate.bench import APPROACHES, BenchReport, BenchRow, phase_text
from esmigrate.cli._app import (
    AppState,
    cli,
    connection_options,
    console,
    emit,
    err_console,
    pass_state,
)
from esmigrate.cli._devserver import engine_option


def render(report: BenchReport) -> Table:
    """The report as the table docs/performance.md shows."""
    table = Table(
        title=f"{report.engine}, {report.shape} documents, {report.shards} shards", show_edge=False
    )
    columns = ["approach", "docs", "docs/s", "MB/s", "ratio", "phases (s)", "block s", "RSS MB"]
    if report.writers:
        columns += ["live writes", "refused s"]
    for name in columns:
        left = name in ("approach", "phases (s)", "live writes")
        table.add_column(name, justify="left" if left else "right")
    for r in report.rows:
        live = [r.writes.text(), f"{r.writes.blocked_s:.2f}"] if r.writes else ["", ""]
        table.add_row(
            escape(r.label),
            f"{r.docs:,}",
            f"{r.docs_per_s:,.0f}",
            f"{r.mb_per_s:.1f}",
            "" if r.ratio is None else f"{r.ratio:.2f}",
            phase_text(r),
            "" if r.blocked_seconds is None else f"{r.blocked_seconds:.2f}",
            f"{r.peak_rss_mb:.0f}",
            *(live if report.writers else []),
        )
    table.caption = "ratio: docs/s over the hand painless _reindex's at the same size"
    if report.writers:
        table.caption += (
            f"; a live writer did {report.writers:g} operations/s through the alias "
            "(refused s: the longest its writes were refused in a row)"
        )
    return table


@cli.command()
@connection_options
@click.option(
    "--docs",
    type=click.IntRange(min=1),
    multiple=True,
    default=(100_000,),
    show_default=True,
    help="Documents in the source; repeat for several sizes in one run.",
)
@click.option(
    "--shape",
    type=click.Choice(["post", "product"]),
    default="post",
    show_default=True,
    help="Blog posts (small) or products (larger, nested).",
)
@click.option("--shards", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Documents the guide's approach moves (it waits for a refresh per document).",
)
@click.option(
    "--only",
    type=click.Choice(list(APPROACHES)),
    multiple=True,
    help="Measure only these approaches (repeatable; default: all).",
)
@click.option(
    "--writers",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="RATE",
    help="Run a live writer at RATE operations/s (index, update, delete) through the alias "
    "during each approach, and report what became of its writes and how long they were refused.",
)
@click.option(
    "--embedded", is_flag=True, help="Start a dev-server node for the run (stopped after it)."
)
@engine_option
@click.option("--heap", help="JVM heap of the --embedded node, e.g. 2g.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the results as a PNG here (needs esmigrate[bench]).",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table as Markdown here.",
)
@pass_state
def bench(
    state: AppState,
    docs: tuple[int, ...],
    shape: Any,
    shards: int,
    sample: int,
    only: tuple[Any, ...],
    writers: float,
    embedded: bool,
    engine: str | None,
    heap: str | None,
    chart: Path | None,
    markdown: Path | None,
) -> None:
    """Measure ways of moving an index to a new mapping, side by side: _reindex with and without
    painless, esmigrate's painless and Python paths, the client helpers, the guide's loop."""

    def progress(row: BenchRow) -> None:
        if not state.json_output:
            err_console.print(
                f"  {row.size:,} docs  {escape(row.label)}: {row.docs_per_s:,.0f} docs/s"
            )

    report = command.bench(
        state.config,
        docs=docs,
        shape=shape,
        shards=shards,
        sample=sample,
        approaches=only or tuple(APPROACHES),
        embedded=embedded,
        engine=engine,
        heap=heap,
        chart=chart,
        writers=writers,
        on_row=progress,
    )
    if markdown is not None:
        markdown.write_text(report.to_markdown())
    emit(state, report.to_dict(), lambda: console.print(render(report)))
