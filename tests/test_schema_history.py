"""Schema history, validate_upgrade_path, and rendering a diff as migration-script lines."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from esmigrate.exceptions import SchemaError
from esmigrate.schema import SchemaHistory, Upgrades, diff_mappings, render_operations

V1 = {
    "properties": {
        "title": {"type": "text"},
        "content": {"type": "text"},
        "author": {"type": "keyword"},
    }
}
V2 = {
    "properties": {**V1["properties"], "category": {"type": "keyword"}, "tags": {"type": "keyword"}}
}
V3 = {
    "properties": {
        **V2["properties"],
        "title": {"type": "text", "analyzer": "english"},
        "metadata": {"properties": {"word_count": {"type": "integer"}}},
    }
}


def graph(*edges: tuple[str, str]) -> Upgrades:
    g = Upgrades("blog_post", "3.0")
    for low, high in edges:
        g.step(low, high)(lambda src: src)
    return g


def test_valid_path() -> None:
    history = SchemaHistory.from_schemas(
        "blog_post",
        [("1.0", V1), ("2.0", V2), ("3.0", V3)],
        upgrades=graph(("1.0", "2.0"), ("2.0", "3.0")),
        rollbacks={"3.0": "point the alias back at blog_posts_v2"},
    )
    assert [str(r.version) for r in history.releases] == ["1.0.0", "2.0.0", "3.0.0"]
    report = history.validate_upgrade_path("1.0")
    assert report.valid, report.problems()
    assert report.requires_migration
    assert [str(v) for v, _ in report.breaking_changes] == ["3.0.0"]
    assert report.to_dict()["releases"] == ["2.0.0", "3.0.0"]
    # From 2.0 only the 3.0 release is on the path (the guide compared with the *current* one).
    assert [str(r.version) for r in history.validate_upgrade_path("2.0", "3.0").releases] == [
        "3.0.0"
    ]


def test_problems_are_reported() -> None:
    history = SchemaHistory.from_schemas(
        "blog_post",
        [("1.0", V1), ("1.1", V2), ("1.2", V3)],  # 1.2 changes an analyzer: needs a major bump
        upgrades=graph(("1.0", "1.1")),  # and nothing leads from 1.1 to 1.2
    )
    report = history.validate_upgrade_path("1.0", "1.2")
    assert not report.valid
    problems = report.problems()
    assert "no upgrade step leads from 1.1.0 to 1.2.0 in the blog_post upgrade graph" in problems
    assert any("title: analyzer" in p and "names no migration" in p for p in problems)
    assert "1.2.0: the release rewrites data but has no rollback procedure" in problems
    assert (
        "1.2.0: the changes need a major version bump, but the release is a minor bump" in problems
    )
    gaps = history.validate_upgrade_path("0.9", "1.1").gaps
    assert gaps == ("version 0.9.0 is not in the history of blog_post",)
    assert "downgrade" in history.validate_upgrade_path("1.2", "1.0").gaps[-1]


def test_migration_named_covers_breaking_change() -> None:
    history = SchemaHistory("post")
    history.release("1.0")
    history.release(
        "2.0", diff_mappings(V2, V3).changes, migration="rev 0042", rollback="alias back"
    )
    assert history.validate_upgrade_path("1.0", "2.0").valid
    with pytest.raises(SchemaError, match="already has a release"):
        history.release("2.0.0")


def _parses(lines: list[str]) -> None:
    ast.parse("def upgrade(op):\n" + "\n".join("    " + line for line in lines) + "\n")


def test_render_in_place_and_backfill() -> None:
    old = {"properties": {"title": {"type": "text"}}}
    new = {
        "properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "n": {"type": "long"},
        }
    }
    lines = render_operations(diff_mappings(old, new), "posts")
    _parses(lines)
    call = ast.parse(lines[0]).body[0]
    assert isinstance(call, ast.Expr)
    assert isinstance(call.value, ast.Call)
    body: Any = ast.literal_eval(call.value.args[1])
    assert body == {
        "properties": {
            "n": {"type": "long"},
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        }
    }
    assert lines[1].startswith("op.update_by_query('posts', query={'exists': {'field': 'title'}})")


def test_render_reindex_and_defaults() -> None:
    old = {"properties": {"title": {"type": "text"}, "old": {"type": "keyword"}}}
    new = {"properties": {"title": {"type": "keyword"}, "category": {"type": "keyword"}}}
    lines = render_operations(diff_mappings(old, new, backfill=["category"]), "posts")
    _parses(lines)
    text = "\n".join(lines)
    assert "op.put_mapping('posts', {'properties': {'category': {'type': 'keyword'}}})" in text
    assert "# TODO(human): existing documents need a value for 'category'" in text
    assert "#   - title: type text → keyword [needs_reindex]" in text
    assert "#   - old: removed (was keyword) [needs_reindex]" in text
    assert render_operations(diff_mappings(old, old), "posts") == []


def test_render_breaking_as_migrate() -> None:
    old = {"properties": {"title": {"type": "text"}, "body": {"type": "text"}}}
    new = {"properties": {"title": {"type": "keyword"}, "content": {"type": "text"}}}
    lines = render_operations(diff_mappings(old, new), "posts", target="Post")
    _parses(lines)
    assert lines[-1] == "op.migrate('posts', Post)"
    text = "\n".join(lines)
    assert "#   - title: type text → keyword [needs_reindex]" in text
    assert "# TODO(human): body removed and content added: if this is a rename" in text
    # Without a removed+added pair no rename TODO; additive diffs keep put_mapping.
    additive = {"properties": {**old["properties"], "tag": {"type": "keyword"}}}
    lines = render_operations(diff_mappings(old, additive), "posts", target="Post")
    assert lines[0].startswith("op.put_mapping('posts'")
