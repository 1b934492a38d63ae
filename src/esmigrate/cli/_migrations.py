"""Versioned migrations: init, revision, merge, plan, upgrade, downgrade, status, history,
validate, repair, baseline, stamp."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from esmigrate import command
from esmigrate.cli._app import (
    AppState,
    TargetCommand,
    cli,
    connection_options,
    console,
    emit,
    err_console,
    exit_with,
    pass_state,
    progress_shown,
    sigint_cancels,
)
from esmigrate.cli._old_writes import describe as describe_old_writes
from esmigrate.cli._scripts import script_line
from esmigrate.command import DEFAULT_SAMPLE
from esmigrate.exceptions import ClusterUnavailable, ExitCode
from esmigrate.progress import Reporter
from esmigrate.schedule import format_duration

lock_timeout_option = click.option(
    "--lock-timeout",
    type=float,
    help="Seconds to wait for another runner's lease before giving up "
    "[default: twice the lease TTL].",
)
lease_ttl_option = click.option(
    "--lease-ttl",
    type=float,
    help="Seconds this runner's lease lives without a heartbeat (config: lease_ttl).",
)


def _say(text: str) -> None:
    # No wrapping: plans and paths are copied from the terminal.
    console.print(text, soft_wrap=True)


def _reporter(state: AppState) -> Reporter | None:
    """Progress on stderr (stdout stays the result); a task polled every second says the same
    thing many times, so repeats are dropped."""
    if state.json_output:
        return None
    last: list[str] = [""]

    def report(message: str) -> None:
        if message != last[0]:
            last[0] = message
            err_console.print(escape(message), soft_wrap=True)

    return report


def _apply_ttl(state: AppState, lease_ttl: float | None) -> None:
    if lease_ttl is not None:
        state.overrides["lease_ttl"] = lease_ttl
        state._config = None


# -- project ----------------------------------------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option("--pyproject", is_flag=True, help="Write [tool.esmigrate] into pyproject.toml.")
@click.option("--url", help="Cluster URL to write into the config.")
@click.option("--history-index", default=".esmigrate", show_default=True)
@click.option("--migrations-dir", default="migrations", show_default=True)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
@pass_state
def init(
    state: AppState,
    directory: Path,
    pyproject: bool,
    url: str | None,
    history_index: str,
    migrations_dir: str,
    json_output: bool,
) -> None:
    """Create a project: esmigrate.toml (or pyproject.toml) and the migrations folder."""
    state.json_output = state.json_output or json_output
    data = command.init(
        directory,
        pyproject=pyproject,
        url=url,
        history_index=history_index,
        migrations_dir=migrations_dir,
    )

    def human() -> None:
        for path in data["written"]:
            _say(f"Wrote {path}")
        _say('Next: esmigrate revision -m "create the first index"')

    emit(state, data, human)


def _show_new(state: AppState, data: dict[str, Any]) -> None:
    def human() -> None:
        parents = ", ".join(data["down_revisions"]) or "base"
        _say(f"Wrote {data['path']} (revision {data['revision']}, after {parents})")

    emit(state, data, human)


@cli.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--rev-id", help="Revision id to use instead of a random one.")
@click.option(
    "--head",
    "heads",
    multiple=True,
    help="Revision(s) the new one follows (default: the current head); repeat to merge.",
)
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Fill upgrade() from the differences between schema_modules' Document classes and the cluster.",
)
@connection_options
@pass_state
def revision(
    state: AppState, message: str, rev_id: str | None, heads: tuple[str, ...], autogenerate: bool
) -> None:
    """Write a new migration script from the template."""
    _show_new(
        state,
        command.revision(
            state.config,
            message,
            rev_id=rev_id,
            head=list(heads) or None,
            autogenerate=autogenerate,
        ),
    )


@cli.command()
@click.argument("revisions", nargs=-1)
@click.option("-m", "--message", default="merge heads", show_default=True)
@click.option("--rev-id", help="Revision id to use instead of a random one.")
@connection_options
@pass_state
def merge(state: AppState, revisions: tuple[str, ...], message: str, rev_id: str | None) -> None:
    """Write a revision joining REVISIONS (default: all heads) into one head."""
    _show_new(
        state,
        command.merge(state.config, message, revisions=list(revisions) or None, rev_id=rev_id),
    )


# -- planning and running ---------------------------------------------------------------------


def _print_plan(data: dict[str, Any]) -> None:
    verb = data["direction"]
    where = "offline" if data.get("offline") else data.get("url", "")
    revisions = data["revisions"]
    if not revisions:
        _say(f"Nothing to {verb}: the cluster is already at {data['target']}.")
        return
    _say(
        f"[bold]Plan[/bold]: {verb} to {escape(data['target'])} ({escape(where)}, history "
        f"{escape(data['history_index'])}): {len(revisions)} revision(s), "
        f"{data['requests']} request(s)"
    )
    for rev in revisions:
        _say(f"\n[bold]{rev['revision']}[/bold]  {escape(rev['message'])}  ({escape(rev['path'])})")
        if not rev["operations"]:
            _say("  (no operations)")
        for n, op in enumerate(rev["operations"], start=1):
            _say(f"  {n}. {escape(op['summary'])}")
            for request in op["requests"]:
                target = request["path"]
                if request.get("params"):
                    target += "?" + "&".join(
                        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                        for k, v in request["params"].items()
                    )
                _say(f"       {request['method']} {escape(target)}")
                if request.get("body") is not None:
                    _say(f"       {escape(json.dumps(request['body'], sort_keys=True))}")
                if request.get("note"):
                    _say(f"       [dim]({escape(request['note'])})[/dim]")
            point = op.get("rollback_point")
            if point is not None:
                # What a rollback would take: named here, so that it is known before the run.
                what = (
                    f"{point['name']} ({point['kind']}, {point['when']})" if point["name"] else ""
                )
                note = point.get("note")
                _say(
                    f"     rollback point: {escape(what)}"
                    + (f"; {escape(note)}" if note and what else escape(note or ""))
                )
    for busy in data.get("running", []):
        how = "is being applied by" if busy["alive"] else "was left running by the dead"
        _say(
            f"\n[yellow]Note[/yellow]: {busy['revision']} {how} runner {escape(busy['owner'] or '?')}."
        )


@cli.command(cls=TargetCommand)
@click.argument("target", default="head")
@click.option("--downgrade", is_flag=True, help="Plan a downgrade to TARGET instead.")
@click.option("--offline", is_flag=True, help="Without a cluster: as if nothing were applied.")
@click.option("--estimate", is_flag=True,
              help="Also count the documents to move, the disk needed and the duration (timed sample copy).")  # fmt: skip
@click.option("--sample-size", type=int, default=DEFAULT_SAMPLE, show_default=True,
              help="Documents copied into a scratch index to time --estimate (0: no sample).")  # fmt: skip
@connection_options
@pass_state
def plan(
    state: AppState, target: str, downgrade: bool, offline: bool, estimate: bool, sample_size: int
) -> None:
    """Print exactly what upgrade (or downgrade) to TARGET would run, request by request."""
    data = command.plan(
        state.config,
        target,
        downgrade=downgrade,
        offline=offline,
        estimate=estimate,
        sample_size=sample_size,
    )

    def human() -> None:
        _print_plan(data)
        if "estimate" in data:
            _print_estimate(data["estimate"])

    emit(state, data, human)


def _print_estimate(est: dict[str, Any]) -> None:
    mib = 2**20
    _say(
        f"\n[bold]Estimate[/bold]: {est['documents_to_move']} document(s) to move, "
        f"{est['disk_needed_bytes'] / mib:.1f} MiB of disk needed "
        f"({est['disk_available_bytes'] / mib:.0f} MiB available), about "
        f"{format_duration(timedelta(seconds=est['seconds']))}"
    )
    for work in est["operations"]:
        rate = (
            f"{work['docs_per_s']:.0f} docs/s measured on {work['sample_documents']}"
            if work["docs_per_s"]
            else "not sampled"
        )
        _say(
            f"  {work['revision']} {escape(work['operation'])}: {work['documents']} document(s) "
            f"of {escape(work['source'])} ({work['strategy']}), "
            f"{work['disk_bytes'] / mib:.1f} MiB, {rate}, about "
            f"{format_duration(timedelta(seconds=work['seconds']))}"
        )
        if work["schema_versions"]:
            versions = ", ".join(f"{v}: {n}" for v, n in work["schema_versions"].items() if n)
            _say(f"       schema versions: {escape(versions or 'none')}")
        if work["sample_failures"]:
            over = work["failures"] > work["max_failures"]
            _say(
                f"       dead letters: {work['sample_failures']} of the "
                f"{work['sample_documents']} sampled, about {work['failures']} in all "
                f"(max_failures {work['max_failures']})"
                + ("[red]: more than max_failures, the run would stop[/red]" if over else "")
            )


def _print_run(data: dict[str, Any]) -> None:
    done = data["revisions"]
    verb = "Applied" if data["direction"] == "upgrade" else "Reverted"
    if data.get("lease_taken_over_from"):
        _say(f"Took over the expired lease of {escape(data['lease_taken_over_from'])}.")
    if not done:
        _say(f"Nothing to {data['direction']}: the cluster is already at {data['target']}.")
        return
    _say(f"{verb} {len(done)} revision(s):")
    for rev in done:
        _say(
            f"  {rev['revision']}  {escape(rev['message'])}  ({len(rev['operations'])} "
            f"operation(s), {rev['duration_s']:.1f} s)"
        )


@cli.command(cls=TargetCommand)
@click.argument("target", default="head")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the migration report (HTML) of the revisions applied, or of the one that failed.",
)
@lock_timeout_option
@lease_ttl_option
@connection_options
@pass_state
def upgrade(
    state: AppState,
    target: str,
    dry_run: bool,
    report_path: Path | None,
    lock_timeout: float | None,
    lease_ttl: float | None,
) -> None:
    """Apply pending revisions up to TARGET (head, heads, a revision id or prefix, +N)."""
    _apply_ttl(state, lease_ttl)
    with sigint_cancels("upgrade") as cancel, progress_shown() as display:
        data = command.upgrade(
            state.config,
            target,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            reporter=_reporter(state),
            cancel=cancel,
            on_progress=display,
            report=None if dry_run else report_path,
        )

    def human() -> None:
        if dry_run:
            _print_plan(data)
            return
        _print_run(data)
        written = data.get("report")
        if written is not None:
            _say(
                f"Report: {written['path']}"
                if written["path"]
                else f"No report: {written['reason']}."
            )

    emit(state, data, human)


@cli.command(cls=TargetCommand)
@click.argument("revision")
@click.argument("requests_per_second", type=float)
@connection_options
@pass_state
def throttle(state: AppState, revision: str, requests_per_second: float) -> None:
    """Change the speed of REVISION's running op.migrate to REQUESTS_PER_SECOND (0: unlimited)."""
    data = command.throttle(state.config, revision, requests_per_second)
    rate = data["requests_per_second"]
    emit(
        state,
        data,
        lambda: _say(
            f"Throttled {len(data['migrations'])} migration(s) of {data['revision']} to "
            + (f"{rate:g} requests/s." if rate else "unlimited.")
        ),
    )


