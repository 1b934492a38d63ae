"""One plain function per CLI verb, each taking a :class:`~esmigrate.config.Config`.

The CLI (``esmigrate.cli``) only parses arguments and prints what these return, so every verb is
also a Python API: ``esmigrate.command.info(load_config())``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster, connect
from esmigrate.config import CONFIG_FILE, DEFAULT_URL, Config
from esmigrate.exceptions import ConfigError, MigrationError, RevisionGraphError
from esmigrate.progress import ProgressCallback, Reporter
from esmigrate.runtime import (
    DOWNGRADE,
    UPGRADE,
    PlannedRevision,
    Runner,
    display_path,
    plan_dict,
    record_operations,
)
from esmigrate.script import DEFAULT_TEMPLATE, TEMPLATE_FILE, RevisionGraph, ScriptDirectory


def open_cluster(config: Config) -> Cluster:
    """Connect to the cluster the config names."""
    return connect(config.connection)


def info(config: Config) -> dict[str, Any]:
    """Engine, version, health, node count and disk use of the configured cluster."""
    with open_cluster(config) as cluster:
        health = cluster.health(timeout="5s")
        stats = cluster.request(
            "GET", "/_nodes/stats/fs", params={"filter_path": "nodes.*.fs.total"}
        )
        total = free = 0
        for node in (stats.get("nodes") or {}).values():
            fs = node.get("fs", {}).get("total", {})
            total += int(fs.get("total_in_bytes", 0))
            free += int(fs.get("available_in_bytes", 0))
        return {
            "url": cluster.where,
            "engine": cluster.engine.name,
            "version": cluster.engine.number,
            "cluster_name": cluster.engine.cluster_name,
            "status": health["status"],
            "nodes": health["number_of_nodes"],
            "data_nodes": health["number_of_data_nodes"],
            "active_shards": health["active_shards"],
            "unassigned_shards": health["unassigned_shards"],
            "disk_total_bytes": total,
            "disk_available_bytes": free,
        }


# -- versioned migrations ---------------------------------------------------------------------
#
# Scripts are loaded (and their operations recorded) before any connection is opened, so a
# script that does not import, a bad graph or an unknown target never writes to the cluster.

_TOML_BODY = """\
migrations_dir = "{migrations_dir}"
# Index recording applied revisions and the runner lease.
history_index = "{history_index}"
# Seconds a runner's lease lives without a heartbeat: a crashed runner blocks others this long.
lease_ttl = 60
# Modules whose Document classes describe the wanted indices (`check`, `revision --autogenerate`).
# schema_modules = ["myapp.documents"]
"""
_TOML_CONNECTION = """\
# Credentials come from the environment (ESMIGRATE_USERNAME / ESMIGRATE_PASSWORD,
# ESMIGRATE_API_KEY), never from this file.
url = "{url}"
"""


def init(
    directory: Path | str = ".",
    *,
    pyproject: bool = False,
    url: str | None = None,
    history_index: str = ".esmigrate",
    migrations_dir: str = "migrations",
) -> dict[str, Any]:
    """Create a project in ``directory``: the config (``esmigrate.toml``, or a
    ``[tool.esmigrate]`` table appended to ``pyproject.toml``) and the migrations folder with its
    template. Refuses to overwrite an existing configuration."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    values = {
        "migrations_dir": migrations_dir,
        "history_index": history_index,
        "url": url or DEFAULT_URL,
    }
    written: list[str] = []
    if pyproject:
        config_path = root / "pyproject.toml"
        existing = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
        if re.search(r"^\s*\[tool\.esmigrate[\].]", existing, flags=re.MULTILINE):
            raise ConfigError(
                f"{config_path} already has a [tool.esmigrate] table.",
                hint="Edit it by hand, or run init in another folder.",
            )
        text = (
            ("\n" if existing and not existing.endswith("\n\n") else "")
            + "[tool.esmigrate]\n"
            + _TOML_BODY.format(**values)
            + "\n[tool.esmigrate.connection]\n"
            + _TOML_CONNECTION.format(**values)
        )
        with config_path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    else:
        config_path = root / CONFIG_FILE
        if config_path.exists():
            raise ConfigError(
                f"{config_path} already exists.",
                hint="The project is initialised; edit the file, or run init in another folder.",
            )
        config_path.write_text(
            "[esmigrate]\n"
            + _TOML_BODY.format(**values)
            + "\n[esmigrate.connection]\n"
            + _TOML_CONNECTION.format(**values),
            encoding="utf-8",
        )
    written.append(str(config_path))
    folder = root / migrations_dir
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / TEMPLATE_FILE
    if not template.exists():
        template.write_text(DEFAULT_TEMPLATE, encoding="utf-8")
        written.append(str(template))
    return {"config": str(config_path), "migrations": str(folder), "written": written}


