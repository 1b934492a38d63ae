"""Mapping diff: typed changes and their classification, checked against the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster, Engine
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import MappingNotApplied, RequestError, RevisionFailed, SchemaError
from esmigrate.operations import ExecContext, Operations
from esmigrate.schema import (
    ChangeKind,
    Compatibility,
    diff_mappings,
    mapping_of,
    normalize_mapping,
)
from esmigrate.schema.canonical import live_view
from esmigrate.schema.diff import unapplied_changes
from esmigrate.schema.mapping import default_of, normalize_value, same_value
from tests.migration_project import make_project, write_script

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
    ("root dynamic back to the default", {"dynamic": "strict", **props(a={"type": "text"})},
     props(a={"type": "text"}), ChangeKind.DYNAMIC_CHANGED, IN_PLACE),
    ("root dynamic true spelled out", {"dynamic": False, **props(a={"type": "text"})},
     {"dynamic": True, **props(a={"type": "text"})}, ChangeKind.DYNAMIC_CHANGED, IN_PLACE),
    ("date_detection back to the default", {"date_detection": False, **props(a={"type": "text"})},
     props(a={"type": "text"}), ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("numeric_detection back to the default", {"numeric_detection": True, **props(a={"type": "text"})},
     {"numeric_detection": False, **props(a={"type": "text"})}, ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("dynamic_date_formats removed", {"dynamic_date_formats": ["yyyy"], **props(a={"type": "text"})},
     props(a={"type": "text"}), ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("dynamic_templates removed",
     {"dynamic_templates": [{"s": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
      **props(a={"type": "text"})}, props(a={"type": "text"}), ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("_meta removed", {"_meta": {"owner": "search"}, **props(a={"type": "text"})},
     props(a={"type": "text"}), ChangeKind.MAPPING_OPTION_CHANGED, IN_PLACE),
    ("object dynamic unset", props(o={"dynamic": "false", "properties": {"x": {"type": "long"}}}),
     props(o={"properties": {"x": {"type": "long"}}}), ChangeKind.DYNAMIC_CHANGED, REINDEX),
    ("object without properties: dynamic", props(o={"type": "object"}),
     props(o={"type": "object", "dynamic": "strict"}), ChangeKind.DYNAMIC_CHANGED, IN_PLACE),
    ("new object without properties", props(a={"type": "text"}),
     props(a={"type": "text"}, o={"type": "object", "dynamic": False}), ChangeKind.FIELD_ADDED, IN_PLACE),
    ("ignore_above back to the default", props(k={"type": "keyword", "ignore_above": 256}),
     props(k={"type": "keyword"}), ChangeKind.PARAMETER_CHANGED, BACKFILL),
    ("keyword null_value unset", props(k={"type": "keyword", "null_value": "NA"}),
     props(k={"type": "keyword"}), ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("geo_point null_value set", props(g={"type": "geo_point"}),
     props(g={"type": "geo_point", "null_value": "0,0"}), ChangeKind.PARAMETER_CHANGED, BACKFILL),
    ("geo_point null_value unset", props(g={"type": "geo_point", "null_value": "1,2"}),
     props(g={"type": "geo_point"}), ChangeKind.PARAMETER_CHANGED, REINDEX),
    ("geo_point ignore_malformed back to the default",
     props(g={"type": "geo_point", "ignore_malformed": True}), props(g={"type": "geo_point"}),
     ChangeKind.PARAMETER_CHANGED, IN_PLACE),
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
            "author": {"type": "object", "properties": {"email": {"type": "keyword"}}},
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
        body = diff.put_mapping_body()
        cluster.request("PUT", f"/{name}/_mapping", body=body)
        assert not unapplied_changes(cluster, name, body)
        assert not diff_mappings(name, new, cluster=cluster)
        return
    try:
        cluster.request("PUT", f"/{name}/_mapping", body=new)
    except RequestError:
        return  # refused
    # Accepted, but not made (a field or an option left out stays as it was).
    assert [c.kind for c in diff_mappings(name, new, cluster=cluster).changes] == [kind]


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


# -- spellings and bodies (pure) -------------------------------------------------------------------


EQUIVALENT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("_source enabled", {"_source": {"enabled": "true"}}, {}),
    ("_routing not required", {"_routing": {"required": False}}, {}),
    ("root defaults", {"dynamic": True, "date_detection": "true", "numeric_detection": False,
                       "dynamic_templates": [], "_meta": {}}, {}),
    ("numbers as strings", props(k={"type": "keyword", "ignore_above": "256"},
                                 s={"type": "scaled_float", "scaling_factor": "100"}),
     props(k={"type": "keyword", "ignore_above": 256}, s={"type": "scaled_float", "scaling_factor": 100.0})),
    ("booleans as strings", props(k={"type": "keyword", "index": "false", "doc_values": "true"}),
     props(k={"type": "keyword", "index": False})),
    ("text defaults", props(t={"type": "text", "analyzer": "default", "search_analyzer": "default",
                               "position_increment_gap": -1, "term_vector": "no",
                               "index_phrases": False, "search_quote_analyzer": "default"}),
     props(t={"type": "text"})),
    ("search analyzer following the analyzer",
     props(t={"type": "text", "analyzer": "english", "search_analyzer": "english",
              "search_quote_analyzer": "english"}),
     props(t={"type": "text", "analyzer": "english"})),
    ("keyword and date defaults", props(k={"type": "keyword", "normalizer": "default"},
                                        d={"type": "date", "locale": ""}),
     props(k={"type": "keyword"}, d={"type": "date"})),
    ("wildcard and range defaults",
     props(w={"type": "wildcard", "ignore_above": 2147483647, "normalizer": "default"},
           r={"type": "integer_range", "doc_values": True}),
     props(w={"type": "wildcard"}, r={"type": "integer_range"})),
    ("geo point", props(g={"type": "geo_point", "ignore_z_value": True, "null_value": "0,0"}),
     props(g={"type": "geo_point", "null_value": {"lat": 0.0, "lon": 0.0}})),
    ("geo point as an array", props(g={"type": "geo_point", "null_value": [2, 1]}),
     props(g={"type": "geo_point", "null_value": "1,2"})),
    ("numeric null_value", props(n={"type": "long", "null_value": "5"}),
     props(n={"type": "long", "null_value": 5})),
    ("dotted names", props(**{"a.b": {"type": "keyword"}, "a.c": {"type": "long"}}),
     props(a={"properties": {"b": {"type": "keyword"}, "c": {"type": "long"}}})),
    ("object spelling", props(o={"type": "object", "enabled": True, "dynamic": False,
                                 "properties": {"x": {"type": "long"}}}),
     props(o={"dynamic": "false", "properties": {"x": {"type": "long"}}})),
    ("copy_to", props(a={"type": "text", "copy_to": "b"}, b={"type": "text"}),
     props(a={"type": "text", "copy_to": ["b"]}, b={"type": "text"})),
    ("dynamic template", {"dynamic_templates": [{"s": {"match_mapping_type": "*",
                                                       "mapping": {"ignore_above": "10"}}}]},
     {"dynamic_templates": [{"s": {"mapping": {"ignore_above": 10}}}]}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "a", "b"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_equivalent_spellings_have_one_normal_form(
    case: str, a: dict[str, Any], b: dict[str, Any]
) -> None:
    assert normalize_mapping(a) == normalize_mapping(b)
    assert not diff_mappings(a, b)


def test_object_dynamic_inherited_is_not_the_same_as_set() -> None:
    """An object without ``dynamic`` inherits its parent's; one that says it does not."""
    inherited = {"dynamic": "strict", **props(o={"properties": {"x": {"type": "long"}}})}
    explicit = {"dynamic": "strict", **props(o={"dynamic": "strict", "properties": {"x": {"type": "long"}}})}  # fmt: skip
    assert diff_mappings(inherited, explicit)


