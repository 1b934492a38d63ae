"""Review of the delete reconciliation by positions: scenarios where the counts of positions and
of the source's ``_seq_no`` miss a deleted document, or never agree (real node, no mocks).

Writes "during the last window" are made by a subclass that writes to the source just before
the write block: the point where an application's write lands in the final round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate import BlueGreen
from esmigrate.migrate._layout import resolve
from esmigrate.migrate._positions import positions_name
from esmigrate.migrate._state import Checkpoint
from esmigrate.rollback import rollback, rollback_point_hook
from tests.migrate_support import TARGET_MAPPING, all_docs, create_source, transform
from tests.rollback_support import reverse

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]


class LastWindow(BlueGreen):
    """A blue-green run that calls ``before_block(cluster)`` just before its write block."""

    before_block: Callable[[Cluster], None] = staticmethod(lambda cluster: None)

    def _blocked(self, state: Checkpoint) -> None:
        self.before_block(self.cluster)
        super()._blocked(state)


def ids_in(cluster: Cluster, index: str) -> set[tuple[str, str | None]]:
    cluster.refresh(index)
    hits = cluster.search(index, {"size": 10_000, "_source": False})["hits"]["hits"]
    return {(h["_id"], h.get("_routing")) for h in hits}


def test_a_painless_dead_letter_under_custom_routing_does_not_hide_a_delete(
    cluster: Cluster, prefix: str
) -> None:
    """The guarded script's dead letter records no routing: the exact pass cannot position it
    (``_mget`` by id alone misses a routed document), so the unpositioned document of O and a
    stale document of N cancel out in the counts — and in the validation's count too."""
    alias = f"{prefix}-routed"
    source = f"{alias}-v1"
    mapping = {"_routing": {"required": True}, "properties": {"n": {"type": "long"}}}
    cluster.request(
        "PUT",
        f"/{source}",
        body={
            "settings": {"number_of_shards": 3, "number_of_replicas": 0},
            "mappings": mapping,
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    lines = []
    for i in range(200):
        lines.append(orjson.dumps({"index": {"_index": source, "_id": f"r{i}", "routing": "k7"}}))
        lines.append(orjson.dumps({"n": i, "bad": i == 50}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]

    def delete_one(c: Cluster) -> None:
        c.request("DELETE", f"/{alias}/_doc/r120", params={"routing": "k7", "refresh": "true"})

    migration = LastWindow(
        cluster,
        alias,
        mapping,
        script="if (ctx._source.bad) { throw new IllegalArgumentException('bad'); }",
        settings={"number_of_replicas": 0},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
    )
    migration.before_block = delete_one
    result = migration.run()

    assert result.failures == 1
    assert resolve(cluster, alias).source == result.target
    target = ids_in(cluster, result.target)
    assert ("r120", "k7") not in target  # deleted from O in the last window: not resurrected
    assert target == ids_in(cluster, source) - {("r50", "k7")}


def test_a_document_moved_to_another_routing_leaves_no_copy_behind(
    cluster: Cluster, prefix: str
) -> None:
    """O has one shard, N two: re-indexing id x with another routing replaces it in O but
    lands on another shard of N. ``_mget`` of (x, old routing) in O finds the new x (same
    shard), so the old copy in N is never deleted: the validation's count refuses the cut-over,
    and every rerun too."""
    alias, source, _ = create_source(cluster, prefix, 300, shards=1)
    cluster.request(
        "PUT",
        f"/{source}/_doc/x",
        params={"routing": "a", "refresh": "true"},
        body={"title": "x", "n": 1, "code": 1, "body": "b"},
    )

    def move(c: Cluster) -> None:
        # "a" and "b" fall on different shards of a 2-shard index.
        c.request(
            "PUT",
            f"/{alias}/_doc/x",
            params={"routing": "b", "refresh": "true"},
            body={"title": "x", "n": 2, "code": 2, "body": "b"},
        )

    migration = LastWindow(
        cluster,
        alias,
        TARGET_MAPPING,
        transform=transform,
        settings={"number_of_replicas": 0, "number_of_shards": 2},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
    )
    migration.before_block = move
    result = migration.run()

    assert ids_in(cluster, result.target) == ids_in(cluster, source)
    assert ("x", "a") not in ids_in(cluster, result.target)


def test_rollback_does_not_keep_a_dead_letter_rewritten_validly_and_deleted_since(
    cluster: Cluster, prefix: str
) -> None:
    """A document dead-lettered by the forward migration, then rewritten validly before the
    cut-over (so it reached N), then deleted through the alias after the cut-over, is still
    in the forward migration's dead letters: the rollback keeps it in O — a resurrected delete.
    """
    alias, old, initial = create_source(cluster, prefix, 1000)
    hist = f"{prefix}-hist"

    def failing(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["code"] % 100 == 0:
            raise ValueError(f"bad code {doc['code']}")
        return transform(doc)

    def fix_d100(c: Cluster) -> None:
        c.request(
            "PUT",
            f"/{alias}/_doc/d100",
            params={"refresh": "true"},
            body={**initial["d100"], "code": 101},
        )

    forward = LastWindow(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=failing,
        state_index=hist,
        dead_letter_index=f"{prefix}-dl",
        max_failures=10,
        on_cut_over=rollback_point_hook(cluster, "p-fixed", state_index=hist),
    )
    forward.before_block = fix_d100
    result = forward.run()
    assert ("d100", None) in ids_in(cluster, result.target)  # it reached N before the cut-over
    cluster.request("DELETE", f"/{alias}/_doc/d100", params={"refresh": "true"})

    rollback(cluster, "p-fixed", state_index=hist, reverse_transform=reverse)

    assert set(resolve(cluster, alias).definitions) == {alias}
    assert resolve(cluster, alias).source == old
    assert "d100" not in all_docs(cluster, old)  # deleted after the cut-over: stays deleted


def test_a_document_whose_last_version_is_dead_lettered_is_not_served_in_an_older_version(
    cluster: Cluster, prefix: str
) -> None:
    """d5 is copied, then updated (in the last window) to a version the transform rejects: it
    is dead-lettered, but N keeps serving its previous version — an update reverted, which
    neither the counts (d5 is in both) nor the sample (dead letters are left out) notice."""
    alias, _, initial = create_source(cluster, prefix, 300)

    def failing(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["code"] < 0:
            raise ValueError(f"bad code {doc['code']}")
        return transform(doc)

    def break_d5(c: Cluster) -> None:
        c.request(
            "PUT",
            f"/{alias}/_doc/d5",
            params={"refresh": "true"},
            body={**initial["d5"], "code": -5, "title": "updated"},
        )

    migration = LastWindow(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=failing,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
    )
    migration.before_block = break_d5
    result = migration.run()

    assert result.failures == 1
    served = all_docs(cluster, result.target).get("d5")
    assert served != transform(dict(initial["d5"]))  # not the version the update replaced


def test_incremental_by_timestamp_does_not_claim_to_carry_deletes(
    cluster: Cluster, prefix: str
) -> None:
    """``since_field`` does not see a write whose field is older than the last run's (known).
    Such a document has no position, so it would cancel a deleted document out of the counts
    for good: deletes are carried with ``_seq_no`` checkpoints only, and asking for them with a
    timestamp field is refused before anything is written."""
    from esmigrate.exceptions import PreflightError
    from esmigrate.migrate import Incremental

    source, target = f"{prefix}-ts", f"{prefix}-ts2"
    mapping = {"properties": {"at": {"type": "date"}, "v": {"type": "integer"}}}
    for name in (source, target):
        cluster.request(
            "PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}, "mappings": mapping}
        )
    lines = []
    for i in range(30):
        lines.append(orjson.dumps({"index": {"_index": source, "_id": str(i)}}))
        lines.append(orjson.dumps({"at": f"2024-01-01T00:00:{i:02d}Z", "v": i}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]

    with pytest.raises(PreflightError) as refused:
        Incremental(
            cluster, source, target, since_field="at", state_index=f"{prefix}-hist", deletes=True
        )
    assert refused.value.problem == "deletes_need_seq_no"
    assert cluster.count(target) == 0

    inc = Incremental(cluster, source, target, since_field="at", state_index=f"{prefix}-hist")
    assert inc.run().deleted == 0
    assert not cluster.exists(positions_name(target))


def test_a_document_recreated_under_another_routing_is_not_deleted_from_the_target(
    cluster: Cluster, prefix: str
) -> None:
    """O has 3 shards, N 2. x is deleted under routing "a" and created under "c" (another
    shard of O, the same shard of N, where its copy replaces the old one). The stale position
    of (x, "a") led to a delete of (x, routing "a") in N: that hit the live copy (x, "c"). It
    is never copied again, so the validation refuses the cut-over on every run."""
    alias, source, _ = create_source(cluster, prefix, 300, shards=3)
    doc = {"title": "x", "n": 1, "code": 1, "body": "b"}
    cluster.request(
        "PUT", f"/{source}/_doc/x", params={"routing": "a", "refresh": "true"}, body=doc
    )

    def recreate(c: Cluster) -> None:
        c.request("DELETE", f"/{alias}/_doc/x", params={"routing": "a"})
        c.request("PUT", f"/{alias}/_doc/x", params={"routing": "c", "refresh": "true"}, body=doc)

    migration = LastWindow(
        cluster,
        alias,
        TARGET_MAPPING,
        transform=transform,
        settings={"number_of_replicas": 0, "number_of_shards": 2},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
    )
    migration.before_block = recreate
    result = migration.run()

    assert ("x", "c") in ids_in(cluster, result.target)
    assert ids_in(cluster, result.target) == ids_in(cluster, source)


def test_a_rejected_document_rewritten_validly_before_its_rejection_is_recorded_is_copied(
    cluster: Cluster, prefix: str
) -> None:
    """``_reindex`` failures name only the id: the rejected version is looked up afterwards,
    and whatever version O holds by then is dead-lettered and excluded by (id, _seq_no) from
    every later task. If the application rewrote the document validly in between, its valid
    version is never copied (and counts as a dead letter, so the validation agrees)."""
    from esmigrate.migrate._copy import ReindexCopier

    alias = f"{prefix}-rej"
    source = f"{alias}-v1"
    cluster.request(
        "PUT",
        f"/{source}",
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    lines = []
    for i in range(100):
        lines.append(orjson.dumps({"index": {"_index": source, "_id": f"r{i}"}}))
        lines.append(orjson.dumps({"n": i, "extra": "bad" if i == 7 else str(i)}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]

    class Racing(ReindexCopier):
        def dead_letter_failures(self, failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
            # The application fixes r7 while the task's failure is on its way to us.
            self.cluster.request(
                "PUT",
                f"/{alias}/_doc/r7",
                params={"refresh": "true"},
                body={"n": 7, "extra": "7"},
            )
            return super().dead_letter_failures(failures)

    class Migration(BlueGreen):
        def _reindexer(self, state: Checkpoint) -> ReindexCopier:
            plain = super()._reindexer(state)
            copier = Racing.__new__(Racing)
            copier.__dict__.update(plain.__dict__)
            return copier

    result = Migration(
        cluster,
        alias,
        {"properties": {"extra": {"type": "long"}}},
        settings={"number_of_replicas": 0},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
    ).run()

    got = cluster.request("POST", f"/{result.target}/_mget", body={"ids": ["r7"]})["docs"][0]
    assert got.get("found"), "r7's valid version was never copied"


def test_rollback_keeps_a_routed_document_the_painless_script_dead_lettered(
    cluster: Cluster, prefix: str
) -> None:
    """The rollback keeps the forward migration's dead letters in O by (id, routing): a
    painless dead letter without its routing did not match, and the only copy of the document
    was deleted from O as stale."""
    alias = f"{prefix}-routed"
    source = f"{alias}-v1"
    hist = f"{prefix}-hist"
    mapping = {"properties": {"n": {"type": "long"}}}
    cluster.request(
        "PUT",
        f"/{source}",
        body={
            "settings": {"number_of_shards": 3, "number_of_replicas": 0},
            "mappings": mapping,
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    lines = []
    for i in range(100):
        lines.append(orjson.dumps({"index": {"_index": source, "_id": f"r{i}", "routing": "k7"}}))
        lines.append(orjson.dumps({"n": i, "bad": i == 50}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]
    BlueGreen(
        cluster,
        alias,
        mapping,
        script="if (ctx._source.bad) { throw new IllegalArgumentException('bad'); }",
        settings={"number_of_replicas": 0},
        state_index=hist,
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
        on_cut_over=rollback_point_hook(cluster, "p-routed", state_index=hist),
    ).run()
    cluster.request("PUT", f"/{alias}/_doc/new", params={"routing": "k7"}, body={"n": 1000})

    rollback(cluster, "p-routed", state_index=hist, reverse_script="ctx._source.n = ctx._source.n")

    assert resolve(cluster, alias).source == source
    assert ("r50", "k7") in ids_in(cluster, source)
    assert len(ids_in(cluster, source)) == 101


def test_msearch_refuses_partial_results(cluster: Cluster, prefix: str) -> None:
    """The range counts and listings of the reconciliation go through ``msearch``: a search that
    failed on some shards answers 200 with what the others found, and a count missing a shard
    of the position index hides stale documents. It must raise instead."""
    from esmigrate.exceptions import RequestError

    for name, kind in (("a", "long"), ("b", "keyword")):
        cluster.request(
            "PUT",
            f"/{prefix}-{name}",
            body={
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": {"properties": {"f": {"type": kind}}},
            },
        )
        cluster.request(
            "PUT", f"/{prefix}-{name}/_doc/1", params={"refresh": "true"}, body={"f": "1"}
        )
    body = {"size": 0, "query": {"range": {"f": {"gte": "not a number"}}}}
    with pytest.raises(RequestError, match="failed on 1 of 2 shards"):
        cluster.msearch([({"index": f"{prefix}-a,{prefix}-b"}, body)])


def test_listing_per_deleted_document_stays_small_with_many_shards(
    cluster: Cluster, prefix: str
) -> None:
    """Every shard of O numbers its operations from 0, so a range of 16 sequence numbers holds
    up to 16 documents per shard. Listing such ranges whole (instead of splitting them while
    they hold more than a leaf) lists ~16 x shards documents per deleted one — and past 625
    shards a range could exceed the 10,000 hits one listing search returns."""
    from esmigrate.migrate._positions import Positions

    source, target = f"{prefix}-o", f"{prefix}-n"
    shards = 40
    for name, count in ((source, shards), (target, 1)):
        cluster.request(
            "PUT",
            f"/{name}",
            body={"settings": {"number_of_shards": count, "number_of_replicas": 0}},
        )
    lines = []
    for i in range(shards * 100):
        lines.append(orjson.dumps({"index": {"_index": source, "_id": f"d{i}"}}))
        lines.append(orjson.dumps({"n": i}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]
    task = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false"},
        body={"source": {"index": source}, "dest": {"index": target}},
    )
    cluster.wait_task(task["task"])
    positions = Positions(cluster, source=source, target=target, name=f"{prefix}-n-positions")
    positions.create()
    positions.record({})
    gone = [f"d{i}" for i in range(0, shards * 100, 800)]
    for doc_id in gone:
        cluster.request("DELETE", f"/{source}/_doc/{doc_id}")
    cluster.refresh(source)

    stats = positions.reconcile()

    assert stats.deleted == len(gone)
    # A leaf of ≤ 32 documents per side, or one sequence number (≤ one document per shard).
    assert stats.listed <= len(gone) * 2 * 2 * max(32, shards)
