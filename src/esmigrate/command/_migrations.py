"""Versioned migrations: ``plan``, ``upgrade``, ``downgrade``, ``status``, ``history``,
``validate``, ``repair``, ``baseline``, ``stamp``, ``preflight``, ``throttle``, ``adopt``.

Scripts are loaded (and their operations recorded) before any connection is opened, so a script
that does not import, a bad graph or an unknown target never writes to the cluster.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from esmigrate.command._base import open_cluster, runner_for
from esmigrate.command._estimate import DEFAULT_SAMPLE, MAX_SAMPLE
from esmigrate.command._estimate import estimate as estimate_plan
from esmigrate.command._report import report_of_run
from esmigrate.config import Config
from esmigrate.exceptions import ConfigError, MigrationError, RevisionFailed
from esmigrate.migrate import adopt as adopt_index
from esmigrate.migrate import plan_adopt, remove_upgrade_pipelines, upgrade_pipelines
from esmigrate.migrate import throttle as throttle_migration
from esmigrate.operations import Migrate, migration_id
from esmigrate.preflight import Check, PreflightReport, run_checks
from esmigrate.progress import ProgressCallback, Reporter
from esmigrate.runtime import DOWNGRADE, UPGRADE, PlannedRevision, plan_dict, record_operations
from esmigrate.script import RevisionGraph, ScriptDirectory
from esmigrate.state import Checkpoint, HistoryStore, rebuild_records


def plan(
    config: Config,
    target: str = "head",
    *,
    downgrade: bool = False,
    offline: bool = False,
    estimate: bool = False,
    sample_size: int = DEFAULT_SAMPLE,
) -> dict[str, Any]:
    """What ``upgrade`` (or ``downgrade``) to ``target`` would run, revision by revision and
    request by request. ``offline``: without a cluster, as if nothing (for a downgrade:
    everything) were applied. ``estimate``: also, under ``"estimate"``, the documents each
    data operation moves (per schema version), the disk it needs and its duration from a timed
    copy of ``sample_size`` documents into a scratch index (deleted after; see
    :mod:`esmigrate.command._estimate`)."""
    graph = ScriptDirectory.from_config(config).load()
    direction = DOWNGRADE if downgrade else UPGRADE
    if estimate and offline:
        raise ConfigError(
            "plan --estimate measures the cluster's data and cannot run --offline.",
            hint="Drop --offline (the estimate needs the cluster), or drop --estimate.",
        )
    if not 0 <= sample_size <= MAX_SAMPLE:
        raise ConfigError(
            f"Invalid sample size {sample_size}.",
            hint=f"Give 0 (counts and disk only, no timed sample) to {MAX_SAMPLE} documents.",
        )
    if offline:
        if downgrade:
            route = graph.downgrade_path(target, graph.order)
        else:
            route = graph.upgrade_path(target, ())
        planned = [
            PlannedRevision(graph[r], direction, record_operations(graph[r], direction))
            for r in route.revisions
        ]
        return plan_dict(planned, route, config.history_index, config.root) | {"offline": True}
    with open_cluster(config) as cluster:
        runner = runner_for(config, cluster, graph, None)
        result = runner.plan(target, direction) | {"offline": False, "url": cluster.where}
        if estimate:
            route = runner.route(target, direction, runner.records())
            measured = estimate_plan(cluster, runner.planned(route), sample_size=sample_size)
            result["estimate"] = measured.to_dict()
        return result


def upgrade(
    config: Config,
    target: str = "head",
    *,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    report: Path | None = None,
) -> dict[str, Any]:
    """Apply the pending revisions up to ``target`` (``head``, ``heads``, a revision, ``+N``).

    Waits up to ``lock_timeout`` seconds (default: twice the lease TTL, so a dead runner's
    lease always lapses first) for another runner's lease. ``dry_run``: the plan only.
    Setting ``cancel`` stops at the next safe point (a running ``op.migrate`` at its next
    checkpoint) with :class:`~esmigrate.exceptions.MigrationCancelled`; the next ``upgrade``
    resumes. A revision whose runner died inside an ``op.migrate`` is resumed too.
    ``reporter`` receives a line per revision and operation; ``on_progress`` the progress
    events of long operations (draw them with :func:`esmigrate.progress.progress_display`).
    ``report``: write the migration report of the revisions applied (or of the one that
    failed) there, as :func:`report` does; ``result["report"]`` says where.
    """
    if dry_run:
        return plan(config, target)
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        try:
            result = runner_for(config, cluster, graph, reporter, cancel, on_progress).run(
                target, UPGRADE, lock_timeout=lock_timeout
            )
        except RevisionFailed as exc:
            if report is not None:
                # A failed migration's report is the one worth reading (the validation's
                # differences, the dead letters): written, then the failure goes on.
                written = report_of_run(cluster, config, [exc.revision], report)
                if written["path"] and reporter is not None:
                    reporter(f"Report of the failed revision: {written['path']}")
            raise
        if report is not None:
            applied = [r["revision"] for r in result["revisions"]]
            result["report"] = report_of_run(cluster, config, applied, report)
        return result


def downgrade(
    config: Config,
    target: str,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Undo applied revisions down to ``target`` (a revision, ``-N``, ``base``) by running
    their ``downgrade(op)``; refused before anything runs when one of them has none."""
    if dry_run:
        return plan(config, target, downgrade=True)
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return runner_for(config, cluster, graph, reporter, None, on_progress).run(
            target, DOWNGRADE, lock_timeout=lock_timeout
        )


