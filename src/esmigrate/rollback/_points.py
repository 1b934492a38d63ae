"""Rollback points: where aliases pointed, and what their indices held, at a moment.

A point is one document ``rollback_point:<name>`` (``kind: "rollback_point"``) in the state index,
written with ``op_type=create`` (names are unique) and changed only by compare-and-set. It records,
per alias, the indices it pointed to with their alias definitions (``is_write_index``, filter,
routing), and per index its mapping/settings fingerprint, document count and per-shard
``_seq_no`` checkpoints; optionally the name of a snapshot holding those indices. A point recorded
at a migration's cut-over (:func:`rollback_point_hook`) also holds the new index's checkpoints
at the moment of the alias swap: everything above them was written after the cut-over.

A point's *kind* says what keeps the recorded state (:data:`KINDS`):

- ``retained``: the indices themselves (after a blue-green cut-over the old index is no longer
  written). It cannot undo a change made in place.
- ``clone``: a ``_clone`` of each index (``<index>-clone-<point>``) made under a short write block
  (hard links: seconds, whatever the size), for any index; the rollback target. The checkpoints
  are taken under the same block, so the clone holds exactly the recorded state.
- ``snapshot``: a snapshot in a repository (``fs``, s3...), started at once and not waited for
  under a cut-over's write block. A rollback uses an index unchanged since the point as it is,
  restores a deleted one under its name, and restores a changed one (an in-place change) beside
  it as ``<index>-restored-<point>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from esmigrate.cluster import Cluster
from esmigrate.config import POINT_KINDS
from esmigrate.exceptions import (
    ConflictError,
    NotFoundError,
    PointExists,
    PointNotFound,
    RequestError,
    RollbackError,
)
from esmigrate.migrate._layout import (
    alias_targets,
    block_writes,
    clone_index,
    is_write_blocked,
    lift_write_block,
)
from esmigrate.migrate._shards import checkpoints, layout
from esmigrate.schema.mapping import live_mapping
from esmigrate.state import Checkpoint

KIND = "rollback_point"
#: What keeps a point's state (see the module docstring): ``retained``, ``clone``, ``snapshot``.
KINDS = POINT_KINDS
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_ALIAS_KEYS = ("is_write_index", "filter", "index_routing", "search_routing", "is_hidden")


def _now() -> str:
    # Microseconds: points made within one second must still sort in the order they were made.
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass
class RollbackPoint:
    """A recorded rollback point (see the module docstring)."""

    name: str
    created_at: str
    #: alias -> index -> alias definition on that index
    aliases: dict[str, dict[str, dict[str, Any]]]
    #: index -> {"uuid", "fingerprint", "count", "shards", "checkpoints": {shard: seq_no}}
    indices: dict[str, dict[str, Any]]
    note: str = ""
    #: one of :data:`KINDS`
    kind: str = "retained"
    #: index -> its clone (kind ``clone``)
    copies: dict[str, str] = field(default_factory=dict)
    #: {"repository", "snapshot", "indices", "state"} when the point has a snapshot
    snapshot: dict[str, Any] | None = None
    #: {"migration", "at", "checkpoints": {new index: {shard: seq_no}}, "dead_letter_index"} for
    #: a cut-over point
    cut_over: dict[str, Any] | None = None
    last_rollback: dict[str, Any] | None = None
    #: A rollback to this point under way, recorded before it changes anything and cleared
    #: once it is recorded: ``{"at", "mode", "aliases": {alias: indices it leaves it on},
    #: "at_risk"}``. A rerun that finds the aliases there finishes the record (a run killed
    #: after its swap).
    rolling_back: dict[str, Any] | None = None
    #: The migration (``rev:REV:ALIAS``) this point was recorded before, for a point made before
    #: an in-place change (a cut-over's point names its migration in ``cut_over``).
    before: str | None = None
    _seq_no: int | None = field(default=None, repr=False, compare=False)
    _primary_term: int | None = field(default=None, repr=False, compare=False)

    @property
    def migration(self) -> str | None:
        """The migration whose change a rollback to this point undoes (None: a point made by
        hand)."""
        return self.before if self.cut_over is None else self.cut_over.get("migration")

    def index_checkpoints(self, index: str) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.indices[index]["checkpoints"].items()}

    def cut_over_checkpoints(self, index: str) -> dict[int, int] | None:
        """The checkpoints ``index`` had when the aliases were swapped to it (None if unknown)."""
        if self.cut_over is None or index not in self.cut_over.get("checkpoints", {}):
            return None
        return {int(k): int(v) for k, v in self.cut_over["checkpoints"][index].items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "name": self.name,
            "created_at": self.created_at,
            "note": self.note,
            "point_kind": self.kind,
            "copies": self.copies,
            "aliases": self.aliases,
            "indices": self.indices,
            "snapshot": self.snapshot,
            "cut_over": self.cut_over,
            "last_rollback": self.last_rollback,
            "rolling_back": self.rolling_back,
            "before": self.before,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RollbackPoint:
        s = doc["_source"]
        return cls(
            name=s["name"],
            created_at=s["created_at"],
            aliases=s["aliases"],
            indices=s["indices"],
            note=s.get("note", ""),
            kind=s.get("point_kind", "retained"),
            copies=s.get("copies") or {},
            snapshot=s.get("snapshot"),
            cut_over=s.get("cut_over"),
            last_rollback=s.get("last_rollback"),
            rolling_back=s.get("rolling_back"),
            before=s.get("before"),
            _seq_no=doc.get("_seq_no"),
            _primary_term=doc.get("_primary_term"),
        )


def _doc_id(name: str) -> str:
    return f"{KIND}:{name}"


def ensure_state_index(cluster: Cluster, state_index: str) -> None:
    Checkpoint(cluster, state_index, "-").ensure_index()


def fingerprint(cluster: Cluster, index: str) -> str:
    """A hash of what makes documents behave alike: the mapping, shards and analysis."""
    settings = cluster.request("GET", f"/{index}/_settings")[index]["settings"]["index"]
    what = {
        "mappings": live_mapping(cluster, index),
        "shards": settings.get("number_of_shards"),
        "analysis": settings.get("analysis"),
    }
    return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def describe_index(cluster: Cluster, index: str) -> dict[str, Any]:
    """The record of one index in a point (checkpoints taken before the refresh and count)."""
    cps = checkpoints(cluster, index)
    cluster.refresh(index)
    settings = cluster.request("GET", f"/{index}/_settings")[index]["settings"]["index"]
    return {
        "uuid": settings.get("uuid"),
        "fingerprint": fingerprint(cluster, index),
        "count": cluster.count(index),
        "shards": layout(cluster, index).shards,
        "checkpoints": {str(k): v for k, v in cps.items()},
    }


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise RollbackError(
            f"{name!r} is not a valid rollback point name.",
            hint="Use 1-100 lowercase letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (e.g. before-v3).",
        )


def _aliases_now(cluster: Cluster, aliases: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for alias in aliases:
        targets = alias_targets(cluster, alias)
        if not targets:
            raise RollbackError(
                f"{alias!r} is not an alias on {cluster.where}: a rollback point records where "
                "aliases point.",
                hint="Name the aliases your application reads and writes through (e.g. "
                "`esmigrate adopt NAME` puts a concrete index behind an alias first).",
            )
        out[alias] = {
            index: {k: d[k] for k in _ALIAS_KEYS if k in d} for index, d in targets.items()
        }
    return out


def _store(cluster: Cluster, state_index: str, point: RollbackPoint, *, create: bool) -> None:
    params: dict[str, Any] = {"refresh": "true"}
    if create:
        params["op_type"] = "create"
    else:
        params["if_seq_no"] = point._seq_no
        params["if_primary_term"] = point._primary_term
    try:
        result = cluster.request(
            "PUT", f"/{state_index}/_doc/{_doc_id(point.name)}", params=params, body=point.to_dict()
        )
    except ConflictError:
        if create:
            raise PointExists(
                f"A rollback point called {point.name!r} exists already in {state_index}.",
                name=point.name,
                hint="Choose another name, or delete the old point first "
                "(`esmigrate rollback-point cleanup`).",
            ) from None
        raise RollbackError(
            f"The rollback point {point.name!r} was changed by another process meanwhile.",
            hint="Run the command again.",
        ) from None
    point._seq_no, point._primary_term = result["_seq_no"], result["_primary_term"]


def save_point(cluster: Cluster, state_index: str, point: RollbackPoint) -> None:
    """Store changes to an existing point (compare-and-set)."""
    _store(cluster, state_index, point, create=False)


_RUNNING = ("IN_PROGRESS", "STARTED", "INIT")


def _snapshot_now(cluster: Cluster, repository: str, snapshot: str) -> str:
    try:
        info = cluster.request("GET", f"/_snapshot/{repository}/{snapshot}")["snapshots"][0]
    except NotFoundError:
        return "MISSING"
    return str(info.get("state"))


def _wait_snapshot(cluster: Cluster, repository: str, snapshot: str) -> str:
    while True:
        state = _snapshot_now(cluster, repository, snapshot)
        if state not in _RUNNING:
            return state
        time.sleep(0.5)


def snapshot_state(cluster: Cluster, point: RollbackPoint, *, state_index: str) -> str | None:
    """The state of the point's snapshot (None: it has none), waiting for one still running (a
    cut-over starts its snapshot without waiting) and recording the outcome in the point."""
    snap = point.snapshot
    if snap is None:
        return None
    if snap.get("state") in _RUNNING:
        snap["state"] = _wait_snapshot(cluster, snap["repository"], snap["snapshot"])
        save_point(cluster, state_index, point)
    return str(snap["state"])


def clone_name(index: str, point: str) -> str:
    """The clone of ``index`` a clone point ``point`` keeps."""
    return f"{index}-clone-{point}"[:255]


def restored_name(index: str, point: str) -> str:
    """Where a snapshot point restores ``index`` when ``index`` changed since (in place)."""
    return f"{index}-restored-{point}"[:255]


def _clone_all(
    cluster: Cluster, name: str, indices: list[str], state_index: str
) -> dict[str, dict[str, Any]]:
    """Clone each index under a write block; returns the index records, taken under the same
    block (so each clone holds exactly what its record says). A block that was there already
    (a cut-over's) stays. The block is recorded before it is set, so a create killed under it
    is undone by the next create of that name (which lifts it first)."""
    state = Checkpoint(cluster, state_index, f"clone-point:{name}")
    left = state.load()
    if left.get("phase") == "blocked" and cluster.exists(left["index"]):
        lift_write_block(cluster, left["index"], error=RollbackError)
    state.reset()
    records: dict[str, dict[str, Any]] = {}
    for index in indices:
        clone = clone_name(index, name)
        if cluster.exists(clone):
            # Left by a create killed before it stored the point (the name was free): stale.
            cluster.request("DELETE", f"/{clone}")
        blocked_before = is_write_blocked(cluster, index)
        if not blocked_before:
            state.save(phase="blocked", index=index)
        try:
            block_writes(cluster, index, error=RollbackError)
            records[index] = describe_index(cluster, index)
            clone_index(cluster, index, clone)
        finally:
            if not blocked_before:
                lift_write_block(cluster, index, error=RollbackError)
                state.save(phase="lifted", index=index)
    return records


def create_point(
    cluster: Cluster,
    name: str,
    aliases: Iterable[str],
    *,
    state_index: str,
    kind: str = "retained",
    snapshot_repository: str | None = None,
    note: str = "",
    cut_over: Mapping[str, Any] | None = None,
    wait_for_snapshot: bool = True,
    before: str | None = None,
) -> RollbackPoint:
    """Record a rollback point for ``aliases`` (see the module docstring).

    Parameters:
        cluster: the connected cluster.
        name: a unique name (lowercase letters, digits, ``.``, ``_``, ``-``).
        aliases: the aliases whose targets are recorded.
        state_index: where the point is stored (the project's history index by default in the
            CLI); created if missing.
        kind: ``retained``, ``clone`` or ``snapshot`` (see the module docstring).
        snapshot_repository: snapshot the indices there (incremental, no write block): required
            by kind ``snapshot``, an extra for the others.
        wait_for_snapshot: return when the snapshot has finished (it is polled); a cut-over
            starts it and goes on.
        note: free text shown by ``list``/``show``.
        cut_over: set by :func:`rollback_point_hook`.
        before: the migration id (``rev:REV:ALIAS``) the point is recorded before, when it is
            made before an in-place change: a rollback to it is recorded in that revision's
            history.

    Raises :class:`~esmigrate.exceptions.PointExists` when the name is taken and
    :class:`~esmigrate.exceptions.RollbackError` for an unknown alias or repository, or a red
    index — before anything is written — and when the snapshot cannot start (the point is then
    deleted again).
    """
    _check_name(name)
    if kind not in KINDS:
        raise RollbackError(
            f"{kind!r} is not a kind of rollback point.",
            hint=f"Choose one of {', '.join(KINDS)} (--kind, or rollback_point_kind in "
            "esmigrate.toml).",
        )
    if kind == "snapshot" and snapshot_repository is None:
        raise RollbackError(
            f"The snapshot rollback point {name!r} needs a snapshot repository.",
            hint="Pass --snapshot-repository NAME (or set snapshot_repository in esmigrate.toml); "
            "register one with PUT _snapshot/NAME (type fs with a location under path.repo, or "
            "s3/gcs/azure).",
        )
    names = sorted(set(aliases))
    if not names:
        raise RollbackError(
            "A rollback point needs at least one alias.", hint="Pass the aliases to record."
        )
    where = _aliases_now(cluster, names)
    if snapshot_repository is not None:
        try:
            repo = cluster.request("GET", f"/_snapshot/{snapshot_repository}")
        except NotFoundError:
            raise RollbackError(
                f"There is no snapshot repository {snapshot_repository!r} on {cluster.where}.",
                hint="Register one first (PUT _snapshot/NAME with type fs and a location under "
                "path.repo, or s3/gcs/azure), or leave out the snapshot.",
            ) from None
        repo_settings = (repo.get(snapshot_repository) or {}).get("settings") or {}
        if str(repo_settings.get("readonly", "false")).lower() == "true":
            raise RollbackError(
                f"The snapshot repository {snapshot_repository!r} is read-only: no snapshot can "
                "be taken in it.",
                hint="Name a writable repository (or register this one without readonly), or "
                "leave out the snapshot. Nothing was written.",
            )
    indices = sorted({index for targets in where.values() for index in targets})
    for index in indices:
        if cluster.health(index, timeout="5s")["status"] == "red":
            raise RollbackError(
                f"{index} is red: a shard of it has no active copy, so a rollback point cannot "
                "record its checkpoints" + (" or snapshot it." if snapshot_repository else "."),
                hint="GET _cluster/allocation/explain says why (a node gone?); create the point "
                "once the index is yellow or green. Nothing was written.",
            )
    ensure_state_index(cluster, state_index)
    if kind == "clone":
        records = _clone_all(cluster, name, indices, state_index)
    else:
        records = {index: describe_index(cluster, index) for index in indices}
    point = RollbackPoint(
        name=name,
        created_at=_now(),
        aliases=where,
        indices=records,
        note=note,
        kind=kind,
        copies={index: clone_name(index, name) for index in indices} if kind == "clone" else {},
        cut_over=dict(cut_over) if cut_over is not None else None,
        before=before,
    )
    if snapshot_repository is not None:
        snapshot = f"esmigrate-{name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        point.snapshot = {
            "repository": snapshot_repository,
            "snapshot": snapshot,
            "indices": indices,
            "state": "IN_PROGRESS",
        }
    _store(cluster, state_index, point, create=True)
    if point.snapshot is not None:
        try:
            cluster.request(
                "PUT",
                f"/_snapshot/{snapshot_repository}/{point.snapshot['snapshot']}",
                params={"wait_for_completion": "false"},
                body={"indices": ",".join(indices), "include_global_state": False},
            )
        except RequestError as exc:
            # Refused at once (a shard gone since the check above, a repository gone bad): no
            # snapshot exists, so neither does the point that would have named it, nor its clones.
            delete_point(cluster, point, state_index=state_index)
            for copy in point.copies.values():
                with contextlib.suppress(NotFoundError):
                    cluster.request("DELETE", f"/{copy}")
            raise RollbackError(
                f"The snapshot of rollback point {name!r} could not start: "
                f"{exc.reason or exc}. The point was not recorded.",
                hint=f"GET _snapshot/{snapshot_repository} shows the repository; GET "
                "_cluster/allocation/explain says why a shard has no active copy. Then create "
                "the point again.",
            ) from None
        if not wait_for_snapshot:
            return point
        point.snapshot["state"] = _wait_snapshot(
            cluster, str(snapshot_repository), point.snapshot["snapshot"]
        )
        save_point(cluster, state_index, point)
        if point.snapshot["state"] != "SUCCESS":
            raise RollbackError(
                f"The snapshot {point.snapshot['snapshot']} of rollback point {name!r} ended "
                f"{point.snapshot['state']}; the point is recorded without a usable snapshot.",
                hint=f"GET _snapshot/{snapshot_repository}/{point.snapshot['snapshot']} says "
                "why; the indices themselves are still the rollback target.",
            )
    return point


def get_point(cluster: Cluster, name: str, *, state_index: str) -> RollbackPoint:
    """The stored point ``name``; :class:`~esmigrate.exceptions.PointNotFound` if none."""
    try:
        doc = cluster.request("GET", f"/{state_index}/_doc/{_doc_id(name)}")
    except NotFoundError:
        known = [p.name for p in list_points(cluster, state_index=state_index)]
        raise PointNotFound(
            f"There is no rollback point {name!r} in {state_index}"
            + (f" (known: {', '.join(known[:10])})." if known else " (there are none)."),
            name=name,
            known=known,
            hint="`esmigrate rollback-point list` shows them; create one with "
            "`esmigrate rollback-point create NAME ALIAS...`.",
        ) from None
    return RollbackPoint.from_doc(doc)


def list_points(cluster: Cluster, *, state_index: str) -> list[RollbackPoint]:
    """Every rollback point in ``state_index``, oldest first."""
    if not cluster.exists(state_index):
        return []
    cluster.refresh(state_index)
    hits = cluster.search(
        state_index,
        {"size": 10_000, "query": {"term": {"kind": KIND}}, "seq_no_primary_term": True},
    )["hits"]["hits"]
    points = [RollbackPoint.from_doc(h) for h in hits]
    return sorted(points, key=lambda p: (p.created_at, p.name))


def delete_point(cluster: Cluster, point: RollbackPoint, *, state_index: str) -> None:
    params: dict[str, Any] = {"refresh": "true"}
    if point._seq_no is not None:
        params.update(if_seq_no=point._seq_no, if_primary_term=point._primary_term)
    cluster.request("DELETE", f"/{state_index}/_doc/{_doc_id(point.name)}", params=params)


def rollback_point_hook(
    cluster: Cluster,
    name: str,
    *,
    state_index: str,
    note: str = "",
    kind: str = "retained",
    snapshot_repository: str | None = None,
) -> Callable[[dict[str, Any]], None]:
    """A :class:`~esmigrate.migrate.BlueGreen` ``on_cut_over`` hook recording point ``name``.

    It runs under the write block, just before the alias swap: the aliases still point to the
    old index (recorded with their exact definitions and final checkpoints), and the new index's
    checkpoints are those of the moment of the swap. A rerun of a migration killed after the
    hook replaces the point it recorded (same migration id); any other existing point of that
    name makes the cut-over fail with the block lifted. ``kind``: what keeps the old state
    besides the old index (a snapshot is started, not waited for, under the block).
    """

    def hook(data: dict[str, Any]) -> None:
        cut_over = {
            "migration": data["migration"],
            "from": data["source"],
            "to": data["target"],
            "at": _now(),
            "checkpoints": {data["target"]: dict(data["target_checkpoints"])},
            # Documents the migration dead-lettered are in the old index only: a rollback
            # that carries writes back must keep them there.
            "dead_letter_index": data.get("dead_letter_index"),
            "dead_lettered": data.get("dead_lettered_missing", []),
        }
        try:
            existing: RollbackPoint | None = get_point(cluster, name, state_index=state_index)
        except PointNotFound:
            existing = None
        if existing is not None and existing.migration == data["migration"]:
            delete_point(cluster, existing, state_index=state_index)
        create_point(
            cluster,
            name,
            data["aliases"],
            state_index=state_index,
            note=note or f"before {data['migration']} ({data['source']} -> {data['target']})",
            cut_over=cut_over,
            kind=kind,
            snapshot_repository=snapshot_repository,
            wait_for_snapshot=False,
        )

    return hook