@cli.command(cls=TargetCommand)
@click.argument("target")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@lock_timeout_option
@lease_ttl_option
@connection_options
@pass_state
def downgrade(
    state: AppState, target: str, dry_run: bool, lock_timeout: float | None, lease_ttl: float | None
) -> None:
    """Undo applied revisions down to TARGET (a revision id or prefix, -N, base)."""
    _apply_ttl(state, lease_ttl)
    with progress_shown() as display:
        data = command.downgrade(
            state.config,
            target,
            dry_run=dry_run,
            lock_timeout=lock_timeout,
            reporter=_reporter(state),
            on_progress=display,
        )
    emit(state, data, lambda: _print_plan(data) if dry_run else _print_run(data))


# -- reports ----------------------------------------------------------------------------------


def _rev_line(entry: dict[str, Any]) -> str:
    return f"{entry['revision']}  {escape(str(entry.get('message') or ''))}"


@cli.command()
@connection_options
@pass_state
def status(state: AppState) -> None:
    """Current revision, pending and failed revisions, and the lease holder."""
    data = command.status(state.config)

    def human() -> None:
        _say(f"history index  {escape(data['history_index'])}")
        _say(f"current        {', '.join(data['current']) or '(nothing applied)'}")
        _say(f"script heads   {', '.join(data['heads']) or '(no scripts)'}")
        if data["pending"]:
            _say(f"pending        {len(data['pending'])}")
            for entry in data["pending"]:
                _say(f"  {_rev_line(entry)}  [dim]({entry['state']})[/dim]")
        else:
            _say("pending        none: up to date")
        for entry in data["failed"]:
            reason = (entry.get("error") or {}).get("reason", "")
            _say(f"[red]failed[/red]         {_rev_line(entry)}: {escape(str(reason))}")
        for entry in data["running"]:
            how = "running" if entry["alive"] else "interrupted (its runner died)"
            _say(f"[yellow]{how}[/yellow]  {_rev_line(entry)}")
        lease = data["lease"]
        if lease is None:
            _say("lease          free")
        else:
            expired = " (expired: the next runner takes it over)" if lease["expired"] else ""
            _say(
                f"lease          held by {escape(str(lease.get('owner')))} "
                f"({escape(str(lease.get('command')))}) until {lease.get('expires_at')}{expired}"
            )
        for rebuild in data.get("rebuilds", []):
            took = rebuild.get("duration_s")
            _say(
                f"rebuild        {escape(rebuild['alias'])}: {rebuild.get('state')} "
                f"{rebuild.get('started_at')}"
                + (f" ({took:.1f} s)" if isinstance(took, (int, float)) else "")
                + f", rollback point {rebuild.get('rollback_point')}"
            )
        for entry in data.get("old_writes", []):
            _say(f"old writes     {describe_old_writes(entry)}")
        for problem in data["problems"]:
            if problem["problem"] in ("checksum", "missing_file"):
                _say(
                    f"[red]problem[/red]        {problem['revision']}: {problem['problem']} "
                    f"({escape(problem['fix'])})"
                )

    emit(state, data, human)


