"""Project verbs: ``info``, ``init``, ``revision`` (with ``--autogenerate``), ``merge``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esmigrate.command._base import open_cluster
from esmigrate.command._schema import schema_documents
from esmigrate.config import CONFIG_FILE, DEFAULT_URL, Config
from esmigrate.exceptions import ConfigError, RevisionGraphError
from esmigrate.runtime import display_path
from esmigrate.schema import diff_mappings, index_name_of, render_operations
from esmigrate.script import DEFAULT_TEMPLATE, TEMPLATE_FILE, ScriptDirectory


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
