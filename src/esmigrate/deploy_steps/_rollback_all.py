"""``deploy --rollback-all-on-failure``: when a later revision of a multi-revision deploy fails,
take back the cut-overs the same deploy made before it, newest first.

The cut-overs of this deploy are the rollback points that appeared during its upgrade. Each is
rolled back with :func:`esmigrate.command.rollback`: the writes made through the alias since
its cut-over are carried back through the alias's reverse transform, or the rollback of that
point is refused naming them (:class:`~esmigrate.exceptions.WritesAtRisk`), never dropped;
the other points are still rolled back, and the result says which were not and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from esmigrate.cluster import connect
from esmigrate.config import Config
from esmigrate.exceptions import DeployRolledBack, EsmigrateError
from esmigrate.progress import Reporter
from esmigrate.rollback import RollbackPoint, list_points, rollback
from esmigrate.transform import Transform


def deploy_points(config: Config, before: set[str]) -> list[RollbackPoint]:
    """The rollback points recorded since ``before`` (the names that existed then), oldest
    first: the cut-overs of the running deploy."""
    with connect(config.connection) as cluster:
        points = list_points(cluster, state_index=config.history_index)
    return [p for p in points if p.name not in before]


def roll_back_all(
    config: Config,
    points: Sequence[RollbackPoint],
    reverse: Callable[[RollbackPoint], Transform | None],
    say: Reporter,
) -> list[dict[str, Any]]:
    """Roll every point of ``points`` back, newest first, carrying writes back through
    ``reverse(point)``; one entry per point: its aliases, ``outcome`` (``rolled back`` or
    ``failed``), and the rollback's result or the error."""
    if points:
        say(f"the upgrade failed: rolling back this deploy's cut-overs ({len(points)})")
    entries = []
    with connect(config.connection) as cluster:
        for point in reversed(points):
            aliases = list(point.aliases)
            entry: dict[str, Any] = {"point": point.name, "aliases": aliases}
            try:
                result = rollback(
                    cluster,
                    point.name,
                    state_index=config.history_index,
                    reverse_transform=reverse(point),
                    lease_ttl=config.lease_ttl,
                )
            except EsmigrateError as exc:
                entry |= {"outcome": "failed", "error": f"{type(exc).__name__}: {exc.message}"}
                say(f"{', '.join(aliases)}: could not roll back to {point.name}: {exc.message}")
            else:
                entry |= {"outcome": "rolled back", "result": result.to_dict()}
                say(f"{', '.join(aliases)}: rolled back to {point.name}")
            entries.append(entry)
    return entries


def rolled_back_error(
    failure: EsmigrateError, entries: Sequence[dict[str, Any]], log: dict[str, Any]
) -> DeployRolledBack:
    """The error a deploy ends with after :func:`roll_back_all`: the failure, what was rolled
    back and what was not (and how to complete it)."""
    done = [e for e in entries if e["outcome"] == "rolled back"]
    failed = [e for e in entries if e["outcome"] != "rolled back"]
    message = (
        f"The upgrade failed ({type(failure).__name__}: {failure.message}), so the earlier "
        "cut-overs of this deploy were rolled back: "
        + (", ".join(f"{', '.join(e['aliases'])} to {e['point']}" for e in done) or "none")
        + "."
    )
    if failed:
        message += (
            " Not rolled back: "
            + "; ".join(f"{', '.join(e['aliases'])} ({e['point']}): {e['error']}" for e in failed)
            + "."
        )
    complete = (
        "Complete each rollback not done with `esmigrate rollback POINT --reverse-rules "
        "MODULE:ATTR`. "
        if failed
        else ""
    )
    return DeployRolledBack(
        message,
        log=log,
        hint=complete + "The history records the revisions rolled back as such: fix the failing "
        "revision, then `esmigrate repair` and deploy again (it applies them again).",
    )
