"""esmigrate.testing helpers that users call in their own migration tests."""

from __future__ import annotations

from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.testing import compare_server_side
from esmigrate.transform import Cast, Default, NormalizeText, RuleSet

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]


class Drifting:
    """A rule set whose Painless form drifts from its Python form (what the helper must catch)."""

    def __init__(self) -> None:
        self.rules = RuleSet(Default("category", "general"))

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = self.rules(doc)
        out["score"] = 1  # Python says 1 ...
        return out

    def painless(self) -> dict[str, Any] | None:
        script = self.rules.painless()
        assert script is not None
        return {
            **script,
            "source": script["source"] + "\nctx._source.score = 1.0;",
        }  # ... Painless 1.0


def test_compare_server_side_agrees_and_catches_drift(cluster: Cluster) -> None:
    docs: list[dict[str, Any]] = [
        {"title": "  Hello   World ", "views": "12"},
        {"title": "x", "category": "news", "views": 3},
        {"title": "bad", "views": "many"},  # Cast fails: both sides must fail
    ]
    rules = RuleSet(
        NormalizeText("title"), Default("category", "general"), Cast("views", "integer")
    )
    report = compare_server_side(cluster, rules, docs)
    assert report.checked == 3
    assert report.ok, report.mismatches

    drift = compare_server_side(cluster, Drifting(), docs[:2])
    assert not drift.ok
    assert {m.doc_id for m in drift.mismatches} == {"0", "1"}
    assert drift.mismatches[0].python["score"] == 1
    assert drift.mismatches[0].server["score"] == 1.0


def test_live_writer_through_a_blue_green_migration(
    cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    import orjson

    from esmigrate.migrate import migrate
    from esmigrate.testing import LiveWriter

    alias, v1 = f"{prefix}-posts", f"{prefix}-posts-v1"
    cluster.request(
        "PUT",
        f"/{v1}",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0},
            "aliases": {alias: {"is_write_index": True}},
            "mappings": {"properties": {"author": {"type": "text"}, "edits": {"type": "long"}}},
        },
    )
    lines = []
    for i in range(3000):
        lines += [
            orjson.dumps({"index": {"_index": alias, "_id": f"d{i}"}}),
            orjson.dumps({"author": f"a{i}", "edits": 0}),
        ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")

    target = {"properties": {"author": {"type": "keyword"}, "edits": {"type": "long"}}}
    with LiveWriter(cluster_url, alias, rate=120, initial=3000) as writer:
        result = migrate(cluster, alias, target, state_index=f"{prefix}-state")
    report = writer.report()
    assert report.operations > 0
    assert report.deleted
    assert report.created
    assert report.verify(cluster, alias, [f"d{i}" for i in range(3000)]) == []
    # The check can fail: a document lost behind the writer's back is reported.
    victim = next(iter(report.created))
    cluster.request("DELETE", f"/{result.target}/_doc/{victim}", params={"refresh": "true"})
    problems = report.verify(cluster, alias, [f"d{i}" for i in range(3000)])
    assert problems == [f"{victim}: written (or pre-existing) and not deleted, but missing"]


def test_in_place_sub_field_backfill_reaches_every_document(
    cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    """Documents written just before the mapping change (unrefreshed when the backfill starts)
    are backfilled too: every document has the new sub-field afterwards."""
    import orjson

    from esmigrate.migrate import InPlace
    from esmigrate.testing import LiveWriter

    alias = f"{prefix}-posts"
    cluster.request(
        "PUT",
        f"/{alias}-v1",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0},
            "aliases": {alias: {"is_write_index": True}},
            "mappings": {"properties": {"title": {"type": "text"}}},
        },
    )
    lines = []
    for i in range(3000):
        lines += [
            orjson.dumps({"index": {"_index": alias, "_id": f"d{i}"}}),
            orjson.dumps({"title": f"post {i}"}),
        ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    target = {"properties": {"title": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}}
    with LiveWriter(cluster_url, alias, rate=200, initial=3000) as writer:
        InPlace(cluster, alias, target, backfill=True, state_index=f"{prefix}-state").run()
    assert writer.report().verify(cluster, alias, [f"d{i}" for i in range(3000)]) == []
    cluster.refresh(alias)
    assert cluster.count(alias, {"exists": {"field": "title.raw"}}) == cluster.count(alias)


def test_incremental_runs_during_live_writes_lose_nothing(
    cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    """Incremental runs while the writer writes, then a last run after it stops: every index,
    update and delete it made is in the target."""
    import time

    import orjson

    from esmigrate.migrate import Incremental
    from esmigrate.testing import LiveWriter

    alias, target = f"{prefix}-posts", f"{prefix}-copy"
    for name, aliases in ((f"{alias}-v1", {alias: {"is_write_index": True}}), (target, {})):
        cluster.request(
            "PUT",
            f"/{name}",
            body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}, "aliases": aliases},
        )
    lines = []
    for i in range(2000):
        lines += [
            orjson.dumps({"index": {"_index": alias, "_id": f"d{i}"}}),
            orjson.dumps({"author": f"a{i}", "edits": 0}),
        ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")

    def run() -> int:
        return Incremental(cluster, alias, target, state_index=f"{prefix}-state").run().copied

    with LiveWriter(cluster_url, alias, rate=150, initial=2000) as writer:
        assert run() > 1500  # the writer has already deleted a few
        for _ in range(3):
            time.sleep(0.5)
            run()
    run()  # the writer has stopped: this run sees its last writes
    report = writer.report()
    assert report.created
    assert report.deleted
    assert report.verify(cluster, target, [f"d{i}" for i in range(2000)]) == []
