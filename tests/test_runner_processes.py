"""Several real `esmigrate upgrade` processes at once, and one killed with SIGKILL mid-revision."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config, ConnectionSettings
from esmigrate.exceptions import RevisionFailed
from tests.conftest import start_cli
from tests.migration_project import make_project, write_script

pytestmark = pytest.mark.integration

MARKER = """op.request("POST", "/{prefix}-markers/_doc", params={{"refresh": "true"}},
           body={{"revision": "{rev}"}})"""


def upgrade_process(config: Config, *extra: str) -> subprocess.Popen[str]:
    return start_cli("upgrade", "--config", str(config.source), *extra, cwd=config.root)


def markers(cluster: Cluster, prefix: str) -> dict[str, int]:
    cluster.refresh(f"{prefix}-markers")
    result = cluster.search(
        f"{prefix}-markers",
        {"size": 0, "aggs": {"r": {"terms": {"field": "revision.keyword", "size": 50}}}},
    )
    return {b["key"]: b["doc_count"] for b in result["aggregations"]["r"]["buckets"]}


def revision_docs(cluster: Cluster, prefix: str) -> dict[str, dict[str, object]]:
    cluster.refresh(f"{prefix}-hist")
    hits = cluster.search(f"{prefix}-hist", {"query": {"term": {"kind": "revision"}}, "size": 50})
    return {h["_source"]["revision"]: h["_source"] for h in hits["hits"]["hits"]}


def test_three_concurrent_upgrades_apply_each_revision_once(
    tmp_path: Path, cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str
) -> None:
    config = make_project(
        tmp_path / "p", history_index=f"{prefix}-hist", connection=cluster_settings
    )
    cluster.request("PUT", f"/{prefix}-markers", body={"settings": {"number_of_replicas": 0}})
    previous = None
    for rev in ("r1", "r2", "r3"):
        # A marker document with an automatic id: applying a revision twice would show as two.
        write_script(config, rev, previous, MARKER.format(prefix=prefix, rev=rev))
        previous = rev
    processes = [upgrade_process(config, "--lock-timeout", "120") for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert markers(cluster, prefix) == {"r1": 1, "r2": 1, "r3": 1}
    docs = revision_docs(cluster, prefix)
    assert {rev: (d["state"], d["runs"]) for rev, d in docs.items()} == {
        "r1": ("applied", 1),
        "r2": ("applied", 1),
        "r3": ("applied", 1),
    }
    # The lease holder applies everything pending; the others then find nothing to do.
    said = [out for out, _ in outputs]
    assert sum("Applied 3 revision(s)" in out for out in said) == 1
    assert sum("Nothing to upgrade" in out for out in said) == 2


def test_a_killed_runner_is_reported_failed_then_repaired(
    tmp_path: Path, cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str
) -> None:
    config = make_project(
        tmp_path / "p", history_index=f"{prefix}-hist", connection=cluster_settings, lease_ttl=2
    )
    cluster.request("PUT", f"/{prefix}-markers", body={"settings": {"number_of_replicas": 0}})
    gate = tmp_path / "gate"
    write_script(config, "r1", None, MARKER.format(prefix=prefix, rev="r1"))
    # r2 blocks until the gate file exists, then writes its marker.
    write_script(
        config,
        "r2",
        "r1",
        "op.call(wait_for_gate, description='wait for the gate file')\n"
        + MARKER.format(prefix=prefix, rev="r2"),
        header=f"""
            import time
            from pathlib import Path

            def wait_for_gate(cluster):
                while not Path({str(gate)!r}).exists():
                    time.sleep(0.1)
            """,
    )
    runner = upgrade_process(config)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until r2's first operation (the gate) has started
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline, "the runner never reached r2"
            if cluster.exists(f"{prefix}-hist"):
                doc = revision_docs(cluster, prefix).get("r2")
                if doc and doc["state"] == "running" and doc["log"]:
                    break
            time.sleep(0.2)
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.communicate(timeout=60)  # reaps it and closes its pipes
    assert runner.returncode == -signal.SIGKILL

    status = command.status(config)
    assert status["running"][0]["revision"] == "r2"
    # The next run waits for the dead runner's lease to expire, takes it over, records r2 as
    # failed and refuses to go on.
    with pytest.raises(RevisionFailed) as err:
        command.upgrade(config, lock_timeout=60)
    assert err.value.revision == "r2"
    assert "stopped during upgrade in operation 1 (call wait_for_gate()" in err.value.message
    assert "esmigrate repair" in (err.value.hint or "")
    docs = revision_docs(cluster, prefix)
    assert docs["r1"]["state"] == "applied"
    assert docs["r2"]["state"] == "failed"
    assert docs["r2"]["error"]["type"] == "runner_died"  # type: ignore[index]
    problems = command.validate(config)["problems"]
    assert [(p["revision"], p["problem"]) for p in problems] == [("r2", "failed")]

    gate.touch()  # the "fix"
    repaired = command.repair(config)
    assert [(c["revision"], c["after"]) for c in repaired["changes"]] == [("r2", "pending")]
    result = command.upgrade(config)
    assert [r["revision"] for r in result["revisions"]] == ["r2"]
    assert markers(cluster, prefix) == {"r1": 1, "r2": 1}
    docs = revision_docs(cluster, prefix)
    assert docs["r2"]["state"] == "applied"
    assert docs["r2"]["runs"] == 2
    assert command.status(config)["lease"] is None
