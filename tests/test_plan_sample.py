"""The plan of the sample project (examples/quickstart) lists the real requests, in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.config import load_config

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart"

# The sample declares its schema with elasticsearch.dsl, which elasticsearch 8.18+ has; the
# older-client environment (constraints-oldclients.txt) has the separate elasticsearch_dsl.
pytest.importorskip(
    "elasticsearch.dsl",
    reason="the quickstart sample needs elasticsearch.dsl (elasticsearch 8.18+)",
)

WAIT = {"wait_for_completion": False, "slices": "auto", "refresh": True}
EXPECTED_UPGRADE: list[tuple[str, str, dict[str, Any], Any]] = [
    (
        "PUT",
        "/blog-posts-v1",
        {},
        {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"title": {"type": "text"}, "published": {"type": "date"}}},
        },
    ),
    (
        "POST",
        "/_aliases",
        {},
        {
            "actions": [
                {"add": {"index": "blog-posts-v1", "alias": "blog-posts", "is_write_index": True}}
            ]
        },
    ),
    ("PUT", "/blog-posts-v1/_mapping", {}, {"properties": {"tags": {"type": "keyword"}}}),
    (
        "POST",
        "/blog-posts-v1/_update_by_query",
        WAIT,
        {
            "query": {"bool": {"must_not": {"exists": {"field": "tags"}}}},
            "script": {"source": "ctx._source.tags = []", "lang": "painless"},
            "conflicts": "proceed",
        },
    ),
    (
        "PUT",
        "/blog-posts-v2",
        {},
        {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                    "published": {"type": "date"},
                    "tags": {"type": "keyword"},
                }
            },
        },
    ),
    ("PUT", "/blog-posts-v1/_settings", {}, {"index.blocks.write": True}),
    (
        "POST",
        "/_reindex",
        WAIT,
        {"source": {"index": "blog-posts-v1"}, "dest": {"index": "blog-posts-v2"}},
    ),
    (
        "POST",
        "/_aliases",
        {},
        {
            "actions": [
                {"remove": {"index": "blog-posts-v1", "alias": "blog-posts"}},
                {"add": {"index": "blog-posts-v2", "alias": "blog-posts", "is_write_index": True}},
            ]
        },
    ),
]


def requests_of(plan: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    return [
        (r["method"], r["path"], r.get("params", {}), r.get("body"))
        for rev in plan["revisions"]
        for op in rev["operations"]
        for r in op["requests"]
    ]


def test_sample_upgrade_plan() -> None:
    plan = command.plan(load_config(SAMPLE / "esmigrate.toml", env={}), offline=True)
    assert [(r["revision"], r["message"]) for r in plan["revisions"]] == [
        ("0001", "create posts"),
        ("0002", "add tags"),
        ("0003", "title keyword sub-field"),
    ]
    assert requests_of(plan) == EXPECTED_UPGRADE
    assert plan["requests"] == len(EXPECTED_UPGRADE)


def test_sample_downgrade_plan_copies_back_before_dropping() -> None:
    config = load_config(SAMPLE / "esmigrate.toml", env={})
    plan = command.plan(config, "0002", downgrade=True, offline=True)
    assert [r["revision"] for r in plan["revisions"]] == ["0003"]
    assert [(m, p) for m, p, _, _ in requests_of(plan)] == [
        ("PUT", "/blog-posts-v2/_settings"),
        ("PUT", "/blog-posts-v1/_settings"),
        ("POST", "/_reindex"),
        ("POST", "/_aliases"),
        ("DELETE", "/blog-posts-v2"),
    ]


def test_sample_plan_on_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "esmigrate", "plan", "--offline"],
        cwd=SAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "PUT /blog-posts-v1" in lines
    assert "POST /_reindex?wait_for_completion=false&slices=auto&refresh=true" in lines
    assert lines.index("PUT /blog-posts-v1") < lines.index("PUT /blog-posts-v1/_mapping")
    assert "3 revision(s), 8 request(s)" in result.stdout
