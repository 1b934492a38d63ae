"""Revisions as data: what a plan holds, how a script's operations are recorded, and the
small helpers the runner and the commands share."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    DowngradeNotSupported,
    EsmigrateError,
    RequestError,
    ScriptError,
    TaskFailed,
)
from esmigrate.operations import ExecContext, Operation, Operations
from esmigrate.progress import ProgressEvent
from esmigrate.script import Route, Script
from esmigrate.state import RevisionRecord

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"


def quiet(_: str) -> None:
    return None


def no_progress(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True)
class PlannedRevision:
    """One revision of a plan: the script, the direction and the operations it declared."""

    script: Script
    direction: str
    operations: tuple[Operation, ...]

    def to_dict(
        self,
        root: Path | None = None,
        cluster: Cluster | None = None,
        settings: ExecContext | None = None,
    ) -> dict[str, Any]:
        """``settings``: the project's (history index, rollback point kind, snapshot
        repository), so that operations say what they would record (their rollback point)."""
        ctx = (
            None
            if settings is None or self.direction != UPGRADE
            else replace(settings, revision=self.script.revision)
        )
        return {
            "revision": self.script.revision,
            "message": self.script.message,
            "path": display_path(self.script.path, root),
            "direction": self.direction,
            "operations": [op.to_dict(cluster, ctx) for op in self.operations],
        }


def display_path(path: Path, root: Path | None) -> str:
    """``path`` relative to the project root when it is inside it."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def record_operations(script: Script, direction: str) -> tuple[Operation, ...]:
    """Run ``upgrade(op)`` / ``downgrade(op)`` in recording mode: nothing is sent."""
    step = script.upgrade if direction == UPGRADE else script.downgrade
    if step is None:
        raise DowngradeNotSupported(
            f"Revision {script.revision} ({script.path}) has no downgrade(op), so it cannot be "
            "undone; nothing was changed.",
            revision=script.revision,
            path=str(script.path),
            hint="Add a downgrade(op) to that script, or choose a downgrade target that does "
            "not go below it.",
        )
    op = Operations()
    try:
        step(op)
    except Exception as exc:
        line = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename == str(script.path) or f.filename == str(script.path.resolve())
            ),
            None,
        )
        where = f" at line {line}" if line else ""
        raise ScriptError(
            f"{direction}(op) of the migration script {script.path} raised "
            f"{type(exc).__name__}{where}: {exc}.",
            path=str(script.path),
            hint=f"Fix {direction}() in that file. It only declares operations (they run after "
            "it returns), so this is an error in the script; nothing was written to the cluster.",
        ) from None
    return op.operations


def error_details(exc: BaseException) -> dict[str, Any]:
    """What the history records about a failure: the server's words when there are some."""
    if isinstance(exc, RequestError):
        return {
            "type": exc.error_type or type(exc).__name__,
            "reason": exc.reason or exc.message,
            "status": exc.status,
        }
    if isinstance(exc, TaskFailed):
        return {"type": "task_failed", "reason": exc.message, "task": exc.task_id}
    if isinstance(exc, EsmigrateError):
        return {"type": type(exc).__name__, "reason": exc.message}
    return {"type": type(exc).__name__, "reason": str(exc) or type(exc).__name__}


def plan_dict(
    planned: list[PlannedRevision],
    route: Route,
    history_index: str,
    root: Path | None,
    cluster: Cluster | None = None,
    settings: ExecContext | None = None,
) -> dict[str, Any]:
    """The data form of a plan (``plan --json``); with ``cluster``, operations that depend on
    the live state (``migrate``) say what they decided from it, and with ``settings`` (the
    project's) the rollback point they would record."""
    revisions = [p.to_dict(root, cluster, settings) for p in planned]
    return {
        "direction": route.direction,
        "target": route.target,
        "history_index": history_index,
        "revisions": revisions,
        "requests": sum(len(op["requests"]) for r in revisions for op in r["operations"]),
    }


def runner_alive(record: RevisionRecord, lease: dict[str, Any] | None) -> bool:
    """A ``running`` revision is alive while its runner still holds an unexpired lease."""
    return bool(lease and not lease.get("expired") and lease.get("owner") == record.owner)


def fix_for(problem: str) -> dict[str, str]:
    fixes = {
        "failed": "fix the cause, then `esmigrate repair` and run again",
        "interrupted": "its runner died; the next upgrade resumes it when it stopped between "
        "operations or in an op.migrate, otherwise records it as failed; or run "
        "`esmigrate repair` after checking the cluster",
        "missing_file": "restore the script, or `esmigrate repair --forget-missing`",
        "checksum": "the script was edited after it ran: restore it, or `esmigrate repair` "
        "if the edit was intended",
    }
    return {"fix": fixes[problem]}
