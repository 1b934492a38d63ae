"""Delete reconciliation by positions (migrate/_positions.py) on the real node: it finds exactly
the documents deleted from the source, whatever the shard layouts and routings, and lists only
small ranges to do it (the work under the write block follows the deletes, not the index)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate._positions import Positions
from esmigrate.migrate._shards import checkpoints

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

N = 20_000


def create(cluster: Cluster, index: str, shards: int) -> None:
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": shards, "number_of_replicas": 0},
            "mappings": {"properties": {"n": {"type": "long"}}},
        },
    )


def load(cluster: Cluster, index: str, ids: list[tuple[str, str | None]]) -> None:
    for start in range(0, len(ids), 5000):
        lines = []
        for doc_id, routing in ids[start : start + 5000]:
            meta: dict[str, Any] = {"_index": index, "_id": doc_id}
            if routing is not None:
                meta["routing"] = routing
            lines.append(orjson.dumps({"index": meta}))
            lines.append(orjson.dumps({"n": start}))
        assert not cluster.bulk(b"\n".join(lines) + b"\n")["errors"]
    cluster.refresh(index)


def delete(cluster: Cluster, index: str, refs: list[tuple[str, str | None]]) -> None:
    lines = [
        orjson.dumps(
            {"delete": {"_index": index, "_id": i, **({"routing": r} if r is not None else {})}}
        )
        for i, r in refs
    ]
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]


def copy(cluster: Cluster, source: str, target: str, query: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"source": {"index": source}, "dest": {"index": target}}
    if query is not None:
        body["source"]["query"] = query
    task = cluster.request("POST", "/_reindex", params={"wait_for_completion": "false"}, body=body)
    cluster.wait_task(task["task"])
    cluster.refresh(target)


def ids_of(cluster: Cluster, index: str) -> set[tuple[str, str | None]]:
    return {
        (h["_id"], h.get("_routing")) for page in cluster.scan(index, page_size=5000) for h in page
    }


@pytest.fixture
def docs() -> list[tuple[str, str | None]]:
    # Mostly plain ids; some with custom routing, one id under two routings.
    out: list[tuple[str, str | None]] = [(f"d{i}", None) for i in range(N)]
    out += [(f"r{i}", f"tenant-{i % 7}") for i in range(300)]
    out += [("twin", "a"), ("twin", "b")]
    return out


def test_finds_exactly_the_deleted_documents_listing_only_small_ranges(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    source, target = f"{prefix}-o", f"{prefix}-n"
    # Different shard counts: N's shards say nothing about O's.
    create(cluster, source, 3)
    create(cluster, target, 2)
    load(cluster, source, docs)
    copy(cluster, source, target)
    positions = Positions(
        cluster, source=source, target=target, name=f"{prefix}-n-positions", leaf=100
    )
    positions.create()
    upto, first = positions.record({})
    assert first.checked == len(docs)
    assert first.deleted == 0

    # Nothing deleted: the top-level counts agree and nothing is listed.
    assert positions.reconcile().listed == 0

    # Some updates (new _seq_no, copied again as a catch-up round would, then checked again)
    # and a few deletes, among them a routed document and one of the twins.
    rng = random.Random(7)
    updated = rng.sample(docs, 50)
    load(cluster, source, updated)
    copy(cluster, source, target, {"ids": {"values": sorted({i for i, _ in updated})}})
    _, second = positions.record(upto)
    assert second.checked >= len(updated)
    gone = [*rng.sample(docs[:N], 6), ("r5", "tenant-5"), ("twin", "b")]
    delete(cluster, source, gone)

    stats = positions.reconcile()

    assert stats.deleted == len(gone)
    assert ids_of(cluster, target) == ids_of(cluster, source)
    # Each deleted document costs at most a couple of leaves of ≤ 100 positions and documents.
    assert stats.listed <= len(gone) * 2 * 2 * 100
    assert positions.reconcile().listed == 0  # and once reconciled, the counts agree again


def test_a_pass_deletes_what_the_source_lost_before_it_was_positioned(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    source, target = f"{prefix}-o", f"{prefix}-n"
    create(cluster, source, 2)
    create(cluster, target, 2)
    load(cluster, source, docs[:2000])
    copy(cluster, source, target)
    delete(cluster, source, docs[:10])
    positions = Positions(cluster, source=source, target=target, name=f"{prefix}-n-positions")
    positions.create()
    _, stats = positions.record({})
    assert stats.deleted == 10
    assert ids_of(cluster, target) == ids_of(cluster, source)


def test_dead_lettered_documents_do_not_hide_a_deleted_one(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    """A document of O missing from N (dead-lettered) and a stale one in N cancel out in the
    counts unless the missing one is positioned too."""
    source, target = f"{prefix}-o", f"{prefix}-n"
    create(cluster, source, 1)
    create(cluster, target, 1)
    plain = docs[:500]
    load(cluster, source, plain)
    rejected = plain[100]
    copy(cluster, source, target, {"bool": {"must_not": {"ids": {"values": [rejected[0]]}}}})
    positions = Positions(
        cluster, source=source, target=target, name=f"{prefix}-n-positions", leaf=10
    )
    positions.create()
    positions.record({})
    stale = plain[101]
    delete(cluster, source, [stale])

    positions.add_dead_letters([rejected])
    stats = positions.reconcile()

    assert stats.deleted == 1
    assert stale not in ids_of(cluster, target)
    assert ids_of(cluster, target) == ids_of(cluster, source) - {rejected}


def test_a_cancelled_pass_stops_at_the_next_page_and_resumes_from_its_cursors(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    import threading

    from esmigrate.exceptions import MigrationCancelled

    source, target = f"{prefix}-o", f"{prefix}-n"
    create(cluster, source, 1)
    create(cluster, target, 1)
    load(cluster, source, docs[:5000])
    copy(cluster, source, target)
    cancel = threading.Event()
    positions = Positions(
        cluster,
        source=source,
        target=target,
        name=f"{prefix}-n-positions",
        page=500,
        parallelism=1,
        cancel=cancel,
    )
    positions.create()
    cursors: dict[int, int] = {}
    with pytest.raises(MigrationCancelled):
        positions.record({}, on_cursor=cursors.__setitem__, on_progress=lambda _stats: cancel.set())
    assert 0 <= cursors[0] < max(checkpoints(cluster, target).values())
    cancel.clear()
    _, rest = positions.record(cursors)  # resumes where the cancelled pass stopped
    assert 0 < rest.checked < 5000
    delete(cluster, source, docs[:3])
    assert positions.reconcile().deleted == 3
