"""The production pipeline: pre-flight checks, the migration (each blue-green cut-over records a
rollback point), health monitoring with automatic rollback, retention clean-up, and a migration
log kept in the history index.

``esmigrate deploy`` runs it; each step is one of the plain commands, so every step can also be
run (and re-run) on its own: ``preflight``, ``upgrade``, ``monitor``, ``rollback``,
``rollback-point cleanup``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from esmigrate.exceptions import DeployRolledBack, EsmigrateError, PreflightFailed


@dataclass
class DeploymentLog:
    """What a deployment did, step by step; stored in the history index as ``kind: deployment``."""

    id: str = field(
        default_factory=lambda: (
            datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        )
    )
    target: str = "head"
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "running"

    def step(self, name: str, began: float, **details: Any) -> dict[str, Any]:
        entry = {"step": name, "seconds": round(time.monotonic() - began, 3), **details}
        self.steps.append(entry)
        return entry

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "deployment",
            "id": self.id,
            "target": self.target,
            "outcome": self.outcome,
            "steps": self.steps,
        }


def deploy(
    config: Any,
    target: str = "head",
    *,
    monitor_seconds: float = 0.0,
    interval: float = 5.0,
    keep: int = 3,
    snapshot_repository: str | None = None,
    reverse_rules: dict[str, str] | None = None,
    reporter: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the production pipeline to ``target``; returns the deployment log.

    1. pre-flight (:func:`esmigrate.command.preflight`): a failed check raises
       :class:`PreflightFailed` before anything is written;
    2. ``upgrade``: every blue-green ``op.migrate`` records the rollback point
       ``before-<revision>-<alias>`` at its cut-over (the old index, kept);
    3. with ``monitor_seconds``: each migrated alias is watched (cluster health, a search probe,
       its document count against the point); a failure rolls it back to its point, carrying
       writes made since the cut-over back through ``reverse_rules[alias]`` (``module:attr``),
       and raises :class:`DeployRolledBack`;
    4. retention: rollback points beyond the newest ``keep`` are deleted, with the indices only
       they kept;
    5. the log goes to the history index (``kind: deployment``), whatever the outcome.
    """
    from esmigrate import command
    from esmigrate.cluster import connect
    from esmigrate.rollback import list_points
    from esmigrate.runtime import HistoryStore

    say = reporter or (lambda _line: None)
    log = DeploymentLog(target=target)
    try:
        began = time.monotonic()
        report = command.preflight(config, target, snapshot_repository=snapshot_repository)
        log.step("preflight", began, ok=report.ok, checks=report.to_dict()["checks"])
        say("pre-flight: " + ", ".join(f"{c.name} {c.status}" for c in report.checks))
        if not report.ok:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
            log.outcome = "refused"
            raise PreflightFailed(
                f"Pre-flight checks failed, nothing was changed: {failed}.",
                checks=report.to_dict()["checks"],
                hint="Fix what they name (`esmigrate preflight` lists every check), then deploy again.",
            )

        began = time.monotonic()
        result = command.upgrade(config, target, reporter=say)
        applied = [r["revision"] for r in result.get("revisions", [])]
        log.step("upgrade", began, revisions=applied)

        with connect(config.connection) as cluster:
            prefixes = tuple(f"before-{rev.lower()}-" for rev in applied)
            points = [
                p
                for p in list_points(cluster, state_index=config.history_index)
                if p.name.startswith(prefixes)
            ]
        log.step("rollback points", time.monotonic(), points=[p.name for p in points])

        if monitor_seconds > 0:
            for point in points:
                for alias in point.aliases:
                    began = time.monotonic()
                    say(
                        f"monitoring {alias} for {monitor_seconds:.0f}s (rollback point {point.name})"
                    )
                    watched = command.monitor(
                        config,
                        alias,
                        rollback_to=point.name,
                        duration=monitor_seconds,
                        interval=interval,
                        reverse_rules=(reverse_rules or {}).get(alias),
                    )
                    entry = log.step(
                        "monitor",
                        began,
                        alias=alias,
                        point=point.name,
                        healthy=watched["healthy"],
                        report=watched,
                    )
                    if not watched["healthy"]:
                        log.outcome = "rolled back"
                        raise DeployRolledBack(
                            f"{alias} failed the health check {watched.get('failed_check')!r} after the "
                            f"migration and was rolled back to {point.name}.",
                            log=log.as_dict(),
                            hint="The aliases point to the old index again, with the writes made since "
                            "the cut-over carried back. Fix the cause, then `esmigrate repair` and deploy again.",
                        ) from None
                    del entry["report"]["samples"]

        began = time.monotonic()
        cleaned = command.rollback_point_cleanup(config, keep=keep)
        log.step("cleanup", began, **{k: v for k, v in cleaned.items() if k != "plan"})
        log.outcome = "done"
        return log.as_dict()
    except EsmigrateError:
        if log.outcome == "running":
            log.outcome = "failed"
        raise
    finally:
        try:
            with connect(config.connection) as cluster:
                store = HistoryStore(cluster, config.history_index)
                store.ensure()
                store.create(f"deployment:{log.id}", log.as_dict())
        except EsmigrateError as exc:  # the log is a record, never a reason to hide the outcome
            say(f"warning: the deployment log could not be written: {exc.message}")