def revision(
    config: Config,
    message: str,
    *,
    rev_id: str | None = None,
    head: Sequence[str] | None = None,
    autogenerate: bool = False,
) -> dict[str, Any]:
    """Write a new migration script from the template. It follows the current head, or the
    revision(s) in ``head`` (to start a branch, or to merge several).

    With ``autogenerate`` the Document classes of ``schema_modules`` are compared with the live
    indices and the script's ``upgrade()`` gets the operations the differences need, with a
    ``# TODO(human)`` comment where a person must decide (as Alembic's autogenerate).
    """
    directory = ScriptDirectory.from_config(config)
    upgrades = autogenerate_operations(config) if autogenerate else []
    script = directory.write_revision(
        message, down_revisions=head, rev_id=rev_id, upgrades=upgrades
    )
    return {
        "revision": script.revision,
        "down_revisions": list(script.down_revisions),
        "message": script.message,
        "path": display_path(script.path, config.root),
        "operations": upgrades,
    }


def autogenerate_operations(config: Config) -> list[str]:
    """Source lines for ``upgrade()`` that bring the cluster to the configured Document classes."""
    from esmigrate.schema import diff_mappings, index_name_of, render_operations

    documents = schema_documents(config)
    lines: list[str] = []
    with open_cluster(config) as cluster:
        for document in documents:
            name = index_name_of(document)
            assert name is not None  # schema_documents keeps only classes with an index name
            if not cluster.exists(name):
                lines.append(f"# {name}: does not exist yet")
                lines.append(f"from {document.__module__} import {document.__qualname__}")
                lines.append(f"op.create_index({document.__qualname__})")
                continue
            diff = diff_mappings(name, document, cluster=cluster)
            if not diff or diff.compatibility is None:
                continue
            lines.append(f"# {name}: {diff.compatibility.value.replace('_', ' ')}")
            if diff.breaking:
                lines.append(f"from {document.__module__} import {document.__qualname__}")
            lines.extend(render_operations(diff, name, target=document.__qualname__))
    return lines


def merge(
    config: Config,
    message: str = "merge heads",
    *,
    revisions: Sequence[str] | None = None,
    rev_id: str | None = None,
) -> dict[str, Any]:
    """Write a merge revision joining ``revisions`` (default: all heads) into one head."""
    directory = ScriptDirectory.from_config(config)
    graph = directory.load()
    parents = list(revisions) if revisions else list(graph.heads)
    if len(parents) < 2:
        raise RevisionGraphError(
            f"There is nothing to merge: {len(parents)} head(s) ({', '.join(parents) or 'none'}).",
            hint="A merge joins two or more heads; name them, or create a plain revision.",
        )
    script = directory.write_revision(message, down_revisions=parents, rev_id=rev_id, graph=graph)
    return {
        "revision": script.revision,
        "down_revisions": list(script.down_revisions),
        "message": script.message,
        "path": display_path(script.path, config.root),
    }


