from __future__ import annotations

import click

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state

_MARK = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}


@cli.command()
@click.argument("target", default="head")
@click.option("--snapshot-repository", help="Also verify this snapshot repository.")
@connection_options
@pass_state
def preflight(state: AppState, target: str, snapshot_repository: str | None) -> None:
    """Checks before a production upgrade to TARGET; exit 1 when one fails. Writes nothing."""
    report = command.preflight(state.config, target, snapshot_repository=snapshot_repository)

    def human() -> None:
        for check in report.checks:
            console.print(f"{_MARK[check.status]}  {check.name:<20} {check.detail}")
            if check.hint and check.status != "ok":
                console.print(f"      {'':<20} [dim]{check.hint}[/dim]")
        console.print(
            "Ready." if report.ok else "[red]Not ready: fix the failed checks first.[/red]"
        )

    emit(state, report.to_dict(), human)
    if not report.ok:
        raise click.exceptions.Exit(1)
