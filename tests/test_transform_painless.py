"""Python and Painless run the same rule set to the same documents (property test, real engine).

Each example draws a rule set and a handful of documents, bulk-indexes the documents, runs the
compiled script in one ``_reindex``, and compares every copy with the Python result, types
included. Documents on which Python fails must fail on the server too, naming the same rule.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import RequestError, TransformError
from esmigrate.transform import (
    All,
    AnyOf,
    Cast,
    Categorize,
    Condition,
    Copy,
    Default,
    Equals,
    Exists,
    ExtractHashtags,
    ExtractMetadata,
    In,
    IsEmpty,
    Missing,
    NormalizeText,
    Not,
    ReadingTime,
    Remove,
    Rename,
    Rule,
    RuleSet,
    Set,
    When,
    WordCount,
    parse_failure,
)
from esmigrate.transform._paths import json_identical

pytestmark = pytest.mark.integration

KEYS = ["a", "b", "title", "content", "tags", "n"]
PATHS = st.sampled_from([*KEYS, "a.b", "a.c", "b.a", "m.x.y"])

_chars = st.one_of(
    st.sampled_from(list("<>#_ \t\n\r\x0b\x0c\xa0\x1c\u2028abcXYZ09.+-eEé\u0130\U0001f600")),
    st.characters(codec="utf-8"),
)
texts = st.text(alphabet=_chars, max_size=40)
numeric_strings = st.from_regex(
    r"[+-]?([0-9]{1,20}(\.[0-9]{0,5})?|\.[0-9]{1,5})([eE][+-]?[0-9]{1,3})?", fullmatch=True
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e20, 1e-7]),
    texts,
    numeric_strings,
    st.sampled_from(["true", "false", "general", "tech news", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*KEYS, "x", "y"]), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.sampled_from([*KEYS, "m"]), values, max_size=6)

conditions: st.SearchStrategy[Condition] = st.recursive(
    st.one_of(
        st.builds(Exists, PATHS),
        st.builds(Missing, PATHS),
        st.builds(IsEmpty, PATHS),
        st.builds(Equals, PATHS, values),
        st.builds(In, PATHS, st.lists(values, max_size=3)),
    ),
    lambda inner: (
        st.builds(Not, inner) | st.builds(All, inner, inner) | st.builds(AnyOf, inner, inner)
    ),
    max_leaves=3,
)
_categories = st.sampled_from(
    [
        {"t": ["ab", "x y"], "u": ["\u00e9", "#", "TECH"]},
        {"only": ["e"]},
        {"news": ["news"], "tech": ["tech"]},
    ]
)
simple_rules: st.SearchStrategy[Rule] = st.one_of(
    st.builds(Rename, PATHS, PATHS),
    st.builds(Copy, PATHS, PATHS),
    st.builds(Remove, PATHS),
    st.builds(Set, PATHS, values),
    st.builds(Default, PATHS, values),
    st.builds(Cast, PATHS, st.sampled_from(["string", "integer", "float", "boolean"])),
    st.builds(NormalizeText, PATHS, html=st.booleans()),
    st.builds(WordCount, PATHS, PATHS),
    st.builds(ReadingTime, PATHS, PATHS, words_per_minute=st.integers(1, 4)),
    st.builds(
        ExtractHashtags,
        PATHS,
        PATHS,
        limit=st.none() | st.integers(0, 3),
        lowercase=st.booleans(),
        overwrite=st.booleans(),
    ),
    st.builds(Categorize, PATHS, st.lists(PATHS, max_size=2), categories=_categories),
    st.builds(
        ExtractMetadata, PATHS, content=PATHS, title=PATHS, words_per_minute=st.integers(1, 4)
    ),
)
rules = st.recursive(
    simple_rules,
    lambda inner: st.builds(
        lambda cond, then, otherwise: When(cond, *then, otherwise=otherwise),
        conditions,
        st.lists(inner, max_size=2),
        st.lists(inner, max_size=2),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def node(cluster_settings: ConnectionSettings) -> Iterator[tuple[Cluster, str, str]]:
    """A source and a destination index without dynamic mapping (any JSON goes), and a
    compilation rate high enough for one new script per example."""
    name = f"t-prop-{uuid.uuid4().hex[:8]}"
    src, dst = f"{name}-src", f"{name}-dst"
    with connect(cluster_settings) as cluster:
        changed = []
        for context in ("update", "reindex"):
            key = f"script.context.{context}.max_compilations_rate"
            try:
                cluster.request("PUT", "/_cluster/settings", body={"transient": {key: "5000/1m"}})
                changed.append(key)
            except RequestError:
                pass  # this engine has no such context
        for index in (src, dst):
            cluster.request(
                "PUT",
                f"/{index}",
                body={"settings": {"number_of_replicas": 0}, "mappings": {"dynamic": False}},
            )
        try:
            yield cluster, src, dst
        finally:
            for index in (src, dst):
                cluster.request("DELETE", f"/{index}")
            for key in changed:
                cluster.request("PUT", "/_cluster/settings", body={"transient": {key: None}})


_example = itertools.count()


def _reindex(cluster: Cluster, src: str, dst: str, ids: list[str], script: dict[str, Any]) -> Any:
    return cluster.request(
        "POST",
        "/_reindex",
        body={
            "source": {"index": src, "query": {"ids": {"values": ids}}},
            "dest": {"index": dst},
            "script": script,
        },
    )


@settings(
    max_examples=int(os.environ.get("ESMIGRATE_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    rule_list=st.lists(rules, min_size=1, max_size=4),
    docs=st.lists(documents, min_size=1, max_size=6),
)
def test_painless_equals_python(
    node: tuple[Cluster, str, str], rule_list: list[Rule], docs: list[dict[str, Any]]
) -> None:
    cluster, src, dst = node
    ruleset = RuleSet(*rule_list)
    script = ruleset.painless()
    assert script is not None, ruleset.describe()

    run = next(_example)
    ids = [f"{run}-{i}" for i in range(len(docs))]
    lines = []
    for doc_id, doc in zip(ids, docs, strict=True):
        lines += [orjson.dumps({"index": {"_index": src, "_id": doc_id}}), orjson.dumps(doc)]
    result = cluster.bulk(b"\n".join(lines) + b"\n", refresh=True)
    assert not result["errors"], result

    expected: dict[str, dict[str, Any]] = {}
    failing: dict[str, str] = {}
    for doc_id, doc in zip(ids, docs, strict=True):
        try:
            expected[doc_id] = ruleset(doc)
        except TransformError as exc:
            failing[doc_id] = exc.rule
    event(f"{len(expected)} transformed, {len(failing)} failing")

    if expected:
        answer = _reindex(cluster, src, dst, list(expected), script)
        assert not answer.get("failures"), answer["failures"]
        got = cluster.request("POST", f"/{dst}/_mget", body={"ids": list(expected)})
        for item in got["docs"]:
            python = expected[item["_id"]]
            assert json_identical(item["_source"], python), (
                ruleset.describe(),
                python,
                item["_source"],
            )

    for doc_id, rule in failing.items():
        with pytest.raises(RequestError) as caught:
            _reindex(cluster, src, dst, [doc_id], script)
        parsed = parse_failure(caught.value.reason or "")
        assert parsed is not None, caught.value.reason
        assert parsed[0] == rule, (caught.value.reason, rule)


text_docs = st.fixed_dictionaries(
    {"title": texts, "content": texts},
    optional={"tags": st.lists(texts, max_size=2), "category": st.sampled_from(["general", "x"])},
)
text_rules = st.lists(
    st.sampled_from(
        [
            NormalizeText("title"),
            NormalizeText("content", html=False),
            ExtractHashtags(lowercase=True),
            ExtractHashtags("title", "tags", limit=2, overwrite=True),
            WordCount("content", "metadata.words"),
            ReadingTime("content", "metadata.minutes", words_per_minute=3),
            ExtractMetadata(),
            When(Equals("category", "general"), Categorize()),
            Categorize("kind", ["title"], categories={"a": ["a b", "<"], "hash": ["#"]}),
        ]
    ),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(
    max_examples=int(os.environ.get("ESMIGRATE_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule_list=text_rules, docs=st.lists(text_docs, min_size=1, max_size=8))
def test_text_rules_painless_equals_python(
    node: tuple[Cluster, str, str], rule_list: list[Rule], docs: list[dict[str, Any]]
) -> None:
    """The content rules on documents whose text fields are always strings."""
    test_painless_equals_python.hypothesis.inner_test(node, rule_list, docs)  # type: ignore[attr-defined]