@cli.command()
@click.option("-v", "--verbose", is_flag=True, help="Include every operation and event.")
@click.option(
    "--offline",
    is_flag=True,
    help="The scripts instead (Alembic's history): parents first, no cluster needed.",
)
@connection_options
@pass_state
def history(state: AppState, verbose: bool, offline: bool) -> None:
    """What ran against the cluster, oldest first: revisions (and rebuilds), with when, how
    long and by whom. With --offline: the migration scripts."""
    if offline:
        scripts = command.scripts(state.config)

        def listing() -> None:
            if not scripts:
                _say("No migration scripts yet.")
            for script in scripts:
                _say(script_line(script))

        emit(state, [s.to_dict() for s in scripts], listing)
        return
    try:
        data = command.history(state.config, verbose=verbose)
    except ClusterUnavailable as exc:
        raise ClusterUnavailable(
            exc.message,
            hint=f"{exc.hint or ''} `esmigrate history --offline` lists the scripts without a "
            "cluster.".strip(),
        ) from None

    def human() -> None:
        if not data:
            _say("No revision recorded yet.")
        for entry in data:
            by = entry.get("by") or {}
            duration = entry.get("duration_s")
            took = f"{duration:.1f} s" if isinstance(duration, (int, float)) else "-"
            name = entry.get("revision") or f"rebuild {entry.get('alias')}"
            back = entry.get("rolled_back_to") or {}
            _say(
                f"{name}  {entry.get('state', '?'):<11} "
                f"{entry.get('started_at') or '-':<29} {took:>8}  "
                f"{escape(str(by.get('user', '?')))}@{escape(str(by.get('host', '?')))}  "
                f"{escape(str(entry.get('message') or ''))}"
                + (
                    f"  (rolled back to {escape(str(back.get('point')))} at {back.get('at')})"
                    if back
                    else ""
                )
            )
            if verbose and entry.get("kind") == "rebuild" and entry.get("report"):
                _say(f"    report: esmigrate report {escape(str(entry.get('id')))}")
            if verbose:
                for op in entry.get("log") or []:
                    # The report's record is a page of its own (`esmigrate report REV`).
                    hidden = (
                        *("n", "op", "summary", "status", "started_at", "ended_at"),
                        *("report", "interrupted_runs"),
                    )
                    extra = {k: v for k, v in op.items() if k not in hidden}
                    _say(
                        f"    {op.get('n')}. {escape(str(op.get('summary')))}: "
                        f"{op.get('status', 'started')} {escape(json.dumps(extra)) if extra else ''}"
                        + (
                            f" (report: esmigrate report {entry.get('revision')})"
                            if "report" in op
                            else ""
                        )
                    )

    emit(state, data, human)


