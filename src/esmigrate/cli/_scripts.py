"""Alembic's familiar verbs: ``current``, ``heads``, ``branches``, ``show REV`` (and the offline
``history --offline`` in :mod:`._migrations`)."""

from __future__ import annotations

import click
from rich.markup import escape

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state
from esmigrate.command import ScriptSummary


def script_line(script: ScriptSummary) -> str:
    """Alembic's one line per script: ``parents -> revision (head, branchpoint), message``."""
    parents = ", ".join(script.down_revisions) or "<base>"
    marks = [
        mark
        for mark, on in (
            ("head", script.is_head),
            ("branchpoint", script.is_branch_point),
            ("mergepoint", script.is_merge),
        )
        if on
    ]
    where = f" ({', '.join(marks)})" if marks else ""
    return f"{parents} -> [bold]{script.revision}[/bold]{where}, {escape(script.message)}"


def _print_scripts(scripts: list[ScriptSummary], nothing: str) -> None:
    if not scripts:
        console.print(nothing)
    for script in scripts:
        console.print(script_line(script), soft_wrap=True)


@cli.command()
@connection_options
@pass_state
def current(state: AppState) -> None:
    """The revision(s) the cluster is at."""
    data = command.current(state.config)

    def human() -> None:
        if not data.revisions and not data.unknown:
            console.print("Nothing applied yet (base).")
        for script in data.revisions:
            head = " (head)" if script.is_head else ""
            console.print(f"[bold]{script.revision}[/bold]{head}  {escape(script.message)}")
        for revision in data.unknown:
            console.print(f"[red]{revision}[/red]  (no script: see `esmigrate validate`)")

    emit(state, data.to_dict(), human)


@cli.command()
@connection_options
@pass_state
def heads(state: AppState) -> None:
    """The head revision(s) of the scripts (no cluster needed)."""
    data = command.heads(state.config)
    emit(
        state,
        {"heads": [s.to_dict() for s in data]},
        lambda: _print_scripts(data, "No migration scripts yet."),
    )


@cli.command()
@connection_options
@pass_state
def branches(state: AppState) -> None:
    """The branch points of the scripts: revisions several revisions follow (no cluster needed)."""
    data = command.branches(state.config)

    def human() -> None:
        _print_scripts(data, "No branch points: the revisions form one line.")
        for script in data:
            for child in script.children:
                console.print(f"    -> {child}")

    emit(state, {"branches": [s.to_dict() for s in data]}, human)


@cli.command()
@click.argument("revision")
@connection_options
@pass_state
def show(state: AppState, revision: str) -> None:
    """Details of one script: REVISION is an id, a unique prefix or head (no cluster needed)."""
    data = command.show(state.config, revision)
    script = data.script

    def human() -> None:
        console.print(
            f"Rev: [bold]{script.revision}[/bold]" + (" (head)" if script.is_head else "")
        )
        console.print(f"Parent: {', '.join(script.down_revisions) or '<base>'}")
        if script.children:
            console.print(f"Children: {', '.join(script.children)}")
        console.print(f"Path: {escape(script.path)}", soft_wrap=True)
        console.print(f"Checksum: {script.checksum}")
        console.print(f"\n    {escape(script.message)}\n")
        for direction, operations in (("upgrade", data.upgrade), ("downgrade", data.downgrade)):
            if operations is None:
                console.print(f"{direction}: none (this revision cannot be undone)")
                continue
            console.print(f"{direction}: {len(operations)} operation(s)")
            for n, op in enumerate(operations, start=1):
                console.print(f"  {n}. {escape(op['summary'])}", soft_wrap=True)

    emit(state, data.to_dict(), human)
