"""Rollback points and rollbacks against the real node: nothing written after the cut-over is
lost, refusals name the count, snapshots restore deleted indices, a kill under the block is
completed by a rerun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import PointExists, PointNotFound, RestoreImpossible, WritesAtRisk
from esmigrate.migrate._layout import alias_targets, is_write_blocked
from esmigrate.rollback import _rollback as rollback_module
from esmigrate.rollback import create_point, get_point, list_points, plan_rollback, rollback
from esmigrate.state import HistoryStore, read_lease
from tests.migrate_support import all_docs, create_source, diff, live_writer
from tests.rollback_support import (
    REVERSE_PAINLESS,
    expected_old_format,
    migrate_with_point,
    reverse,
)

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

ROOT = Path(__file__).resolve().parent.parent


def _write(cluster: Cluster, alias: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        cluster.request(
            "PUT", f"/{alias}/_doc/x{i}", body={"title": f"x {i}", "n": i, "code": i, "body": "b"}
        )


def test_rollback_carries_live_writes_back(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, old, initial = create_source(cluster, prefix, 3000)
    hist = f"{prefix}-hist"
    writer = live_writer(cluster_url, alias, len(initial), rate=200)
    try:
        writer.wait_for(50)
        result = migrate_with_point(cluster, prefix, alias, "before-v2")
        new = result.target
        writer.wait_for(150, index=new)
        plan = plan_rollback(cluster, "before-v2", state_index=hist, reverse=True)
        assert plan.mode == "carry"
        assert plan.carry is not None
        assert plan.carry["from"] == new
        assert plan.carry["to"] == old
        assert plan.writes_at_risk >= 150
        done = rollback(cluster, "before-v2", state_index=hist, reverse_transform=reverse)
        # Writers keep going, now into the old index again.
        writer.wait_for(writer.count(old) + 50, index=old)
    finally:
        writer.stop()
        ops = writer.operations()
    assert done.mode == "carry"
    assert done.carried >= 1
    assert set(alias_targets(cluster, alias)) == {old}
    assert alias_targets(cluster, alias)[old].get("is_write_index") is True
    assert not is_write_blocked(cluster, new)
    assert not is_write_blocked(cluster, old)
    assert diff(expected_old_format(initial, ops, (old, new)), all_docs(cluster, old)) == {}
    point = get_point(cluster, "before-v2", state_index=hist)
    assert point.last_rollback is not None
    assert point.last_rollback["mode"] == "carry"


def test_refusal_names_the_count_then_discard(cluster: Cluster, prefix: str) -> None:
    alias, old, initial = create_source(cluster, prefix, 200)
    hist = f"{prefix}-hist"
    new = migrate_with_point(cluster, prefix, alias, "p1").target
    _write(cluster, alias, 7)
    with pytest.raises(WritesAtRisk) as info:
        rollback(cluster, "p1", state_index=hist)
    assert info.value.total == 7
    assert info.value.at_risk == {new: 7}
    assert "7 operation(s)" in info.value.message
    assert "discard_writes" in str(info.value)
    assert set(alias_targets(cluster, alias)) == {new}  # nothing changed
    assert not is_write_blocked(cluster, new)
    done = rollback(cluster, "p1", state_index=hist, discard_writes=True)
    assert done.mode == "discard"
    assert done.discarded == 7
    assert set(alias_targets(cluster, alias)) == {old}
    assert not is_write_blocked(cluster, new)
    assert all_docs(cluster, old) == initial  # the discarded writes are not there


def test_painless_reverse_and_deletes(cluster: Cluster, prefix: str) -> None:
    alias, old, initial = create_source(cluster, prefix, 500)
    hist = f"{prefix}-hist"
    new = migrate_with_point(cluster, prefix, alias, "p2", script=True).target
    _write(cluster, alias, 20)
    cluster.request("POST", f"/{alias}/_update/d3", body={"doc": {"n": -1}})
    for i in range(10, 30):
        cluster.request("DELETE", f"/{alias}/_doc/d{i}")
    cluster.request("DELETE", f"/{alias}/_doc/x0")
    done = rollback(cluster, "p2", state_index=hist, reverse_script=REVERSE_PAINLESS)
    expected = {k: v for k, v in initial.items() if k not in {f"d{i}" for i in range(10, 30)}}
    expected["d3"] = {**initial["d3"], "n": -1}
    for i in range(1, 20):
        expected[f"x{i}"] = {"title": f"x {i}", "n": i, "code": i, "body": "b"}
    assert diff(expected, all_docs(cluster, old)) == {}
    assert done.reconciled_deletes == 20  # x0 never reached the old index
    assert set(alias_targets(cluster, alias)) == {old}
    assert not is_write_blocked(cluster, new)


def test_the_carry_back_holds_its_lease_for_the_ttl_given(cluster: Cluster, prefix: str) -> None:
    """A rollback killed while it carries writes back blocks a rerun only for ``lease_ttl`` (the
    CLI gives the project's)."""
    alias, old, _ = create_source(cluster, prefix, 200)
    hist = f"{prefix}-hist"
    migrate_with_point(cluster, prefix, alias, "p-ttl")
    _write(cluster, alias, 5)
    leases: list[dict[str, Any]] = []

    def seen(_event: object) -> None:
        lease = read_lease(HistoryStore(cluster, hist), "lease:rollback:p-ttl")
        if lease is not None:
            leases.append(lease)

    rollback(
        cluster,
        "p-ttl",
        state_index=hist,
        reverse_transform=reverse,
        lease_ttl=7.0,
        on_progress=seen,
    )
    assert leases
    assert {lease["ttl_s"] for lease in leases} == {7.0}
    assert set(alias_targets(cluster, alias)) == {old}


def test_points_are_unique_and_listed(cluster: Cluster, prefix: str) -> None:
    alias, old, _ = create_source(cluster, prefix, 10)
    hist = f"{prefix}-hist"
    point = create_point(cluster, "a", [alias], state_index=hist, note="first")
    assert point.aliases == {alias: {old: {"is_write_index": True}}}
    assert point.indices[old]["count"] == 10
    assert sum(v + 1 for v in point.indices[old]["checkpoints"].values()) == 10
    with pytest.raises(PointExists):
        create_point(cluster, "a", [alias], state_index=hist)
    create_point(cluster, "b", [alias], state_index=hist)
    assert [p.name for p in list_points(cluster, state_index=hist)] == ["a", "b"]
    with pytest.raises(PointNotFound) as info:
        get_point(cluster, "zz", state_index=hist)
    assert info.value.known == ["a", "b"]


def test_snapshot_restores_a_deleted_old_index(cluster: Cluster, prefix: str) -> None:
    alias, old, initial = create_source(cluster, prefix, 300)
    hist = f"{prefix}-hist"
    repo = f"{prefix}-repo"
    cluster.request(
        "PUT", f"/_snapshot/{repo}", body={"type": "fs", "settings": {"location": repo}}
    )
    try:
        create_point(cluster, "snap", [alias], state_index=hist, snapshot_repository=repo)
        new = migrate_with_point(cluster, prefix, alias, "cut").target
        cluster.request("DELETE", f"/{old}")
        _write(cluster, alias, 3)
        with pytest.raises(WritesAtRisk):  # refused before the restore: nothing is written
            rollback(cluster, "snap", state_index=hist)
        assert not cluster.exists(old)
        done = rollback(cluster, "snap", state_index=hist, discard_writes=True)
        assert done.restored == [old]
        assert set(alias_targets(cluster, alias)) == {old}
        assert all_docs(cluster, old) == initial
        assert not is_write_blocked(cluster, new)
        cluster.request("DELETE", f"/{old}")
        with pytest.raises(RestoreImpossible):
            rollback(cluster, "cut", state_index=hist, discard_writes=True)
    finally:
        for snap in cluster.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]:
            cluster.request("DELETE", f"/_snapshot/{repo}/{snap['snapshot']}")
        cluster.request("DELETE", f"/_snapshot/{repo}")


