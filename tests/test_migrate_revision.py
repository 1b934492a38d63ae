"""``op.migrate`` in a revision: an ``esmigrate upgrade`` moving live data is killed (SIGKILL) or
interrupted (Ctrl-C) mid-copy while a writer keeps writing; the next ``upgrade`` resumes it and
the final state is exactly the expected one."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.exceptions import NotFoundError, RequestError
from esmigrate.migrate._layout import is_write_blocked
from esmigrate.operations import migration_id
from esmigrate.report import render
from esmigrate.state import HistoryStore
from tests.conftest import run_cli, start_cli
from tests.migrate_support import (
    PAINLESS,
    SOURCE_MAPPING,
    TARGET_MAPPING,
    check_final_state,
    create_source,
    live_writer,
    report,
)
from tests.migration_project import make_project, write_script

pytestmark = pytest.mark.integration

LEASE_TTL = "5"


def checkpoint(cluster: Cluster, index: str, mid: str) -> dict[str, Any]:
    try:
        doc = cluster.request("GET", f"/{index}/_doc/checkpoint:{mid}")
    except NotFoundError:
        return {}
    except RequestError as exc:
        if exc.status == 503:  # the history index is being created
            return {}
        raise
    source: dict[str, Any] = doc["_source"]
    return source


def copy_task_started(stored: dict[str, Any]) -> bool:
    """Whether the copy's `_reindex` is running: one task, or one per shard of the source."""
    if (stored.get("copy") or {}).get("task"):
        return True
    return any((step or {}).get("task") for step in (stored.get("copy_tasks") or {}).values())


def wait_until_copying(cluster: Cluster, index: str, mid: str, proc: Any) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "upgrade ended before the copy started"
        assert time.monotonic() < deadline, "the copy never started"
        if cluster.exists(index) and copy_task_started(checkpoint(cluster, index, mid)):
            return
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_upgrade_interrupted_mid_copy_resumes(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path, how: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 20_000)
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    write_script(
        config,
        "a1",
        None,
        f"op.migrate({alias!r}, {TARGET_MAPPING!r}, script={PAINLESS!r}, "
        "requests_per_second=2000, dead_letter_index="
        f"{prefix + '-dl'!r})",
    )
    mid = migration_id("a1", alias)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        first = start_cli("upgrade", "--lease-ttl", LEASE_TTL, cwd=config.root, env=env)
        wait_until_copying(cluster, history, mid, first)
        time.sleep(1)
        first.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
        _, err = first.communicate(timeout=120)
        stored = checkpoint(cluster, history, mid)
        assert stored["phase"] == "copy"
        assert not is_write_blocked(cluster, source)
        if how == "sigkill":
            assert first.returncode == -9
        else:
            assert first.returncode == 130, err
            assert "next `esmigrate upgrade` resumes" in err or "again to resume" in err
            # The throttle verb finds the (stopped, unfinished) migration of the revision.
            assert command.throttle(config, "a1", 5000)["migrations"][0]["migration"] == mid
        writer.wait_for(writer.count() + 50)
        second = run_cli("upgrade", "--lease-ttl", LEASE_TTL, cwd=config.root, env=env, timeout=600)
        assert second.returncode == 0, second.stderr
        assert f"Resuming revision a1: migrate of {alias} was interrupted in phase copy" in (
            second.stderr
        )
        target = checkpoint(cluster, history, mid)["target"]
        writer.wait_for(50, index=target)
    finally:
        writer.stop()
        ops, summary = writer.operations(), writer.report()
    check_final_state(cluster, alias, source, target, initial, ops)
    status = command.status(config)
    assert status["current"] == ["a1"]
    assert not status["problems"]
    # Its report keeps what the interrupted run did next to the resumed one (how far its record
    # got depends on when the kill landed: its phases are saved as they start).
    record = HistoryStore(cluster, history).revisions()["a1"].doc
    (entry,) = record["log"]
    (interrupted,) = entry["interrupted_runs"]
    stopped_in = [p["phase"] for p in interrupted["timeline"]["phases"]]
    assert stopped_in[0] == "preflight"
    assert set(stopped_in) <= {"preflight", "copy"}, stopped_in
    assert [p["phase"] for p in entry["report"]["timeline"]["phases"]][-1] == "done"
    assert 'data-figure="interrupted-runs">1<' in render([record])
    report(summary, ops, f"upgrade {how} mid-copy, resumed")


