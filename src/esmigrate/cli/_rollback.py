"""Verbs of rollback points: ``rollback-point create|list|show|cleanup``, ``rollback``,
``monitor``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from esmigrate import command
from esmigrate.cli._app import (
    AppState,
    cli,
    connection_options,
    console,
    emit,
    exit_with,
    pass_state,
)
from esmigrate.config import POINT_KINDS as KINDS
from esmigrate.exceptions import ConfigError, ExitCode


@cli.group("rollback-point")
def rollback_point() -> None:
    """Named rollback points: where aliases point and what their indices hold."""


@rollback_point.command("create")
@click.argument("name")
@click.argument("aliases", nargs=-1, required=True)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    help="What keeps the state: the indices (retained), a _clone of each (clone), a snapshot "
    "(snapshot). Default: rollback_point_kind of esmigrate.toml, else retained.",
)
@click.option(
    "--snapshot-repository",
    help="Snapshot the indices to this repository (kind snapshot; an extra for the others).",
)
@click.option("--note", default="", help="Free text shown by list/show.")
@connection_options
@pass_state
def create(
    state: AppState,
    name: str,
    aliases: tuple[str, ...],
    kind: str | None,
    snapshot_repository: str | None,
    note: str,
) -> None:
    """Record rollback point NAME for ALIASES."""
    data = command.rollback_point_create(
        state.config,
        name,
        list(aliases),
        kind=kind,
        snapshot_repository=snapshot_repository,
        note=note,
    )

    def human() -> None:
        console.print(f"Rollback point [bold]{name}[/bold] ({data['point_kind']}) recorded:")
        for alias, targets in data["aliases"].items():
            console.print(f"  {alias} → {', '.join(targets)}")
        for index, clone in data["copies"].items():
            console.print(f"  {index} cloned to {clone}")
        if data["snapshot"]:
            snap = data["snapshot"]
            console.print(f"  snapshot {snap['repository']}/{snap['snapshot']}: {snap['state']}")

    emit(state, data, human)


@rollback_point.command("list")
@connection_options
@pass_state
def list_(state: AppState) -> None:
    """List rollback points, oldest first."""
    data = command.rollback_point_list(state.config)

    def human() -> None:
        if not data:
            console.print("No rollback points.")
        for p in data:
            aliases = "; ".join(f"{a} → {', '.join(t)}" for a, t in p["aliases"].items())
            snap = " (snapshot)" if p["snapshot"] and p["point_kind"] != "snapshot" else ""
            console.print(
                f"[bold]{p['name']}[/bold]  {p['created_at']}  {p['point_kind']}  {aliases}{snap}"
            )
            if p["note"]:
                console.print(f"    {p['note']}")

    emit(state, data, human)


@rollback_point.command("show")
@click.argument("name")
@connection_options
@pass_state
def show(state: AppState, name: str) -> None:
    """Show rollback point NAME."""
    data = command.rollback_point_show(state.config, name)
    emit(state, data, lambda: console.print_json(json.dumps(data, default=str)))


@rollback_point.command("cleanup")
@click.option("--keep", default=3, show_default=True, help="Newest points to keep.")
@click.option("--older-than", metavar="DURATION",
              help="Only delete points older than this: 24h, 7d, 90m (a bare number: seconds).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@connection_options
@pass_state
def cleanup(state: AppState, keep: int, older_than: str | None, dry_run: bool) -> None:
    """Carry out the clean-ups `deploy --cleanup-after` scheduled once due, then delete old
    rollback points and the indices/snapshots only they reference."""
    data = command.rollback_point_cleanup(
        state.config, keep=keep, older_than=older_than, dry_run=dry_run
    )

    def human() -> None:
        verb = "Would delete" if dry_run else "Deleted"
        console.print(f"{verb} points: {', '.join(data['points_deleted']) or 'none'}")
        console.print(f"{verb} indices: {', '.join(data['indices_deleted']) or 'none'}")
        console.print(f"{verb} snapshots: {', '.join(data['snapshots_deleted']) or 'none'}")
        for index, why in data["protected"].items():
            console.print(f"Kept {index}: {why}")
        for done in data["scheduled_done"]:
            console.print(f"Scheduled clean-up {done['id']} (due {done['due_at']}) carried out.")
        for waiting in data["scheduled_pending"]:
            console.print(
                f"Kept {', '.join(waiting['points'])}: clean-up scheduled for {waiting['due_at']}"
            )

    emit(state, data, human)


@cli.command("rollback")
@click.argument("name")
@click.option("--reverse-rules", help="module:attr of the downgrade transform (new → old).")
@click.option("--discard-writes", is_flag=True, help="Drop writes made since the cut-over.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the writes at risk.")
@connection_options
@pass_state
def rollback_cmd(
    state: AppState, name: str, reverse_rules: str | None, discard_writes: bool, dry_run: bool
) -> None:
    """Point the aliases back to rollback point NAME, carrying writes made since back."""
    data = command.rollback(
        state.config,
        name,
        reverse_rules=reverse_rules,
        discard_writes=discard_writes,
        dry_run=dry_run,
    )

    def human() -> None:
        if dry_run:
            console.print(
                f"Rollback to {name}: mode {data['mode']}, "
                f"{data['writes_at_risk']} operation(s) made since the cut-over."
            )
            for i, op in enumerate(data["plan"], 1):
                console.print(f"{i}. {op['kind']}: {op['summary']}")
            return
        aliases = "; ".join(f"{a} → {', '.join(t)}" for a, t in data["aliases"].items())
        if data.get("already"):
            console.print(
                f"Already rolled back to [bold]{name}[/bold] at {data['already']}: {aliases}; "
                "nothing to do (`esmigrate rollback-point show` has its figures)."
            )
            return
        console.print(f"Rolled back to [bold]{name}[/bold]: {aliases}")
        console.print(
            f"  carried back {data['carried']}, deletes reconciled {data['reconciled_deletes']}, "
            f"discarded {data['discarded']}, write block {data['blocked_seconds']:.2f}s"
        )
        recorded = data.get("recorded")
        if recorded and recorded["state"] == "rolled_back":
            again = (
                "`esmigrate upgrade` applies it again"
                if recorded["kind"] == "revision"
                else "`esmigrate rebuild` rebuilds again"
            )
            console.print(
                f"  the history records {recorded['kind']} {escape(recorded['id'])} as rolled "
                f"back ({again})",
                soft_wrap=True,
            )
        elif recorded:
            console.print(
                f"  the history records the rollback on revision {escape(recorded['id'])}, "
                "which stays applied: revisions applied after it build on it",
                soft_wrap=True,
            )

    emit(state, data, human)


@cli.command("monitor")
@click.argument("alias")
@click.option("--rollback-to", help="Rollback point to return to when unhealthy.")
@click.option("--duration", default=600.0, show_default=True, help="Seconds to watch.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between samples.")
@click.option("--consecutive", default=3, show_default=True, help="Failed samples that trip.")
@click.option("--query", help="Search body (JSON) of the probe run through ALIAS.")
@click.option("--max-error-rate", default=0.0, show_default=True, help="Probe error ratio.")
@click.option("--max-latency-ms", type=float, help="Probe p99 latency limit.")
@click.option("--max-drop", default=0.1, show_default=True, help="Count drop ratio vs the point.")
@click.option("--yellow-unhealthy", is_flag=True, help="Treat yellow health as unhealthy.")
@click.option("--reverse-rules", help="module:attr of the downgrade transform (new → old).")
@click.option("--discard-writes", is_flag=True, help="On rollback, drop writes since cut-over.")
@connection_options
@pass_state
def monitor_cmd(
    state: AppState,
    alias: str,
    rollback_to: str | None,
    duration: float,
    interval: float,
    consecutive: int,
    query: str | None,
    max_error_rate: float,
    max_latency_ms: float | None,
    max_drop: float,
    yellow_unhealthy: bool,
    reverse_rules: str | None,
    discard_writes: bool,
) -> None:
    """Watch ALIAS's health; with --rollback-to, roll back when a check keeps failing.
    Exit status 3 when it found the alias unhealthy."""
    body: dict[str, Any] | None = None
    if query:
        try:
            body = json.loads(query)
        except ValueError as exc:
            raise ConfigError(
                f"--query is not valid JSON: {exc}.",
                hint='Pass a search body, e.g. --query \'{"query": {"match_all": {}}}\'.',
            ) from None

    def on_sample(sample: Any) -> None:
        if not state.json_output and not sample.ok:
            console.print(f"[yellow]{sample.check}[/yellow]: {sample.detail}")

    data = command.monitor(
        state.config,
        alias,
        rollback_to=rollback_to,
        duration=duration,
        interval=interval,
        consecutive=consecutive,
        query=body,
        max_error_rate=max_error_rate,
        max_latency_ms=max_latency_ms,
        max_drop=max_drop,
        yellow_ok=not yellow_unhealthy,
        reverse_rules=reverse_rules,
        discard_writes=discard_writes,
        on_sample=on_sample,
    )

    def human() -> None:
        if data["healthy"]:
            console.print(f"{alias}: healthy ({data['samples']} samples).")
            return
        console.print(f"[red]{alias}: unhealthy[/red]: {data['reason']}")
        if data["rollback"]:
            console.print(f"Rolled back to {rollback_to}.")

    emit(state, data, human)
    if not data["healthy"]:
        exit_with(ExitCode.PROBLEM)
