from __future__ import annotations

from pathlib import Path

import click

from esmigrate import command
from esmigrate.cli._app import (
    AppState,
    cli,
    connection_options,
    console,
    emit,
    exit_with,
    pass_state,
    progress_shown,
)
from esmigrate.deploy import deploy as run_deploy
from esmigrate.exceptions import ExitCode

_MARK = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}


@cli.command()
@click.argument("target", default="head")
@click.option("--snapshot-repository", help="Also verify this snapshot repository.")
@connection_options
@pass_state
def preflight(state: AppState, target: str, snapshot_repository: str | None) -> None:
    """Checks before a production upgrade to TARGET; exit 3 when one fails. Writes nothing."""
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
        exit_with(ExitCode.PROBLEM)


@cli.command()
@click.argument("target", default="head")
@click.option("--monitor", "monitor_seconds", type=float, default=0.0, show_default=True,
              help="Watch every migrated alias, all at once, this many seconds; roll back one whose check keeps failing.")  # fmt: skip
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="Seconds between health samples."
)
@click.option(
    "--keep", type=int, default=3, show_default=True, help="Rollback points kept by the clean-up."
)
@click.option("--snapshot-repository", help="Verify this repository in the pre-flight.")
@click.option("--reverse-rules", "reverse", multiple=True, metavar="ALIAS=MODULE:ATTR",
              help="Downgrade transform used to carry writes back if ALIAS is rolled back.")  # fmt: skip
@click.option("--window", "windows", multiple=True, metavar='"DAYS HH:MM-HH:MM ZONE"',
              help='Maintenance window to deploy in, e.g. "Sat 02:00-04:00 Europe/Berlin" (repeatable; default: [esmigrate.deploy] windows).')  # fmt: skip
@click.option("--wait-for-window", is_flag=True,
              help="Outside the window, wait for it to open instead of refusing (exit 6).")  # fmt: skip
@click.option("--cleanup-after", metavar="DURATION",
              help="Keep this deploy's rollback points this long (24h, 7d); a later deploy or `rollback-point cleanup` deletes them (default: [esmigrate.deploy] cleanup_after).")  # fmt: skip
@click.option("--older-than", metavar="DURATION",
              help="The clean-up deletes only rollback points older than this (24h, 7d).")  # fmt: skip
@click.option("--check", "checks", multiple=True, metavar="[ALIAS=]MODULE:FN",
              help="Your own health check in the --monitor window: fn(cluster) -> bool; with ALIAS=, for that alias only (repeatable).")  # fmt: skip
@click.option("--max-latency", metavar="DURATION",
              help="Roll back an alias whose search probe p99 latency exceeds this (500ms, 2s).")  # fmt: skip
@click.option("--max-error-rate", type=float, default=0.0, show_default=True,
              help="Share of failed search probes tolerated (0 to 1).")  # fmt: skip
@click.option("--rollback-all-on-failure", is_flag=True,
              help="If a revision fails, roll back the cut-overs this deploy made before it.")  # fmt: skip
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the migration report (HTML) of the upgrade's revisions.")  # fmt: skip
@connection_options
@pass_state
def deploy(
    state: AppState,
    target: str,
    monitor_seconds: float,
    interval: float,
    keep: int,
    snapshot_repository: str | None,
    reverse: tuple[str, ...],
    windows: tuple[str, ...],
    wait_for_window: bool,
    cleanup_after: str | None,
    older_than: str | None,
    checks: tuple[str, ...],
    max_latency: str | None,
    max_error_rate: float,
    rollback_all_on_failure: bool,
    report_path: Path | None,
) -> None:
    """Production run: pre-flight, upgrade, monitor (auto rollback), clean-up, log."""
    rules: dict[str, str] = {}
    for item in reverse:
        alias, sep, ref = item.partition("=")
        if not sep or not ref:
            raise click.BadParameter(
                f"{item!r}: expected ALIAS=MODULE:ATTR", param_hint="--reverse-rules"
            )
        rules[alias] = ref
    with progress_shown() as display:
        log = run_deploy(
            state.config,
            target,
            monitor_seconds=monitor_seconds,
            interval=interval,
            keep=keep,
            snapshot_repository=snapshot_repository,
            reverse_rules=rules,
            windows=list(windows) or None,
            wait_for_window=wait_for_window,
            cleanup_after=cleanup_after,
            older_than=older_than,
            checks=list(checks),
            max_latency=max_latency,
            max_error_rate=max_error_rate,
            rollback_all_on_failure=rollback_all_on_failure,
            reporter=None if state.json_output else console.print,
            on_progress=display,
            report=report_path,
        )

    def human() -> None:
        for step in log["steps"]:
            console.print(f"  {step['step']:<16} {step['seconds']:>8.1f}s")
            written = step.get("report")
            if written is not None:
                where = written["path"] or f"none ({written['reason']})"
                console.print(f"  report: {where}", markup=False, soft_wrap=True)
        console.print(
            f"Deployment {log['id']}: {log['outcome']} (logged in {state.config.history_index})."
        )

    emit(state, log, human)
