"""The versioned Document mixin for both DSLs, lazy upgrades on read, and version detection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import opensearchpy
import orjson
import pytest
from elasticsearch import dsl

from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import SchemaError
from esmigrate.schema import (
    VersionedDocument,
    detect_schema_versions,
    mapping_of,
    migrate_to_latest,
    upgrades,
)


def v1_to_v2(src: dict[str, Any]) -> None:
    src["category"] = "general"
    src["published_date"] = src.get("created_date")


class EsPost(VersionedDocument, dsl.Document):
    __schema_version__ = "2.0"
    __schema_unversioned__ = "1.0"

    title = dsl.Text()
    category = dsl.Keyword()

    step = upgrades("1.0", "2.0")(v1_to_v2)

    class Index:
        name = "posts"


class OsPost(VersionedDocument, opensearchpy.Document):
    __schema_version__ = "2.0"
    __schema_unversioned__ = "1.0"

    title = opensearchpy.Text()
    category = opensearchpy.Keyword()

    step = upgrades("1.0", "2.0")(v1_to_v2)

    class Index:
        name = "posts"


class EsAsyncPost(VersionedDocument, dsl.AsyncDocument):
    __schema_version__ = "2.0"
    __schema_unversioned__ = "1.0"
    __upgrade_on_read__ = True

    title = dsl.Text()
    step = upgrades("1.0", "2.0")(v1_to_v2)


@pytest.mark.parametrize("cls", [EsPost, OsPost, EsAsyncPost])
def test_mixin_adds_metadata_fields(cls: type[VersionedDocument]) -> None:
    props = mapping_of(cls)["properties"]
    assert props["schema_version"] == {"type": "keyword"}
    assert props["created_at"] == {"type": "date"}
    assert props["updated_at"] == {"type": "date"}
    assert props["migrated_from_version"] == {"type": "keyword"}
    assert props["migration_timestamp"] == {"type": "date"}
    assert str(cls.upgrade_graph().latest) == "2.0.0"
    assert [str(s.to_version) for s in cls.upgrade_graph().steps] == ["2.0.0"]


def test_stamp_sets_versions_and_times() -> None:
    post = cast(Any, EsPost(title="x"))
    first = datetime(2024, 1, 1, tzinfo=UTC)
    post.stamp(first)
    assert post.schema_version == "2.0.0"
    assert post.created_at == first
    assert post.updated_at == first
    later = datetime(2024, 2, 1, tzinfo=UTC)
    post.stamp(later)
    assert post.created_at == first
    assert post.updated_at == later


def test_migrate_instance_keeps_meta() -> None:
    old = EsPost.from_es(
        {"_id": "7", "_index": "posts", "_seq_no": 4, "_primary_term": 1,
         "_source": {"title": "t", "created_date": "2020-01-01"}}
    )  # fmt: skip
    new = cast(Any, migrate_to_latest(old))
    assert type(new) is EsPost
    assert new.meta.id == "7"
    assert new.meta.seq_no == 4
    assert new.category == "general"
    assert new.schema_version == "2.0.0"
    assert new.migrated_from_version == "1.0.0"
    assert cast(Any, old).category is None  # the original is untouched
    assert migrate_to_latest(new) is new  # already current

    to_dict = migrate_to_latest({"title": "t"}, EsPost)
    assert to_dict["category"] == "general"
    with pytest.raises(SchemaError, match="needs to know the document type"):
        migrate_to_latest({"title": "t"})  # type: ignore[call-overload]


def test_upgrade_on_read_async_dsl() -> None:
    doc = cast(Any, EsAsyncPost.from_es({"_id": "1", "_source": {"title": "t"}}))
    assert doc.category == "general"
    assert doc.schema_version == "2.0.0"

    async def reader() -> Any:
        # Nothing to await in an upgrade: async callers use the same pure function.
        return migrate_to_latest({"title": "a", "schema_version": "1.0"}, EsAsyncPost)

    assert asyncio.run(reader())["schema_version"] == "2.0.0"


def test_wrong_base_order_is_refused() -> None:
    with pytest.raises(TypeError, match="put VersionedDocument before Document"):

        class Wrong(opensearchpy.Document, VersionedDocument):
            __schema_version__ = "1.0"

    with pytest.raises(TypeError, match="no __schema_version__"):

        class NoVersion(VersionedDocument, dsl.Document):
            step = upgrades("1.0", "2.0")(v1_to_v2)


def test_subclass_inherits_steps() -> None:
    class PostV3(EsPost):
        __schema_version__ = "3.0"

        @upgrades("2.0", "3.0")
        def add_views(src: dict[str, Any]) -> dict[str, Any]:
            return {**src, "views": 0}

    out = migrate_to_latest({"title": "t", "schema_version": "1.0"}, PostV3)
    assert out["views"] == 0
    assert out["category"] == "general"
    assert out["schema_version"] == "3.0.0"


# -- against the engine ----------------------------------------------------------------------------


@pytest.fixture
def dsl_client(cluster: Cluster, cluster_settings: ConnectionSettings) -> Iterator[Any]:
    """The DSL client a user of this engine would have."""
    if cluster.engine.name != "opensearch":
        pytest.skip("the opensearchpy Document test needs OpenSearch")
    client = opensearchpy.OpenSearch(hosts=list(cluster_settings.urls))
    yield client
    client.close()


@pytest.mark.integration
def test_save_and_lazy_read_on_the_node(cluster: Cluster, prefix: str, dsl_client: Any) -> None:
    index = f"{prefix}-posts"

    class Post(VersionedDocument, opensearchpy.Document):
        __schema_version__ = "2.0"
        __schema_unversioned__ = "1.0"
        __upgrade_on_read__ = True

        title = opensearchpy.Text()
        category = opensearchpy.Keyword()
        step = upgrades("1.0", "2.0")(v1_to_v2)

        class Index:
            name = index
            settings: ClassVar[dict[str, Any]] = {"number_of_replicas": 0}

    cast(Any, Post).init(using=dsl_client)
    post = cast(Any, Post(meta={"id": "new"}, title="fresh", category="news"))
    post.save(using=dsl_client, refresh=True)
    stored = cluster.request("GET", f"/{index}/_doc/new")["_source"]
    assert stored["schema_version"] == "2.0.0"
    assert stored["created_at"] == stored["updated_at"]

    # A document written by the old code (no version) is upgraded as it is read...
    cluster.request(
        "PUT", f"/{index}/_doc/old", params={"refresh": "true"},
        body={"title": "legacy", "created_date": "2020-05-01"},
    )  # fmt: skip
    loaded = cast(Any, Post).get("old", using=dsl_client)
    assert loaded.category == "general"
    assert loaded.schema_version == "2.0.0"
    assert loaded.migrated_from_version == "1.0.0"
    # ...and written back at the new version when saved.
    loaded.save(using=dsl_client, refresh=True)
    assert cluster.request("GET", f"/{index}/_doc/old")["_source"]["schema_version"] == "2.0.0"
    hits = cast(Any, Post).search(using=dsl_client).execute()
    assert {h.schema_version for h in hits} == {"2.0.0"}


@pytest.mark.integration
def test_detect_schema_versions(cluster: Cluster, prefix: str) -> None:
    keyword, unmapped, text = f"{prefix}-kw", f"{prefix}-un", f"{prefix}-tx"
    for name, mapping in (
        (keyword, {"properties": {"schema_version": {"type": "keyword"}}}),
        (unmapped, {"dynamic": False}),
        (text, {}),  # dynamic: a text field with a .keyword sub-field
    ):
        cluster.request(
            "PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}, "mappings": mapping}
        )
    lines = []
    versions = ["1.0"] * 3 + ["2.0.0"] * 2 + [None] * 4 + ["bogus"]
    for i, value in enumerate(versions * 3):
        index = (keyword, unmapped, text)[i // len(versions)]
        body = {"n": i} if value is None else {"n": i, "schema_version": value}
        lines += [orjson.dumps({"index": {"_index": index, "_id": str(i)}}), orjson.dumps(body)]
    result = cluster.bulk(b"\n".join(lines) + b"\n", refresh=True)
    assert not result["errors"]
    for name in (keyword, unmapped, text):
        counts = detect_schema_versions(cluster, name)
        assert counts.counts == {"1.0": 3, "2.0.0": 2, "bogus": 1}, name
        assert counts.missing == 4
        assert counts.total == 10
        assert {str(k): v for k, v in counts.by_version().items()} == {"1.0.0": 3, "2.0.0": 2}
        assert counts.invalid == {"bogus": 1}
    assert detect_schema_versions(cluster, unmapped).from_source == (unmapped,)
    everything = detect_schema_versions(cluster, f"{prefix}-*")
    assert everything.counts == {"1.0": 9, "2.0.0": 6, "bogus": 3}
    assert everything.missing == 12
