"""report: the migration report of a revision, as an HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state


@cli.command()
@click.argument("revision")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page [default: esmigrate-report-REV.html].",
)
@connection_options
@pass_state
def report(state: AppState, revision: str, output: Path | None) -> None:
    """Write the migration report of REVISION (an id or a unique prefix): a self-contained
    HTML page with the timeline, documents copied over time, catch-up rounds, the write-block
    window, dead letters, the validation's differences and the rollback point."""
    data = command.report(state.config, revision, output=output)

    def human() -> None:
        for figures in data["migrations"]:
            blocked = figures["blocked_seconds"]
            console.print(
                f"{figures['summary']}: {figures['status']}, "
                f"{figures['copied'] or 0:,} documents copied in {figures['rounds']} catch-up "
                "round(s)" + (f", writes blocked {blocked:.3f} s" if blocked is not None else ""),
                soft_wrap=True,
                markup=False,
            )
        console.print(f"Wrote {data['path']}", soft_wrap=True, markup=False)

    emit(state, data, human)
