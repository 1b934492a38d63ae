"""Versioned migrations end to end on the real node: upgrade, status, history, validate, repair,
downgrade, failures, bad input, baseline, stamp, and plan == the requests actually sent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config, ConnectionSettings, load_config
from esmigrate.exceptions import (
    ChecksumMismatch,
    DowngradeNotSupported,
    EsmigrateError,
    RevisionError,
    RevisionFailed,
    RevisionGraphError,
    ScriptError,
    TargetError,
)
from esmigrate.runtime import Runner
from esmigrate.script import ScriptDirectory
from tests.migration_project import make_project, write_script

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path: Path, cluster_settings: ConnectionSettings, prefix: str) -> Config:
    return make_project(
        tmp_path / "proj", history_index=f"{prefix}-hist", connection=cluster_settings
    )


def revision_docs(cluster: Cluster, prefix: str) -> dict[str, dict[str, Any]]:
    cluster.refresh(f"{prefix}-hist")
    hits = cluster.search(f"{prefix}-hist", {"query": {"term": {"kind": "revision"}}, "size": 100})
    return {h["_source"]["revision"]: h["_source"] for h in hits["hits"]["hits"]}


def test_the_whole_life_of_two_revisions(
    tmp_path: Path, cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str
) -> None:
    command.init(tmp_path / "proj", url=cluster_settings.urls[0], history_index=f"{prefix}-hist")
    config = replace(
        load_config(tmp_path / "proj" / "esmigrate.toml", env={}), connection=cluster_settings
    )
    first = command.revision(config, "create posts", rev_id="r1")
    second = command.revision(config, "add tags", rev_id="r2")
    first_path = config.root / first["path"]
    # Later definitions replace the template's empty ones.
    with first_path.open("a") as fh:
        fh.write(
            f"""

def upgrade(op):
    op.create_index("{prefix}-posts-v1", settings={{"number_of_replicas": 0}},
                    mappings={{"properties": {{"title": {{"type": "text"}}}}}})
    op.add_alias("{prefix}-posts-v1", "{prefix}-posts", is_write_index=True)


def downgrade(op):
    op.delete_index("{prefix}-posts-v1")
"""
        )
    with (config.root / second["path"]).open("a") as fh:
        fh.write(
            f"""

def upgrade(op):
    op.put_mapping("{prefix}-posts", {{"properties": {{"tags": {{"type": "keyword"}}}}}})
    op.request("PUT", "/{prefix}-posts/_doc/1", params={{"refresh": "true"}},
               body={{"title": "hello", "tags": ["a"]}})
"""
        )

    result = command.upgrade(config)
    assert [r["revision"] for r in result["revisions"]] == ["r1", "r2"]
    mapping = cluster.request("GET", f"/{prefix}-posts-v1/_mapping")
    assert mapping[f"{prefix}-posts-v1"]["mappings"]["properties"]["tags"] == {"type": "keyword"}

    status = command.status(config)
    assert status["current"] == ["r2"]
    assert status["pending"] == []
    assert status["failed"] == []
    assert status["lease"] is None  # released after the run
    assert [a["revision"] for a in status["applied"]] == ["r1", "r2"]
    history = command.history(config, verbose=True)
    assert [(h["revision"], h["state"]) for h in history] == [("r1", "applied"), ("r2", "applied")]
    r1 = history[0]
    assert r1["message"] == "create posts"
    assert r1["checksum"] == ScriptDirectory.from_config(config).load()["r1"].checksum
    assert r1["by"]["host"]
    assert r1["by"]["pid"]
    assert r1["duration_s"] >= 0
    assert r1["started_at"] <= r1["ended_at"]
    assert [(e["op"], e["status"]) for e in r1["log"]] == [
        ("create_index", "done"),
        ("update_aliases", "done"),
    ]

    # Again: nothing runs, nothing is written.
    before = revision_docs(cluster, prefix)
    assert command.upgrade(config)["revisions"] == []
    assert revision_docs(cluster, prefix) == before

    # An applied script is edited: validate names it, upgrade refuses, repair re-aligns.
    with first_path.open("a") as fh:
        fh.write("# a comment added later\n")
    report = command.validate(config)
    assert not report["ok"]
    assert [(p["revision"], p["problem"]) for p in report["problems"]] == [("r1", "checksum")]
    assert report["problems"][0]["path"] == first["path"]
    with pytest.raises(ChecksumMismatch, match="r1"):
        command.upgrade(config)
    repaired = command.repair(config)
    assert [(c["revision"], c["change"]) for c in repaired["changes"]] == [
        ("r1", "re-aligned the checksum with the edited script")
    ]
    assert command.validate(config)["ok"]
    assert command.repair(config)["changes"] == []

    # One step down, and up again.
    down = command.downgrade(config, "-1")
    assert [(r["revision"], r["state"]) for r in down["revisions"]] == [("r2", "rolled_back")]
    status = command.status(config)
    assert status["current"] == ["r1"]
    assert [p["revision"] for p in status["pending"]] == ["r2"]
    again = command.upgrade(config)
    assert [r["revision"] for r in again["revisions"]] == ["r2"]
    assert revision_docs(cluster, prefix)["r2"]["runs"] == 3  # up, down, up

    # r3 has no downgrade(): going below it is refused before anything changes.
    third = write_script(config, "r3", "r2", "pass", downgrade=None)
    command.upgrade(config)
    before = revision_docs(cluster, prefix)
    with pytest.raises(DowngradeNotSupported) as err:
        command.downgrade(config, "base")
    assert "r3" in err.value.message
    assert err.value.path == str(third)
    assert revision_docs(cluster, prefix) == before
    assert cluster.exists(f"{prefix}-posts-v1")


def test_a_failed_revision_blocks_until_repaired(
    project: Config, cluster: Cluster, prefix: str
) -> None:
    write_script(
        project,
        "r1",
        None,
        f"""op.create_index("{prefix}-a", settings={{"number_of_replicas": 0}},
                mappings={{"properties": {{"title": {{"type": "text"}}}}}})""",
    )
    bad = write_script(
        project,
        "r2",
        "r1",
        f"""op.put_mapping("{prefix}-a", {{"properties": {{"extra": {{"type": "keyword"}}}}}})
