"""Alembic's familiar verbs over the revision graph: ``heads``, ``branches``, ``show``, the
offline ``history`` (``scripts``), and ``current`` (which asks the cluster).

Everything but ``current`` reads only the migrations folder: no cluster is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esmigrate.command._base import open_cluster, runner_for
from esmigrate.config import Config
from esmigrate.runtime import DOWNGRADE, UPGRADE, display_path, record_operations
from esmigrate.script import RevisionGraph, ScriptDirectory


@dataclass(frozen=True)
class ScriptSummary:
    """One migration script and its place in the revision graph."""

    revision: str
    message: str
    path: str
    down_revisions: tuple[str, ...]
    children: tuple[str, ...]
    checksum: str
    has_downgrade: bool

    @property
    def is_head(self) -> bool:
        return not self.children

    @property
    def is_base(self) -> bool:
        return not self.down_revisions

    @property
    def is_branch_point(self) -> bool:
        return len(self.children) > 1

    @property
    def is_merge(self) -> bool:
        return len(self.down_revisions) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "message": self.message,
            "path": self.path,
            "down_revisions": list(self.down_revisions),
            "children": list(self.children),
            "checksum": self.checksum,
            "has_downgrade": self.has_downgrade,
            "is_head": self.is_head,
            "is_base": self.is_base,
            "is_branch_point": self.is_branch_point,
            "is_merge": self.is_merge,
        }


@dataclass(frozen=True)
class ScriptDetails:
    """What ``show REV`` prints: the script and the operations each direction declares."""

    script: ScriptSummary
    #: ``{"kind", "summary"}`` per operation of ``upgrade(op)``.
    upgrade: tuple[dict[str, str], ...]
    #: The same for ``downgrade(op)``; None when the script has none.
    downgrade: tuple[dict[str, str], ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.script.to_dict(),
            "upgrade": list(self.upgrade),
            "downgrade": None if self.downgrade is None else list(self.downgrade),
        }


@dataclass(frozen=True)
class Current:
    """The revisions the cluster is at (applied, with no applied child)."""

    history_index: str
    revisions: tuple[ScriptSummary, ...]
    #: Applied revisions whose script is gone (``validate`` reports them).
    unknown: tuple[str, ...]
    up_to_date: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "history_index": self.history_index,
            "current": [s.to_dict() for s in self.revisions],
            "unknown": list(self.unknown),
            "up_to_date": self.up_to_date,
        }


def _graph(config: Config) -> RevisionGraph:
    return ScriptDirectory.from_config(config).load()


def _summary(config: Config, graph: RevisionGraph, revision: str) -> ScriptSummary:
    script = graph[revision]
    return ScriptSummary(
        revision=script.revision,
        message=script.message,
        path=display_path(script.path, config.root),
        down_revisions=script.down_revisions,
        children=tuple(graph.sort(graph.children[revision])),
        checksum=script.checksum,
        has_downgrade=script.downgrade is not None,
    )


def scripts(config: Config) -> list[ScriptSummary]:
    """Every migration script, parents before children (``history --offline``)."""
    graph = _graph(config)
    return [_summary(config, graph, rev) for rev in graph.order]


def heads(config: Config) -> list[ScriptSummary]:
    """The scripts no other script follows (one, unless the graph has unmerged branches)."""
    graph = _graph(config)
    return [_summary(config, graph, rev) for rev in graph.heads]


def branches(config: Config) -> list[ScriptSummary]:
    """The branch points: scripts that more than one script follows."""
    graph = _graph(config)
    return [_summary(config, graph, rev) for rev in graph.order if len(graph.children[rev]) > 1]


def show(config: Config, revision: str) -> ScriptDetails:
    """One script (a revision id, a unique prefix, or ``head``) and the operations it declares,
    recorded without a cluster."""
    graph = _graph(config)
    script = graph[graph.head()] if revision == "head" else graph.resolve(revision)

    def declared(direction: str) -> tuple[dict[str, str], ...]:
        return tuple(
            {"kind": op.kind, "summary": op.summary()}
            for op in record_operations(script, direction)
        )

    return ScriptDetails(
        script=_summary(config, graph, script.revision),
        upgrade=declared(UPGRADE),
        downgrade=declared(DOWNGRADE) if script.downgrade is not None else None,
    )


def current(config: Config) -> Current:
    """The revision(s) the cluster is at, from its history index."""
    graph = _graph(config)
    with open_cluster(config) as cluster:
        state = runner_for(config, cluster, graph, None).status()
    known = [rev for rev in state["current"] if rev in graph]
    return Current(
        history_index=str(state["history_index"]),
        revisions=tuple(_summary(config, graph, rev) for rev in known),
        unknown=tuple(rev for rev in state["current"] if rev not in graph),
        up_to_date=bool(state["up_to_date"]),
    )
