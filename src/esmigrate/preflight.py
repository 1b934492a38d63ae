"""Pre-flight checks: what to know before a production migration starts.

Each check is data (:class:`Check`: name, status, detail, hint), so ``esmigrate preflight`` can
print them, ``--json`` can hand them to a deploy pipeline, and ``upgrade`` can refuse to start
when one fails. Nothing here writes to the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ClusterError, NotFoundError

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One pre-flight finding."""

    name: str
    status: Status
    detail: str
    hint: str | None = None


@dataclass(frozen=True)
class PreflightReport:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No check failed (warnings are allowed)."""
        return all(c.status != "fail" for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def check_health(cluster: Cluster, indices: Iterable[str] = ()) -> Check:
    """The cluster's health, as far as a migration of ``indices`` is concerned.

    A red index cannot be read or written: a migration that touches one must not start. Another
    index being red (a team's abandoned index, a shard lost elsewhere) is reported as a warning
    when ``indices`` (aliases or index names) are given and none of them is red. Without
    ``indices`` any red index fails the check.
    """
    health = cluster.health(timeout="5s")
    status = health["status"]
    if status == "red":
        red = red_indices(cluster)
        names = list(indices)
        touched = sorted(red & set(concrete_indices(cluster, names))) if names else sorted(red)
        listed = ", ".join(touched[:5] or sorted(red)[:5]) or "none listed"
        if names and not touched:
            return Check(
                "cluster health",
                "warn",
                f"The cluster is red, but not in {', '.join(names)} (red: {listed}).",
                "The migration does not touch the red indices; fix them all the same "
                "(GET _cluster/allocation/explain says why a shard is not allocated).",
            )
        return Check(
            "cluster health",
            "fail",
            f"The cluster is red ({health['unassigned_shards']} unassigned shards; red: {listed}).",
            "Fix the red indices first (GET _cluster/allocation/explain says why a shard is "
            "not allocated): a migration cannot read or write a shard that is not allocated.",
        )
    if status == "yellow":
        return Check(
            "cluster health",
            "warn",
            f"The cluster is yellow ({health['unassigned_shards']} unassigned replica shards).",
            "Data is readable, but a node loss now would make an index red mid-migration.",
        )
    return Check("cluster health", "ok", f"green, {health['number_of_nodes']} node(s)")


def red_indices(cluster: Cluster) -> set[str]:
    """The cluster's red indices (hidden ones included)."""
    answer = cluster.request(
        "GET",
        "/_cluster/health",
        params={
            "level": "indices",
            "expand_wildcards": "all",
            "timeout": "5s",
            "filter_path": "indices.*.status",
        },
    )
    return {
        name
        for name, index in (answer.get("indices") or {}).items()
        if index.get("status") == "red"
    }


def concrete_indices(cluster: Cluster, names: Iterable[str]) -> list[str]:
    """The indices behind ``names`` (aliases, index names, wildcards); missing ones left out."""
    found: list[str] = []
    for name in names:
        try:
            answer = cluster.request(
                "GET",
                f"/{name}/_settings/index.uuid",
                params={"expand_wildcards": "all", "ignore_unavailable": "true"},
            )
        except NotFoundError:
            continue
        found.extend(answer)
    return found


def _ratio(value: Any) -> float | None:
    """A disk watermark as a used-space ratio; None for absolute byte values."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        number = float(text)
    except ValueError:
        return None  # e.g. "500mb": a free-space floor, not a ratio
    return number if number <= 1 else None


def disk_space(cluster: Cluster) -> tuple[int, int]:
    """Total and available bytes of the data nodes' file systems (0, 0 when unreported)."""
    stats = cluster.request("GET", "/_nodes/stats/fs", params={"filter_path": "nodes.*.fs.total"})
    total = free = 0
    for node in (stats.get("nodes") or {}).values():
        fs = node.get("fs", {}).get("total", {})
        total += int(fs.get("total_in_bytes", 0))
        free += int(fs.get("available_in_bytes", 0))
    return total, free


def check_disk(cluster: Cluster, copy_bytes: int = 0) -> Check:
    """Disk use against the high watermark, with room for ``copy_bytes`` of new indices."""
    settings = cluster.request(
        "GET",
        "/_cluster/settings",
        params={
            "include_defaults": "true",
            "filter_path": "**.disk.watermark.high,**.disk.threshold_enabled",
        },
    )
    flat = _flatten(settings)
    high = next((v for k, v in flat.items() if k.endswith("disk.watermark.high")), "90%")
    enabled = next((v for k, v in flat.items() if k.endswith("disk.threshold_enabled")), "true")
    limit = _ratio(high) or 0.9
    total, free = disk_space(cluster)
    if total == 0:
        return Check("disk", "warn", "The nodes report no disk statistics.")
    used_after = (total - free + copy_bytes) / total
    detail = (
        f"{(total - free) / total:.0%} used"
        + (f", {used_after:.0%} after copying {copy_bytes / 2**20:.0f} MB" if copy_bytes else "")
        + f"; high watermark {high}"
        + ("" if str(enabled).lower() == "true" else " (disk thresholds disabled)")
    )
    if used_after >= limit and str(enabled).lower() == "true":
        return Check(
            "disk",
            "fail",
            detail,
            "Above the high watermark shards move away and the flood stage makes indices "
            "read-only: free space or add nodes before the copy.",
        )
    return Check("disk", "ok", detail)


def check_blocks(cluster: Cluster, patterns: Iterable[str] = ("*",)) -> Check:
    """Indices that refuse writes right now (a block left behind by a crash, a full disk)."""
    blocked: list[str] = []
    for pattern in patterns:
        try:
            settings = cluster.request(
                "GET",
                f"/{pattern}/_settings",
                params={"filter_path": "*.settings.index.blocks", "expand_wildcards": "open"},
            )
        except NotFoundError:
            continue
        for index, body in (settings or {}).items():
            blocks = body.get("settings", {}).get("index", {}).get("blocks", {})
            if any(
                str(blocks.get(k)).lower() == "true"
                for k in ("write", "read_only", "read_only_allow_delete")
            ):
                blocked.append(index)
    if blocked:
        return Check(
            "write blocks",
            "warn",
            f"{len(blocked)} index(es) refuse writes: {', '.join(sorted(blocked)[:10])}",
            "A crashed migration's successor lifts its own block when it resumes; any other "
            "block (read_only_allow_delete after a full disk) needs PUT <index>/_settings.",
        )
    return Check("write blocks", "ok", "no index refuses writes")


def check_snapshot_repository(cluster: Cluster, repository: str) -> Check:
    """The repository snapshot rollback points are written to: registered, writable from every
    node (``_verify`` writes and reads a test file on each), and not registered read-only (which
    ``_verify`` passes without writing anything)."""
    try:
        cluster.request("POST", f"/_snapshot/{repository}/_verify")
        registered = cluster.request("GET", f"/_snapshot/{repository}")
    except ClusterError as exc:
        return Check(
            "snapshot repository",
            "fail",
            f"Repository {repository!r} cannot be used: {exc.message}",
            "Register it (PUT _snapshot/<name>) with a location in path.repo, or drop the option.",
        )
    settings = (registered.get(repository) or {}).get("settings") or {}
    if str(settings.get("readonly", "false")).lower() == "true":
        return Check(
            "snapshot repository",
            "fail",
            f"Repository {repository!r} is registered read-only: no snapshot can be written to it.",
            f"Register it again without readonly (PUT _snapshot/{repository}), or name a "
            "writable repository.",
        )
    return Check("snapshot repository", "ok", f"{repository!r} verified writable on every node")


def store_bytes(cluster: Cluster, names: Iterable[str]) -> int:
    """Primary store size of the indices behind ``names`` (what a blue-green copy writes)."""
    total = 0
    for name in names:
        try:
            stats = cluster.request(
                "GET", f"/{name}/_stats/store", params={"filter_path": "indices.*.primaries.store"}
            )
        except NotFoundError:
            continue
        for index in (stats.get("indices") or {}).values():
            total += int(index.get("primaries", {}).get("store", {}).get("size_in_bytes", 0))
    return total


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(item, Mapping):
            out.update(_flatten(item, path))
        else:
            out[path] = item
    return out


def run_checks(
    cluster: Cluster,
    *,
    copy_sources: Iterable[str] = (),
    snapshot_repository: str | None = None,
) -> PreflightReport:
    """The cluster-side checks: health, disk (with room for copying ``copy_sources``), blocks,
    and the snapshot repository when one is named."""
    sources = list(copy_sources)
    checks = [
        check_health(cluster, sources),
        check_disk(cluster, store_bytes(cluster, sources)),
        check_blocks(cluster, sources or ("*",)),
    ]
    if snapshot_repository:
        checks.append(check_snapshot_repository(cluster, snapshot_repository))
    return PreflightReport(tuple(checks))