def test_kill_under_the_block_is_completed_by_a_rerun(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, old, initial = create_source(cluster, prefix, 1000)
    hist = f"{prefix}-hist"
    writer = live_writer(cluster_url, alias, len(initial), rate=100)
    try:
        new = migrate_with_point(cluster, prefix, alias, "k").target
        writer.wait_for(60, index=new)
        cfg = tmp_path / "cfg.json"
        cfg.write_text(
            json.dumps(
                {"url": cluster_url, "point": "k", "state_index": hist, "kill_at": "blocked"}
            )
        )
        proc = subprocess.run(
            [sys.executable, "-m", "tests.rollback_support", "run", str(cfg)], cwd=ROOT
        )
        assert proc.returncode == -9
        assert is_write_blocked(cluster, new)  # killed between the block and the swap
        assert set(alias_targets(cluster, alias)) == {new}
        rollback(cluster, "k", state_index=hist, reverse_transform=reverse)
        writer.wait_for(writer.count(old) + 30, index=old)
    finally:
        writer.stop()
        ops = writer.operations()
    assert set(alias_targets(cluster, alias)) == {old}
    assert not is_write_blocked(cluster, new)
    assert diff(expected_old_format(initial, ops, (old, new)), all_docs(cluster, old)) == {}


class Killed(BaseException):
    """The process dying at that line (nothing after it runs)."""


def test_a_rerun_after_a_kill_past_the_swap_records_the_rollback(
    cluster: Cluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the aliases went back, before the rollback was recorded: the application
    writes to the old index again meanwhile. The rerun does not take those writes for a change
    the retained point cannot undo: it finishes the record, and nothing moves; a run after that
    says it is done."""
    alias, old, initial = create_source(cluster, prefix, 200)
    hist = f"{prefix}-hist"
    new = migrate_with_point(cluster, prefix, alias, "ks").target
    _write(cluster, alias, 5)

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(rollback_module, "record_rollback", die)
    with pytest.raises(Killed):
        rollback(cluster, "ks", state_index=hist, reverse_transform=reverse)
    monkeypatch.undo()
    assert set(alias_targets(cluster, alias)) == {old}
    assert get_point(cluster, "ks", state_index=hist).last_rollback is None
    _write(cluster, alias, 3, start=100)
    done = rollback(cluster, "ks", state_index=hist, reverse_transform=reverse)
    assert done.mode == "carry"
    assert done.carried == 5
    assert set(alias_targets(cluster, alias)) == {old}
    assert not is_write_blocked(cluster, new)
    point = get_point(cluster, "ks", state_index=hist)
    assert point.last_rollback is not None
    assert point.last_rollback["mode"] == "carry"
    assert point.rolling_back is None
    expected = dict(initial)
    for i in [*range(5), *range(100, 103)]:
        expected[f"x{i}"] = {"title": f"x {i}", "n": i, "code": i, "body": "b"}
    assert diff(expected, all_docs(cluster, old)) == {}
    # Run once more (a run killed after its record, before it exited, is run again): done
    # already, it says so and changes nothing, whatever was written to the old index since.
    _write(cluster, alias, 2, start=200)
    again = rollback(cluster, "ks", state_index=hist, reverse_transform=reverse)
    assert again.already == point.last_rollback["at"]
    assert again.carried == 0
    assert set(alias_targets(cluster, alias)) == {old}
    assert get_point(cluster, "ks", state_index=hist).last_rollback == point.last_rollback


def test_rollback_keeps_what_the_forward_migration_dead_lettered(
    cluster: Cluster, prefix: str
) -> None:
    """Documents the forward migration dead-lettered (accepted with max_failures) never reached
    the new index: carrying deletes back must not delete them from the old one."""

    from esmigrate.migrate import BlueGreen
    from esmigrate.rollback import rollback_point_hook
    from tests.migrate_support import TARGET_MAPPING, transform

    def failing(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["code"] % 100 == 0:
            raise ValueError(f"bad code {doc['code']}")
        return transform(doc)

    alias, old, initial = create_source(cluster, prefix, 1000)
    hist = f"{prefix}-hist"
    forward = BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=failing,
        state_index=hist,
        dead_letter_index=f"{prefix}-dl",
        max_failures=10,
        on_cut_over=rollback_point_hook(cluster, "p-dl", state_index=hist),
    ).run()
    assert forward.failures == 10
    dead = {f"d{i}" for i in range(1000) if initial[f"d{i}"]["code"] % 100 == 0}
    assert len(dead) == 10
    # After the cut-over: writes and deletes through the alias, into the new index.
    _write(cluster, alias, 5)
    for i in range(1, 6):
        cluster.request("DELETE", f"/{alias}/_doc/d{i}")

    done = rollback(cluster, "p-dl", state_index=hist, reverse_transform=reverse)

    assert done.mode == "carry"
    assert done.reconciled_deletes == 5
    docs = all_docs(cluster, old)
    assert dead <= set(docs)  # kept, as they were
    assert all(docs[i] == initial[i] for i in dead)
    expected = {k: v for k, v in initial.items() if k not in {f"d{i}" for i in range(1, 6)}}
    for i in range(5):
        expected[f"x{i}"] = {"title": f"x {i}", "n": i, "code": i, "body": "b"}
    assert diff(expected, docs) == {}
    assert set(alias_targets(cluster, alias)) == {old}
