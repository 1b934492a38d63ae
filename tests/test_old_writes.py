"""Old writers after a cut-over: ``op.migrate(..., upgrade_old_writes=...)`` makes the new index
upgrade the documents writers still send in the old shape, through an ingest pipeline that one
command removes."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError, NotFoundError
from esmigrate.migrate import old_writes
from esmigrate.migrate._layout import alias_targets
from esmigrate.testing import LiveWriter
from esmigrate.transform import Apply, Copy, Default, ExtractHashtags, Missing, RuleSet, Set, When
from tests.conftest import env_without_esmigrate, run_cli
from tests.migration_project import make_project, write_script

#: The live writer's documents (esmigrate.testing.default_document) are blog posts 1.0.
V1 = {
    "properties": {
        "title": {"type": "text"},
        "content": {"type": "text"},
        "author": {"type": "keyword"},
        "edits": {"type": "integer"},
    }
}
V2 = {
    "properties": {
        **V1["properties"],
        "category": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "schema_version": {"type": "keyword"},
    }
}
RULES = """
from esmigrate.transform import Default, ExtractHashtags, RuleSet, Set

V1_TO_V2 = RuleSet(
    Default("category", "general"),
    ExtractHashtags("content", "tags", limit=5),
    Set("schema_version", "2.0.0"),
    name="post 1.0 -> 2.0",
)
"""


def v1_to_v2() -> RuleSet:
    return RuleSet(
        Default("category", "general"),
        ExtractHashtags("content", "tags", limit=5),
        Set("schema_version", "2.0.0"),
        name="post 1.0 -> 2.0",
    )


def old_post(i: int) -> dict[str, Any]:
    return {"title": f"post {i}", "content": f"about #search {i}", "author": "a", "edits": 0}


def make_source(cluster: Cluster, prefix: str, n: int) -> tuple[str, str, list[str]]:
    alias, index = f"{prefix}-posts", f"{prefix}-posts-v1"
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0},
            "mappings": V1,
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    lines = []
    for i in range(n):
        lines += [
            orjson.dumps({"index": {"_index": index, "_id": f"d{i}"}}),
            orjson.dumps(old_post(i)),
        ]
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]
    return alias, index, [f"d{i}" for i in range(n)]


def not_upgraded(cluster: Cluster, index: str) -> int:
    cluster.refresh(index)
    return cluster.count(
        index, {"bool": {"must_not": [{"term": {"schema_version": "2.0.0"}}]}}
    ) + cluster.count(index, {"bool": {"must_not": [{"exists": {"field": "category"}}]}})


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_a_writer_of_the_old_shape_through_the_cut_over_leaves_no_old_document(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, initial = make_source(cluster, prefix, 2000)
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=f"{prefix}-hist")
    write_script(
        config,
        "a1",
        None,
        f"op.migrate({alias!r}, {V2!r}, transform=V1_TO_V2, upgrade_old_writes=True, "
        'settings={"number_of_shards": 2, "number_of_replicas": 0})',
        header=RULES,
    )
    planned = command.plan(config)["revisions"][0]["operations"][0]["requests"]
    paths = [r["path"] for r in planned]
    at = next(
        i for i, p in enumerate(paths) if p.startswith("/_ingest/pipeline/esmigrate-upgrade-")
    )
    assert planned[at + 1]["body"] == {"index.default_pipeline": paths[at].rsplit("/", 1)[1]}
    # In place before the write block: a write resolves its pipelines a moment before the alias.
    assert at < paths.index(f"/{source}/_block/write") < paths.index("/_aliases")

    writer = LiveWriter(cluster_url, alias, rate=150, initial=len(initial), mix=(0.5, 0.3))
    writer.start()
    try:
        writer.wait_for(50)
        upgraded = run_cli("upgrade", cwd=config.root, env=dict(os.environ), timeout=600)
        assert upgraded.returncode == 0, upgraded.stderr
        target = next(iter(alias_targets(cluster, alias)))
        assert target != source
        # The writer goes on in the old shape after the swap: a rolling deploy's old instances.
        writer.wait_for(150, index=target)
    finally:
        writer.stop()
    report = writer.report()
    assert report.verify(cluster, target, initial) == []
    assert not_upgraded(cluster, target) == 0
    created_after = [
        op["id"] for op in writer.operations() if op["index"] == target and op["op"] == "index"
    ]
    assert created_after
    sample = cluster.request("GET", f"/{target}/_doc/{created_after[-1]}")["_source"]
    assert "live" in sample["tags"]  # the writer's content ends with #live

    status = command.status(config)
    [entry] = [e for e in status["old_writes"] if e["index"] == target]
    assert entry["aliases"] == [alias]
    assert entry["upgraded"] >= len(created_after)

    removed = run_cli("--json", "old-writes", "remove", alias, cwd=config.root)
    assert removed.returncode == 0, removed.stderr
    assert [e["pipeline"] for e in json.loads(removed.stdout)] == [entry["pipeline"]]
    with pytest.raises(NotFoundError):
        cluster.request("GET", f"/_ingest/pipeline/{entry['pipeline']}")
    assert not [e for e in command.status(config)["old_writes"] if e["index"] == target]
    # Removed: a document written now is stored as sent.
    cluster.request(
        "PUT", f"/{alias}/_doc/after-removal", params={"refresh": "true"}, body=old_post(0)
    )
    assert (
        "schema_version" not in cluster.request("GET", f"/{target}/_doc/after-removal")["_source"]
    )


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_old_documents_told_by_shape_are_upgraded_and_new_ones_kept(
    cluster: Cluster, prefix: str
) -> None:
    index = f"{prefix}-shape"
    cluster.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0}})
    rules = RuleSet(When(Missing("published"), Copy("created", "published")), name="by shape")
    old_writes(rules, Missing("published")).install(cluster, index)
    put = {"refresh": "true", "routing": "r1"}
    cluster.request("PUT", f"/{index}/_doc/old", body={"created": "2024-01-01"}, params=put)
    new = {"created": "2024-01-01", "published": "2025-05-05", "_extra": 1}
    cluster.request("PUT", f"/{index}/_doc/new", body=new, params=put)
    old_doc = cluster.request("GET", f"/{index}/_doc/old", params={"routing": "r1"})
    assert old_doc["_source"] == {"created": "2024-01-01", "published": "2024-01-01"}
    assert old_doc["_routing"] == "r1"
    assert cluster.request("GET", f"/{index}/_doc/new", params={"routing": "r1"})["_source"] == new
    cluster.request("DELETE", f"/_ingest/pipeline/esmigrate-upgrade-{index}")


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_a_transform_no_pipeline_can_run_is_refused_before_anything_changes(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, _ = make_source(cluster, prefix, 10)
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=f"{prefix}-hist")
    header = textwrap.dedent(
        """
        def to_v2(doc):
            return {**doc, "schema_version": "2.0.0"}
        """
    )
    write_script(
        config,
        "a1",
        None,
        f"op.migrate({alias!r}, {V2!r}, transform=to_v2, upgrade_old_writes=True)",
        header=header,
    )
    result = run_cli("--json", "upgrade", cwd=config.root)
    assert result.returncode == 1
    error = json.loads(result.stdout or result.stderr)["error"]
    assert "upgrade_old_writes needs the transformation as a RuleSet" in error["message"]
    assert "to_v2 is Python" in error["message"]
    assert "Write the transformation as a RuleSet" in error["message"]  # the fix
    assert "Traceback" not in result.stderr
    assert list(alias_targets(cluster, alias)) == [source]
    assert set(cluster.request("GET", f"/{prefix}-posts*")) == {source}


def test_what_cannot_tell_or_upgrade_old_documents_is_refused() -> None:
    with pytest.raises(MigrationError, match="does not set"):
        old_writes(RuleSet(Default("category", "general")), True)
    with pytest.raises(MigrationError, match="no Painless form"):
        old_writes(RuleSet(Apply(lambda d: d), Set("schema_version", "2.0.0")), True)


@pytest.mark.integration
def test_rebuild_upgrades_old_writes_after_its_cut_over(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, _ = make_source(cluster, prefix, 50)
    (tmp_path / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{cluster_url}"\n'
    )
    (tmp_path / "shop.py").write_text(
        f"{RULES}\nMAPPING = {V2!r}\n\n\ndef noop(doc):\n    return doc\n"
    )
    env = env_without_esmigrate()
    python = run_cli("rebuild", alias, "--to", "shop:MAPPING", "--transform", "shop:noop",
                     "--upgrade-old-writes", cwd=tmp_path, env=env)  # fmt: skip
    assert python.returncode == 1
    assert "upgrade_old_writes needs the transformation as a RuleSet" in python.stderr
    assert list(alias_targets(cluster, alias)) == [source]  # refused before anything changed
    done = run_cli("rebuild", alias, "--to", "shop:MAPPING", "--rules", "shop:V1_TO_V2",
                   "--upgrade-old-writes", cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    cluster.request("PUT", f"/{alias}/_doc/late", params={"refresh": "true"}, body=old_post(1))
    [target] = alias_targets(cluster, alias)
    late = cluster.request("GET", f"/{target}/_doc/late")["_source"]
    assert late == {
        **old_post(1),
        "category": "general",
        "tags": ["search"],
        "schema_version": "2.0.0",
    }
    assert not_upgraded(cluster, target) == 0
    removed = run_cli("old-writes", "remove", alias, cwd=tmp_path, env=env)
    assert removed.returncode == 0, removed.stderr
    assert f"Removed esmigrate-upgrade-{target} from {target}" in removed.stdout
