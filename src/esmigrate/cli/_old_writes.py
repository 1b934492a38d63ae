"""Verbs of the pipelines that upgrade old writers' documents after a cut-over:
``old-writes list|remove``."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state


def describe(entry: dict[str, Any]) -> str:
    """One line for a pipeline in place (``list`` and ``status``)."""
    aliases = ", ".join(entry["aliases"]) or "(no alias)"
    return (
        f"{escape(aliases)} → {escape(entry['index'])}: pipeline {escape(entry['pipeline'])}, "
        f"{entry['upgraded']} old-shaped of {entry['documents_through']} documents upgraded "
        "since the nodes started"
    )


@cli.group("old-writes")
def old_writes() -> None:
    """Pipelines that upgrade documents writers still send in the old shape after a cut-over
    (op.migrate(..., upgrade_old_writes=True))."""


@old_writes.command("list")
@click.argument("alias", required=False)
@connection_options
@pass_state
def list_(state: AppState, alias: str | None) -> None:
    """The upgrade pipelines in place (on ALIAS's indices only, if given)."""
    data = command.old_writes_list(state.config, alias)

    def human() -> None:
        if not data:
            console.print("No upgrade pipeline in place.")
        for entry in data:
            console.print(describe(entry), soft_wrap=True)

    emit(state, data, human)


@old_writes.command("remove")
@click.argument("alias")
@connection_options
@pass_state
def remove(state: AppState, alias: str) -> None:
    """Take the upgrade pipeline off ALIAS's indices, once every writer writes the new shape."""
    data = command.old_writes_remove(state.config, alias)

    def human() -> None:
        if not data:
            console.print(f"No upgrade pipeline on the indices of {escape(alias)}: nothing to do.")
        for entry in data:
            console.print(
                f"Removed {escape(entry['pipeline'])} from {escape(entry['index'])} "
                f"({entry['upgraded']} old-shaped documents upgraded since the nodes started).",
                soft_wrap=True,
            )

    emit(state, data, human)