op.put_mapping("{prefix}-a", {{"properties": {{"title": {{"type": "keyword"}}}}}})""",
    )
    with pytest.raises(RevisionFailed) as err:
        command.upgrade(project)
    assert err.value.revision == "r2"
    assert "cannot be changed from type [text] to [keyword]" in err.value.message
    assert "operation 2 of 2" in err.value.message
    assert err.value.hint
    assert "esmigrate repair" in err.value.hint
    docs = revision_docs(cluster, prefix)
    assert docs["r1"]["state"] == "applied"
    assert docs["r2"]["state"] == "failed"
    assert docs["r2"]["error"]["type"] == "illegal_argument_exception"
    assert docs["r2"]["error"]["status"] == 400
    assert [e.get("status") for e in docs["r2"]["log"]] == ["done", "failed"]

    with pytest.raises(RevisionFailed, match="recorded as failed") as blocked:
        command.upgrade(project)
    assert "esmigrate repair" in (blocked.value.hint or "")
    assert [f["revision"] for f in command.status(project)["failed"]] == ["r2"]
    assert [p["problem"] for p in command.validate(project)["problems"]] == ["failed"]

    # The fix: the script adds a new field instead. Then repair, then upgrade converges.
    bad.write_text(
        bad.read_text().replace('"title": {"type": "keyword"}', '"title2": {"type": "keyword"}')
    )
    repaired = command.repair(project)
    assert [(c["revision"], c["after"]) for c in repaired["changes"]] == [("r2", "pending")]
    assert "cannot be changed" in repaired["changes"][0]["before"]
    result = command.upgrade(project)
    assert [r["revision"] for r in result["revisions"]] == ["r2"]
    docs = revision_docs(cluster, prefix)
    assert docs["r2"]["state"] == "applied"
    assert docs["r2"]["runs"] == 2
    assert docs["r2"]["error"] is None
    assert [e["outcome"] for e in docs["r2"]["events"]] == ["failed", "pending", "applied"]


def _two_heads(config: Config) -> str:
    write_script(config, "r1", None)
    write_script(config, "r2", "r1")
    return str(write_script(config, "r3", "r1"))


@pytest.mark.parametrize(
    ("build", "target", "error", "fragment"),
    [
        (
            lambda c: str(write_script(c, "r1", None, "op.create_index(")),
            "head",
            ScriptError,
            "syntax error",
        ),
        (
            lambda c: str(write_script(c, "r1", None, header="import no_such_module_here")),
            "head",
            ScriptError,
            "ModuleNotFoundError",
        ),
        (
            lambda c: str(write_script(c, "r1", None, "op.create_index(42)")),
            "head",
            ScriptError,
            "upgrade(op) of the migration script",
        ),
        (
            lambda c: (write_script(c, "r1", "r2"), str(write_script(c, "r2", "r1")))[1],
            "head",
            RevisionGraphError,
            "cycle",
        ),
        (lambda c: str(write_script(c, "r1", "gone")), "head", RevisionGraphError, "'gone'"),
        (_two_heads, "head", RevisionGraphError, "2 heads"),
        (
            lambda c: str(write_script(c, "r1", None)),
            "nope",
            TargetError,
            "Unknown revision 'nope'",
        ),
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(
    project: Config,
    cluster: Cluster,
    prefix: str,
    build: Any,
    target: str,
    error: type[EsmigrateError],
    fragment: str,
) -> None:
    path = build(project)
    with pytest.raises(error) as err:
        command.upgrade(project, target)
    assert fragment in err.value.message
    if target != "nope":
        assert Path(path).name in err.value.message
    assert err.value.hint
    with pytest.raises(error):
        command.plan(project, target)
    assert not cluster.exists(f"{prefix}-hist")


class RecordingCluster(Cluster):
    """The real cluster, remembering every request sent through it."""

    sent: list[tuple[str, str, dict[str, Any], Any]]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path, dict(kwargs.get("params") or {}), kwargs.get("body")))
        return super().request(method, path, **kwargs)


def test_plan_lists_the_requests_upgrade_sends(
    project: Config, cluster_settings: ConnectionSettings, cluster: Cluster, prefix: str
) -> None:
    cluster.request("PUT", f"/{prefix}-old", body={"settings": {"number_of_replicas": 0}})
    cluster.request("PUT", f"/{prefix}-old/_doc/1", params={"refresh": "true"}, body={"n": 1})
    write_script(
        project,
        "r1",
        None,
        f"""