def test_body_leaves_breaking_changes_of_the_same_field_out() -> None:
    old = props(t={"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 50}}})
    new = props(
        t={"type": "text", "analyzer": "simple", "search_analyzer": "whitespace",
           "fields": {"raw": {"type": "text"}, "kw": {"type": "keyword"}}}
    )  # fmt: skip
    diff = diff_mappings(old, new)
    assert {(c.path, c.compatibility) for c in diff.changes} == {
        ("t", REINDEX), ("t", IN_PLACE), ("t.raw", REINDEX), ("t.kw", BACKFILL),
    }  # fmt: skip
    # The field as it is on the index, with the search analyzer and the new multi-field only.
    assert diff.put_mapping_body() == {
        "properties": {
            "t": {
                "type": "text",
                "search_analyzer": "whitespace",
                "fields": {
                    "raw": {"type": "keyword", "ignore_above": 50},
                    "kw": {"type": "keyword"},
                },
            }
        }
    }


def test_body_of_object_changes_carries_the_type_and_no_properties() -> None:
    old = {"dynamic": "strict", **props(o={"properties": {"x": {"type": "long"}}})}
    new = props(
        o={"dynamic": "true", "properties": {"x": {"type": "keyword"}}},
        n={"type": "nested", "properties": {"y": {"type": "long"}}},
        e={"type": "object"},
    )
    diff = diff_mappings(old, new)
    assert diff.put_mapping_body() == {
        "dynamic": "true",
        "properties": {
            "o": {"type": "object", "dynamic": "true"},
            "n": {"type": "nested", "properties": {"y": {"type": "long"}}},
            "e": {"type": "object"},
        },
    }


def test_body_spells_defaults_out() -> None:
    old = {"dynamic": False, "date_detection": False, "_meta": {"a": 1},
           "dynamic_templates": [{"s": {"mapping": {"type": "keyword"}}}],
           **props(g={"type": "geo_point", "ignore_malformed": True})}  # fmt: skip
    diff = diff_mappings(old, props(g={"type": "geo_point"}))
    assert diff.compatibility == IN_PLACE
    assert diff.put_mapping_body() == {
        "dynamic": "true",
        "date_detection": True,
        "_meta": {},
        "dynamic_templates": [],
        "properties": {"g": {"type": "geo_point", "ignore_malformed": False}},
    }


# -- the engine's view ---------------------------------------------------------------------------


def _throwaways(cluster: Cluster) -> list[str]:
    rows = cluster.request(
        "GET", "/_cat/indices/.esmigrate-canonical-*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )  # fmt: skip
    return [row["index"] for row in rows]


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_the_engine_settles_what_the_normal_form_cannot(cluster: Cluster, prefix: str) -> None:
    """A geohash null_value and an unknown explicit default: different in normal form, the same
    to the engine, so the diff with a cluster is empty; the throwaway index is gone after."""
    name = f"{prefix}-g"
    _create(cluster, name, props(g={"type": "geo_point", "null_value": "s3y0"}))
    wanted = props(g={"type": "geo_point", "null_value": {"lat": 9.84375, "lon": 19.6875},
                      "doc_values": True, "store": False, "index": True})  # fmt: skip
    offline = diff_mappings(
        mapping_of(name, cluster), props(g={"type": "geo_point", "null_value": "s3y0"})
    )
    assert [c.parameter for c in offline.changes] == ["null_value"]
    assert not diff_mappings(
        name, props(g={"type": "geo_point", "null_value": "s3y0"}), cluster=cluster
    )
    assert not diff_mappings(name, wanted, cluster=cluster)
    assert not _throwaways(cluster)


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_custom_analyzers_of_the_live_index_are_known(cluster: Cluster, prefix: str) -> None:
    name = f"{prefix}-an"
    analysis = {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                                        "filter": ["lowercase", "asciifolding"]}}}  # fmt: skip
    cluster.request("PUT", f"/{name}", body={
        "settings": {"number_of_replicas": 0, "analysis": analysis},
        "mappings": props(t={"type": "text", "analyzer": "folded"}),
    })  # fmt: skip
    same = props(t={"type": "text", "analyzer": "folded", "search_analyzer": "folded",
                    "term_vector": "no"})  # fmt: skip
    assert not diff_mappings(name, same, cluster=cluster)
    changed = diff_mappings(
        name, props(t={"type": "text", "analyzer": "folded", "norms": False}), cluster=cluster
    )
    assert [(c.parameter, c.compatibility) for c in changed.changes] == [("norms", IN_PLACE)]


@pytest.mark.integration
def test_put_mapping_that_the_engine_ignores_fails_and_is_recorded_failed(
    tmp_path: Path, cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str
) -> None:
    """The engine acknowledges a geo_point without ``ignore_malformed`` and keeps the old
    value: the operation fails, naming what is missing, and the revision is not applied."""
    name = f"{prefix}-geo"
    _create(cluster, name, props(g={"type": "geo_point", "ignore_malformed": True}))
    op = Operations().put_mapping(name, props(g={"type": "geo_point"}))
    with pytest.raises(MappingNotApplied, match="does not hold it") as err:
        op.execute(cluster, ExecContext())
    assert err.value.differences == ["g: ignore_malformed True → (unset) [in_place]"]
    assert err.value.hint

    project = make_project(
        tmp_path / "proj", history_index=f"{prefix}-hist", connection=cluster_settings
    )
    write_script(project, "r1", None, f'op.put_mapping("{name}", {{"properties": {{"g": {{"type": "geo_point"}}}}}})')  # fmt: skip
    with pytest.raises(RevisionFailed, match="does not hold it"):
        command.upgrade(project)
    cluster.refresh(f"{prefix}-hist")
    docs = cluster.search(f"{prefix}-hist", {"query": {"term": {"kind": "revision"}}})["hits"][
        "hits"
    ]
    assert [(d["_source"]["state"], d["_source"]["error"]["type"]) for d in docs] == [
        ("failed", "MappingNotApplied")
    ]
    # Spelled out, the same change is made and recorded.
    op = Operations().put_mapping(name, props(g={"type": "geo_point", "ignore_malformed": False}))
    assert op.execute(cluster, ExecContext()).status == "done"


def test_defaults_that_differ_between_engines_need_the_engine() -> None:
    """A wildcard field has no doc values on OpenSearch 2 and has them on 3: offline, neither
    value is taken for the default."""
    opensearch_2 = Engine("opensearch", (2, 19, 6), "2.19.6", "c")
    opensearch_3 = Engine("opensearch", (3, 9, 0), "3.9.0", "c")
    off, on = props(w={"type": "wildcard", "doc_values": False}), props(w={"type": "wildcard", "doc_values": True})  # fmt: skip
    plain = props(w={"type": "wildcard"})
    assert normalize_mapping(off, opensearch_2) == normalize_mapping(plain, opensearch_2)
    assert normalize_mapping(on, opensearch_3) == normalize_mapping(plain, opensearch_3)
    assert normalize_mapping(on, opensearch_2) != normalize_mapping(plain, opensearch_2)
    assert normalize_mapping(off) != normalize_mapping(plain) != normalize_mapping(on)


_PROBE_TYPES = [
    "text",
    "match_only_text",
    "keyword",
    "wildcard",
    "date",
    "date_nanos",
    "date_range",
    "geo_point",
    "binary",
    "search_as_you_type",
    "completion",
    "rank_feature",
    "rank_features",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "unsigned_long",
    "boolean",
    "ip",
    "integer_range",
    "long_range",
    "float_range",
    "double_range",
    "ip_range",
]
PROBE_FIELDS: dict[str, dict[str, Any]] = {kind: {"type": kind} for kind in _PROBE_TYPES} | {
    "token_count": {"type": "token_count", "analyzer": "standard"},
    "scaled_float": {"type": "scaled_float", "scaling_factor": 10},
    "join": {"type": "join", "relations": {"q": "a"}},
}


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_the_table_of_defaults_is_the_engines(cluster: Cluster, prefix: str) -> None:
    """Every default the normal form drops is the one the engine reports for a field of that
    type (``include_defaults``), on each engine it knows."""
    name = f"{prefix}-defaults"
    _create(cluster, name, {"properties": PROBE_FIELDS})
    fields = live_view(cluster, name, mapping_of(name, cluster)).fields
    checked = 0
    for kind, spec in PROBE_FIELDS.items():
        full = fields[kind]
        for parameter, value in full.items():
            if parameter == "type" or parameter in spec:
                continue
            default = default_of(kind, parameter, spec, cluster.engine)
            if default is None and value is not None:
                continue  # not in the table: the engine's view settles it
            assert same_value(normalize_value(kind, parameter, value), default), (kind, parameter)
            checked += 1
    assert checked > 200


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_read_back_takes_the_body_as_the_engine_merges_it(cluster: Cluster, prefix: str) -> None:
    """Options of an object and multi-fields the body leaves out stay; parameters a field's
    definition leaves out go back to their default; so this put-mapping is all there."""
    name = f"{prefix}-merge"
    _create(cluster, name, {"dynamic": "strict", **props(
        o={"dynamic": "false", "properties": {"x": {"type": "long"}}},
        t={"type": "text", "fields": {"raw": {"type": "keyword"}}},
        k={"type": "keyword", "ignore_above": 10},
    )})  # fmt: skip
    body = props(
        o={"properties": {"y": {"type": "long"}}},
        t={"type": "text", "search_analyzer": "simple"},
        k={"type": "keyword"},
    )
    cluster.request("PUT", f"/{name}/_mapping", body=body)
    assert not unapplied_changes(cluster, name, body)
    live = mapping_of(name, cluster)
    assert live["dynamic"] == "strict"
    assert live["properties"]["o"]["dynamic"] == "false"
    assert "raw" in live["properties"]["t"]["fields"]
    assert "ignore_above" not in live["properties"]["k"]