def test_plan_shows_strategy_and_reasons(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _, _ = create_source(cluster, prefix, 10)
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=f"{prefix}-hist")
    write_script(config, "b1", None, f"op.migrate({alias!r}, {TARGET_MAPPING!r})")
    online = command.plan(config)
    op = online["revisions"][0]["operations"][0]
    assert op["strategy"] == "blue_green"
    assert any("code" in r and "type_changed" in r for r in op["reasons"])
    assert any(r["path"] == "/_aliases" for r in op["requests"])
    offline = command.plan(config, offline=True)
    op = offline["revisions"][0]["operations"][0]
    assert op["strategy"] == "run time"
    # An additive change goes in place.
    additive = {"properties": {**SOURCE_MAPPING["properties"], "tag": {"type": "keyword"}}}
    write_script(config, "b1", None, f"op.migrate({alias!r}, {additive!r})")
    op = command.plan(config)["revisions"][0]["operations"][0]
    assert op["strategy"] == "in_place"
    assert [r["method"] for r in op["requests"]] == ["PUT"]


def test_plan_names_the_rollback_point_the_run_records(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _, _ = create_source(cluster, prefix, 10)
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    write_script(config, "b1", None, f"op.migrate({alias!r}, {TARGET_MAPPING!r})")
    (op,) = command.plan(config)["revisions"][0]["operations"]
    assert op["rollback_point"] == {
        "name": f"before-b1-{alias}",
        "kind": "retained",
        "when": "at the cut-over",
    }
    # In place, the project's retained kind keeps nothing: the plan says so, and how to get one.
    additive = {"properties": {**SOURCE_MAPPING["properties"], "tag": {"type": "keyword"}}}
    write_script(config, "b1", None, f"op.migrate({alias!r}, {additive!r})")
    (op,) = command.plan(config)["revisions"][0]["operations"]
    assert op["rollback_point"]["name"] is None
    assert 'rollback_point_kind = "clone"' in op["rollback_point"]["note"]
    shown = run_cli("plan", cwd=config.root)
    assert "rollback point: none: the index changes in place" in shown.stdout, shown.stderr
    # With a clone, the plan names the point the run then records before the change.
    write_script(
        config, "b1", None, f"op.migrate({alias!r}, {additive!r}, rollback_point_kind='clone')"
    )
    (op,) = command.plan(config)["revisions"][0]["operations"]
    assert op["rollback_point"] == {
        "name": f"before-b1-{alias}",
        "kind": "clone",
        "when": "before the change",
    }
    shown = run_cli("plan", cwd=config.root)
    assert f"rollback point: before-b1-{alias} (clone, before the change)" in shown.stdout
    command.upgrade(config)
    assert [p["name"] for p in command.rollback_point_list(config)] == [f"before-b1-{alias}"]
    assert command.plan(config)["revisions"] == []
    # Rolling back to it undoes the revision in the history too.
    done = command.rollback(config, f"before-b1-{alias}", discard_writes=True)
    assert done["recorded"] == {"kind": "revision", "id": "b1", "state": "rolled_back"}
    assert command.status(config)["current"] == []


def test_throttle_cli_rethrottles_the_running_copy(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _source, _initial = create_source(cluster, prefix, 20_000)
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    # So slow that it could not finish within the test's timeout unless the throttle lifts it.
    write_script(
        config,
        "a1",
        None,
        f"op.migrate({alias!r}, {TARGET_MAPPING!r}, script={PAINLESS!r}, requests_per_second=50)",
    )
    mid = migration_id("a1", alias)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    upgrade = start_cli("upgrade", cwd=config.root, env=env)
    try:
        wait_until_copying(cluster, history, mid, upgrade)
        throttled = run_cli("--json", "throttle", "a1", "0", cwd=config.root, env=env, timeout=120)
        assert throttled.returncode == 0, throttled.stderr
        assert mid in throttled.stdout
        # At 50 docs/s the copy alone would need 400 s: it finishes within the timeout only
        # because the running task was rethrottled to unlimited.
        _, err = upgrade.communicate(timeout=300)
        assert upgrade.returncode == 0, err
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
            upgrade.communicate()
    assert command.status(config)["current"] == ["a1"]
