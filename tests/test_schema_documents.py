"""The versioned Document mixin for both DSLs, lazy upgrades on read, and version detection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import elasticsearch
import opensearchpy
import orjson
import pytest

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
from tests import servers
from tests.dsl import FLAVOURS, Flavour
from tests.test_elasticsearch_contract import fake_elasticsearch


def v1_to_v2(src: dict[str, Any]) -> None:
    src["category"] = "general"
    src["published_date"] = src.get("created_date")


def post_class(flavour: Flavour, *, asynchronous: bool = False, index: str = "posts") -> Any:
    """A versioned Post (2.0, unversioned documents are 1.0) of ``flavour``'s DSL."""
    dsl = flavour.module
    base = flavour.async_document if asynchronous else flavour.document

    class Post(VersionedDocument, base):  # type: ignore[misc,valid-type]
        __schema_version__ = "2.0"
        __schema_unversioned__ = "1.0"
        __upgrade_on_read__ = True

        title = dsl.Text()
        category = dsl.Keyword()

        step = upgrades("1.0", "2.0")(v1_to_v2)

        class Index:
            name = index
            settings: ClassVar[dict[str, Any]] = {"number_of_replicas": 0}

    return Post


DSLS = pytest.mark.parametrize("flavour", FLAVOURS, ids=str)
BOTH = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


@DSLS
@BOTH
def test_mixin_adds_metadata_fields(flavour: Flavour, asynchronous: bool) -> None:
    cls = post_class(flavour, asynchronous=asynchronous)
    props = mapping_of(cls)["properties"]
    assert props["schema_version"] == {"type": "keyword"}
    assert props["created_at"] == {"type": "date"}
    assert props["updated_at"] == {"type": "date"}
    assert props["migrated_from_version"] == {"type": "keyword"}
    assert props["migration_timestamp"] == {"type": "date"}
    assert str(cls.upgrade_graph().latest) == "2.0.0"
    assert [str(s.to_version) for s in cls.upgrade_graph().steps] == ["2.0.0"]


@DSLS
def test_stamp_sets_versions_and_times(flavour: Flavour) -> None:
    post = post_class(flavour)(title="x")
    first = datetime(2024, 1, 1, tzinfo=UTC)
    post.stamp(first)
    assert post.schema_version == "2.0.0"
    assert post.created_at == first
    assert post.updated_at == first
    later = datetime(2024, 2, 1, tzinfo=UTC)
    post.stamp(later)
    assert post.created_at == first
    assert post.updated_at == later


@DSLS
def test_migrate_instance_keeps_meta(flavour: Flavour) -> None:
    cls = post_class(flavour)
    cls.__upgrade_on_read__ = False
    hit = {"_id": "7", "_index": "posts", "_seq_no": 4, "_primary_term": 1,
           "_source": {"title": "t", "created_date": "2020-01-01"}}  # fmt: skip
    old = getattr(cls, flavour.loader)(hit)
    new = cast(Any, migrate_to_latest(old))
    assert type(new) is cls
    assert new.meta.id == "7"
    assert new.meta.seq_no == 4
    assert new.category == "general"
    assert new.schema_version == "2.0.0"
    assert new.migrated_from_version == "1.0.0"
    assert old.category is None  # the original is untouched
    assert migrate_to_latest(new) is new  # already current

    as_dict = migrate_to_latest({"title": "t"}, cls)
    assert as_dict["category"] == "general"
    with pytest.raises(SchemaError, match="needs to know the document type"):
        migrate_to_latest({"title": "t"})  # type: ignore[call-overload]


@DSLS
@BOTH
def test_upgrade_on_read(flavour: Flavour, asynchronous: bool) -> None:
    cls = post_class(flavour, asynchronous=asynchronous)
    doc = getattr(cls, flavour.loader)({"_id": "1", "_source": {"title": "t"}})
    assert doc.category == "general"
    assert doc.schema_version == "2.0.0"

    async def reader() -> Any:
        # Nothing to await in an upgrade: async callers use the same pure function.
        return migrate_to_latest({"title": "a", "schema_version": "1.0"}, cls)

    assert asyncio.run(reader())["schema_version"] == "2.0.0"


@DSLS
@BOTH
def test_wrong_base_order_is_refused(flavour: Flavour, asynchronous: bool) -> None:
    base = flavour.async_document if asynchronous else flavour.document
    with pytest.raises(TypeError, match=f"put VersionedDocument before {base.__name__}"):

        class Wrong(base, VersionedDocument):  # type: ignore[misc,valid-type]
            __schema_version__ = "1.0"

    with pytest.raises(TypeError, match="no __schema_version__"):

        class NoVersion(VersionedDocument, base):  # type: ignore[misc,valid-type]
            step = upgrades("1.0", "2.0")(v1_to_v2)


