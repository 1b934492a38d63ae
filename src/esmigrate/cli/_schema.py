"""``esmigrate check``, ``esmigrate preview`` and ``esmigrate schema versions``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

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
from esmigrate.exceptions import ConfigError, ExitCode


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@connection_options
@pass_state
def check(state: AppState) -> None:
    """Compare the Document classes of schema_modules with the live mappings (exit 3 on drift)."""
    report = command.check(state.config)

    def human() -> None:
        for item in report.checks:
            where = f"[bold]{escape(item.index)}[/bold] ({escape(item.document)})"
            if not item.exists:
                console.print(f"[red]✗[/red] {where}: the index does not exist")
            elif item.error:
                console.print(f"[red]✗[/red] {where}: {escape(item.error)}")
            elif item.diff is not None and item.diff:
                diff = item.diff
                console.print(
                    f"[red]✗[/red] {where}: {len(diff)} change(s); "
                    f"{diff.compatibility}, strategy {diff.strategy}, {diff.bump} version bump"
                )
                for change in diff.changes:
                    console.print(f"    {escape(change.describe())}")
            else:
                console.print(f"[green]✓[/green] {where}: matches")
        if report.ok:
            console.print("The cluster matches the code.")

    emit(state, report.to_dict(), human)
    if not report.ok:
        exit_with(ExitCode.PROBLEM)


@cli.command()
@click.option(
    "--rules",
    "rules",
    required=True,
    help="The transform: module:attribute (a RuleSet, a doc -> doc function or a versioned Document class).",
)
@click.option("--index", required=True, help="Index (or alias) to sample.")
@click.option(
    "--sample",
    default=10,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="How many documents.",
)
@click.option(
    "--query",
    "query_text",
    help='Select documents with a query (JSON), e.g. \'{"term": {"author": "ann"}}\'.',
)
@click.option("--seed", type=int, help="Random-sample seed (repeat a preview exactly).")
@connection_options
@pass_state
def preview(
    state: AppState, rules: str, index: str, sample: int, query_text: str | None, seed: int | None
) -> None:
    """Show what a transform does to real documents: field diffs per document and a summary.

    Nothing is written.
    """
    query: dict[str, Any] | None = None
    if query_text:
        try:
            query = json.loads(query_text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--query is not valid JSON: {exc.msg} at position {exc.pos}.",
                hint='Quote it for the shell: --query \'{"term": {"author": "ann"}}\'.',
            ) from None
        if not isinstance(query, dict):
            raise ConfigError("--query must be a JSON object (a query clause).")
    report = command.preview(state.config, rules, index, sample=sample, query=query, seed=seed)

    def human() -> None:
        for doc in report.documents:
            header = f"[bold]{escape(doc.doc_id)}[/bold]"
            if doc.error is not None:
                console.print(
                    f"{header} [red]failed[/red] in rule {escape(str(doc.error.get('rule')))}: "
                    f"{escape(str(doc.error.get('error')))}"
                )
                continue
            if not doc.changes:
                console.print(f"{header} [dim]unchanged[/dim]")
                continue
            by = f" [dim]({escape(', '.join(doc.rules))})[/dim]" if doc.rules else ""
            console.print(header + by)
            for change in doc.changes:
                if change.kind == "added":
                    console.print(
                        f"  [green]+ {escape(change.path)}[/green] = {escape(_short(change.new))}"
                    )
                elif change.kind == "removed":
                    console.print(
                        f"  [red]- {escape(change.path)}[/red] (was {escape(_short(change.old))})"
                    )
                else:
                    console.print(
                        f"  [yellow]~ {escape(change.path)}[/yellow]: {escape(_short(change.old, 50))} → "
                        f"{escape(_short(change.new, 50))}"
                    )
        console.print()
        if report.rule_names:
            table = Table(title="Rules", show_edge=False)
            table.add_column("rule")
            table.add_column("changed", justify="right")
            table.add_column("failed", justify="right")
            failures = report.failure_counts()
            for name, count in report.rule_counts().items():
                table.add_row(escape(name), str(count), str(failures.get(name, 0)))
            console.print(table)
        unchanged = len(report.documents) - report.changed - report.failed
        console.print(
            f"{len(report.documents)} sampled of {report.total_matching} matching: "
            f"{report.changed} changed, {unchanged} unchanged, {report.failed} failed."
        )
        if report.seed is not None:
            console.print(f"Seed {report.seed} (repeat with --seed {report.seed}).")
        if report.painless is not None:
            console.print(
                "Runs server-side as Painless."
                if report.painless
                else "Runs in Python (a rule has no exact Painless form)."
            )

    emit(state, report.to_dict(), human)


@cli.group()
def schema() -> None:
    """Schema versions of stored documents."""


@schema.command("versions")
@click.argument("index")
@click.option("--field", default="schema_version", show_default=True, help="The version field.")
@connection_options
@pass_state
def versions(state: AppState, index: str, field: str) -> None:
    """Count the documents of INDEX per schema version (and those without one)."""
    counts = command.schema_versions(state.config, index, field=field)

    def human() -> None:
        table = Table(show_edge=False)
        table.add_column("version")
        table.add_column("documents", justify="right")
        for raw, count in counts.counts.items():
            table.add_row(escape(raw), str(count))
        table.add_row("[dim](none)[/dim]", str(counts.missing))
        console.print(table)
        console.print(f"{counts.total} documents in {escape(index)}.")
        if counts.invalid:
            console.print(
                f"[yellow]Not valid versions:[/yellow] {escape(', '.join(counts.invalid))}"
            )
        if counts.from_source:
            console.print(
                f"[dim]{field} is not indexed in {', '.join(counts.from_source)}: read from _source.[/dim]"
            )

    emit(state, counts.to_dict(), human)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--transform", metavar="MODULE:FN",
              help="What B should hold for each document of A (a rule set or doc -> doc).")  # fmt: skip
@click.option("--sample-size", type=int, default=500, show_default=True,
              help="Documents of A deep-compared with B (0: counts and mappings only).")  # fmt: skip
@connection_options
@pass_state
def compare(state: AppState, a: str, b: str, transform: str | None, sample_size: int) -> None:
    """Compare index/alias A with B: counts, mapping diff, a sampled deep diff (through
    --transform). Exit status 3 when they differ. Only reads."""
    data = command.compare(state.config, a, b, transform=transform, sample_size=sample_size)

    def human() -> None:
        counts, mapping, sample = data["counts"], data["mapping"], data["sample"]
        mark = {True: "[green]same[/green]", False: "[red]different[/red]"}
        console.print(f"counts   {mark[counts['same']]}: {a} {counts['a']}, {b} {counts['b']}")
        console.print(f"mapping  {mark[mapping['same']]}: {len(mapping['changes'])} change(s)")
        for change in mapping["changes"]:
            console.print(
                f"           {escape(change['path'])}: {change['change']} ({change['class']})"
            )
        console.print(
            f"sample   {mark[not sample['different']]}: {sample['different']} of "
            f"{sample['size']} document(s) differ"
        )
        for diff in sample["differences"]:
            console.print(
                f"           {escape(diff['id'])}: expected {escape(json.dumps(diff['expected']))}, "
                f"found {escape(json.dumps(diff['actual']))}"
            )
        console.print(f"{a} and {b} are the same." if data["same"] else f"{a} and {b} differ.")

    emit(state, data, human)
    if not data["same"]:
        exit_with(ExitCode.PROBLEM)
