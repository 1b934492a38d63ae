"""``esmigrate rebuild ALIAS --to module:Document``: the zero-downtime migrator in one command."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
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
    err_console,
    pass_state,
    progress_shown,
    sigint_cancels,
)
from esmigrate.exceptions import ConfigError
from esmigrate.transform import RuleSet, Transform


def _transform(state: AppState, transform: str | None, rules: str | None) -> Transform | None:
    if transform and rules:
        raise click.UsageError("Give --transform or --rules, not both.")
    if rules:
        loaded = command.load_object(state.config, rules)
        if not isinstance(loaded, RuleSet):
            raise ConfigError(
                f"{rules} is a {type(loaded).__name__}, not a RuleSet.",
                hint="--rules names a RuleSet; pass a doc -> doc function with --transform.",
            )
        return loaded
    if transform:
        return command.load_transform(state.config, transform)
    return None


def _source(state: AppState, reference: str | None) -> Iterable[Any] | None:
    if reference is None:
        return None
    loaded = command.load_object(state.config, reference)
    documents = loaded() if callable(loaded) else loaded
    if not isinstance(documents, Iterable) or isinstance(documents, str | bytes | dict):
        raise ConfigError(
            f"{reference} gave a {type(documents).__name__}, not an iterable of documents.",
            hint="Name a function (called once per run) or an iterable yielding "
            '{"_id": ..., "_source": {...}} dicts, (id, source) pairs or Document instances.',
        )
    return documents


@cli.command()
@click.argument("alias")
@click.option("--to", "to", required=True, metavar="MODULE:DOCUMENT",
              help="The Document class (or mapping) to rebuild to.")  # fmt: skip
@click.option("--transform", metavar="MODULE:FUNCTION",
              help="doc -> doc function for the documents copied from the live index (Python).")  # fmt: skip
@click.option("--rules", metavar="MODULE:RULES",
              help="A RuleSet instead (runs as Painless inside _reindex when it can).")  # fmt: skip
@click.option("--source", metavar="MODULE:ATTR",
              help="Fill the new index from the application's documents: an iterable, or a function returning one.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the migration report (HTML) of the run, also when it fails.")  # fmt: skip
@click.option("--restart", is_flag=True,
              help="Give up an unfinished rebuild of ALIAS (its index is left in place) and start afresh.")  # fmt: skip
@click.option("--max-failures", type=int, default=0, show_default=True,
              help="Documents the new mapping may reject (dead-lettered) before the cut-over is refused.")  # fmt: skip
@click.option("--requests-per-second", type=float, help="Throttle the copy.")
@click.option("--lock-timeout", type=float,
              help="Seconds to wait for another runner's lease [default: twice the lease TTL].")  # fmt: skip
@click.option("--upgrade-old-writes", is_flag=True,
              help="From the cut-over on, upgrade documents still written in the old shape (by the schema_version the --rules set) in an ingest pipeline of the new index.")  # fmt: skip
@connection_options
@pass_state
def rebuild(
    state: AppState,
    alias: str,
    to: str,
    transform: str | None,
    rules: str | None,
    source: str | None,
    dry_run: bool,
    report_path: Path | None,
    restart: bool,
    max_failures: int,
    requests_per_second: float | None,
    lock_timeout: float | None,
    upgrade_old_writes: bool,
) -> None:
    """Rebuild the index behind ALIAS with the mapping of a Document class, without downtime:
    blue-green, the writes made meanwhile caught up, a rollback point at the cut-over.

    Recorded in the history (status, history); undo it with `esmigrate rollback POINT`. Running
    it again after an interruption or a failure resumes it.
    """
    document = command.load_object(state.config, to)
    with sigint_cancels("rebuild") as cancel, progress_shown() as display:
        result = command.rebuild(
            alias,
            to=document,
            transform=_transform(state, transform, rules),
            source=_source(state, source),
            config=state.config,
            dry_run=dry_run,
            restart=restart,
            max_failures=max_failures,
            requests_per_second=requests_per_second,
            lock_timeout=lock_timeout,
            upgrade_old_writes=upgrade_old_writes,
            reporter=None if state.json_output else lambda line: err_console.print(escape(line)),
            on_progress=display,
            cancel=cancel,
            report=None if dry_run else report_path,
        )

    def human() -> None:
        if result.state == "planned":
            how = "resumes" if result.resumed else "runs"
            console.print(
                f"[bold]Plan[/bold]: rebuild {escape(alias)} ({result.id}, {how}), documents "
                f"from the {result.source}; rollback point {result.rollback_point}:"
            )
            for n, step in enumerate(result.plan, start=1):
                console.print(f"  {n}. {step['kind']}: {escape(step['summary'])}", soft_wrap=True)
            return
        m = result.migration
        console.print(
            f"Rebuilt [bold]{escape(alias)}[/bold]: {m['source']} → {m['target']} "
            f"({m['copied']} document(s) written, {m['rounds']} catch-up round(s), "
            f"writes blocked {m['blocked_seconds']:.2f} s)."
        )
        console.print(f"Rollback point: {result.rollback_point} (esmigrate rollback NAME).")
        if result.report is not None:
            console.print(f"Report: {escape(str(result.report['path']))}", soft_wrap=True)

    emit(state, result.to_dict(), human)