def _runner(
    config: Config,
    cluster: Cluster,
    graph: RevisionGraph,
    reporter: Reporter | None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> Runner:
    return Runner.from_config(
        config, cluster, graph, reporter=reporter, cancel=cancel, on_progress=on_progress
    )


def plan(
    config: Config,
    target: str = "head",
    *,
    downgrade: bool = False,
    offline: bool = False,
) -> dict[str, Any]:
    """What ``upgrade`` (or ``downgrade``) to ``target`` would run, revision by revision and
    request by request. ``offline``: without a cluster, as if nothing (for a downgrade:
    everything) were applied."""
    graph = ScriptDirectory.from_config(config).load()
    direction = DOWNGRADE if downgrade else UPGRADE
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
        result = _runner(config, cluster, graph, None).plan(target, direction)
        return result | {"offline": False, "url": cluster.where}


def upgrade(
    config: Config,
    target: str = "head",
    *,
    dry_run: bool = False,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Apply the pending revisions up to ``target`` (``head``, ``heads``, a revision, ``+N``).

    Waits up to ``lock_timeout`` seconds (default: twice the lease TTL, so a dead runner's
    lease always lapses first) for another runner's lease. ``dry_run``: the plan only.
    Setting ``cancel`` stops at the next safe point (a running ``op.migrate`` at its next
    checkpoint) with :class:`~esmigrate.exceptions.MigrationCancelled`; the next ``upgrade``
    resumes. A revision whose runner died inside an ``op.migrate`` is resumed too.
    ``reporter`` receives a line per revision and operation; ``on_progress`` the progress
    events of long operations (draw them with :func:`esmigrate.progress.progress_display`).
    """
    if dry_run:
        return plan(config, target)
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return _runner(config, cluster, graph, reporter, cancel, on_progress).run(
            target, UPGRADE, lock_timeout=lock_timeout
        )


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
        return _runner(config, cluster, graph, reporter, None, on_progress).run(
            target, DOWNGRADE, lock_timeout=lock_timeout
        )


def status(config: Config) -> dict[str, Any]:
    """Current revision(s), pending and failed ones, and the lease holder."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return _runner(config, cluster, graph, None).status()


def history(config: Config, *, verbose: bool = False) -> list[dict[str, Any]]:
    """Every revision recorded in the history index, oldest first (``verbose``: with the
    operation log and events)."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return _runner(config, cluster, graph, None).history(verbose=verbose)


def validate(config: Config) -> dict[str, Any]:
    """Compare the history with the scripts: edited or missing applied scripts, failed and
    interrupted revisions. ``ok`` is False when there is any problem."""
    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        return _runner(config, cluster, graph, None).validate()


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
        return _runner(config, cluster, graph, reporter).repair(
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
        return _runner(config, cluster, graph, reporter).baseline(target, lock_timeout=lock_timeout)


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
        return _runner(config, cluster, graph, reporter).stamp(target, lock_timeout=lock_timeout)


def adopt(config: Config, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Put the concrete index ``name`` behind an alias of the same name (see
    :func:`esmigrate.migrate.adopt`); with ``dry_run``, only say what would be done."""
    from esmigrate.migrate import adopt as adopt_index
    from esmigrate.migrate import plan_adopt

    with open_cluster(config) as cluster:
        if dry_run:
            return {"plan": [op.as_dict() for op in plan_adopt(cluster, name)]}
        return adopt_index(cluster, name, state_index=config.history_index).as_dict()


# -- schemas and transformations ------------------------------------------------------------------


def _import(config: Config, module_name: str) -> Any:
    """Import a module of the project (its root is put on ``sys.path`` first, as Alembic does)."""
    import importlib
    import sys

    from esmigrate.exceptions import ConfigError

    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"Cannot import {module_name!r}: {exc}.",
            hint=f"Check the module name; it is imported with {root} on the path.",
        ) from None


def load_object(config: Config, reference: str) -> Any:
    """The object a ``module:attribute`` reference names (``myapp.rules:post_rules``)."""
    from esmigrate.exceptions import ConfigError

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"Invalid reference {reference!r}.",
            hint="Use module:attribute, e.g. myapp.migrations.rules:v3_rules.",
        )
    obj = _import(config, module_name)
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{module_name!r} has no attribute {attribute!r}.",
                hint="Name a RuleSet, a doc -> doc function, or a versioned Document class.",
            ) from None
    return obj


def load_transform(config: Config, reference: str) -> Any:
    """A rule set or ``doc -> doc`` callable from a ``module:attribute`` reference.

    A :class:`~esmigrate.schema.VersionedDocument` class stands for its upgrade graph.
    """
    from esmigrate.exceptions import ConfigError
    from esmigrate.schema import VersionedDocument

    obj = load_object(config, reference)
    if isinstance(obj, type) and issubclass(obj, VersionedDocument):
        return obj.upgrade_graph()
    if not callable(obj):
        raise ConfigError(
            f"{reference} is a {type(obj).__name__}, not a transform.",
            hint="Name a RuleSet, a doc -> doc function, or a versioned Document class.",
        )
    return obj