@cli.command()
@connection_options
@pass_state
def validate(state: AppState) -> None:
    """Check applied scripts against the history (checksums, missing files, failed states).
    Exit status 3 when there is a problem."""
    data = command.validate(state.config)

    def human() -> None:
        if data["ok"]:
            _say(f"OK: {data['checked']} recorded revision(s) match their scripts.")
            return
        for problem in data["problems"]:
            _say(
                f"[red]{problem['problem']}[/red]  {problem['revision']} "
                f"({escape(problem['path'])}): {escape(problem['fix'])}"
            )

    emit(state, data, human)
    if not data["ok"]:
        exit_with(ExitCode.PROBLEM)


def _print_changes(data: dict[str, Any], nothing: str) -> None:
    if not data["changes"]:
        _say(nothing)
    for change in data["changes"]:
        what = change.get("change") or f"{change['before'] or 'unrecorded'} -> {change['after']}"
        _say(f"{change['revision']} ({escape(change['path'])}): {escape(str(what))}")
        if change.get("change"):
            _say(f"    before: {escape(str(change['before']))}")
            _say(f"    after:  {escape(str(change['after']))}")
    for left in data.get("left", []):
        _say(f"[yellow]left alone[/yellow] {left['revision']}: {escape(left['explanation'])}")


@cli.command()
@click.option("--forget-missing", is_flag=True, help="Drop entries whose script no longer exists.")
@lock_timeout_option
@connection_options
@pass_state
def repair(state: AppState, forget_missing: bool, lock_timeout: float | None) -> None:
    """Re-align checksums after an intended edit, clear failed entries after a fix."""
    data = command.repair(
        state.config,
        forget_missing=forget_missing,
        lock_timeout=lock_timeout,
        reporter=_reporter(state),
    )
    emit(state, data, lambda: _print_changes(data, "Nothing to repair."))


@cli.command()
@click.argument("target")
@lock_timeout_option
@connection_options
@pass_state
def baseline(state: AppState, target: str, lock_timeout: float | None) -> None:
    """Adopt an existing cluster: record TARGET and its ancestors as applied."""
    data = command.baseline(
        state.config, target, lock_timeout=lock_timeout, reporter=_reporter(state)
    )
    emit(state, data, lambda: _print_changes(data, "Nothing to record."))


@cli.command(cls=TargetCommand)
@click.argument("target")
@lock_timeout_option
@connection_options
@pass_state
def stamp(state: AppState, target: str, lock_timeout: float | None) -> None:
    """Record the cluster as being at TARGET (or base) without running anything."""
    data = command.stamp(state.config, target, lock_timeout=lock_timeout, reporter=_reporter(state))
    emit(state, data, lambda: _print_changes(data, f"The history already says {target}."))