def _scripts_if_any(config: Config) -> RevisionGraph:
    """The project's revision graph; an empty one when the project has no migrations folder
    (it only rebuilds), so that ``status`` and ``history`` still show its rebuilds."""
    if not config.migrations_path.is_dir():
        return RevisionGraph([], where=str(config.migrations_path))
    return ScriptDirectory.from_config(config).load()


def status(config: Config) -> dict[str, Any]:
    """Current revision(s), pending and failed ones, the lease holder, and the last rebuild of
    each alias (``rebuilds``)."""
    graph = _scripts_if_any(config)
    with open_cluster(config) as cluster:
        data = runner_for(config, cluster, graph, None).status()
        latest: dict[str, dict[str, Any]] = {}
        for record in rebuild_records(HistoryStore(cluster, config.history_index)):
            latest[record.alias] = record.summary()
        return data | {
            "rebuilds": list(latest.values()),
            "old_writes": upgrade_pipelines(cluster),
        }


def old_writes_list(config: Config, alias: str | None = None) -> list[dict[str, Any]]:
    """The pipelines upgrading old writers' documents (``alias``: on its indices only), with
    the documents each saw and upgraded since the nodes started."""
    with open_cluster(config) as cluster:
        return upgrade_pipelines(cluster, alias)


def old_writes_remove(config: Config, alias: str) -> list[dict[str, Any]]:
    """Take the upgrade pipeline off the indices behind ``alias`` (once every writer writes the
    new shape); returns what was removed."""
    with open_cluster(config) as cluster:
        return remove_upgrade_pipelines(cluster, alias)


def history(config: Config, *, verbose: bool = False) -> list[dict[str, Any]]:
    """Every revision and rebuild recorded in the history index, oldest first; ``kind`` says
    which (``verbose``: with the operation log and events)."""
    graph = _scripts_if_any(config)
    with open_cluster(config) as cluster:
        revisions = runner_for(config, cluster, graph, None).history(verbose=verbose)
        rebuilds = [
            dict(r.doc) if verbose else r.summary()
            for r in rebuild_records(HistoryStore(cluster, config.history_index))
        ]
    rows = [{"kind": "revision", **r} for r in revisions] + [
        {**r, "kind": "rebuild"} for r in rebuilds
    ]
    return sorted(rows, key=lambda r: str(r.get("started_at") or ""))


