"""The production pipeline (`esmigrate deploy`) on the real node."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import load_config
from esmigrate.exceptions import PreflightFailed

pytestmark = pytest.mark.integration


def project(tmp: Path, url: str, prefix: str) -> Path:
    (tmp / "migrations").mkdir()
    (tmp / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{url}"\n'
    )
    (tmp / "migrations" / "a1_create.py").write_text(
        "revision = 'a1'\ndown_revision = None\nmessage = 'create'\n\n"
        "def upgrade(op):\n"
        f"    op.create_index({prefix + '-posts-v1'!r}, mappings={{'properties': {{'code': {{'type': 'long'}}}}}},\n"
        "                    settings={'number_of_shards': 1, 'number_of_replicas': 0},\n"
        f"                    aliases={{{prefix + '-posts'!r}: {{'is_write_index': True}}}})\n"
    )
    (tmp / "migrations" / "a2_keyword.py").write_text(
        "revision = 'a2'\ndown_revision = 'a1'\nmessage = 'code becomes a keyword'\n\n"
        "def upgrade(op):\n"
        f"    op.migrate({prefix + '-posts'!r}, {{'properties': {{'code': {{'type': 'keyword'}}}}}},\n"
        "               settings={'number_of_shards': 1, 'number_of_replicas': 0})\n"
    )
    return tmp / "esmigrate.toml"


def test_deploy_runs_the_pipeline_and_logs_it(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = load_config(project(tmp_path, cluster_url, prefix))
    command.upgrade(config, "a1")
    lines = []
    for i in range(300):
        lines += [
            orjson.dumps({"index": {"_index": f"{prefix}-posts", "_id": str(i)}}),
            orjson.dumps({"code": i}),
        ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")

    # A failed pre-flight check changes nothing.
    with pytest.raises(PreflightFailed) as refused:
        command.deploy(config, snapshot_repository=f"{prefix}-no-such-repo")
    assert "snapshot repository" in str(refused.value)
    assert command.status(config)["current"] == ["a1"]

    log = command.deploy(config, monitor_seconds=1.5, interval=0.5, keep=5)
    assert log["outcome"] == "done"
    assert [s["step"] for s in log["steps"]] == [
        "preflight",
        "upgrade",
        "rollback points",
        "monitor",
        "cleanup",
    ]
    assert log["steps"][1]["revisions"] == ["a2"]
    point = f"before-a2-{prefix}-posts"
    assert log["steps"][2]["points"] == [point]
    assert log["steps"][3]["healthy"] is True
    # The old index is kept as the rollback point; the alias serves the new mapping.
    assert cluster.exists(f"{prefix}-posts-v1")
    mapping = cluster.request("GET", f"/{prefix}-posts/_mapping")
    assert [m["mappings"]["properties"]["code"]["type"] for m in mapping.values()] == ["keyword"]
    assert cluster.count(f"{prefix}-posts") == 300
    # Both deployments are in the migration log.
    cluster.refresh(f"{prefix}-hist")
    logged = cluster.search(
        f"{prefix}-hist", {"query": {"term": {"kind": "deployment"}}, "size": 10}
    )
    outcomes = sorted(h["_source"]["outcome"] for h in logged["hits"]["hits"])
    assert outcomes == ["done", "refused"]
