"""Rollback point kinds against the real node: a ``clone`` point (``_clone`` under a short write
block) and a ``snapshot`` point (an ``fs`` repository under ``path.repo``) roll back a change made
in place, carrying the writes made since through the reverse transform or refusing with their
count; clean-up deletes clones and snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import NotFoundError, RollbackError, WritesAtRisk
from esmigrate.migrate import BlueGreen, InPlace
from esmigrate.migrate._layout import alias_targets, block_writes, is_write_blocked
from esmigrate.rollback import (
    cleanup,
    create_point,
    get_point,
    list_points,
    rollback,
    rollback_point_hook,
    snapshot_state,
)
from esmigrate.state import Checkpoint
from tests.conftest import env_without_esmigrate, run_cli
from tests.migrate_support import (
    SOURCE_MAPPING,
    TARGET_MAPPING,
    all_docs,
    create_source,
    diff,
    live_writer,
    transform,
)
from tests.rollback_support import expected_old_format, reverse

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

N2 = {"properties": {"n2": {"type": "integer"}}}
BACKFILL = "ctx._source.n2 = ctx._source.n * 2"


def change_in_place(cluster: Cluster, alias: str, hist: str) -> None:
    """An additive change with a backfill: the alias stays on the same index."""
    InPlace(cluster, alias, N2, backfill=BACKFILL, state_index=hist).run()


@pytest.fixture
def repository(cluster: Cluster, prefix: str) -> Iterator[str]:
    repo = f"{prefix}-repo"
    cluster.request(
        "PUT", f"/_snapshot/{repo}", body={"type": "fs", "settings": {"location": repo}}
    )
    yield repo
    for snap in cluster.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]:
        cluster.request("DELETE", f"/_snapshot/{repo}/{snap['snapshot']}")
    cluster.request("DELETE", f"/_snapshot/{repo}")


def test_a_clone_point_rolls_back_an_in_place_change_with_live_writes(
    cluster: Cluster, prefix: str, cluster_url: str
) -> None:
    alias, index, initial = create_source(cluster, prefix, 3000)
    hist = f"{prefix}-hist"
    writer = live_writer(cluster_url, alias, len(initial), rate=200)
    try:
        writer.wait_for(50)
        point = create_point(cluster, "before-n2", [alias], state_index=hist, kind="clone")
        clone = point.copies[index]
        assert cluster.count(clone) == point.indices[index]["count"]
        assert not is_write_blocked(cluster, index)
        assert not is_write_blocked(cluster, clone)
        change_in_place(cluster, alias, hist)
        writer.wait_for(writer.count() + 100)
        done = rollback(cluster, "before-n2", state_index=hist, reverse_transform=reverse)
        # Writers go on, now into the clone.
        writer.wait_for(writer.count(clone) + 50, index=clone)
    finally:
        writer.stop()
        ops = writer.operations()
    assert done.mode == "carry"
    assert done.carried >= len(initial)  # the backfill rewrote every document
    assert set(alias_targets(cluster, alias)) == {clone}
    assert alias_targets(cluster, alias)[clone].get("is_write_index") is True
    assert not is_write_blocked(cluster, index)
    assert not is_write_blocked(cluster, clone)
    assert diff(expected_old_format(initial, ops, (index, clone)), all_docs(cluster, clone)) == {}


def test_without_a_reverse_transform_an_in_place_rollback_names_the_count(
    cluster: Cluster, prefix: str
) -> None:
    alias, index, initial = create_source(cluster, prefix, 100)
    hist = f"{prefix}-hist"
    create_point(cluster, "kept", [alias], state_index=hist)
    point = create_point(cluster, "cloned", [alias], state_index=hist, kind="clone")
    cluster.request(
        "PUT",
        f"/{alias}/_doc/new",
        body={"title": "t", "n": 1, "code": 1},
        params={"refresh": "true"},
    )
    cluster.request("DELETE", f"/{alias}/_doc/d1", params={"refresh": "true"})
    with pytest.raises(WritesAtRisk) as info:
        rollback(cluster, "cloned", state_index=hist)
    assert info.value.at_risk == {index: 2}
    assert "2 operation(s)" in info.value.message
    # A retained point has no copy of the index as it was: refused, naming the fix.
    with pytest.raises(RollbackError, match="kind clone or snapshot"):
        rollback(cluster, "kept", state_index=hist, discard_writes=True)
    assert set(alias_targets(cluster, alias)) == {index}  # nothing changed
    assert not is_write_blocked(cluster, index)
    done = rollback(cluster, "cloned", state_index=hist, discard_writes=True)
    assert done.discarded == 2
    assert set(alias_targets(cluster, alias)) == {point.copies[index]}
    assert all_docs(cluster, point.copies[index]) == initial


def test_cleanup_deletes_clones(cluster: Cluster, prefix: str) -> None:
    alias, index, _ = create_source(cluster, prefix, 20)
    hist = f"{prefix}-hist"
    old = create_point(cluster, "c1", [alias], state_index=hist, kind="clone")
    new = create_point(cluster, "c2", [alias], state_index=hist, kind="clone")
    report = cleanup(cluster, state_index=hist, keep=1)
    assert report.points_deleted == ["c1"]
    assert report.indices_deleted == [old.copies[index]]
    assert not cluster.exists(old.copies[index])
    assert cluster.exists(new.copies[index])
    assert cluster.exists(index)  # the alias's index is no point's to delete


def test_a_snapshot_point_restores_an_index_changed_in_place(
    cluster: Cluster, prefix: str, repository: str
) -> None:
    alias, index, initial = create_source(cluster, prefix, 300)
    hist = f"{prefix}-hist"
    point = create_point(
        cluster, "snap", [alias], state_index=hist, kind="snapshot", snapshot_repository=repository
    )
    assert point.snapshot is not None
    assert point.snapshot["state"] == "SUCCESS"
    change_in_place(cluster, alias, hist)
    cluster.request("PUT", f"/{alias}/_doc/late", body={"title": "t", "n": 2, "code": 2, "n2": 4})
    done = rollback(cluster, "snap", state_index=hist, reverse_transform=reverse)
    restored = f"{index}-restored-snap"
    assert done.mode == "carry"
    assert set(alias_targets(cluster, alias)) == {restored}
    expected = {**initial, "late": {"title": "t", "n": 2, "code": 2}}
    assert diff(expected, all_docs(cluster, restored)) == {}
    assert not is_write_blocked(cluster, index)


def test_a_read_only_snapshot_repository_is_refused_before_anything_is_written(
    cluster: Cluster, prefix: str, repository: str
) -> None:
    readonly = f"{prefix}-ro"
    cluster.request(
        "PUT",
        f"/_snapshot/{readonly}",
        body={"type": "fs", "settings": {"location": repository, "readonly": True}},
    )
    try:
        alias, _, _ = create_source(cluster, prefix, 10)
        hist = f"{prefix}-hist"
        for kind in ("snapshot", "clone"):
            with pytest.raises(RollbackError, match="is read-only") as err:
                create_point(
                    cluster,
                    "ro",
                    [alias],
                    state_index=hist,
                    kind=kind,
                    snapshot_repository=readonly,
                )
            assert "Nothing was written" in (err.value.hint or "")
        assert not cluster.exists(hist)
        assert not cluster.request(
            "GET", f"/_cat/indices/{prefix}*clone*", params={"format": "json"}
        )
    finally:
        cluster.request("DELETE", f"/_snapshot/{readonly}")


def test_cleanup_deletes_snapshots(cluster: Cluster, prefix: str, repository: str) -> None:
    alias, _, _ = create_source(cluster, prefix, 20)
    hist = f"{prefix}-hist"
    for name in ("s1", "s2"):
        create_point(
            cluster,
            name,
            [alias],
            state_index=hist,
            kind="snapshot",
            snapshot_repository=repository,
        )
    first = get_point(cluster, "s1", state_index=hist).snapshot
    assert first is not None
    report = cleanup(cluster, state_index=hist, keep=1)
    assert report.snapshots_deleted == [f"{repository}/{first['snapshot']}"]
    with pytest.raises(NotFoundError):
        cluster.request("GET", f"/_snapshot/{repository}/{first['snapshot']}")
    kept = get_point(cluster, "s2", state_index=hist).snapshot
    assert kept is not None
    assert cluster.request("GET", f"/_snapshot/{repository}/{kept['snapshot']}")["snapshots"]


def test_a_point_kind_needs_what_keeps_it(cluster: Cluster, prefix: str) -> None:
    alias, _, _ = create_source(cluster, prefix, 1)
    hist = f"{prefix}-hist"
    with pytest.raises(RollbackError, match="needs a snapshot repository"):
        create_point(cluster, "s", [alias], state_index=hist, kind="snapshot")
    with pytest.raises(RollbackError, match="not a kind"):
        create_point(cluster, "s", [alias], state_index=hist, kind="copy")
    assert list_points(cluster, state_index=hist) == []  # refused before anything is written


@pytest.mark.parametrize("finished", ["after_the_block", "under_the_block"])
def test_a_cut_over_starts_a_snapshot_point(
    cluster: Cluster, prefix: str, repository: str, finished: str
) -> None:
    """The snapshot holds the old index as the cut-over's write block left it when the snapshot
    finished (under the block, or after it was lifted); either way the index it restores takes
    writes again."""
    alias, old, initial = create_source(cluster, prefix, 200)
    hist = f"{prefix}-hist"
    record = rollback_point_hook(
        cluster, "cut", state_index=hist, kind="snapshot", snapshot_repository=repository
    )

    def hook(data: dict[str, Any]) -> None:
        record(data)
        if finished == "under_the_block":
            assert is_write_blocked(cluster, old)
            assert (
                snapshot_state(
                    cluster, get_point(cluster, "cut", state_index=hist), state_index=hist
                )
                == "SUCCESS"
            )

    new = (
        BlueGreen(
            cluster,
            alias,
            TARGET_MAPPING,
            settings={"number_of_replicas": 0},
            transform=transform,
            state_index=hist,
            on_cut_over=hook,
        )
        .run()
        .target
    )
    point = get_point(cluster, "cut", state_index=hist)
    assert point.kind == "snapshot"
    assert snapshot_state(cluster, point, state_index=hist) == "SUCCESS"
    cluster.request("DELETE", f"/{old}")
    cluster.request("PUT", f"/{alias}/_doc/late", body={"title": "t", "n": 1, "code": "c1"})
    done = rollback(cluster, "cut", state_index=hist, reverse_transform=reverse)
    assert done.restored == [old]
    assert set(alias_targets(cluster, alias)) == {old}
    assert (
        diff({**initial, "late": {"title": "t", "n": 1, "code": 1}}, all_docs(cluster, old)) == {}
    )
    assert not is_write_blocked(cluster, new)


def test_an_in_place_migration_records_the_projects_kind_of_point(
    cluster: Cluster, prefix: str, cluster_url: str, tmp_path: Path
) -> None:
    alias, index, initial = create_source(cluster, prefix, 50)
    root = tmp_path / "proj"
    (root / "migrations").mkdir(parents=True)
    (root / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\nrollback_point_kind = "clone"\n'
        f'[esmigrate.connection]\nurl = "{cluster_url}"\n'
    )
    additive = {"properties": {**SOURCE_MAPPING["properties"], **N2["properties"]}}
    (root / "migrations" / "a1_x.py").write_text(
        'revision = "a1"\ndown_revision = None\n\n\ndef upgrade(op):\n'
        f"    op.migrate({alias!r}, {additive!r}, backfill={BACKFILL!r})\n"
    )
    env = env_without_esmigrate()
    upgraded = run_cli("upgrade", cwd=root, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    name = f"before-a1-{alias}"
    shown = json.loads(run_cli("--json", "rollback-point", "show", name, cwd=root, env=env).stdout)
    assert shown["point_kind"] == "clone"
    clone = shown["copies"][index]
    assert set(alias_targets(cluster, alias)) == {index}  # changed in place
    refused = run_cli("rollback", name, cwd=root, env=env)
    assert refused.returncode == 3
    assert "50 operation(s)" in refused.stderr  # the backfill's rewrites
    back = run_cli("rollback", name, "--discard-writes", cwd=root, env=env)
    assert back.returncode == 0, back.stderr
    assert set(alias_targets(cluster, alias)) == {clone}
    assert all_docs(cluster, clone) == initial


def test_a_cut_over_clones_the_old_index(cluster: Cluster, prefix: str) -> None:
    alias, old, initial = create_source(cluster, prefix, 200)
    hist = f"{prefix}-hist"
    new = (
        BlueGreen(
            cluster,
            alias,
            TARGET_MAPPING,
            settings={"number_of_replicas": 0},
            transform=transform,
            state_index=hist,
            on_cut_over=rollback_point_hook(cluster, "cut", state_index=hist, kind="clone"),
        )
        .run()
        .target
    )
    clone = get_point(cluster, "cut", state_index=hist).copies[old]
    assert all_docs(cluster, clone) == initial
    assert not is_write_blocked(cluster, clone)
    assert not is_write_blocked(cluster, old)
    cluster.request("PUT", f"/{alias}/_doc/late", body={"title": "t", "n": 1, "code": "c1"})
    done = rollback(cluster, "cut", state_index=hist, reverse_transform=reverse)
    assert done.carried == 1
    assert set(alias_targets(cluster, alias)) == {clone}
    assert (
        diff({**initial, "late": {"title": "t", "n": 1, "code": 1}}, all_docs(cluster, clone)) == {}
    )
    assert not is_write_blocked(cluster, new)


def test_a_clone_create_killed_under_its_block_is_undone_by_the_next(
    cluster: Cluster, prefix: str
) -> None:
    alias, index, initial = create_source(cluster, prefix, 20)
    hist = f"{prefix}-hist"
    # What a create killed between its write block and the lift leaves: the block, recorded.
    Checkpoint(cluster, hist, "clone-point:p").save(phase="blocked", index=index)
    block_writes(cluster, index)
    point = create_point(cluster, "p", [alias], state_index=hist, kind="clone")
    assert not is_write_blocked(cluster, index)
    assert all_docs(cluster, point.copies[index]) == initial


def test_cli_create_takes_a_kind(
    cluster: Cluster, prefix: str, cluster_url: str, tmp_path: Path
) -> None:
    alias, index, _ = create_source(cluster, prefix, 10)
    (tmp_path / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{cluster_url}"\n'
    )
    env = env_without_esmigrate()
    made = run_cli("--json", "rollback-point", "create", "p", alias, "--kind", "clone",
                   cwd=tmp_path, env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    point = json.loads(made.stdout)
    assert point["point_kind"] == "clone"
    assert cluster.count(point["copies"][index]) == 10
    listed = run_cli("rollback-point", "list", cwd=tmp_path, env=env)
    assert "clone" in listed.stdout
    refused = run_cli("--json", "rollback-point", "create", "s", alias, "--kind", "snapshot",
                      cwd=tmp_path, env=env)  # fmt: skip
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert "needs a snapshot repository" in error["message"]
    assert "--snapshot-repository" in error["hint"]
