"""`esmigrate preview`, `esmigrate check` and `esmigrate schema versions` against the real node."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ExitCode
from esmigrate.transform import Cast, Default, NormalizeText, RuleSet
from esmigrate.transform.preview import field_diff, preview
from tests.conftest import env_without_esmigrate, run_cli

pytestmark = pytest.mark.integration


def _fill(cluster: Cluster, index: str, docs: list[dict[str, Any]]) -> None:
    cluster.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0}})
    lines = []
    for i, doc in enumerate(docs):
        lines += [orjson.dumps({"index": {"_index": index, "_id": str(i)}}), orjson.dumps(doc)]
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh=True)["errors"]


RULES = RuleSet(NormalizeText("title"), Default("category", "general"), Cast("views", "integer"))


def test_field_diff() -> None:
    old = {"a": 1, "o": {"x": 1, "y": 2}, "gone": {"k": 1}, "l": [1]}
    new = {"a": 1.0, "o": {"x": 1, "z": 3}, "l": [1], "n": {"p": {"q": True}}}
    assert [(c.path, c.kind) for c in field_diff(old, new)] == [
        ("a", "changed"), ("o.y", "removed"), ("o.z", "added"), ("gone.k", "removed"), ("n.p.q", "added"),
    ]  # fmt: skip


def test_preview_api(cluster: Cluster, prefix: str) -> None:
    index = f"{prefix}-posts"
    docs: list[dict[str, Any]] = [{"title": f"  post   {i} ", "views": str(i)} for i in range(30)]
    docs[7] = {"title": "bad", "views": "many"}
    docs[8] = {"title": "clean", "category": "news", "views": 8}
    _fill(cluster, index, docs)

    report = preview(cluster, index, RULES, sample=30, seed=42)
    assert report.seed == 42
    assert report.total_matching == 30
    assert len(report.documents) == 30
    assert report.failed == 1
    assert report.changed == 28
    assert report.failure_counts() == {"cast views to integer": 1}
    assert report.rule_counts() == {
        "normalize text title": 28, "default category = 'general'": 28, "cast views to integer": 28,
    }  # fmt: skip
    assert report.painless is True
    by_id = {d.doc_id: d for d in report.documents}
    assert by_id["7"].error is not None
    assert by_id["7"].error["rule"] == "cast views to integer"
    changes = {(c.path, c.kind, c.old, c.new) for c in by_id["3"].changes}
    assert changes == {
        ("title", "changed", "  post   3 ", "post 3"), ("views", "changed", "3", 3),
        ("category", "added", None, "general"),
    }  # fmt: skip
    assert report.field_counts["category"] == {"added": 28, "removed": 0, "changed": 0}
    # Nothing was written.
    assert cluster.request("GET", f"/{index}/_doc/3")["_source"] == docs[3]

    small = preview(cluster, index, RULES, sample=5, seed=7)
    again = preview(cluster, index, RULES, sample=5, seed=7)
    assert [d.doc_id for d in small.documents] == [d.doc_id for d in again.documents]
    selected = preview(cluster, index, RULES, sample=5, query={"ids": {"values": ["7", "8"]}})
    assert sorted(d.doc_id for d in selected.documents) == ["7", "8"]
    assert selected.to_dict()["unchanged"] == 1


def test_preview_cli(cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path) -> None:
    index = f"{prefix}-cli"
    _fill(cluster, index, [{"title": " a  b ", "views": "1"}, {"title": "x", "views": "no"}])
    (tmp_path / "myrules.py").write_text(
        "from esmigrate.transform import Cast, NormalizeText, RuleSet\n"
        "rules = RuleSet(NormalizeText('title'), Cast('views', 'integer'))\n"
    )
    human = run_cli(
        "preview",
        "--url",
        cluster_url,
        "--rules",
        "myrules:rules",
        "--index",
        index,
        "--seed",
        "3",
        cwd=tmp_path,
        env=env_without_esmigrate(),
    )
    assert human.returncode == 0, human.stderr
    assert '~ title: " a  b " → "a b"' in human.stdout
    assert "failed in rule cast views to integer" in human.stdout
    assert "2 sampled of 2 matching: 1 changed, 0 unchanged, 1 failed." in human.stdout
    assert "Runs server-side as Painless." in human.stdout
    machine = run_cli("--json", "preview", "--url", cluster_url, "--rules", "myrules:rules",
                      "--index", index, "--query", '{"term": {"_id": "0"}}', cwd=tmp_path, env=env_without_esmigrate())  # fmt: skip
    data = json.loads(machine.stdout)
    assert data["sampled"] == 1
    assert data["documents"][0]["changes"][0] == {
        "path": "title",
        "kind": "changed",
        "old": " a  b ",
        "new": "a b",
    }

    bad = run_cli(
        "preview",
        "--url",
        cluster_url,
        "--rules",
        "myrules:nope",
        "--index",
        index,
        cwd=tmp_path,
        env=env_without_esmigrate(),
    )
    assert bad.returncode == 1
    assert "has no attribute 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad_query = run_cli(
        "preview",
        "--url",
        cluster_url,
        "--rules",
        "myrules:rules",
        "--index",
        index,
        "--query",
        "{",
        cwd=tmp_path,
        env=env_without_esmigrate(),
    )
    assert bad_query.returncode == 1
    assert "--query is not valid JSON" in bad_query.stderr


def test_check_cli(cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path) -> None:
    index = f"{prefix}-check"
    (tmp_path / "esmigrate.toml").write_text('schema_modules = ["mydocs"]\n')
    (tmp_path / "mydocs.py").write_text(
        textwrap.dedent(
            f"""
            import opensearchpy

            class Post(opensearchpy.Document):
                title = opensearchpy.Text(fields={{"raw": opensearchpy.Keyword()}})
                views = opensearchpy.Integer()

                class Index:
                    name = "{index}"
            """
        )
    )
    missing = run_cli("check", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate())
    assert missing.returncode == ExitCode.PROBLEM
    assert "the index does not exist" in missing.stdout

    cluster.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0},
                    "mappings": {"properties": {"title": {"type": "text"}, "views": {"type": "long"}}}})  # fmt: skip
    drift = run_cli(
        "--json", "check", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate()
    )
    assert drift.returncode == ExitCode.PROBLEM
    found = json.loads(drift.stdout)["indices"][0]["diff"]
    assert {(c["path"], c["kind"]) for c in found["changes"]} == {
        ("title.raw", "subfield_added"), ("views", "type_changed"),
    }  # fmt: skip
    assert found["strategy"] == "reindex"

    cluster.request("DELETE", f"/{index}")
    cluster.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0},
                    "mappings": {"properties": {"title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                                                "views": {"type": "integer"}}}})  # fmt: skip
    clean = run_cli("check", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate())
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "matches" in clean.stdout

    (tmp_path / "esmigrate.toml").write_text("")
    unconfigured = run_cli("check", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate())
    assert unconfigured.returncode == 1
    assert "No schema modules are configured" in unconfigured.stderr


def test_versions_cli(cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path) -> None:
    index = f"{prefix}-ver"
    _fill(
        cluster,
        index,
        [
            {"schema_version": "1.0"},
            {"schema_version": "2.0.0"},
            {"x": 1},
            {"schema_version": "2.0.0"},
        ],
    )
    human = run_cli(
        "schema", "versions", index, "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate()
    )
    assert human.returncode == 0, human.stderr
    assert "4 documents in" in human.stdout
    data = json.loads(
        run_cli(
            "--json",
            "schema",
            "versions",
            index,
            "--url",
            cluster_url,
            cwd=tmp_path,
            env=env_without_esmigrate(),
        ).stdout
    )
    assert data["counts"] == {"1.0": 1, "2.0.0": 2}
    assert data["missing"] == 1
