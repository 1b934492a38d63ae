"""``rebuild``: the zero-downtime migrator in one call, recorded in the history like a revision.

The live tests run a writer (indexes, partial updates, deletes through the alias) for the whole
rebuild and compare the new index with exactly what it must hold; the ``source=`` test fills
the new index from an "application database" read while the writer runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command, rebuild
from esmigrate.cluster import Cluster
from esmigrate.config import Config, ConnectionSettings
from esmigrate.exceptions import ExitCode, MigrationCancelled, MigrationError
from esmigrate.migrate._layout import resolve
from esmigrate.migrate._shards import checkpoints, scan
from esmigrate.progress import ProgressEvent
from esmigrate.state import Checkpoint, HistoryStore, rebuild_records
from tests.conftest import env_without_esmigrate, run_cli
from tests.migrate_support import (
    TARGET_MAPPING,
    all_docs,
    check_final_state,
    create_source,
    diff,
    live_writer,
    transform,
)
from tests.migration_project import make_project

pytestmark = pytest.mark.integration


def project(tmp_path: Path, prefix: str, settings: ConnectionSettings) -> Config:
    return make_project(tmp_path, history_index=f"{prefix}-hist", connection=settings)


@pytest.mark.engine_matrix
def test_a_rebuild_under_live_writes_loses_nothing_and_is_recorded(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    alias, source, initial = create_source(cluster, prefix, 5000)
    config = project(tmp_path, prefix, cluster_settings)
    writer = live_writer(cluster_settings.urls[0], alias, len(initial))
    try:
        writer.wait_for(100)
        result = rebuild(alias, to=TARGET_MAPPING, transform=transform, config=config)
        target = result.migration["target"]
        writer.wait_for(50, index=target)  # writes after the cut-over land in the new index
    finally:
        writer.stop()
        ops = writer.operations()
    assert sum(1 for o in ops if o["index"] == source) >= 100
    check_final_state(cluster, alias, source, target, initial, ops)

    assert result.state == "applied"
    assert result.id.startswith(f"rebuild:{alias}:")
    status = command.status(config)
    (recorded,) = status["rebuilds"]
    assert recorded["state"] == "applied"
    assert recorded["alias"] == alias
    assert recorded["source"] == "live index"
    assert recorded["transform"] == "tests.migrate_support.transform"
    assert recorded["result"]["target"] == target
    assert status["current"] == []  # not a revision: the revision graph never sees it
    kinds = [(h["kind"], h.get("alias")) for h in command.history(config)]
    assert kinds == [("rebuild", alias)]

    # Its rollback point takes the alias back to the old index.
    points = [p["name"] for p in command.rollback_point_list(config)]
    assert result.rollback_point in points
    command.rollback(config, result.rollback_point, discard_writes=True)
    assert resolve(cluster, alias).source == source


def _in_o(cluster: Cluster, index: str) -> dict[str, tuple[int, int, dict[str, Any]]]:
    """id -> (shard, _seq_no, _source) of every document of ``index``."""
    cluster.refresh(index)
    found: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for shard, top in checkpoints(cluster, index).items():
        for hits, _ in scan(cluster, index, shard, -1, top, with_seq=True):
            for hit in hits:
                found[hit["_id"]] = (shard, int(hit["_seq_no"]), hit["_source"])
    return found


def _apply(state: dict[str, Any], ops: list[dict[str, Any]], index: str) -> dict[str, Any]:
    """``state`` with the writer's operations that landed in ``index`` applied in order."""
    out = dict(state)
    for op in ops:
        if op["index"] != index or op["result"] in (None, "not_found"):
            continue
        if op["op"] == "index":
            out[op["id"]] = dict(op["doc"])
        elif op["op"] == "update":
            out[op["id"]] = {**out[op["id"]], **op["doc"]}
        else:
            out.pop(op["id"], None)
    return out


