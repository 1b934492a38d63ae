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


def adopt(config: Config, name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Put the concrete index ``name`` behind an alias of the same name (see
    :func:`esmigrate.migrate.adopt`); with ``dry_run``, only say what would be done."""
    from esmigrate.migrate import adopt as adopt_index
    from esmigrate.migrate import plan_adopt

    with open_cluster(config) as cluster:
        if dry_run:
            return {"plan": [op.as_dict() for op in plan_adopt(cluster, name)]}
        return adopt_index(cluster, name, state_index=config.history_index).as_dict()
