"""Mapping diff: typed changes and their classification, checked against the real engine."""

from __future__ import annotations

from typing import Any, cast

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import RequestError, SchemaError
from esmigrate.schema import (
    ChangeKind,
    Compatibility,
    diff_mappings,
    mapping_of,
    normalize_mapping,
)

IN_PLACE, BACKFILL, REINDEX = (
    Compatibility.IN_PLACE,
    Compatibility.NEEDS_BACKFILL,
    Compatibility.NEEDS_REINDEX,
)


def props(**fields: Any) -> dict[str, Any]:
    return {"properties": fields}


# (case, old mapping, new mapping, expected kind, expected class)
TABLE: list[tuple[str, dict[str, Any], dict[str, Any], ChangeKind, Compatibility]] = [
    ("new field", props(a={"type": "text"}), props(a={"type": "text"}, b={"type": "keyword"}),
     ChangeKind.FIELD_ADDED, IN_PLACE),
    ("new object field", props(a={"type": "text"}),
     props(a={"type": "text"}, o={"properties": {"x": {"type": "long"}}}),
     ChangeKind.FIELD_ADDED, IN_PLACE),
    ("new field in existing object", props(o={"properties": {"x": {"type": "long"}}}),
     props(o={"properties": {"x": {"type": "long"}, "y": {"type": "keyword"}}}),
     ChangeKind.FIELD_ADDED, IN_PLACE),
    ("new field under dynamic false", {"dynamic": False, **props(a={"type": "text"})},
     {"dynamic": False, **props(a={"type": "text"}, b={"type": "keyword"})},
     ChangeKind.FIELD_ADDED, BACKFILL),
    ("new field under object dynamic false",
     props(o={"dynamic": "false", "properties": {"x": {"type": "long"}}}),
     props(o={"dynamic": "false", "properties": {"x": {"type": "long"}, "y": {"type": "long"}}}),
     ChangeKind.FIELD_ADDED, BACKFILL),
    ("new multi-field", props(t={"type": "text"}),
     props(t={"type": "text", "fields": {"raw": {"type": "keyword"}}}),
     ChangeKind.SUBFIELD_ADDED, BACKFILL),
    ("multi-field ignore_above lowered",
     props(t={"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 100}}}),
     props(t={"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 50}}}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("text to keyword", props(a={"type": "text"}), props(a={"type": "keyword"}),
     ChangeKind.TYPE_CHANGED, REINDEX),
    ("long to integer", props(a={"type": "long"}), props(a={"type": "integer"}),
     ChangeKind.TYPE_CHANGED, REINDEX),
    ("object to nested", props(o={"properties": {"x": {"type": "long"}}}),
     props(o={"type": "nested", "properties": {"x": {"type": "long"}}}),
     ChangeKind.TYPE_CHANGED, REINDEX),
    ("object to keyword", props(o={"properties": {"x": {"type": "long"}}}),
     props(o={"type": "keyword"}), ChangeKind.TYPE_CHANGED, REINDEX),
    ("multi-field type", props(t={"type": "text", "fields": {"raw": {"type": "keyword"}}}),
     props(t={"type": "text", "fields": {"raw": {"type": "text"}}}),
     ChangeKind.TYPE_CHANGED, REINDEX),
    ("analyzer", props(t={"type": "text"}), props(t={"type": "text", "analyzer": "simple"}),
     ChangeKind.ANALYZER_CHANGED, REINDEX),
    ("normalizer", props(k={"type": "keyword"}),
     props(k={"type": "keyword", "normalizer": "lowercase"}), ChangeKind.ANALYZER_CHANGED, REINDEX),
    ("search_analyzer", props(t={"type": "text", "analyzer": "standard"}),
     props(t={"type": "text", "analyzer": "standard", "search_analyzer": "simple"}),
     ChangeKind.SEARCH_ANALYZER_CHANGED, IN_PLACE),
    ("ignore_above lowered", props(k={"type": "keyword", "ignore_above": 256}),
     props(k={"type": "keyword", "ignore_above": 100}), ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("ignore_above raised", props(k={"type": "keyword", "ignore_above": 100}),
     props(k={"type": "keyword", "ignore_above": 256}), ChangeKind.PARAMETER_CHANGED, BACKFILL),
    ("root dynamic", props(a={"type": "text"}), {"dynamic": "strict", **props(a={"type": "text"})},
     ChangeKind.DYNAMIC_CHANGED, IN_PLACE),
    ("object dynamic", props(o={"properties": {"x": {"type": "long"}}}),
     props(o={"dynamic": False, "properties": {"x": {"type": "long"}}}),
     ChangeKind.DYNAMIC_CHANGED, IN_PLACE),
    ("index false to true", props(k={"type": "keyword", "index": False}),
     props(k={"type": "keyword"}), ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("doc_values off", props(k={"type": "keyword"}), props(k={"type": "keyword", "doc_values": False}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("copy_to added", props(a={"type": "text"}, all={"type": "text"}),
     props(a={"type": "text", "copy_to": "all"}, all={"type": "text"}),
     ChangeKind.COPY_TO_CHANGED, BACKFILL),
    ("copy_to removed", props(a={"type": "text", "copy_to": ["all"]}, all={"type": "text"}),
     props(a={"type": "text"}, all={"type": "text"}), ChangeKind.COPY_TO_CHANGED, IN_PLACE),
    ("norms disabled", props(t={"type": "text"}), props(t={"type": "text", "norms": False}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("norms enabled", props(t={"type": "text", "norms": False}), props(t={"type": "text"}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("null_value", props(k={"type": "keyword"}), props(k={"type": "keyword", "null_value": "NA"}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("date format", props(d={"type": "date"}), props(d={"type": "date", "format": "yyyy-MM-dd"}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("fielddata on", props(t={"type": "text"}), props(t={"type": "text", "fielddata": True}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("ignore_malformed", props(n={"type": "integer"}),
     props(n={"type": "integer", "ignore_malformed": True}), ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("coerce off", props(n={"type": "integer"}), props(n={"type": "integer", "coerce": False}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("eager_global_ordinals", props(k={"type": "keyword"}),
     props(k={"type": "keyword", "eager_global_ordinals": True}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("meta", props(k={"type": "keyword"}), props(k={"type": "keyword", "meta": {"unit": "ms"}}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
    ("object enabled", props(o={"type": "object"}), props(o={"type": "object", "enabled": False}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("store", props(k={"type": "keyword"}), props(k={"type": "keyword", "store": True}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("index_options", props(t={"type": "text"}), props(t={"type": "text", "index_options": "freqs"}),
     ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("scaling_factor", props(s={"type": "scaled_float", "scaling_factor": 10}),
     props(s={"type": "scaled_float", "scaling_factor": 100}), ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("nested include_in_parent", props(n={"type": "nested"}),
     props(n={"type": "nested", "include_in_parent": True}), ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("dynamic_templates", props(a={"type": "text"}),
     {"dynamic_templates": [{"s": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
      **props(a={"type": "text"})}, ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("_meta", props(a={"type": "text"}), {"_meta": {"owner": "search"}, **props(a={"type": "text"})},
     ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("date_detection", props(a={"type": "text"}), {"date_detection": False, **props(a={"type": "text"})},
     ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("_source excludes", props(a={"type": "text"}), {"_source": {"excludes": ["a"]}, **props(a={"type": "text"})},
     ChangeKind.METADATA_FIELD_CHANGED, REINDEX),
    ("_routing required", props(a={"type": "text"}), {"_routing": {"required": True}, **props(a={"type": "text"})},
     ChangeKind.METADATA_FIELD_CHANGED, REINDEX),
    ("removed field", props(a={"type": "text"}, b={"type": "keyword"}), props(a={"type": "text"}),
     ChangeKind.FIELD_REMOVED, REINDEX),
    ("removed multi-field", props(t={"type": "text", "fields": {"raw": {"type": "keyword"}}}),
     props(t={"type": "text"}), ChangeKind.SUBFIELD_REMOVED, REINDEX),
]  # fmt: skip


@pytest.mark.parametrize(("case", "old", "new", "kind", "compat"), TABLE, ids=[t[0] for t in TABLE])
def test_classification(
    case: str, old: dict[str, Any], new: dict[str, Any], kind: ChangeKind, compat: Compatibility
) -> None:
    diff = diff_mappings(old, new)
    assert [c.kind for c in diff.changes] == [kind], diff.changes
    assert diff.changes[0].compatibility == compat
    assert diff.compatibility == compat
    assert diff.bump == (
        "major"
        if compat == REINDEX
        else "minor"
        if kind in (ChangeKind.FIELD_ADDED, ChangeKind.SUBFIELD_ADDED)
        else "patch"
    )


def test_no_changes_and_explicit_defaults() -> None:
    spelled_out = props(
        t={"type": "text", "norms": True, "index": True, "store": False, "analyzer": "default"},
        k={"type": "keyword", "ignore_above": 2147483647, "doc_values": True, "copy_to": []},
        d={"type": "date", "format": "strict_date_optional_time||epoch_millis"},
        o={"type": "object", "properties": {"x": {"type": "long", "coerce": True}}},
    )
    plain = props(
        t={"type": "text"},
        k={"type": "keyword"},
        d={"type": "date"},
        o={"properties": {"x": {"type": "long"}}},
    )
    diff = diff_mappings(spelled_out, plain)
    assert not diff
    assert diff.strategy == "none"
    assert diff.bump is None
    assert diff.compatibility is None


def test_several_changes_worst_wins_and_paths() -> None:
    old = props(title={"type": "text"}, author={"properties": {"name": {"type": "keyword"}}})
    new = props(
        title={"type": "text", "fields": {"raw": {"type": "keyword"}}},
        author={"properties": {"name": {"type": "text"}, "email": {"type": "keyword"}}},
    )
    diff = diff_mappings(old, new)
    assert {(c.path, c.kind) for c in diff.changes} == {
        ("title.raw", ChangeKind.SUBFIELD_ADDED),
        ("author.name", ChangeKind.TYPE_CHANGED),
        ("author.email", ChangeKind.FIELD_ADDED),
    }
    assert diff.compatibility == REINDEX
    assert diff.strategy == "reindex"
    assert diff.bump == "major"
    assert "author.name: type keyword → text [needs_reindex]" in [
        c.describe() for c in diff.changes
    ]
    # The breaking change is left out of the put-mapping body; the compatible ones are in it.
    body = diff.put_mapping_body()
    assert body == {
        "properties": {
            "author": {"properties": {"email": {"type": "keyword"}}},
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        }
    }


def test_backfill_declared_for_defaults() -> None:
    diff = diff_mappings(
        props(a={"type": "text"}), props(a={"type": "text"}, c={"type": "keyword"}), backfill=["c"]
    )
    assert diff.changes[0].compatibility == BACKFILL
    assert diff.strategy == "put_mapping+update_by_query"


def test_mapping_inputs_from_both_dsls() -> None:
    import opensearchpy

    from tests.dsl import es_dsl as dsl

    class EsPost(dsl.Document):
        title = dsl.Text(fields={"raw": dsl.Keyword()})
        tags = dsl.Keyword(multi=True)

        class Index:
            name = "posts"

    class OsPost(opensearchpy.Document):
        title = opensearchpy.Text(fields={"raw": opensearchpy.Keyword()})
        tags = opensearchpy.Keyword(multi=True)

        class Index:
            name = "posts"

    expected = props(
        title={"type": "text", "fields": {"raw": {"type": "keyword"}}}, tags={"type": "keyword"}
    )
    os_index = cast(Any, OsPost)._index
    for source in (EsPost, EsPost(), OsPost, EsPost._index, os_index, {"mappings": expected},
                   {"posts-1": {"mappings": expected}}, expected):  # fmt: skip
        assert normalize_mapping(mapping_of(source)) == normalize_mapping(expected), source
    es_index = dsl.Index("other")
    es_index.document(EsPost)
    assert not diff_mappings(es_index, OsPost)


def test_bad_inputs() -> None:
    with pytest.raises(SchemaError, match="no cluster"):
        mapping_of("posts")
    with pytest.raises(SchemaError, match="not a mapping"):
        mapping_of({"title": {"type": "text"}})
    with pytest.raises(SchemaError, match="Cannot read a mapping"):
        mapping_of(42)


# -- against the engine ----------------------------------------------------------------------------


def _create(cluster: Cluster, name: str, mapping: dict[str, Any]) -> None:
    cluster.request(
        "PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}, "mappings": mapping}
    )


@pytest.mark.integration
@pytest.mark.parametrize(("case", "old", "new", "kind", "compat"), TABLE, ids=[t[0] for t in TABLE])
def test_classification_matches_the_engine(
    cluster: Cluster,
    prefix: str,
    case: str,
    old: dict[str, Any],
    new: dict[str, Any],
    kind: ChangeKind,
    compat: Compatibility,
) -> None:
    """in_place / needs_backfill: the engine accepts the new mapping on the live index, and the
    diff's own put-mapping body brings the live mapping to the new one. needs_reindex: the engine
    refuses, or (removals) accepts but keeps the field."""
    name = f"{prefix}-m"
    _create(cluster, name, old)
    diff = diff_mappings(name, new, cluster=cluster)
    assert [c.kind for c in diff.changes] == [kind]
    assert diff.compatibility == compat
    if compat != REINDEX:
        cluster.request("PUT", f"/{name}/_mapping", body=diff.put_mapping_body())
        assert not diff_mappings(name, new, cluster=cluster)
        return
    if kind in (ChangeKind.FIELD_REMOVED, ChangeKind.SUBFIELD_REMOVED):
        cluster.request("PUT", f"/{name}/_mapping", body=new)
        assert diff_mappings(name, new, cluster=cluster).changes[0].kind == kind
        return
    with pytest.raises(RequestError):
        cluster.request("PUT", f"/{name}/_mapping", body=new)


@pytest.mark.integration
def test_explicit_defaults_match_the_live_mapping(cluster: Cluster, prefix: str) -> None:
    spelled_out = props(
        t={"type": "text", "norms": True, "index": True, "store": False, "fielddata": False,
           "index_phrases": False, "term_vector": "no", "index_options": "positions", "eager_global_ordinals": False},
        k={"type": "keyword", "ignore_above": 2147483647, "doc_values": True, "norms": False,
           "index_options": "docs", "split_queries_on_whitespace": False},
        d={"type": "date", "format": "strict_date_optional_time||epoch_millis", "ignore_malformed": False},
        n={"type": "long", "coerce": True, "doc_values": True},
        o={"type": "object", "enabled": True, "properties": {"x": {"type": "boolean"}}},
        nn={"type": "nested", "include_in_parent": False, "properties": {"y": {"type": "ip"}}},
    )  # fmt: skip
    _create(cluster, f"{prefix}-d", spelled_out)
    assert not diff_mappings(f"{prefix}-d", spelled_out, cluster=cluster)


@pytest.mark.integration
def test_alias_over_different_mappings_is_refused(cluster: Cluster, prefix: str) -> None:
    _create(cluster, f"{prefix}-a1", props(a={"type": "text"}))
    _create(cluster, f"{prefix}-a2", props(a={"type": "keyword"}))
    with pytest.raises(SchemaError, match="different mappings"):
        mapping_of(f"{prefix}-a*", cluster)