@pytest.mark.engine_matrix
@pytest.mark.parametrize("mode", ["reindex", "python"])
def test_a_rebuild_from_the_application_s_documents_catches_up_the_live_writes(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path, mode: str
) -> None:
    """The new index holds, per document: the live index's version (transformed) when it was
    written after the rebuild began, else the application's version when the application
    yielded it, else the live index's (transformed); documents the live index does not hold
    at the cut-over are not in it. Then the writes made after the cut-over."""
    alias, source, initial = create_source(cluster, prefix, 3000)
    config = project(tmp_path, prefix, cluster_settings)
    form = transform if mode == "python" else (lambda doc: doc)

    def database_form(doc: dict[str, Any]) -> dict[str, Any]:
        # The application builds the new form itself; an odd n2 tells its documents apart.
        new = transform(json.loads(json.dumps(doc)))
        return {**new, "n2": new["n"] * 2 + 1}

    yielded: set[str] = set()
    c0: dict[str, int] = {}

    def database() -> Any:
        """Reads the current rows (here: the live index's current documents) while the
        writer runs; leaves every 7th out, and yields rows the index never had."""
        # Read first, the rebuild's C0: what the live index held when it began.
        (running,) = rebuild_records(HistoryStore(cluster, config.history_index), alias)
        c0.update(Checkpoint(cluster, config.history_index, running.id).load()["checkpoints"])
        ids = sorted(initial)
        for start in range(0, len(ids), 200):
            chunk = [i for n, i in enumerate(ids[start : start + 200]) if (start + n) % 7]
            rows = cluster.request("POST", f"/{alias}/_mget", body={"ids": chunk})["docs"]
            for row in rows:
                if row.get("found"):
                    yielded.add(row["_id"])
                    yield {"_id": row["_id"], "_source": database_form(row["_source"])}
        for n in range(20):
            yield (f"ghost-{n}", {"title": "never indexed", "n": n, "n2": 0, "code": "x"})

    writer = live_writer(cluster_settings.urls[0], alias, len(initial))
    try:
        writer.wait_for(100)
        result = rebuild(
            alias,
            to=TARGET_MAPPING,
            transform=transform if mode == "python" else None,
            source=database(),
            config=config,
        )
        target = result.migration["target"]
        writer.wait_for(50, index=target)
    finally:
        writer.stop()
        ops = writer.operations()
    assert result.source == "application"
    at_cut_over: dict[str, Any] = {}
    # Catch-up rounds read each shard from its own checkpoint; copy mode reindex without
    # Capabilities.slice_by_shard runs one task over all shards, from the lowest of them.
    lowest = min(int(v) for v in c0.values())
    per_shard = mode == "python" or cluster.capabilities.slice_by_shard
    for doc_id, (shard, seq, doc) in _in_o(cluster, source).items():
        since = int(c0[str(shard)]) if per_shard else lowest
        if seq <= since and doc_id in yielded:
            at_cut_over[doc_id] = database_form(doc)
        else:
            at_cut_over[doc_id] = form(json.loads(json.dumps(doc)))
    expected = _apply(at_cut_over, ops, target)
    assert diff(expected, all_docs(cluster, target)) == {}
    assert not any(doc_id.startswith("ghost-") for doc_id in all_docs(cluster, target))
    from_db = sum(1 for d in all_docs(cluster, target).values() if d.get("n2", 0) % 2)
    assert from_db > 1000  # most documents came from the application


