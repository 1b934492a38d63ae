"""Operations as data (describe) and their idempotent execution on the real node."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    NotFoundError,
    OperationConflict,
    RequestError,
    TaskFailed,
    TransformError,
)
from esmigrate.operations import (
    CreateIndex,
    ExecContext,
    Operation,
    Operations,
    PlannedRequest,
    UpdateAliases,
    mapping_differences,
)
from tests.dsl import es_dsl

# The Elasticsearch DSL of this environment: elasticsearch.dsl, or elasticsearch_dsl 8.x.
Document = es_dsl.Document
Index = es_dsl.Index
InnerDoc = es_dsl.InnerDoc
Keyword = es_dsl.Keyword
Object = es_dsl.Object
Text = es_dsl.Text

CTX = ExecContext(poll_interval=0.2)


class Tag(InnerDoc):
    name = Keyword()


class Post(Document):
    title = Text()
    tags = Object(Tag)

    class Index:
        name = "posts"
        settings: ClassVar[dict[str, Any]] = {"number_of_replicas": 0}


# -- data and descriptions (pure) --------------------------------------------------------------


def test_create_index_accepts_documents_index_objects_and_dicts() -> None:
    op = Operations()
    from_doc = op.create_index(Post)
    assert from_doc.index == "posts"
    assert from_doc.settings == {"number_of_replicas": 0}
    assert from_doc.mappings == Post._doc_type.mapping.to_dict()
    renamed = op.create_index(Post, name="posts-v2")
    assert renamed.index == "posts-v2"
    index = Index("things")
    index.settings(number_of_shards=1)
    index.document(Post)
    from_index = op.create_index(index)
    assert from_index.index == "things"
    assert from_index.settings == {"number_of_shards": 1}
    assert "title" in (from_index.mappings or {})["properties"]
    plain = op.create_index("p", mappings={"properties": {"a": {"type": "keyword"}}})
    assert plain.describe() == [
        PlannedRequest("PUT", "/p", body={"mappings": {"properties": {"a": {"type": "keyword"}}}})
    ]
    assert op.operations == (from_doc, renamed, from_index, plain)


def test_opensearch_dsl_documents_work_too() -> None:
    from opensearchpy import Document as OsDocument
    from opensearchpy import Keyword as OsKeyword

    class Thing(OsDocument):
        code = OsKeyword()

    op = Operations()
    created = op.create_index(Thing, name="things")
    assert created.mappings == {"properties": {"code": {"type": "keyword"}}}
    assert op.put_mapping("things", Thing).mappings == created.mappings


def test_operations_are_frozen_copies_of_their_input() -> None:
    mapping: dict[str, Any] = {"properties": {"a": {"type": "keyword"}}}
    op = Operations().create_index("x", mappings=mapping)
    mapping["properties"]["b"] = {"type": "text"}
    assert op.mappings == {"properties": {"a": {"type": "keyword"}}}
    with pytest.raises(AttributeError):
        op.index = "y"  # type: ignore[misc]


def test_descriptions_list_the_real_requests() -> None:
    op = Operations()
    swap = op.swap_alias("posts", old="posts-v1", new="posts-v2", is_write_index=True)
    assert swap.describe()[0].to_dict() == {
        "method": "POST",
        "path": "/_aliases",
        "body": {
            "actions": [
                {"remove": {"index": "posts-v1", "alias": "posts"}},
                {"add": {"index": "posts-v2", "alias": "posts", "is_write_index": True}},
            ]
        },
    }
    reindex = op.reindex("a", "b", script="ctx._source.x = 1")
    (request,) = reindex.describe()
    assert request.target == "/_reindex?wait_for_completion=false&slices=auto&refresh=true"
    assert request.body["script"] == {"source": "ctx._source.x = 1", "lang": "painless"}
    ubq = op.update_by_query("a", query={"term": {"x": 1}}, script={"source": "..."}, slices=2)
    assert ubq.describe()[0].path == "/a/_update_by_query"
    assert ubq.describe()[0].params == {"wait_for_completion": False, "slices": 2, "refresh": True}
    template = op.put_index_template("t", index_patterns="logs-*", template=Post, priority=5)
    assert template.describe()[0].body["template"]["mappings"] == Post._doc_type.mapping.to_dict()
    assert template.describe()[0].body["priority"] == 5
    pipe = op.put_pipeline("p", processors=[{"set": {"field": "x", "value": 1}}])
    assert pipe.describe()[0].path == "/_ingest/pipeline/p"
    raw = op.request("post", "/a/_doc/1", body={"x": 1}, ignore=[409])
    assert str(raw.describe()[0]) == 'POST /a/_doc/1\n{"x":1}'
    transform = op.reindex("a", "b", transform=lambda d: d)
    assert [r.path for r in transform.describe()] == ["/_search", "/_bulk", "/b/_refresh"]
    assert all(isinstance(o, Operation) and o.summary() for o in op.operations)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda op: op.create_index(Document), TypeError),  # no name
        (lambda op: op.reindex("a", "b", script="x", transform=lambda d: d), ValueError),
        (lambda op: op.update_aliases([{"rename": {"index": "a", "alias": "b"}}]), ValueError),
        (lambda op: op.put_mapping("a", 5), TypeError),
        (lambda op: op.request("GET", "no-slash"), ValueError),
        (lambda op: op.put_pipeline("p"), TypeError),
    ],
)
def test_bad_arguments_fail_while_recording(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(Operations())


def test_mapping_differences() -> None:
    actual = {
        "properties": {"a": {"type": "keyword"}, "o": {"properties": {"x": {"type": "long"}}}}
    }
    assert mapping_differences({"properties": {"a": {"type": "keyword"}}}, actual) == []
    wanted_object = {"properties": {"o": {"type": "object", "properties": {"x": {"type": "long"}}}}}
    assert mapping_differences(wanted_object, actual) == []
    assert mapping_differences({"dynamic": False}, {"dynamic": "false"}) == []
    problems = mapping_differences({"properties": {"a": {"type": "text"}, "b": {}}}, actual)
    assert problems == [
        'mappings.properties.a.type: wanted "text", found "keyword"',
        "mappings.properties.b: wanted {}, found nothing",
    ]


# -- execution on the real node ----------------------------------------------------------------


def run_twice(cluster: Cluster, operation: Operation) -> tuple[str, str]:
    first = operation.execute(cluster, CTX)
    second = operation.execute(cluster, CTX)
    return first.status, second.status


@pytest.mark.integration
def test_create_index_converges_and_refuses_a_different_mapping(
    cluster: Cluster, prefix: str
) -> None:
    mappings = {
        "properties": {"title": {"type": "text"}, "o": {"properties": {"n": {"type": "long"}}}}
    }
    create = CreateIndex(f"{prefix}-a", settings={"number_of_replicas": 0}, mappings=mappings)
    assert run_twice(cluster, create) == ("done", "unchanged")
    other = CreateIndex(f"{prefix}-a", mappings={"properties": {"title": {"type": "keyword"}}})
    with pytest.raises(OperationConflict) as err:
        other.execute(cluster, CTX)
    assert "title.type" in err.value.message
    assert f"{prefix}-a" in err.value.message


@pytest.mark.integration
def test_index_level_operations_converge(cluster: Cluster, prefix: str) -> None:
    op = Operations()
    op.create_index(f"{prefix}-b", settings={"number_of_replicas": 0})
    op.put_mapping(f"{prefix}-b", {"properties": {"tag": {"type": "keyword"}}})
    op.update_settings(f"{prefix}-b", {"index": {"refresh_interval": "2s"}})
    op.refresh(f"{prefix}-b")
    op.delete_index(f"{prefix}-b")
    statuses = [run_twice(cluster, o) for o in op.operations]
    assert statuses[-1] == ("done", "unchanged")
    assert not cluster.exists(f"{prefix}-b")
    with pytest.raises(NotFoundError):
        Operations().delete_index(f"{prefix}-b", missing_ok=False).execute(cluster, CTX)


@pytest.mark.integration
def test_alias_swap_is_atomic_and_converges(cluster: Cluster, prefix: str) -> None:
    for name in ("v1", "v2"):
        cluster.request("PUT", f"/{prefix}-{name}", body={"settings": {"number_of_replicas": 0}})
    op = Operations()
    add = op.add_alias(f"{prefix}-v1", f"{prefix}-live", is_write_index=True)
    swap = op.swap_alias(f"{prefix}-live", old=f"{prefix}-v1", new=f"{prefix}-v2")
    assert run_twice(cluster, add) == ("done", "done")  # adding is idempotent server-side
    # Re-running converges (the server either accepts the no-op or we find it already done).
    assert run_twice(cluster, swap)[1] in ("done", "unchanged")
    aliases = cluster.request("GET", f"/_alias/{prefix}-live")
    assert list(aliases) == [f"{prefix}-v2"]
    # One failing action fails the whole request: the other action did not happen either.
    broken = UpdateAliases(
        (
            *op.remove_alias(f"{prefix}-v2", f"{prefix}-live").actions,
            *op.add_alias(f"{prefix}-missing", f"{prefix}-other").actions,
        )
    )
    with pytest.raises(RequestError):
        broken.execute(cluster, CTX)
    assert list(cluster.request("GET", f"/_alias/{prefix}-live")) == [f"{prefix}-v2"]


def _fill(cluster: Cluster, index: str, n: int) -> None:
    import orjson

    cluster.request(
        "PUT", f"/{index}", body={"settings": {"number_of_replicas": 0, "number_of_shards": 2}}
    )
    body = b"".join(
        orjson.dumps({"index": {"_index": index, "_id": str(i)}})
        + b"\n"
        + orjson.dumps({"n": i})
        + b"\n"
        for i in range(n)
    )
    cluster.bulk(body, refresh="true")


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_reindex_with_a_script_runs_as_a_task(cluster: Cluster, prefix: str) -> None:
    _fill(cluster, f"{prefix}-src", 50)
    tasks: list[str] = []
    ctx = ExecContext(on_task=tasks.append, poll_interval=0.2)
    reindex = Operations().reindex(
        f"{prefix}-src", f"{prefix}-dst", script="ctx._source.double = ctx._source.n * 2"
    )
    result = reindex.execute(cluster, ctx)
    assert result.detail["total"] == 50
    assert tasks == [result.detail["task"]]
    hit = cluster.request("GET", f"/{prefix}-dst/_doc/7")
    assert hit["_source"] == {"n": 7, "double": 14}
    again = reindex.execute(cluster, ctx)  # converges: same documents, same ids
    assert again.detail["updated"] == 50
    assert cluster.count(f"{prefix}-dst") == 50


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_reindex_through_python_visits_every_document_once(cluster: Cluster, prefix: str) -> None:
    _fill(cluster, f"{prefix}-src", 523)
    cluster.request("PUT", f"/{prefix}-dst", body={"settings": {"number_of_replicas": 0}})

    def transform(doc: dict[str, Any]) -> dict[str, Any] | None:
        if doc["n"] % 10 == 0:
            return None
        return {"n": doc["n"], "label": f"#{doc['n']}"}

    checkpoints: list[int] = []
    ctx = ExecContext(checkpoint=lambda: checkpoints.append(1))
    reindex = Operations().reindex(
        f"{prefix}-src", f"{prefix}-dst", transform=transform, page_size=50
    )
    result = reindex.execute(cluster, ctx)
    counts = {k: result.detail[k] for k in ("read", "written", "skipped")}
    assert counts == {"read": 523, "written": 470, "skipped": 53}
    assert len(checkpoints) == 11  # one per page
    assert cluster.count(f"{prefix}-dst") == 470
    assert cluster.request("GET", f"/{prefix}-dst/_doc/11")["_source"] == {"n": 11, "label": "#11"}
    assert reindex.execute(cluster, ctx).detail["written"] == 470
    assert cluster.count(f"{prefix}-dst") == 470


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_reindex_through_python_keeps_routing_copies_the_query_and_raises_on_bad_documents(
    cluster: Cluster, prefix: str
) -> None:
    import orjson

    src, dst = f"{prefix}-rsrc", f"{prefix}-rdst"
    for index in (src, dst):
        cluster.request(
            "PUT",
            f"/{index}",
            body={
                "settings": {"number_of_replicas": 0, "number_of_shards": 3},
                "mappings": {"properties": {"n": {"type": "long"}, "kind": {"type": "keyword"}}},
            },
        )
    cluster.bulk(
        b"".join(
            orjson.dumps({"index": {"_index": src, "_id": str(i), "routing": f"user-{i % 4}"}})
            + b"\n"
            + orjson.dumps({"n": i, "kind": "odd" if i % 2 else "even"})
            + b"\n"
            for i in range(40)
        ),
        refresh="true",
    )

    def mark(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "copied": True}

    result = (
        Operations()
        .reindex(src, dst, query={"term": {"kind": "odd"}}, transform=mark, page_size=7)
        .execute(cluster, CTX)
    )
    assert (result.detail["read"], result.detail["written"]) == (20, 20)
    hits = cluster.search(dst, {"size": 100})["hits"]["hits"]
    assert sorted(int(h["_id"]) for h in hits) == list(range(1, 40, 2))
    # Routed as in the source: a GET without the routing would look on another shard.
    assert all(h["_routing"] == f"user-{int(h['_id']) % 4}" for h in hits)
    assert all(h["_source"] == {"n": int(h["_id"]), "kind": "odd", "copied": True} for h in hits)

    def break_seven(doc: dict[str, Any]) -> dict[str, Any]:
        return {"n": "seven"} if doc["n"] == 7 else doc

    with pytest.raises(RequestError) as rejected:
        Operations().reindex(src, dst, transform=break_seven).execute(cluster, CTX)
    assert "'7'" in rejected.value.message
    # Elasticsearch 8.x calls it document_parsing_exception.
    assert rejected.value.error_type in ("mapper_parsing_exception", "document_parsing_exception")
    seven = cluster.request("GET", f"/{dst}/_doc/7", params={"routing": "user-3"})
    assert seven["_source"]["n"] == 7  # the rejected version did not replace it

    def explode_on_twelve(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["n"] == 12:
            raise KeyError("title")
        return doc

    with pytest.raises(TransformError) as failed:
        Operations().reindex(src, dst, transform=explode_on_twelve).execute(cluster, CTX)
    assert failed.value.doc_id == "12"
    assert isinstance(failed.value.__cause__, KeyError)
    assert "explode_on_twelve" in failed.value.message


@pytest.mark.integration
def test_update_by_query_and_failures_carry_the_server_reason(
    cluster: Cluster, prefix: str
) -> None:
    _fill(cluster, f"{prefix}-u", 20)
    ubq = Operations().update_by_query(
        f"{prefix}-u",
        query={"range": {"n": {"lt": 5}}},
        script="if (ctx._source.small == null) { ctx._source.small = true } else { ctx.op = 'noop' }",
    )
    first = ubq.execute(cluster, CTX)
    assert first.detail["updated"] == 5
    second = ubq.execute(cluster, CTX)
    assert second.detail["noops"] == 5
    bad = Operations().update_by_query(
        f"{prefix}-u", script="ctx._source.x = ctx._source.nope.length()"
    )
    with pytest.raises(TaskFailed) as err:
        bad.execute(cluster, CTX)
    assert "script_exception" in err.value.message


@pytest.mark.integration
def test_templates_pipelines_and_raw_requests_converge(cluster: Cluster, prefix: str) -> None:
    op = Operations()
    op.put_index_template(
        f"{prefix}-tpl",
        index_patterns=[f"{prefix}-logs-*"],
        settings={"number_of_replicas": 0},
        mappings={"properties": {"msg": {"type": "text"}}},
    )
    # The embedded node has no ingest processors; an empty pipeline still round-trips.
    op.put_pipeline(f"{prefix}-pipe", processors=[], description="esmigrate test")
    op.request(
        "PUT",
        f"/{prefix}-logs-1/_doc/1",
        params={"refresh": "true"},
        body={"msg": "hi"},
    )
    op.request("PUT", f"/{prefix}-logs-1/_create/1", body={"msg": "again"}, ignore=[409])
    op.delete_index_template(f"{prefix}-tpl")
    op.delete_pipeline(f"{prefix}-pipe")
    first = [o.execute(cluster, CTX).status for o in op.operations[:2]]
    stored = cluster.request("GET", f"/_ingest/pipeline/{prefix}-pipe")
    assert stored[f"{prefix}-pipe"]["description"] == "esmigrate test"
    assert first == ["done", "done"]
    results = [run_twice(cluster, o) for o in op.operations]
    assert results[3] == ("unchanged", "unchanged")  # the 409 is ignored
    assert results[4] == ("done", "unchanged")
    assert results[5] == ("done", "unchanged")
    doc = cluster.request("GET", f"/{prefix}-logs-1/_doc/1")["_source"]
    assert doc == {"msg": "hi"}
    mapping = cluster.request("GET", f"/{prefix}-logs-1/_mapping")
    assert mapping[f"{prefix}-logs-1"]["mappings"]["properties"]["msg"] == {"type": "text"}
