"""The engine features esmigrate's strategies rely on, checked on the real node.

If one of these fails on a cluster, the migration strategies built on it cannot work there.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import BlockedError, ConflictError, NotFoundError, RequestError

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

ONE_SHARD = {"number_of_shards": 1, "number_of_replicas": 0}


def bulk_body(index: str, docs: list[tuple[str, dict[str, Any]]]) -> bytes:
    lines = []
    for doc_id, doc in docs:
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def make_index(cluster: Cluster, name: str, n: int = 20, shards: int = 1) -> None:
    cluster.request(
        "PUT",
        f"/{name}",
        body={
            "settings": {"number_of_shards": shards, "number_of_replicas": 0},
            "mappings": {"properties": {"title": {"type": "text"}, "n": {"type": "integer"}}},
        },
    )
    result = cluster.bulk(
        bulk_body(name, [(str(i), {"title": f"post {i}", "n": i}) for i in range(n)]),
        refresh="true",
    )
    assert result["errors"] is False


def wait_task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    for _ in range(600):
        task = cluster.task(task_id)
        if task.get("completed"):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not complete")


def test_index_bulk_search(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-a")
    assert cluster.count(f"{prefix}-a") == 20
    hits = cluster.search(f"{prefix}-a", {"query": {"range": {"n": {"gte": 15}}}})["hits"]
    assert sorted(int(h["_id"]) for h in hits["hits"]) == [15, 16, 17, 18, 19]


def test_reindex_with_painless_as_a_task(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-src")
    started = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false", "slices": "auto"},
        body={
            "source": {"index": f"{prefix}-src"},
            "dest": {"index": f"{prefix}-dst"},
            "script": {"lang": "painless", "source": "ctx._source.n = ctx._source.n * 10"},
        },
    )
    task = wait_task(cluster, started["task"])
    assert task["response"]["created"] == 20
    cluster.refresh(f"{prefix}-dst")
    doc = cluster.request("GET", f"/{prefix}-dst/_doc/7")
    assert doc["_source"]["n"] == 70


def test_update_by_query(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-u")
    result = cluster.request(
        "POST",
        f"/{prefix}-u/_update_by_query",
        params={"refresh": "true", "conflicts": "proceed"},
        body={
            "query": {"range": {"n": {"lt": 5}}},
            "script": {"source": "ctx._source.small = true"},
        },
    )
    assert result["updated"] == 5
    assert cluster.count(f"{prefix}-u", {"term": {"small": True}}) == 5


def test_atomic_alias_actions(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-v1", n=3)
    make_index(cluster, f"{prefix}-v2", n=5)
    alias = f"{prefix}-live"
    cluster.request(
        "POST",
        "/_aliases",
        body={
            "actions": [{"add": {"index": f"{prefix}-v1", "alias": alias, "is_write_index": True}}]
        },
    )
    assert cluster.count(alias) == 3
    # One request, two actions: readers never see zero or two indices behind the alias.
    cluster.request(
        "POST",
        "/_aliases",
        body={
            "actions": [
                {"remove": {"index": f"{prefix}-v1", "alias": alias}},
                {"add": {"index": f"{prefix}-v2", "alias": alias, "is_write_index": True}},
            ]
        },
    )
    assert cluster.count(alias) == 5
    # A failing action makes the whole request fail: the alias stays on v2.
    with pytest.raises(RequestError):
        cluster.request(
            "POST",
            "/_aliases",
            body={
                "actions": [
                    {"remove": {"index": f"{prefix}-v2", "alias": alias}},
                    {"add": {"index": f"{prefix}-missing", "alias": alias}},
                ]
            },
        )
    assert cluster.count(alias) == 5


def test_write_block_and_clone(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-c")
    cluster.request("PUT", f"/{prefix}-c/_settings", body={"index.blocks.write": True})
    with pytest.raises(BlockedError) as blocked:
        cluster.request("PUT", f"/{prefix}-c/_doc/x", body={"n": 1})
    assert blocked.value.status == 403
    cluster.request(
        "POST",
        f"/{prefix}-c/_clone/{prefix}-c2",
        body={"settings": ONE_SHARD | {"index.blocks.write": None}},
    )
    cluster.health(f"{prefix}-c2", wait_for_status="green")
    assert cluster.count(f"{prefix}-c2") == 20


def test_snapshot_and_restore_to_fs_repository(cluster: Cluster, prefix: str) -> None:
    if cluster.engine.name != "opensearch":
        pytest.skip("fs repositories need path.repo on the server; the embedded node sets it")
    repo = f"{prefix}-repo"
    make_index(cluster, f"{prefix}-s")
    cluster.request(
        "PUT", f"/_snapshot/{repo}", body={"type": "fs", "settings": {"location": repo}}
    )
    try:
        cluster.request(
            "PUT",
            f"/_snapshot/{repo}/snap1",
            params={"wait_for_completion": "true"},
            body={"indices": f"{prefix}-s", "include_global_state": False},
        )
        cluster.request("DELETE", f"/{prefix}-s")
        cluster.request(
            "POST",
            f"/_snapshot/{repo}/snap1/_restore",
            params={"wait_for_completion": "true"},
            body={"indices": f"{prefix}-s"},
        )
        assert cluster.count(f"{prefix}-s") == 20
    finally:
        cluster.request("DELETE", f"/_snapshot/{repo}/snap1")
        cluster.request("DELETE", f"/_snapshot/{repo}")


def test_point_in_time_hides_later_writes(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-p", n=5)
    with cluster.point_in_time(f"{prefix}-p") as pit:
        cluster.request("PUT", f"/{prefix}-p/_doc/late", params={"refresh": "true"}, body={"n": 99})
        body = {"size": 100, "pit": {"id": pit, "keep_alive": "1m"}}
        hits = cluster.search(None, body)["hits"]["hits"]
    assert sorted(h["_id"] for h in hits) == [str(i) for i in range(5)]


def test_detected_capabilities_hold_on_the_cluster(cluster: Cluster, prefix: str) -> None:
    """What `cluster.capabilities` says the engine has, the engine has; what it lacks, it refuses."""
    make_index(cluster, f"{prefix}-cap", n=5, shards=2)
    assert cluster.capabilities.point_in_time is not None  # every engine esmigrate tests has one
    with cluster.point_in_time(f"{prefix}-cap") as pit:
        body = {"pit": {"id": pit, "keep_alive": "1m"}, "size": 2, "sort": [{"_shard_doc": "asc"}]}
        if cluster.capabilities.shard_doc:
            hits = cluster.search(None, body)["hits"]["hits"]
            assert len(hits) == 2
            assert len(hits[0]["sort"]) == 1
        else:
            with pytest.raises(RequestError):
                cluster.search(None, body)


def test_scan_sees_every_document_once_across_shards(cluster: Cluster, prefix: str) -> None:
    # Small pages over several shards: the case where `_doc`-sorted search_after skips documents.
    make_index(cluster, f"{prefix}-s", n=200, shards=3)
    seen = [hit["_id"] for page in cluster.scan(f"{prefix}-s", page_size=17) for hit in page]
    assert sorted(seen, key=int) == [str(i) for i in range(200)]
    fielddata = cluster.request("GET", "/_nodes/stats/indices/fielddata", params={"fields": "_id"})
    # Reading must not load every _id into the heap.
    for node in fielddata["nodes"].values():
        assert (
            node["indices"]["fielddata"]
            .get("fields", {})
            .get("_id", {})
            .get("memory_size_in_bytes", 0)
            == 0
        )


def test_seq_no_range_per_shard(cluster: Cluster, prefix: str) -> None:
    """The catch-up of a live migration reads 'everything after seq_no X on shard N'."""
    make_index(cluster, f"{prefix}-q", n=10)
    hits = cluster.search(
        f"{prefix}-q",
        {
            "query": {"range": {"_seq_no": {"gte": 5}}},
            "seq_no_primary_term": True,
            "sort": ["_seq_no"],
        },
        preference="_shards:0",
    )["hits"]["hits"]
    assert [h["_seq_no"] for h in hits] == [5, 6, 7, 8, 9]


def test_compare_and_set_and_errors(cluster: Cluster, prefix: str) -> None:
    name = f"{prefix}-cas"
    cluster.request("PUT", f"/{name}", body={"settings": ONE_SHARD})
    created = cluster.request(
        "PUT", f"/{name}/_doc/lease", params={"op_type": "create"}, body={"owner": "a"}
    )
    with pytest.raises(ConflictError):
        cluster.request(
            "PUT", f"/{name}/_doc/lease", params={"op_type": "create"}, body={"owner": "b"}
        )
    cluster.request(
        "PUT",
        f"/{name}/_doc/lease",
        params={"if_seq_no": created["_seq_no"], "if_primary_term": created["_primary_term"]},
        body={"owner": "a2"},
    )
    with pytest.raises(ConflictError) as stale:
        cluster.request(
            "PUT",
            f"/{name}/_doc/lease",
            params={"if_seq_no": created["_seq_no"], "if_primary_term": created["_primary_term"]},
            body={"owner": "b"},
        )
    assert stale.value.error_type == "version_conflict_engine_exception"
    missing = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with pytest.raises(NotFoundError) as nf:
        cluster.search(missing, {"query": {"match_all": {}}})
    assert missing in str(nf.value)
    assert nf.value.error_type == "index_not_found_exception"


def test_exists(cluster: Cluster, prefix: str) -> None:
    assert not cluster.exists(f"{prefix}-e")
    make_index(cluster, f"{prefix}-e", n=1)
    assert cluster.exists(f"{prefix}-e")


def test_wait_task_reports_failures(cluster: Cluster, prefix: str) -> None:
    from esmigrate.exceptions import TaskFailed

    make_index(cluster, f"{prefix}-wt")
    cluster.request(
        "PUT",
        f"/{prefix}-wt2",
        body={"settings": ONE_SHARD, "mappings": {"properties": {"n": {"type": "boolean"}}}},
    )
    started = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false"},
        body={"source": {"index": f"{prefix}-wt"}, "dest": {"index": f"{prefix}-wt2"}},
    )
    statuses: list[dict[str, Any]] = []
    with pytest.raises(TaskFailed) as failed:
        cluster.wait_task(started["task"], poll_interval=0.05, on_status=statuses.append)
    assert "mapper_parsing_exception" in str(failed.value) or "failed to parse" in str(failed.value)
    assert failed.value.task_id == started["task"]


def test_an_id_slice_per_shard_reads_exactly_that_shard(cluster: Cluster, prefix: str) -> None:
    """Capabilities.slice_by_shard: with ``max`` = number of shards, slice i is shard i (the
    per-shard catch-up rounds of copy mode reindex rely on it)."""
    assert cluster.capabilities.slice_by_shard
    make_index(cluster, f"{prefix}-src", n=300, shards=3)
    for shard in range(3):
        on_shard = cluster.search(
            f"{prefix}-src",
            {"size": 300, "_source": False, "query": {"match_all": {}}},
            preference=f"_shards:{shard}",
        )["hits"]["hits"]
        result = cluster.request(
            "POST",
            "/_reindex",
            params={"refresh": "true"},
            body={
                "source": {"index": f"{prefix}-src", "slice": {"id": shard, "max": 3}},
                "dest": {"index": f"{prefix}-dst{shard}"},
            },
        )
        copied = cluster.search(f"{prefix}-dst{shard}", {"size": 300, "_source": False})
        assert 0 < result["created"] < 300
        assert {h["_id"] for h in copied["hits"]["hits"]} == {h["_id"] for h in on_shard}
