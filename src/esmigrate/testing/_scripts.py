"""Checks over a project's revision scripts, as pytest-alembic offers them.

``assert_single_head`` and ``assert_downgrades_exist`` read only the migrations folder (no
cluster). ``assert_no_drift`` asks the cluster what the migrations produce: it upgrades to head
and compares the live mappings with the Document classes of ``schema_modules``, as
``esmigrate check`` does.
"""

from __future__ import annotations

from collections.abc import Collection

from esmigrate import command
from esmigrate.config import Config
from esmigrate.script import ScriptDirectory

#: Lines of changes a drift message shows per Document class.
SHOWN = 10


def assert_single_head(config: Config) -> str:
    """The project's revisions have exactly one head (unmerged branches make ``upgrade head``
    ambiguous); returns it."""
    graph = ScriptDirectory.from_config(config).load()
    if len(graph.heads) != 1:
        if not graph.heads:
            raise AssertionError(f"There are no migration scripts in {config.migrations_path}.")
        listed = ", ".join(f"{h} ({graph[h].path.name})" for h in graph.heads)
        raise AssertionError(
            f"The revisions have {len(graph.heads)} heads: {listed}. "
            'Join them with `esmigrate merge -m "merge"`.'
        )
    return graph.heads[0]


def assert_downgrades_exist(config: Config, *, exempt: Collection[str] = ()) -> None:
    """Every revision has a ``downgrade(op)``, except those in ``exempt`` (e.g. revisions whose
    way back is the rollback point their blue-green ``op.migrate`` records)."""
    graph = ScriptDirectory.from_config(config).load()
    unknown = sorted(set(exempt) - set(graph.order))
    if unknown:
        raise AssertionError(f"exempt names no revision of the project: {', '.join(unknown)}.")
    missing = [r for r in graph.order if graph[r].downgrade is None and r not in exempt]
    if missing:
        listed = ", ".join(f"{r} ({graph[r].path.name})" for r in missing)
        raise AssertionError(
            f"{len(missing)} revision(s) have no downgrade(op): {listed}. Add one, or exempt "
            "the revision when its way back is a rollback point."
        )


def assert_no_drift(config: Config) -> None:
    """The Document classes of ``schema_modules`` describe exactly the mappings the migrations
    produce: upgrades the config's cluster to head, then compares them as ``esmigrate check``
    does. A difference is a migration someone forgot to write (or a class not updated)."""
    command.upgrade(config, "head")
    report = command.check(config)
    if report.ok:
        return
    lines = ["The Document classes and what the migrations produce differ:"]
    for check in report.checks:
        if check.ok:
            continue
        if not check.exists:
            lines.append(f"  {check.document}: no index {check.index} after upgrading to head")
        elif check.error is not None:
            lines.append(f"  {check.document} vs {check.index}: {check.error}")
        elif check.diff is not None:
            lines.append(
                f"  {check.document} vs {check.index} ({len(check.diff)} change(s) from the "
                "index to the class):"
            )
            lines += [f"    {change.describe()}" for change in list(check.diff)[:SHOWN]]
            if len(check.diff) > SHOWN:
                lines.append(f"    ... and {len(check.diff) - SHOWN} more")
    lines.append(
        "Write the missing revision (`esmigrate revision --autogenerate`), or update the class."
    )
    raise AssertionError("\n".join(lines))
