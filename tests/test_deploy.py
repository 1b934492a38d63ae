"""The production pipeline (`esmigrate deploy`) on the real node."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import load_config
from esmigrate.deploy import _Watch, _watch_together, deploy
from esmigrate.exceptions import DeployRolledBack, PreflightFailed
from esmigrate.rollback import MonitorReport, monitor

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
        deploy(config, snapshot_repository=f"{prefix}-no-such-repo")
    assert "snapshot repository" in str(refused.value)
    assert command.status(config)["current"] == ["a1"]

    log = deploy(config, monitor_seconds=1.5, interval=0.5, keep=5)
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


def two_alias_project(tmp: Path, url: str, prefix: str) -> Path:
    """Two aliases migrated by one revision: ``posts`` healthy after it; ``tags`` loses half
    its documents on the way (dead-lettered, accepted with ``max_failures``), so its count
    check fails against the rollback point."""
    (tmp / "migrations").mkdir()
    (tmp / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{url}"\n'
    )
    create = "".join(
        f"    op.create_index({prefix + '-' + name + '-v1'!r}, mappings=LONG, settings=ONE,\n"
        f"                    aliases={{{prefix + '-' + name!r}: {{'is_write_index': True}}}})\n"
        for name in ("posts", "tags")
    )
    (tmp / "migrations" / "b1_create.py").write_text(
        "revision = 'b1'\ndown_revision = None\nmessage = 'create'\n"
        "LONG = {'properties': {'code': {'type': 'long'}}}\n"
        "ONE = {'number_of_shards': 1, 'number_of_replicas': 0}\n\n"
        f"def upgrade(op):\n{create}"
    )
    (tmp / "migrations" / "b2_keyword.py").write_text(
        "revision = 'b2'\ndown_revision = 'b1'\nmessage = 'codes become keywords'\n"
        "KEYWORD = {'properties': {'code': {'type': 'keyword'}}}\n"
        "ONE = {'number_of_shards': 1, 'number_of_replicas': 0}\n\n"
        "def odd_codes_fail(doc):\n"
        "    if doc['code'] % 2:\n"
        "        raise ValueError(f\"odd code {doc['code']}\")\n"
        "    return doc\n\n"
        "def upgrade(op):\n"
        f"    op.migrate({prefix + '-posts'!r}, KEYWORD, settings=ONE)\n"
        f"    op.migrate({prefix + '-tags'!r}, KEYWORD, settings=ONE, transform=odd_codes_fail,\n"
        "               strategy='blue_green', max_failures=1000)\n"
    )
    return tmp / "esmigrate.toml"


def test_deploy_watches_every_alias_in_one_window_and_rolls_back_only_the_unhealthy_one(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = load_config(two_alias_project(tmp_path, cluster_url, prefix))
    command.upgrade(config, "b1")
    posts, tags = f"{prefix}-posts", f"{prefix}-tags"
    lines = []
    for alias in (posts, tags):
        for i in range(300):
            lines += [
                orjson.dumps({"index": {"_index": alias, "_id": str(i)}}),
                orjson.dumps({"code": i}),
            ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")

    said: list[str] = []
    with pytest.raises(DeployRolledBack) as rolled:
        deploy(config, monitor_seconds=8, interval=0.25, keep=5, reporter=said.append)
    message = str(rolled.value)
    assert f"{tags} failed a health check" in message
    assert f"before-b2-{tags}" in message
    assert f"{tags}/doc_count failed 3 consecutive samples" in message
    assert f"{posts} stayed healthy" in message

    log = rolled.value.log
    assert log["outcome"] == "rolled back"
    # One monitoring window for both aliases; no clean-up after a rollback.
    assert [s["step"] for s in log["steps"]] == [
        "preflight",
        "upgrade",
        "rollback points",
        "monitor",
    ]
    step = log["steps"][3]
    assert step["healthy"] is False
    entries = {e["alias"]: e for e in step["aliases"]}
    assert set(entries) == {posts, tags}
    assert entries[posts]["outcome"] == "healthy"
    assert entries[posts]["point"] == f"before-b2-{posts}"
    assert entries[tags]["outcome"] == "rolled back"
    assert entries[tags]["report"]["failed_check"] == f"{tags}/doc_count"
    assert entries[tags]["report"]["rollback"]["point"] == f"before-b2-{tags}"
    kept, back = entries[posts]["report"], entries[tags]["report"]
    # Both were sampled in the same window: their sampling spans overlap ...
    assert kept["started_at"] < back["ended_at"]
    assert back["started_at"] < kept["ended_at"]
    # ... and posts kept being watched after tags tripped, to the end of the window.
    assert kept["ended_at"] > back["ended_at"]
    assert not kept["stopped"]
    assert kept["samples"] > back["samples"]
    assert {f"{posts}/health", f"{posts}/search_probe", f"{posts}/doc_count"} == set(kept["last"])
    assert any(f"rolling back to before-b2-{tags}" in line for line in said)

    # tags is back on its old index with every document; posts keeps the new one.
    assert list(cluster.request("GET", f"/_alias/{tags}")) == [f"{tags}-v1"]
    assert cluster.count(tags) == 300
    new_posts = list(cluster.request("GET", f"/_alias/{posts}"))
    assert new_posts != [f"{posts}-v1"]
    mapping = cluster.request("GET", f"/{posts}/_mapping")
    assert [m["mappings"]["properties"]["code"]["type"] for m in mapping.values()] == ["keyword"]
    assert cluster.count(posts) == 300

    # The log in the history index records both aliases' outcomes.
    cluster.refresh(f"{prefix}-hist")
    stored = cluster.search(
        f"{prefix}-hist", {"query": {"term": {"kind": "deployment"}}, "size": 10}
    )["hits"]["hits"]
    assert [h["_source"]["outcome"] for h in stored] == ["rolled back"]
    monitored = stored[0]["_source"]["steps"][3]["aliases"]
    assert {(e["alias"], e["outcome"]) for e in monitored} == {
        (posts, "healthy"),
        (tags, "rolled back"),
    }


def _watch(cluster: Cluster, point: str, check: Callable[[Cluster], bool]) -> _Watch:
    def run(stop: threading.Event, deadline: float) -> MonitorReport:
        return monitor(cluster, [check], duration=60, interval=0.02, stop=stop, deadline=deadline)

    return _Watch(point, [f"{point}-alias"], run)


def test_an_error_in_one_watch_stops_the_others_and_is_raised(cluster: Cluster) -> None:
    calls: list[int] = []

    def crashes(_: Cluster) -> bool:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("probe crashed")
        return True

    quiet, broken = _watch(cluster, "a", lambda _: True), _watch(cluster, "b", crashes)
    with pytest.raises(RuntimeError, match="probe crashed"):
        _watch_together([quiet, broken], 60, lambda _: None)
    assert not any(w.running for w in (quiet, broken))
    assert broken.outcome == "failed"
    assert broken.entries()[0]["error"] == "RuntimeError: probe crashed"
    assert quiet.outcome == "stopped"
    assert quiet.report is not None
    assert quiet.report.stopped
    assert quiet.entries()[0]["reason"].startswith("stopped after")


def test_ctrl_c_stops_every_watch_and_is_raised(cluster: Cluster) -> None:
    calls: list[int] = []

    def presses_ctrl_c(_: Cluster) -> bool:
        calls.append(1)
        if len(calls) == 2:
            _thread.interrupt_main()
        return True

    said: list[str] = []
    watches = [_watch(cluster, "a", lambda _: True), _watch(cluster, "b", presses_ctrl_c)]
    with pytest.raises(KeyboardInterrupt):
        _watch_together(watches, 60, said.append)
    assert not any(w.running for w in watches)
    assert [w.outcome for w in watches] == ["stopped", "stopped"]
    assert said[0].startswith("Interrupted: stopping the health watch")
