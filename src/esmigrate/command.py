"""One plain function per CLI verb, each taking a :class:`~esmigrate.config.Config`.

The CLI (``esmigrate.cli``) only parses arguments and prints what these return, so every verb is
also a Python API: ``esmigrate.command.info(load_config())``.
"""

from __future__ import annotations

from typing import Any

from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config


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