def preview(
    config: Config,
    rules: str,
    index: str,
    *,
    sample: int = 10,
    query: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Any:
    """Run the transform ``rules`` (``module:attribute``) on a sample of ``index``; writes nothing.

    Returns a :class:`~esmigrate.transform.preview.PreviewReport`.
    """
    from esmigrate.transform.preview import preview as run_preview

    transform = load_transform(config, rules)
    with open_cluster(config) as cluster:
        return run_preview(cluster, index, transform, sample=sample, query=query, seed=seed)


def schema_documents(config: Config) -> list[type]:
    """The Document classes (with an index name) in ``config.schema_modules``, in order."""
    from esmigrate.exceptions import ConfigError
    from esmigrate.schema import index_name_of

    if not config.schema_modules:
        raise ConfigError(
            "No schema modules are configured.",
            hint='Name the modules holding your Document classes: schema_modules = ["myapp.documents"] '
            "in esmigrate.toml.",
        )
    found: list[type] = []
    for module_name in config.schema_modules:
        module = _import(config, module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and hasattr(value, "_doc_type")
                and index_name_of(value) is not None
                and value not in found
            ):
                found.append(value)
    if not found:
        raise ConfigError(
            "The schema modules define no Document class with an index name.",
            hint="Give each Document class `class Index: name = '...'`.",
        )
    return found


def check(config: Config) -> Any:
    """Compare the Document classes of ``schema_modules`` with the live mappings.

    Returns a :class:`~esmigrate.schema.check.CheckReport`; ``report.ok`` is False when any
    index is missing or differs (the CLI exits 1 then).
    """
    from esmigrate.schema.check import check_documents

    documents = schema_documents(config)
    with open_cluster(config) as cluster:
        return check_documents(cluster, documents)


def schema_versions(config: Config, index: str, *, field: str = "schema_version") -> Any:
    """Documents per ``schema_version`` in ``index`` (a :class:`~esmigrate.schema.VersionCounts`)."""
    from esmigrate.schema import detect_schema_versions

    with open_cluster(config) as cluster:
        return detect_schema_versions(cluster, index, field=field)


def preflight(
    config: Config, target: str = "head", *, snapshot_repository: str | None = None
) -> Any:
    """Checks to run before a production ``upgrade``: the history (failed, interrupted, edited
    revisions), the lease, what is pending, cluster health, disk headroom for the copies the plan
    makes, leftover write blocks, and the snapshot repository. Writes nothing.

    Returns a :class:`~esmigrate.preflight.PreflightReport`; ``report.ok`` is False when a
    check failed.
    """
    from esmigrate.preflight import Check, PreflightReport, run_checks

    graph = ScriptDirectory.from_config(config).load()
    with open_cluster(config) as cluster:
        runner = _runner(config, cluster, graph, None)
        state = runner.status()
        checks: list[Check] = []
        for problem in state["problems"]:
            checks.append(
                Check(
                    "history",
                    "fail",
                    f"revision {problem.get('revision')}: {problem.get('problem')}",
                    problem.get("fix"),
                )
            )
        if not state["problems"]:
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
        sources = copy_sources(runner.plan(target, UPGRADE)) if pending else []
        cluster_checks = run_checks(
            cluster, copy_sources=sources, snapshot_repository=snapshot_repository
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


# -- rollback points and rollbacks ----------------------------------------------------------------


def rollback_point_create(
    config: Config,
    name: str,
    aliases: Sequence[str],
    *,
    snapshot_repository: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Record rollback point ``name`` for ``aliases`` in the history index (see
    :func:`esmigrate.rollback.create_point`)."""
    from esmigrate.rollback import create_point

    with open_cluster(config) as cluster:
        return create_point(
            cluster,
            name,
            aliases,
            state_index=config.history_index,
            snapshot_repository=snapshot_repository,
            note=note,
        ).as_dict()


def rollback_point_list(config: Config) -> list[dict[str, Any]]:
    """Every rollback point, oldest first."""
    from esmigrate.rollback import list_points

    with open_cluster(config) as cluster:
        return [p.as_dict() for p in list_points(cluster, state_index=config.history_index)]


def rollback_point_show(config: Config, name: str) -> dict[str, Any]:
    """One rollback point."""
    from esmigrate.rollback import get_point

    with open_cluster(config) as cluster:
        return get_point(cluster, name, state_index=config.history_index).as_dict()


def rollback_point_cleanup(
    config: Config, *, keep: int = 3, older_than: float | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Delete old rollback points and what only they reference (see
    :func:`esmigrate.rollback.cleanup`); ``older_than`` in seconds."""
    from esmigrate.rollback import cleanup

    with open_cluster(config) as cluster:
        return cleanup(
            cluster,
            state_index=config.history_index,
            keep=keep,
            older_than=older_than,
            dry_run=dry_run,
        ).as_dict()


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
    from esmigrate.rollback import plan_rollback
    from esmigrate.rollback import rollback as roll_back

    reverse = load_transform(config, reverse_rules) if reverse_rules else None
    with open_cluster(config) as cluster:
        if dry_run:
            return plan_rollback(
                cluster,
                name,
                state_index=config.history_index,
                reverse=reverse is not None,
                discard_writes=discard_writes,
            ).as_dict()
        return roll_back(
            cluster,
            name,
            state_index=config.history_index,
            reverse_transform=reverse,
            discard_writes=discard_writes,
        ).as_dict()


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
    on_sample: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Watch ``alias`` (cluster health, a search probe, its count against the point) and, with
    ``rollback_to``, roll back to that point when a check fails ``consecutive`` times."""
    from esmigrate.rollback import alias_checks, auto_rollback
    from esmigrate.rollback import monitor as watch

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
            ).as_dict()
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
        ).as_dict()


def throttle(config: Config, revision: str, requests_per_second: float | None) -> dict[str, Any]:
    """Change the speed of the running migration(s) of ``revision`` (``op.migrate``), found by
    their checkpoint documents in the history index; None or <= 0 means unlimited."""
    from esmigrate.migrate import throttle as engine_throttle
    from esmigrate.operations import Migrate, migration_id
    from esmigrate.state import Checkpoint

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
            engine_throttle(cluster, mid, rps, state_index=config.history_index) for mid in running
        ]
    return {"revision": rev, "requests_per_second": rps, "migrations": changed}