def test_a_dry_run_writes_nothing(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    alias, _, _ = create_source(cluster, prefix, 50)
    config = project(tmp_path, prefix, cluster_settings)

    def indices() -> set[tuple[str, str]]:
        listed = cluster.request(
            "GET", "/_cat/indices", params={"format": "json", "expand_wildcards": "all"}
        )
        return {(i["index"], i["docs.count"]) for i in listed}

    before = indices()
    aliases = cluster.request("GET", "/_alias")
    planned = rebuild(alias, to=TARGET_MAPPING, config=config, dry_run=True)
    assert planned.state == "planned"
    assert [s["kind"] for s in planned.plan][:2] == ["preflight", "create_index"]
    assert indices() == before
    assert cluster.request("GET", "/_alias") == aliases
    assert not cluster.exists(config.history_index)


def test_an_interrupted_rebuild_resumes_and_another_definition_is_refused(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    alias, _, initial = create_source(cluster, prefix, 2000)
    config = project(tmp_path, prefix, cluster_settings)
    store = HistoryStore(cluster, config.history_index)

    def interrupted() -> str:
        """A rebuild stopped (Ctrl-C) in its copy phase; its id."""
        cancel = threading.Event()

        def stop_in_copy(event: ProgressEvent) -> None:
            if event.phase == "copy" and event.done:
                cancel.set()

        with pytest.raises(MigrationCancelled):
            rebuild(alias, to=TARGET_MAPPING, transform=transform, config=config,
                    on_progress=stop_in_copy, cancel=cancel, requests_per_second=1000)  # fmt: skip
        last = rebuild_records(store, alias)[-1]
        assert last.state == "running"
        return last.id

    first = interrupted()
    with pytest.raises(MigrationError, match="another definition"):
        rebuild(alias, to=TARGET_MAPPING, config=config)  # no transform: not the same run
    resumed = rebuild(alias, to=TARGET_MAPPING, transform=transform, config=config)
    assert resumed.resumed is True
    assert resumed.id == first
    assert len(all_docs(cluster, resumed.migration["target"])) == len(initial)

    fresh = rebuild(alias, to=TARGET_MAPPING, transform=transform, config=config)
    assert not fresh.resumed  # a finished rebuild is not resumed: rebuilding rebuilds
    assert fresh.id != first

    given_up = interrupted()
    restarted = rebuild(alias, to=TARGET_MAPPING, config=config, restart=True)
    assert restarted.id != given_up
    states = {r.id: r.state for r in rebuild_records(store, alias)}
    assert states == {first: "applied", fresh.id: "applied", given_up: "abandoned",
                      restarted.id: "applied"}  # fmt: skip
    assert resolve(cluster, alias).source == restarted.migration["target"]


def test_the_rebuild_command(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, initial = create_source(cluster, prefix, 500)
    make_project(tmp_path, url=cluster_url, history_index=f"{prefix}-hist")
    (tmp_path / "shop.py").write_text(
        "from esmigrate.transform import RuleSet, Rename, Set\n"
        f"MAPPING = {TARGET_MAPPING!r}\n"
        "rules = RuleSet(Rename('body', 'content'), Set('n2', 0))\n"
        "def noop(doc):\n    return doc\n"
    )
    env = env_without_esmigrate()
    both = run_cli("rebuild", alias, "--to", "shop:MAPPING", "--rules", "shop:rules",
                   "--transform", "shop:noop", cwd=tmp_path, env=env)  # fmt: skip
    assert both.returncode == ExitCode.USAGE
    dry = run_cli("--json", "rebuild", alias, "--to", "shop:MAPPING", "--dry-run", cwd=tmp_path,
                  env=env)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["state"] == "planned"
    done = run_cli("--json", "rebuild", alias, "--to", "shop:MAPPING", "--rules", "shop:rules",
                   cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    target = data["migration"]["target"]
    assert all_docs(cluster, target)["d1"]["content"] == initial["d1"]["body"]
    assert "rebuild" in done.stderr  # progress and lines on stderr, the result on stdout

    status = json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)
    assert [r["id"] for r in status["rebuilds"]] == [data["id"]]
    assert f"rebuild        {alias}: applied" in run_cli("status", cwd=tmp_path, env=env).stdout
    history = json.loads(run_cli("--json", "history", cwd=tmp_path, env=env).stdout)
    assert [(h["kind"], h["state"]) for h in history] == [("rebuild", "applied")]
    back = run_cli("--json", "rollback", data["rollback_point"], "--discard-writes",
                   cwd=tmp_path, env=env, timeout=300)  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert resolve(cluster, alias).source == source
    # The history says the rebuild is no longer live.
    status = json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)
    assert [(r["id"], r["state"]) for r in status["rebuilds"]] == [(data["id"], "rolled_back")]
    assert status["rebuilds"][0]["rolled_back_to"]["point"] == data["rollback_point"]
