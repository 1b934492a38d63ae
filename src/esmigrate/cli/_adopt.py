"""`esmigrate adopt`: put an existing index behind an alias of the same name."""

from __future__ import annotations

import click

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state


@cli.command()
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print the requests; change nothing.")
@connection_options
@pass_state
def adopt(state: AppState, name: str, dry_run: bool) -> None:
    """Put the existing index NAME behind an alias called NAME (once, a few seconds of 403s)."""
    data = command.adopt(state.config, name, dry_run=dry_run)

    def human() -> None:
        if dry_run:
            for i, op in enumerate(data["plan"], 1):
                console.print(f"{i}. {op['kind']}: {op['summary']}")
                for r in op["requests"]:
                    console.print(f"     {r['method']} {r['path']}")
            return
        if data["already"]:
            console.print(f"{name} is already an alias (over {data['index']}); nothing to do.")
            return
        console.print(
            f"[bold]{name}[/bold] adopted: alias over [bold]{data['index']}[/bold] "
            f"(writes refused for {data['blocked_seconds']:.2f}s)."
        )
        console.print(data["explanation"])

    emit(state, data, human)
