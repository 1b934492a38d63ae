"""Delete reconciliation by positions (migrate/_positions.py) on the real node: it finds exactly
the documents deleted from the source, whatever the shard layouts and routings, and lists only
small ranges to do it (the work under the write block follows the deletes, not the index).

Whole blue-green runs check the same with routed documents, dead letters, documents re-created
under another routing and writes in the last window (made just before the write block), and
rollbacks that keep exactly the documents the forward migration dead-lettered."""

from __future__ import annotations

import random
from typing import Any
from unittest.mock import patch

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate import BlueGreen
from esmigrate.migrate._copy import Copier
from esmigrate.migrate._layout import resolve
from esmigrate.migrate._positions import Positions, positions_name
from esmigrate.migrate._shards import checkpoints, max_seq_nos
from esmigrate.rollback import rollback, rollback_point_hook
from tests.migrate_support import (
    TARGET_MAPPING,
    all_docs,
    blue_green_on,
    create_source,
    transform,
)
from tests.rollback_support import reverse

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


def copied_and_positioned(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> tuple[str, str, Positions]:
    """O with ``docs`` (3 shards) copied to N (2 shards: N's shards say nothing about O's),
    and N's empty position index, with leaves of 100."""
    source, target = f"{prefix}-o", f"{prefix}-n"
    create(cluster, source, 3)
    create(cluster, target, 2)
    load(cluster, source, docs)
    copy(cluster, source, target)
    positions = Positions(
        cluster, source=source, target=target, name=f"{prefix}-n-positions", leaf=100
    )
    positions.create()
    return source, target, positions


def paged(cluster: Cluster, source: str, positions: Positions) -> int:
    """Position every document of O as the painless copy does (pages of entries, from one
    snapshot); the number positioned."""
    snapshot = positions.snapshot(max_seq_nos(cluster, source))
    try:
        return snapshot.record()
    finally:
        snapshot.close()


def test_finds_exactly_the_deleted_documents_listing_only_small_ranges(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    source, target, positions = copied_and_positioned(cluster, prefix, docs)
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


def test_page_entries_of_changed_and_deleted_documents_are_cancelled_once(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    """The copy's positions are entries of page documents, never rewritten. The entry of a
    document changed since (positioned again by a pass) or deleted from O, and an entry placed
    twice (a page of the copy sent again with other neighbours), is cancelled by the
    reconciliation, which deletes exactly the deleted documents from N; after it, the counts
    agree and the next reconciliation lists nothing."""
    source, target, positions = copied_and_positioned(cluster, prefix, docs)
    assert paged(cluster, source, positions) == len(docs)
    upto = checkpoints(cluster, target)
    assert positions.reconcile().listed == 0

    rng = random.Random(11)
    twice = rng.sample(docs, 40)
    found = cluster.search(
        source,
        {
            "size": 1000,
            "_source": False,
            "seq_no_primary_term": True,
            "query": {"ids": {"values": sorted({i for i, _ in twice})}},
        },
    )["hits"]["hits"]
    seqs = {(h["_id"], h.get("_routing")): int(h["_seq_no"]) for h in found}
    assert positions.place((i, r, seqs[(i, r)]) for i, r in twice) == len(twice)
    updated = rng.sample(docs, 50)
    load(cluster, source, updated)
    copy(cluster, source, target, {"ids": {"values": sorted({i for i, _ in updated})}})
    positions.record(upto)
    gone = [*rng.sample(docs[:N], 6), ("r5", "tenant-5"), ("twin", "b")]
    delete(cluster, source, gone)

    stats = positions.reconcile()

    assert stats.deleted == len(gone)
    assert ids_of(cluster, target) == ids_of(cluster, source)
    again = positions.reconcile()
    assert (again.listed, again.deleted) == (0, 0)


def test_a_reconciliation_stopped_halfway_leaves_every_deleted_document_to_the_next(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    """The reconciliation applies a suspect's fate (N's copy deleted) before what makes its
    range agree (its page entry cancelled). Stopped after any of its writes (a kill, a failed
    bulk), every document deleted from O that N still holds is found by the next one."""
    source, target, positions = copied_and_positioned(cluster, prefix, docs)
    paged(cluster, source, positions)
    gone = random.Random(5).sample(docs[:N], 7)
    delete(cluster, source, gone)
    positions.page = 2  # suspects in chunks of two: several writes
    real, writes = positions._apply, [0]

    def stopping(lines: list[bytes]) -> int:
        writes[0] += 1
        if writes[0] == 2:
            raise RuntimeError("stopped")
        return real(lines)

    with patch.object(positions, "_apply", stopping), pytest.raises(RuntimeError):
        positions.reconcile()
    positions.reconcile()

    assert ids_of(cluster, target) == ids_of(cluster, source)
    assert positions.reconcile().listed == 0


def test_the_widest_count_and_listing_stay_within_the_clause_limit(
    cluster: Cluster, prefix: str
) -> None:
    """One count search takes up to MAX_SPANS separate spans and one listing up to MAX_LEAVES
    leaves; P's query has a range per span on three fields, which the engine counts against its
    limit of clauses in one query. Both are accepted at their widest, and the reconciliation
    of deletes scattered over more leaves than one listing takes finds them all."""
    from esmigrate.migrate._positions import MAX_LEAVES, MAX_SPANS

    refs: list[tuple[str, str | None]] = [(f"d{i}", None) for i in range(6 * MAX_LEAVES * 4)]
    source, target, positions = copied_and_positioned(cluster, prefix, refs)
    paged(cluster, source, positions)
    cluster.refresh(positions.name)  # reconcile() refreshes it; this test counts directly
    ranges = [(3 * i, 3 * i + 2) for i in range(MAX_SPANS)]
    counted = positions._counts(ranges, max_seq_nos(cluster, source))
    assert sum(p for p, _, _ in counted) == sum(o for _, o, _ in counted) > 0
    gone = refs[:: len(refs) // (2 * MAX_LEAVES)]
    delete(cluster, source, gone)

    stats = positions.reconcile()

    assert stats.deleted == len(gone)
    assert ids_of(cluster, target) == ids_of(cluster, source)


def test_source_counts_taken_before_the_last_pass_find_exactly_the_deleted_documents(
    cluster: Cluster, prefix: str, docs: list[tuple[str, str | None]]
) -> None:
    """O's side of the first level counted while O is frozen, before the last writes to N and
    its position pass (as under the write block), finds what a whole count finds."""
    source, target, positions = copied_and_positioned(cluster, prefix, docs)
    upto, _ = positions.record({})
    rng = random.Random(11)
    updated = rng.sample(docs, 40)
    load(cluster, source, updated)
    gone = [*rng.sample([d for d in docs[:N] if d not in updated], 5), ("twin", "a")]
    delete(cluster, source, gone)

    counted = positions.count_first_level()
    # The last round and its pass write N and P after the count; O does not change.
    copy(cluster, source, target, {"ids": {"values": sorted({i for i, _ in updated})}})
    positions.record(upto)
    searched: list[set[str]] = []
    msearch = cluster.msearch

    def recording(searches: Any) -> Any:
        searched.append({str(header["index"]) for header, _ in searches})
        return msearch(searches)

    with patch.object(cluster, "msearch", recording):
        stats = positions.reconcile(counted=counted)

    assert searched[0] == {positions.name}  # the first level reads P only
    assert sum(counted.counts) == len(docs) - len(gone)
    assert stats.deleted == len(gone)
    assert ids_of(cluster, target) == ids_of(cluster, source)
    assert stats.listed <= len(gone) * 2 * 2 * 100
    assert positions.reconcile().listed == 0


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


# -- whole runs: routing, dead letters and the last window ---------------------------------------


def ids_in(cluster: Cluster, index: str) -> set[tuple[str, str | None]]:
    cluster.refresh(index)
    hits = cluster.search(index, {"size": 10_000, "_source": False})["hits"]["hits"]
    return {(h["_id"], h.get("_routing")) for h in hits}


def test_a_painless_dead_letter_under_custom_routing_does_not_hide_a_delete(
    cluster: Cluster, prefix: str
) -> None:
    """A document the painless script dead-letters under custom routing is positioned by its
    routing, so a document deleted from O in the last window is still found by the counts and
    deleted from N, and the validation's count agrees."""
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

    def delete_one(_target: str) -> None:
        cluster.request(
            "DELETE", f"/{alias}/_doc/r120", params={"routing": "k7", "refresh": "true"}
        )

    migration = BlueGreen(
        cluster,
        alias,
        mapping,
        script="if (ctx._source.bad) { throw new IllegalArgumentException('bad'); }",
        settings={"number_of_replicas": 0},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
        before_block=delete_one,
    )
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
    lands on another shard of N. The copy under the old routing is deleted from N (a lookup of
    (x, old routing) in O that finds the new x does not count as finding it), so the cut-over
    passes the validation."""
    alias, source, _ = create_source(cluster, prefix, 300, shards=1)
    cluster.request(
        "PUT",
        f"/{source}/_doc/x",
        params={"routing": "a", "refresh": "true"},
        body={"title": "x", "n": 1, "code": 1, "body": "b"},
    )

    def move(_target: str) -> None:
        # "a" and "b" fall on different shards of a 2-shard index.
        cluster.request(
            "PUT",
            f"/{alias}/_doc/x",
            params={"routing": "b", "refresh": "true"},
            body={"title": "x", "n": 2, "code": 2, "body": "b"},
        )

    migration = BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        transform=transform,
        settings={"number_of_replicas": 0, "number_of_shards": 2},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        before_block=move,
    )
    result = migration.run()

    assert ids_in(cluster, result.target) == ids_in(cluster, source)
    assert ("x", "a") not in ids_in(cluster, result.target)


def test_rollback_does_not_keep_a_dead_letter_rewritten_validly_and_deleted_since(
    cluster: Cluster, prefix: str
) -> None:
    """A document dead-lettered by the forward migration, rewritten validly before the cut-over
    (so it reached N) and deleted through the alias after it, is deleted from O by the
    rollback: it keeps only the dead letters N lacked at the cut-over."""
    alias, old, initial = create_source(cluster, prefix, 1000)
    hist = f"{prefix}-hist"

    def failing(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["code"] % 100 == 0:
            raise ValueError(f"bad code {doc['code']}")
        return transform(doc)

    def fix_d100(_target: str) -> None:
        cluster.request(
            "PUT",
            f"/{alias}/_doc/d100",
            params={"refresh": "true"},
            body={**initial["d100"], "code": 101},
        )

    forward = BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=failing,
        state_index=hist,
        dead_letter_index=f"{prefix}-dl",
        max_failures=10,
        on_cut_over=rollback_point_hook(cluster, "p-fixed", state_index=hist),
        before_block=fix_d100,
    )
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
    """d5 is copied, then updated in the last window to a version the transform rejects: it is
    dead-lettered, and its previous version is deleted from N, so N never serves an update
    reverted."""
    alias, _, initial = create_source(cluster, prefix, 300)

    def failing(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["code"] < 0:
            raise ValueError(f"bad code {doc['code']}")
        return transform(doc)

    def break_d5(_target: str) -> None:
        cluster.request(
            "PUT",
            f"/{alias}/_doc/d5",
            params={"refresh": "true"},
            body={**initial["d5"], "code": -5, "title": "updated"},
        )

    migration = BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=failing,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=1,
        before_block=break_d5,
    )
    result = migration.run()

    assert result.failures == 1
    served = all_docs(cluster, result.target).get("d5")
    assert served != transform(dict(initial["d5"]))  # not the version the update replaced


def test_incremental_by_timestamp_does_not_claim_to_carry_deletes(
    cluster: Cluster, prefix: str
) -> None:
    """``since_field`` does not see a write whose field is older than the last run's, and such
    a document would have no position (it would cancel a deleted one out of the counts): deletes
    are carried with ``_seq_no`` checkpoints only, and asking for them with a timestamp field is
    refused before anything is written."""
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
    of (x, "a") deletes from N only a copy under routing "a", never the live copy (x, "c"), and
    the cut-over passes the validation."""
    alias, source, _ = create_source(cluster, prefix, 300, shards=3)
    doc = {"title": "x", "n": 1, "code": 1, "body": "b"}
    cluster.request(
        "PUT", f"/{source}/_doc/x", params={"routing": "a", "refresh": "true"}, body=doc
    )

    def recreate(_target: str) -> None:
        cluster.request("DELETE", f"/{alias}/_doc/x", params={"routing": "a"})
        cluster.request(
            "PUT", f"/{alias}/_doc/x", params={"routing": "c", "refresh": "true"}, body=doc
        )

    migration = BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        transform=transform,
        settings={"number_of_replicas": 0, "number_of_shards": 2},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        before_block=recreate,
    )
    result = migration.run()

    assert ("x", "c") in ids_in(cluster, result.target)
    assert ids_in(cluster, result.target) == ids_in(cluster, source)


def test_a_rejected_document_rewritten_validly_before_its_rejection_is_recorded_is_copied(
    cluster: Cluster, prefix: str
) -> None:
    """``_reindex`` failures name only the id, and the document may be rewritten validly before
    the failure is handled: its current version is copied once more, and only a version that
    fails again is dead-lettered and excluded, so the valid rewrite reaches N."""
    from esmigrate.migrate._reindex_copy import ReindexCopier

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
        def dead_letter_failures(
            self, failures: list[dict[str, Any]], query: Any = None
        ) -> list[dict[str, Any]]:
            # The application fixes r7 while the task's failure is on its way to us.
            self.cluster.request(
                "PUT",
                f"/{alias}/_doc/r7",
                params={"refresh": "true"},
                body={"n": 7, "extra": "7"},
            )
            return super().dead_letter_failures(failures, query)

    plain = Copier.reindex_copier

    def racing(copier: Copier) -> ReindexCopier:
        racer = Racing.__new__(Racing)
        racer.__dict__.update(plain(copier).__dict__)
        return racer

    with patch.object(Copier, "reindex_copier", racing):
        result = BlueGreen(
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
    document the painless script dead-lettered under custom routing stays in O."""
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


def test_searches_and_counts_refuse_partial_results(cluster: Cluster, prefix: str) -> None:
    """A search, a count or an ``msearch`` answers 200 when it failed on some shards. A partial
    result raises: a count missing a shard of the position index would hide stale documents,
    and a scan of a shard's ``_seq_no`` range that took a failed shard for an empty range would
    skip its documents."""
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
    query = {"range": {"f": {"gte": "not a number"}}}
    body = {"size": 0, "query": query}
    both = f"{prefix}-a,{prefix}-b"
    with pytest.raises(RequestError, match="failed on 1 of 2 shards"):
        cluster.msearch([({"index": both}, body)])
    with pytest.raises(RequestError, match=f"search of {both} failed on 1 of 2 shards"):
        cluster.search(both, body)
    with pytest.raises(RequestError, match="failed on 1 of 2 shards"):
        cluster.count(both, query)
    assert cluster.count(both) == 2


def test_listing_per_deleted_document_stays_small_with_many_shards(
    cluster: Cluster, prefix: str
) -> None:
    """Every shard of O numbers its operations from 0, so a range of 16 sequence numbers holds
    up to 16 documents per shard: ranges are split while they hold more than a leaf, and the
    reconciliation lists a few documents per deleted one however many shards O has (never
    ~16 x shards, which past 625 shards would exceed the 10,000 hits of one listing)."""
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


@pytest.mark.parametrize("path", ["painless", "python"])
def test_a_migration_without_writes_copies_each_document_once(
    cluster: Cluster, prefix: str, path: str
) -> None:
    """Catch-up rounds read each shard of the source from its own ``_seq_no`` checkpoint, so
    with nothing written meanwhile they copy nothing, and N's shards receive one write per
    document (its positions stay within the source's sequence numbers)."""
    alias, source, initial = create_source(cluster, prefix, 6000, shards=3)
    tops = max_seq_nos(cluster, source)
    assert len(set(tops.values())) > 1  # shards of different sizes: the case one threshold fails
    result = blue_green_on(cluster, prefix, alias, path).run()
    assert result.copied == len(initial) == result.count
    state = cluster.request("GET", f"/{prefix}-hist/_doc/checkpoint:{result.migration}")
    positions = {int(s): int(v) for s, v in state["_source"]["positions"].items()}
    assert positions == max_seq_nos(cluster, result.target)
    assert all(positions[s] <= tops[s] for s in tops)