@DSLS
def test_subclass_inherits_steps(flavour: Flavour) -> None:
    class PostV3(post_class(flavour)):  # type: ignore[misc]
        __schema_version__ = "3.0"

        @upgrades("2.0", "3.0")
        def add_views(src: dict[str, Any]) -> dict[str, Any]:
            return {**src, "views": 0}

    out = migrate_to_latest({"title": "t", "schema_version": "1.0"}, PostV3)
    assert out["views"] == 0
    assert out["category"] == "general"
    assert out["schema_version"] == "3.0.0"


# -- what an Elasticsearch DSL Document sends (no Elasticsearch runs here) ----------------------

ES_FLAVOURS = [f for f in FLAVOURS if f.loader == "from_es"]


@pytest.mark.parametrize("flavour", ES_FLAVOURS, ids=str)
@BOTH
def test_elasticsearch_dsl_save_sends_the_stamped_document(
    flavour: Flavour, asynchronous: bool
) -> None:
    cls = post_class(flavour, asynchronous=asynchronous)
    with servers.serving(fake_elasticsearch(9)) as server:
        post = cls(meta={"id": "1"}, title="fresh", category="news")
        if asynchronous:

            async def save() -> None:
                client = elasticsearch.AsyncElasticsearch(server.url)
                try:
                    await post.save(using=client)
                finally:
                    await client.close()

            asyncio.run(save())
        else:
            with elasticsearch.Elasticsearch(server.url) as client:
                post.save(using=client)
    (request,) = [r for r in server.requests if r.method == "PUT"]
    assert request.path.split("?")[0] == "/posts/_doc/1"
    body = request.json()
    assert body["schema_version"] == "2.0.0"
    assert body["created_at"] == body["updated_at"]
    assert body["title"] == "fresh"


# -- against the engine ----------------------------------------------------------------------------


OPENSEARCH = next(f for f in FLAVOURS if f.name == "opensearchpy")


@pytest.fixture
def node_url(cluster: Cluster, cluster_settings: ConnectionSettings) -> str:
    if cluster.engine.name != "opensearch":
        pytest.skip("the opensearchpy Document test needs OpenSearch")
    return cluster_settings.urls[0]


@pytest.mark.integration
def test_save_and_lazy_read_on_the_node(cluster: Cluster, prefix: str, node_url: str) -> None:
    index = f"{prefix}-posts"
    post_cls = post_class(OPENSEARCH, index=index)
    with opensearchpy.OpenSearch(hosts=[node_url]) as client:
        post_cls.init(using=client)
        post = post_cls(meta={"id": "new"}, title="fresh", category="news")
        post.save(using=client, refresh=True)
        write_legacy(cluster, index)
        loaded = post_cls.get("old", using=client)
        check_upgraded(loaded)
        # ...and written back at the new version when saved.
        loaded.save(using=client, refresh=True)
        hits = post_cls.search(using=client).execute()
    check_stored(cluster, index, {h.schema_version for h in hits})


@pytest.mark.integration
def test_async_save_and_lazy_read_on_the_node(cluster: Cluster, prefix: str, node_url: str) -> None:
    index = f"{prefix}-posts"
    post_cls = post_class(OPENSEARCH, asynchronous=True, index=index)

    async def application() -> set[str]:
        client = opensearchpy.AsyncOpenSearch(hosts=[node_url])
        try:
            await post_cls.init(using=client)
            post = post_cls(meta={"id": "new"}, title="fresh", category="news")
            await post.save(using=client, refresh=True)
            write_legacy(cluster, index)
            loaded = await post_cls.get("old", using=client)
            check_upgraded(loaded)
            await loaded.save(using=client, refresh=True)
            hits = await post_cls.search(using=client).execute()
            return {h.schema_version for h in hits}
        finally:
            await client.close()

    check_stored(cluster, index, asyncio.run(application()))


def write_legacy(cluster: Cluster, index: str) -> None:
    """A document written by the old code: no version field."""
    stored = cluster.request("GET", f"/{index}/_doc/new")["_source"]
    assert stored["schema_version"] == "2.0.0"
    assert stored["created_at"] == stored["updated_at"]
    cluster.request(
        "PUT", f"/{index}/_doc/old", params={"refresh": "true"},
        body={"title": "legacy", "created_date": "2020-05-01"},
    )  # fmt: skip


def check_upgraded(loaded: Any) -> None:
    """The legacy document was upgraded as it was read."""
    assert loaded.category == "general"
    assert loaded.schema_version == "2.0.0"
    assert loaded.migrated_from_version == "1.0.0"


def check_stored(cluster: Cluster, index: str, versions_read: set[str]) -> None:
    assert cluster.request("GET", f"/{index}/_doc/old")["_source"]["schema_version"] == "2.0.0"
    assert versions_read == {"2.0.0"}


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
