"""Rule semantics (pure Python): paths, missing vs null, casts, conditions, failures."""

from __future__ import annotations

from typing import Any

import pytest

from esmigrate.exceptions import TransformError
from esmigrate.transform import (
    Apply,
    Cast,
    Categorize,
    Compute,
    Convert,
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
    Predicate,
    ReadingTime,
    Remove,
    Rename,
    RuleSet,
    Set,
    When,
    WordCount,
    parse_failure,
)


def run(*rules: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return RuleSet(*rules)(doc)


def test_rename_moves_between_objects_and_keeps_input() -> None:
    doc = {"author": {"name": "ann", "id": 1}, "title": "t"}
    out = run(Rename("author.name", "writer.full_name"), doc=doc)
    assert out == {"author": {"id": 1}, "title": "t", "writer": {"full_name": "ann"}}
    assert doc == {"author": {"name": "ann", "id": 1}, "title": "t"}
    assert run(Rename("missing", "x"), doc={"a": 1}) == {"a": 1}
    assert run(Rename("a", "b"), doc={"a": None}) == {"b": None}  # null is a value: it moves
    assert run(Rename("a", "a.b"), doc={"a": 1}) == {"a": {"b": 1}}
    with pytest.raises(TransformError, match=r"cannot set \[t.x\]: \[t\] is not an object"):
        run(Rename("a", "t.x"), doc={"a": 1, "t": "text"})


def test_copy_default_set_remove() -> None:
    out = run(Copy("o", "p"), doc={"o": {"k": [1]}})
    out["p"]["k"].append(2)
    assert out["o"] == {"k": [1]}  # deep copy
    assert run(Default("c", "general"), doc={}) == {"c": "general"}
    assert run(Default("c", "general"), doc={"c": None}) == {"c": "general"}
    assert run(Default("c", "general"), doc={"c": ""}) == {"c": ""}
    assert run(Set("m.views", 0), doc={"m": None}) == {"m": {"views": 0}}
    assert run(Remove("a", "b.c", "zz"), doc={"a": 1, "b": {"c": 2, "d": 3}}) == {"b": {"d": 3}}
    with pytest.raises(ValueError, match="not a finite"):
        Set("x", float("nan"))


@pytest.mark.parametrize(
    ("value", "to", "expected"),
    [
        (12, "string", "12"), (True, "string", "true"), ("x", "string", "x"),
        ([1, [2, None]], "string", ["1", ["2", None]]),
        ("+0012", "integer", 12), (3.0, "integer", 3), (-0.0, "integer", 0), (7, "integer", 7),
        ("1.5e3", "float", 1500.0), (".5", "float", 0.5), (2, "float", 2.0),
        ("true", "boolean", True), (False, "boolean", False),
    ],
)  # fmt: skip
def test_cast(value: Any, to: Any, expected: Any) -> None:
    out = run(Cast("v", to), doc={"v": value})
    assert out["v"] == expected
    assert type(out["v"]) is type(expected)


@pytest.mark.parametrize(
    ("value", "to"),
    [
        (1.5, "string"), (1.5, "integer"), (" 12", "integer"), ("1_000", "integer"),
        ("99999999999999999999", "integer"), ("inf", "float"), ("1e400", "float"), ("1,5", "float"),
        ("yes", "boolean"), (1, "boolean"), (True, "integer"), ({"a": 1}, "string"),
    ],
)  # fmt: skip
def test_cast_refuses(value: Any, to: Any) -> None:
    with pytest.raises(TransformError) as caught:
        run(
            Cast("v", to),
            doc={"v": value},
        )
    assert caught.value.rule == f"cast v to {to}"


def test_cast_leaves_missing_and_null() -> None:
    assert run(Cast("v", "integer"), doc={"v": None}) == {"v": None}
    assert run(Cast("v", "integer"), doc={}) == {}


def test_conditions() -> None:
    doc = {"a": 1, "b": None, "c": "", "t": True, "l": [1.0]}
    assert Exists("a").test(doc)
    assert not Exists("b").test(doc)
    assert not Exists("zz").test(doc)
    assert Missing("b").test(doc)
    assert Missing("zz").test(doc)
    assert IsEmpty("c").test(doc)
    assert IsEmpty("b").test(doc)
    assert not IsEmpty("a").test(doc)
    assert Equals("a", 1.0).test(doc)  # JSON numbers: 1 == 1.0
    assert not Equals("t", 1).test(doc)  # but a boolean is not a number
    assert Equals("l", [1]).test(doc)
    assert not Equals("b", 0).test(doc)
    assert In("a", ["x", 1]).test(doc)
    assert (Exists("a") & ~Exists("b")).test(doc)
    assert (Exists("b") | Exists("a")).test(doc)


def test_when_runs_branches_and_attributes_failures() -> None:
    rules = RuleSet(
        When(Equals("category", "general"), Set("auto", True), otherwise=[Set("auto", False)]),
        When(lambda doc: "n" in doc, Cast("n", "integer")),
    )
    assert rules({"category": "general"}) == {"category": "general", "auto": True}
    assert rules({"category": "news", "n": "4"}) == {"category": "news", "auto": False, "n": 4}
    with pytest.raises(TransformError) as caught:
        rules({"n": "four"}, doc_id="d-9")
    assert caught.value.rule == "cast n to integer"  # the nested rule, not the When
    assert caught.value.doc_id == "d-9"
    assert "d-9" in str(caught.value)
    assert rules.painless() is None  # a Python predicate has no Painless form


def test_failures_are_never_skipped() -> None:
    def boom(doc: dict[str, Any]) -> None:
        raise KeyError("price")

    rules = RuleSet(Set("a", 1), Apply(boom, name="compute price"), Set("b", 2))
    with pytest.raises(TransformError) as caught:
        rules({})
    assert caught.value.rule == "compute price"
    assert isinstance(caught.value.cause, KeyError)
    assert caught.value.to_dict()["error_type"] == "KeyError"


def test_callables_compute_convert() -> None:
    rules = RuleSet(
        Compute("total", lambda d: d["a"] + d["b"]),
        Convert("title", str.title),
        lambda d: {**d, "seen": True},
    )
    assert rules({"a": 1, "b": 2, "title": "hello world"}) == {
        "a": 1, "b": 2, "title": "Hello World", "total": 3, "seen": True,
    }  # fmt: skip
    assert rules.painless() is None
    declared = RuleSet(Compute("n", len, painless="src.size()"))
    script = declared.painless()
    assert script is not None
    assert "src.size()" in script["source"]


def test_rule_names_unique_and_in_painless() -> None:
    rules = RuleSet(Set("a", 1), Set("a", 1), Default("q", 'say "hi"'))
    assert rules.describe() == ["set a = 1", "set a = 1 #2", "default q = 'say 'hi''"]
    with pytest.raises(ValueError, match="unique"):
        RuleSet(Set("a", 1, name="x"), Set("b", 1, name="x"))
    script = rules.painless()
    assert script is not None
    assert script["lang"] == "painless"
    assert 'rule "set a = 1 #2": ' in script["params"].values()
    assert parse_failure('runtime error: rule "set a = 1 #2": boom') == ("set a = 1 #2", "boom")


def test_standard_text_rules() -> None:
    doc = {
        "title": "  How to <em>build</em>\tan\u00a0API ",
        "content": "Intro <p>text</p> with #Python and #api_v2, #python again; ## # #é",
    }
    out = run(
        NormalizeText("title"),
        ExtractHashtags(lowercase=True),
        WordCount("content", "stats.words"),
        ReadingTime("content", "stats.minutes", words_per_minute=4),
        Categorize(),
        ExtractMetadata(words_per_minute=4),
        doc=doc,
    )
    assert out["title"] == "How to build an\u00a0API"  # only ASCII whitespace collapses
    assert out["tags"] == ["python", "api_v2"]
    assert out["stats"] == {"words": 11, "minutes": 3}
    assert out["category"] == "technology"  # "api" before "how to": categories keep their order
    assert out["metadata"] == {
        "word_count": 11, "char_count": len(doc["content"]), "reading_time": 3, "has_title": True,
    }  # fmt: skip
    assert run(ExtractHashtags(), doc={"content": "#a", "tags": ["kept"]})["tags"] == ["kept"]
    assert run(ReadingTime("c", "r"), doc={})["r"] == 0
    assert run(ReadingTime("c", "r"), doc={"c": "one"})["r"] == 1
    with pytest.raises(TransformError, match=r"\[title\] must be a string, not number"):
        run(NormalizeText("title"), doc={"title": 5})


def test_trace_reports_touched_rules() -> None:
    rules = RuleSet(Default("a", 1), Default("b", 2), Cast("c", "float"))
    out, touched = rules.trace({"a": 0, "c": 1})
    assert out == {"a": 0, "b": 2, "c": 1.0}
    assert touched == ["default b = 2", "cast c to float"]  # 1 → 1.0 is a change


def test_predicate_condition() -> None:
    assert When(Predicate(lambda d: d.get("x") == 1), Set("y", 2)).condition.test({"x": 1})
