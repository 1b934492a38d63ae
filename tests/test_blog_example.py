"""The guide's blog post V1 → V2 → V3: lazy upgrades on read and bulk upgrades agree.

Lazy: the application reads a document and upgrades it in Python (``migrate_to_latest``).
Bulk: one server-side ``_reindex`` per stored version, running the same upgrade steps compiled
to Painless. Both must give the same documents (the migration timestamp aside).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.schema import detect_schema_versions, migrate_to_latest
from esmigrate.transform._paths import json_identical

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "blog"


@pytest.fixture(scope="module")
def blog() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLE))
    try:
        import blog_schema

        yield blog_schema
    finally:
        sys.path.remove(str(EXAMPLE))


V1_DOCS: list[dict[str, Any]] = [
    {"title": "  How to  build an <b>API</b> ", "content": "Step by step #python #API guide", "author": "ann",
     "created_date": "2023-01-05"},
    {"title": "Release notes", "content": "", "author": "bob", "created_date": "2023-02-01"},
    {"title": "Untitled", "author": "cy", "created_date": "2023-03-01", "schema_version": "1.0"},
]  # fmt: skip
V2_DOCS: list[dict[str, Any]] = [
    {"title": "Opinion:\tthe best  database", "content": "A <i>review</i> of things #db", "author": "dee",
     "category": "general", "tags": ["db"], "created_date": "2023-04-01", "published_date": "2023-04-02",
     "schema_version": "2.0"},
    {"title": "Cooking", "content": "pasta " * 450, "author": "eve", "category": "food", "tags": [],
     "created_date": "2023-05-01", "published_date": "2023-05-01", "schema_version": "2.0.0"},
]  # fmt: skip
V3_DOCS: list[dict[str, Any]] = [
    {"title": "Done", "content": "Already current", "author": "fay", "category": "news", "tags": [],
     "published_date": "2023-06-01", "metadata": {"word_count": 2, "char_count": 15, "reading_time": 1,
     "has_title": True, "language": "en"}, "engagement": {"views": 3, "likes": 0, "shares": 0,
     "comments_count": 0}, "schema_version": "3.0.0"},
]  # fmt: skip


def _index(
    cluster: Cluster, name: str, mapping: dict[str, Any], docs: dict[str, dict[str, Any]]
) -> None:
    cluster.request(
        "PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}, "mappings": mapping}
    )
    if docs:
        lines = []
        for doc_id, doc in docs.items():
            lines += [orjson.dumps({"index": {"_index": name, "_id": doc_id}}), orjson.dumps(doc)]
        assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh=True)["errors"]


def _all(cluster: Cluster, index: str) -> dict[str, dict[str, Any]]:
    hits = cluster.search(index, {"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def _without_timestamp(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "migration_timestamp"}


@pytest.mark.integration
def test_lazy_and_bulk_upgrades_agree(cluster: Cluster, prefix: str, blog: Any) -> None:
    old, new = f"{prefix}-blog-mixed", f"{prefix}-blog-v3"
    docs = {
        **{f"v1-{i}": d for i, d in enumerate(V1_DOCS)},
        **{f"v2-{i}": d for i, d in enumerate(V2_DOCS)},
        **{f"v3-{i}": d for i, d in enumerate(V3_DOCS)},
    }
    # The old index was dynamic; the new one has the 3.0 mapping from the Document class.
    _index(cluster, old, {}, docs)
    _index(cluster, new, blog.BlogPost._doc_type.mapping.to_dict(), {})

    counts = detect_schema_versions(cluster, old)
    assert counts.counts == {"1.0": 1, "2.0": 1, "2.0.0": 1, "3.0.0": 1}
    assert counts.missing == 2

    # Lazy: as an application reading each document.
    lazy = {
        doc_id: migrate_to_latest(source, blog.BlogPost)
        for doc_id, source in _all(cluster, old).items()
    }

    # Bulk: one server-side _reindex per stored version, the upgrade steps compiled to Painless.
    by_version: dict[str, dict[str, Any]] = {
        "1.0.0": {"bool": {"should": [{"bool": {"must_not": {"exists": {"field": "schema_version"}}}},
                                       {"terms": {"schema_version.keyword": ["1.0", "1.0.0"]}}]}},
        "2.0.0": {"terms": {"schema_version.keyword": ["2.0", "2.0.0"]}},
    }  # fmt: skip
    for version, query in by_version.items():
        script = blog.server_side(version).painless()
        assert script is not None, f"the {version} upgrade does not compile"
        answer = cluster.request(
            "POST",
            "/_reindex",
            params={"refresh": "true"},
            body={
                "source": {"index": old, "query": query},
                "dest": {"index": new},
                "script": script,
            },
        )
        assert not answer["failures"]
    # Documents already at 3.0 are copied as they are.
    cluster.request(
        "POST",
        "/_reindex",
        params={"refresh": "true"},
        body={
            "source": {"index": old, "query": {"term": {"schema_version.keyword": "3.0.0"}}},
            "dest": {"index": new},
        },
    )
    bulk = _all(cluster, new)

    assert set(bulk) == set(docs)
    for doc_id in docs:
        assert json_identical(_without_timestamp(bulk[doc_id]), _without_timestamp(lazy[doc_id])), (
            doc_id
        )

    # What the upgrade did, spelled out for one document of each version.
    first = lazy["v1-0"]
    assert first["schema_version"] == "3.0.0"
    assert first["migrated_from_version"] == "1.0.0"
    assert first["title"] == "How to build an API"
    assert first["tags"] == ["python", "API"]
    assert first["category"] == "technology"  # "api" is a technology keyword, checked first
    assert first["metadata"] == {
        "word_count": 6,
        "char_count": 31,
        "reading_time": 1,
        "has_title": True,
        "language": "en",
    }
    assert "created_date" not in first
    assert first["published_date"] == "2023-01-05"
    assert lazy["v2-1"]["metadata"]["reading_time"] == 3  # 450 words at 200 a minute, rounded up
    assert lazy["v2-1"]["category"] == "food"  # only "general" posts are re-categorised
    assert lazy["v3-0"] == V3_DOCS[0]
    assert detect_schema_versions(cluster, new).counts == {"3.0.0": 6}


def test_the_reverse_rules_give_back_the_2_0_document(blog: Any) -> None:
    for v1 in V1_DOCS:
        v2 = blog.v1_to_v2(dict(v1))
        back = blog.v3_to_v2(blog.v2_to_v3(dict(v2)))
        assert set(back) == set(v2) | {"schema_version"}, back
        assert back["created_date"] == v2["created_date"]
        assert back["schema_version"] == "2.0.0"
    assert blog.v3_to_v2.painless() is not None  # a rollback runs it inside _reindex
