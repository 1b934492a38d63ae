"""Per-shard bookkeeping: sequence-number checkpoints, per-shard counts, sequence-number scans.

Every operation on a shard gets the next ``_seq_no`` of that shard. A copy of a shard that has
processed every operation up to its *local checkpoint* shows all of them to a search after a
refresh. So "record checkpoints, refresh, read everything with ``_seq_no`` above the previous
checkpoint" finds every document written since the previous round — the basis of the copy, the
catch-up rounds and the incremental strategy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError


@dataclass(frozen=True)
class Layout:
    """How an index distributes documents to shards (same layout = same id→shard function)."""

    shards: int
    routing_shards: int
    routing_partition_size: int


def layout(cluster: Cluster, index: str) -> Layout:
    meta = cluster.request(
        "GET", f"/_cluster/state/metadata/{index}", params={"filter_path": "metadata.indices"}
    )
    entry = meta["metadata"]["indices"][index]
    settings = entry.get("settings", {}).get("index", {})
    return Layout(
        shards=int(settings["number_of_shards"]),
        routing_shards=int(entry.get("routing_num_shards", settings["number_of_shards"])),
        routing_partition_size=int(settings.get("routing_partition_size", 1)),
    )


def _shard_stats(cluster: Cluster, index: str) -> dict[str, list[dict[str, Any]]]:
    result = cluster.request(
        "GET",
        f"/{index}/_stats",
        params={
            "level": "shards",
            "filter_path": "indices.*.shards.*.seq_no,indices.*.shards.*.routing,"
            "indices.*.shards.*.retention_leases.primary_term",
        },
    )
    shards: dict[str, list[dict[str, Any]]] = result["indices"][index]["shards"]
    return shards


def checkpoints(cluster: Cluster, index: str) -> dict[int, int]:
    """Per shard, the highest ``_seq_no`` that every started copy has processed.

    The minimum over copies (not the primary's alone): a search with ``preference=_shards:N`` may
    be served by any copy, and must see every operation up to the checkpoint after a refresh.
    """
    out: dict[int, int] = {}
    for shard, copies in _shard_stats(cluster, index).items():
        # A relocating copy still serves searches and writes: it counts.
        values = [
            int(c["seq_no"]["local_checkpoint"])
            for c in copies
            if c.get("routing", {}).get("state") in ("STARTED", "RELOCATING")
        ]
        if not values:
            # Never -1 for a shard that may hold data: a round would skip it and lose its writes.
            raise MigrationError(
                f"Shard {shard} of {index} has no active copy right now.",
                hint="Wait until the cluster allocates it (GET _cluster/health), then run the "
                "migration again: it resumes from its checkpoint.",
            )
        out[int(shard)] = min(values)
    return out


def primary_terms(cluster: Cluster, index: str) -> dict[int, int]:
    """Per shard, its primary term: it grows each time a copy is promoted to primary or the
    primary is recovered from its store (a failover, a node restart, a reopen).

    A new term may have rolled back operations above the global checkpoint that some copy had
    served to a search (see docs/design.md, *Primary failover*). Read from the copies' retention
    lease stats (the highest a copy reports); ``{}`` where the cluster does not report them.
    """
    out: dict[int, int] = {}
    for shard, copies in _shard_stats(cluster, index).items():
        values = [
            int(c["retention_leases"]["primary_term"])
            for c in copies
            if "primary_term" in (c.get("retention_leases") or {})
        ]
        if values:
            out[int(shard)] = max(values)
    return out


def changed_terms(known: Mapping[int, int], now: Mapping[int, int]) -> list[int]:
    """The shards whose primary term in ``now`` differs from the one ``known`` for them (a shard
    not in ``known`` has nothing to compare with)."""
    return sorted(s for s, term in now.items() if s in known and known[s] != term)


def max_seq_nos(cluster: Cluster, index: str) -> dict[int, int]:
    """Per shard, the highest ``_seq_no`` its primary has assigned (-1: no operation yet)."""
    out: dict[int, int] = {}
    for shard, copies in _shard_stats(cluster, index).items():
        primaries = [c for c in copies if c.get("routing", {}).get("primary")]
        values = [int(c["seq_no"]["max_seq_no"]) for c in primaries or copies]
        out[int(shard)] = max(values) if values else -1
    return out


def settled(cluster: Cluster, index: str) -> bool:
    """True when every copy of every shard has processed every operation it was sent."""
    for copies in _shard_stats(cluster, index).values():
        for c in copies:
            seq = c["seq_no"]
            if int(seq["local_checkpoint"]) != int(seq["max_seq_no"]):
                return False
    return True


def scan(
    cluster: Cluster,
    index: str,
    shard: int,
    after: int,
    upto: int,
    *,
    page: int = 1000,
    source: bool | list[str] = True,
    with_seq: bool = False,
    query: Mapping[str, Any] | None = None,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Documents of one shard with ``after < _seq_no <= upto``, in ``_seq_no`` order.

    Yields ``(hits, done_upto)``: after processing the hits, everything on this shard up to
    ``done_upto`` has been seen — a resumable cursor that stays valid across processes, unlike a
    point-in-time's sort values. The range is read in windows of sequence numbers, so a page
    costs what its window holds, never what the rest of the shard holds.
    """
    cursor = after
    window = page * 4
    while cursor < upto:
        top = min(upto, cursor + window)
        search_after: list[Any] | None = None
        seen = 0
        while True:
            body: dict[str, Any] = {
                "size": page,
                "query": _in_range(cursor, top, query),
                "sort": [{"_seq_no": "asc"}],
                "_source": source,
                "track_total_hits": False,
            }
            if with_seq:
                body["seq_no_primary_term"] = True
            if search_after is not None:
                body["search_after"] = search_after
            hits = cluster.search(index, body, preference=f"_shards:{shard}")["hits"]["hits"]
            seen += len(hits)
            if len(hits) < page:
                if hits:
                    yield hits, top
                break
            search_after = hits[-1]["sort"]
            yield hits, int(search_after[0])
        if seen == 0:
            # An empty window yields nothing above; report the progress anyway.
            yield [], top
        cursor = top
        # Sparse ranges (many updates/deletes) widen the window; dense ones keep it.
        if seen < page:
            window = min(window * 2, page * 1024)
        elif seen > page * 8:
            window = max(page, window // 2)


def _in_range(after: int, upto: int, query: Mapping[str, Any] | None) -> dict[str, Any]:
    seq = {"range": {"_seq_no": {"gt": after, "lte": upto}}}
    if query is None:
        return seq
    return {"bool": {"filter": [seq, dict(query)]}}