op.put_index_template("{prefix}-tpl", index_patterns=["{prefix}-tpl-*"], settings={{"number_of_replicas": 0}})
op.create_index("{prefix}-new", settings={{"number_of_replicas": 0}},
                mappings={{"properties": {{"n": {{"type": "long"}}}}}})
op.reindex("{prefix}-old", "{prefix}-new", script="ctx._source.m = ctx._source.n + 1")
""",
    )
    write_script(
        project,
        "r2",
        "r1",
        f"""
op.update_by_query("{prefix}-new", script="ctx._source.k = 1", conflicts="proceed")
op.update_aliases([{{"add": {{"index": "{prefix}-new", "alias": "{prefix}-live"}}}}])
op.delete_index_template("{prefix}-tpl")
""",
    )
    plan = command.plan(project)
    planned = [
        (r["method"], r["path"], r.get("params", {}), r.get("body"))
        for rev in plan["revisions"]
        for op in rev["operations"]
        for r in op["requests"]
    ]
    assert [rev["revision"] for rev in plan["revisions"]] == ["r1", "r2"]
    assert plan["requests"] == 6
    with connect(cluster_settings) as base:
        recording = RecordingCluster(base.settings, base.engine, base._client)
        recording.sent = []
        graph = ScriptDirectory.from_config(project).load()
        Runner.from_config(project, recording, graph, poll_interval=0.2).run("head", "upgrade")
    sent = [
        s
        for s in recording.sent
        if s[0] not in ("GET", "HEAD") and not s[1].startswith(f"/{prefix}-hist")
    ]
    assert sent == planned
    assert cluster.request("GET", f"/{prefix}-new/_doc/1")["_source"] == {"n": 1, "m": 2, "k": 1}
    assert command.plan(project)["revisions"] == []


def test_baseline_and_stamp_record_without_running(
    project: Config, cluster: Cluster, prefix: str
) -> None:
    for rev, down in (("r1", None), ("r2", "r1"), ("r3", "r2")):
        write_script(project, rev, down, f'op.create_index("{prefix}-{rev}")')
    result = command.baseline(project, "r2")
    assert [(c["revision"], c["after"]) for c in result["changes"]] == [
        ("r1", "applied"),
        ("r2", "applied"),
    ]
    assert not cluster.exists(f"{prefix}-r1")  # nothing ran
    assert revision_docs(cluster, prefix)["r1"]["baseline"] is True
    with pytest.raises(RevisionError, match="already records revisions"):
        command.baseline(project, "r1")
    assert [r["revision"] for r in command.upgrade(project)["revisions"]] == ["r3"]
    assert cluster.exists(f"{prefix}-r3")

    stamped = command.stamp(project, "r1")
    assert [(c["revision"], c["after"]) for c in stamped["changes"]] == [
        ("r2", "rolled_back"),
        ("r3", "rolled_back"),
    ]
    assert command.status(project)["current"] == ["r1"]
    command.stamp(project, "base")
    assert command.status(project)["current"] == []
    command.stamp(project, "head")
    assert command.status(project)["current"] == ["r3"]
    assert command.stamp(project, "head")["changes"] == []