def validate(config: Config) -> dict[str, Any]:
    """Compare the history with the scripts: edited or missing applied scripts, failed and
    interrupted revisions. ``ok`` is False when there is any problem."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return runner_for(config, cluster, graph, None).validate()


def repair(
    config: Config,
    *,
    forget_missing: bool = False,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Re-align checksums of edited applied scripts, clear failed/interrupted states after a
    fix, and (``forget_missing``) drop entries whose script is gone. Lists each change."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return runner_for(config, cluster, graph, reporter).repair(
            forget_missing=forget_missing, lock_timeout=lock_timeout
        )


def baseline(
    config: Config,
    target: str,
    *,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Adopt a cluster that existed before esmigrate: record ``target`` and its ancestors as
    applied without running them (refused once the history records revisions)."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return runner_for(config, cluster, graph, reporter).baseline(
            target, lock_timeout=lock_timeout
        )


def stamp(
    config: Config,
    target: str,
    *,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Record the cluster as being exactly at ``target`` (``base`` for nothing) without
    running anything."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return runner_for(config, cluster, graph, reporter).stamp(target, lock_timeout=lock_timeout)


def preflight(
    config: Config, target: str = "head", *, snapshot_repository: str | None = None
) -> PreflightReport:
    """Checks to run before a production ``upgrade``: the history (failed, interrupted, edited
    revisions), the lease, what is pending, cluster health, disk headroom for the copies the plan
    makes, leftover write blocks, and the snapshot repository (``snapshot_repository``, else
    the project's): writable from every node. Writes nothing.

    Returns a :class:`~esmigrate.preflight.PreflightReport`; ``report.ok`` is False when a
    check failed.
    """
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        runner = runner_for(config, cluster, graph, None)
        state = runner.status()
        checks: list[Check] = []
        blocking = []
        for problem in state["problems"]:
            resumes = (
                runner.resumes(str(problem.get("revision")))
                if problem.get("problem") == "interrupted"
                else None
            )
            if resumes is not None:
                # A killed deploy is finished by deploying again: the upgrade resumes it.
                checks.append(
                    Check(
                        "history",
                        "warn",
                        f"revision {problem.get('revision')}: interrupted; the upgrade resumes it",
                        resumes[0].upper() + resumes[1:] + ".",
                    )
                )
                continue
            blocking.append(problem)
            checks.append(
                Check(
                    "history",
                    "fail",
                    f"revision {problem.get('revision')}: {problem.get('problem')}",
                    problem.get("fix"),
                )
            )
        if not blocking:
            checks.append(
                Check("history", "ok", f"{len(state['applied'])} applied, scripts unchanged")
            )
        lease = state.get("lease")
        if lease and not lease.get("expired"):
            checks.append(
                Check(
                    "lease",
                    "warn",
                    f"held by {lease.get('owner')} until {lease.get('expires_at') or lease.get('expiry')}",
                    "Another runner is working; upgrade will wait for it (--lock-timeout).",
                )
            )
        else:
            checks.append(Check("lease", "ok", "free"))
        pending = [p["revision"] for p in state["pending"]]
        checks.append(
            Check(
                "pending", "ok", f"{len(pending)} revision(s) to apply: {', '.join(pending) or '-'}"
            )
        )
        # A history problem makes the plan refuse to be made: it is reported above instead.
        plannable = pending and not blocking
        sources = copy_sources(runner.plan(target, UPGRADE)) if plannable else []
        # The project's repository too: a snapshot point found impossible at a cut-over
        # would waste the whole copy.
        cluster_checks = run_checks(
            cluster,
            copy_sources=sources,
            snapshot_repository=snapshot_repository or config.snapshot_repository,
        )
        return PreflightReport((*checks, *cluster_checks.checks))


def copy_sources(plan_data: dict[str, Any]) -> list[str]:
    """Indices or aliases a plan copies into new indices (blue-green), for the disk check."""
    found: list[str] = []
    for revision in plan_data.get("revisions", []):
        for op in revision.get("operations", []):
            source = op.get("copies_from")
            if source and source not in found:
                found.append(source)
    return found


def throttle(config: Config, revision: str, requests_per_second: float | None) -> dict[str, Any]:
    """Change the speed of the running migration(s) of ``revision`` (``op.migrate``), found by
    their checkpoint documents in the history index; None or <= 0 means unlimited."""
    graph = ScriptDirectory.from_config(config).load()
    script = graph.resolve(revision)
    rev = script.revision
    ids = [
        migration_id(rev, op.alias)
        for direction in (UPGRADE, DOWNGRADE)
        if direction == UPGRADE or script.downgrade is not None
        for op in record_operations(script, direction)
        if isinstance(op, Migrate)
    ]
    rps = requests_per_second if requests_per_second and requests_per_second > 0 else None
    with open_cluster(config) as cluster:
        running = [
            mid
            for mid in dict.fromkeys(ids)
            if Checkpoint(cluster, config.history_index, mid).load().get("phase")
            not in (None, "done", "abandoned")
        ]
        if not running:
            raise MigrationError(
                f"Revision {rev} has no running migration (no unfinished op.migrate checkpoint "
                f"in {config.history_index}).",
                hint="`esmigrate status` shows what is running; throttle applies to op.migrate.",
            )
        changed = [
            throttle_migration(cluster, mid, rps, state_index=config.history_index)
            for mid in running
        ]
    return {"revision": rev, "requests_per_second": rps, "migrations": changed}


def adopt(config: Config, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Put the concrete index ``name`` behind an alias of the same name (see
    :func:`esmigrate.migrate.adopt`); with ``dry_run``, only say what would be done."""
    with open_cluster(config) as cluster:
        if dry_run:
            return {"plan": [op.to_dict() for op in plan_adopt(cluster, name)]}
        return adopt_index(cluster, name, state_index=config.history_index).to_dict()
