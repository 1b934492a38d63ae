"""Rollback points, rollbacks and the health monitor: ``rollback-point``, ``rollback``,
``monitor``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from esmigrate.command._base import open_cluster
from esmigrate.command._retention import clean_up, schedule_cleanup
from esmigrate.command._schema import load_transform
from esmigrate.config import Config
from esmigrate.rollback import (
    Sample,
    alias_checks,
    auto_rollback,
    create_point,
    get_point,
    list_points,
    plan_rollback,
)
from esmigrate.rollback import monitor as watch
from esmigrate.rollback import rollback as roll_back
from esmigrate.schedule import parse_duration


def rollback_point_create(
    config: Config,
    name: str,
    aliases: Sequence[str],
    *,
    kind: str | None = None,
    snapshot_repository: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Record rollback point ``name`` for ``aliases`` in the history index (see
    :func:`esmigrate.rollback.create_point`); ``kind`` and ``snapshot_repository`` default to
    the project's ``rollback_point_kind`` and ``snapshot_repository``."""
    with open_cluster(config) as cluster:
        return create_point(
            cluster,
            name,
            aliases,
            state_index=config.history_index,
            kind=kind or config.rollback_point_kind,
            snapshot_repository=snapshot_repository or config.snapshot_repository,
            note=note,
        ).to_dict()


def rollback_point_list(config: Config) -> list[dict[str, Any]]:
    """Every rollback point, oldest first."""
    with open_cluster(config) as cluster:
        return [p.to_dict() for p in list_points(cluster, state_index=config.history_index)]


def rollback_point_show(config: Config, name: str) -> dict[str, Any]:
    """One rollback point."""
    with open_cluster(config) as cluster:
        return get_point(cluster, name, state_index=config.history_index).to_dict()


def rollback_point_cleanup(
    config: Config,
    *,
    keep: int = 3,
    older_than: str | float | timedelta | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Carry out the scheduled clean-ups that are due (``deploy --cleanup-after``), then delete
    old rollback points and what only they reference (see :func:`esmigrate.rollback.cleanup`),
    sparing the points of schedules not due yet. ``older_than``: a duration (``"7d"``, or
    seconds)."""
    age = (
        older_than
        if isinstance(older_than, timedelta) or older_than is None
        else parse_duration(older_than, what="--older-than")
    )
    with open_cluster(config) as cluster:
        return clean_up(cluster, config.history_index, keep=keep, older_than=age, dry_run=dry_run)


def rollback_point_cleanup_later(
    config: Config, points: Sequence[str], after: str | timedelta, *, deployment: str
) -> dict[str, Any]:
    """Schedule the clean-up of ``points`` ``after`` from now (``"24h"``): the first
    ``deploy`` or ``rollback-point cleanup`` run after that carries it out."""
    delay = after if isinstance(after, timedelta) else parse_duration(after, what="--cleanup-after")
    with open_cluster(config) as cluster:
        return schedule_cleanup(cluster, config.history_index, points, delay, deployment=deployment)


def rollback(
    config: Config,
    name: str,
    *,
    reverse_rules: str | None = None,
    discard_writes: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Roll the aliases back to point ``name`` (see :func:`esmigrate.rollback.rollback`);
    ``reverse_rules`` is a ``module:attr`` downgrade transform; ``dry_run`` returns the plan."""
    reverse = load_transform(config, reverse_rules) if reverse_rules else None
    with open_cluster(config) as cluster:
        if dry_run:
            return plan_rollback(
                cluster,
                name,
                state_index=config.history_index,
                reverse=reverse is not None,
                discard_writes=discard_writes,
            ).to_dict()
        return roll_back(
            cluster,
            name,
            state_index=config.history_index,
            reverse_transform=reverse,
            discard_writes=discard_writes,
            lease_ttl=config.lease_ttl,
        ).to_dict()


def monitor(
    config: Config,
    alias: str,
    *,
    rollback_to: str | None = None,
    duration: float = 600.0,
    interval: float = 5.0,
    consecutive: int = 3,
    query: dict[str, Any] | None = None,
    max_error_rate: float = 0.0,
    max_latency_ms: float | None = None,
    max_drop: float | None = 0.1,
    yellow_ok: bool = True,
    reverse_rules: str | None = None,
    discard_writes: bool = False,
    on_sample: Callable[[Sample], None] | None = None,
) -> dict[str, Any]:
    """Watch ``alias`` (cluster health, a search probe, its count against the point) and, with
    ``rollback_to``, roll back to that point when a check fails ``consecutive`` times."""
    reverse = load_transform(config, reverse_rules) if reverse_rules else None
    with open_cluster(config) as cluster:
        checks = alias_checks(
            cluster,
            alias,
            point=rollback_to,
            state_index=config.history_index,
            query=query,
            max_error_rate=max_error_rate,
            max_latency_ms=max_latency_ms,
            max_drop=max_drop,
            yellow_ok=yellow_ok,
        )
        if rollback_to is None:
            return watch(
                cluster,
                checks,
                duration=duration,
                interval=interval,
                consecutive=consecutive,
                on_sample=on_sample,
            ).to_dict()
        return auto_rollback(
            cluster,
            rollback_to,
            checks,
            state_index=config.history_index,
            duration=duration,
            interval=interval,
            consecutive=consecutive,
            reverse_transform=reverse,
            discard_writes=discard_writes,
            on_sample=on_sample,
            lease_ttl=config.lease_ttl,
        ).to_dict()
