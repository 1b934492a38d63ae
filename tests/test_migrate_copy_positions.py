"""Delete positions established by the copy (migrate/_bluegreen_run.py, _positions.py): a
blue-green run's copy records the position of every document it copies, so the first position
pass after it checks only what the catch-up rounds wrote, never all of the new index.

On the real node, both copy modes: a migration with no writes copies each document once and its
position passes check nothing; deletes, updates and re-creates made during the copy end exactly
right; a copy killed in its middle and resumed falls back to checking all of the new index (the
dead process's copies have no positions) and ends exactly right too."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.cluster._errors import partial_results
from esmigrate.migrate import MigrationResult, ProgressEvent
from esmigrate.migrate._positions import Snapshot, positions_name
from esmigrate.state import Checkpoint
from tests.migrate_support import (
    all_docs,
    blue_green_on,
    check_final_state,
    create_source,
    live_writer,
    make_doc,
    migration,
    report,
    run_killed,
    transform,
)

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

PATHS = ["painless", "python"]


def checkpoint(cluster: Cluster, prefix: str, result: MigrationResult) -> dict[str, Any]:
    return Checkpoint(cluster, f"{prefix}-hist", result.migration).load()


def transformed(cluster: Cluster, index: str) -> dict[str, dict[str, Any]]:
    return {k: transform(json.loads(json.dumps(v))) for k, v in all_docs(cluster, index).items()}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shards", [1, 3])
def test_no_writes_copies_each_document_once_and_checks_none(
    cluster: Cluster, prefix: str, path: str, shards: int
) -> None:
    alias, source, initial = create_source(cluster, prefix, 5_000, shards=shards)
    result = blue_green_on(cluster, prefix, alias, path).run()
    state = checkpoint(cluster, prefix, result)
    assert result.copied == len(initial)
    # Every document was positioned by the copy; the rounds wrote nothing, so no pass checked
    # any document of the new index against the old one.
    assert state["copy_positioned"] == len(initial)
    assert state["positions_checked"] == 0
    assert all_docs(cluster, result.target) == transformed(cluster, source)
    # The target holds each document once: no operation beyond one per document.
    stats = cluster.request("GET", f"/{result.target}/_stats/indexing")
    indexed = stats["indices"][result.target]["primaries"]["indexing"]["index_total"]
    assert indexed == len(initial)
    assert not cluster.exists(positions_name(result.target))


def _mutate(cluster: Cluster, index: str, n: int) -> dict[str, list[str]]:
    """Deletes, updates and delete-then-re-creates spread over the whole source (documents the
    copy has read already and documents it has not reached), written at once."""
    early = range(0, 60)
    late = range(n - 60, n)
    groups: dict[str, list[str]] = {"deleted": [], "updated": [], "recreated": []}
    lines: list[bytes] = []
    for part in (early, late):
        ids = [f"d{i}" for i in part]
        for doc_id in ids[:20]:
            lines.append(orjson.dumps({"delete": {"_index": index, "_id": doc_id}}))
            groups["deleted"].append(doc_id)
        for doc_id in ids[20:40]:
            lines.append(orjson.dumps({"update": {"_index": index, "_id": doc_id}}))
            lines.append(orjson.dumps({"doc": {"title": f"updated {doc_id}", "n": 1}}))
            groups["updated"].append(doc_id)
        for doc_id in ids[40:]:
            lines.append(orjson.dumps({"delete": {"_index": index, "_id": doc_id}}))
            groups["recreated"].append(doc_id)
        for doc_id in ids[40:]:
            lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
            lines.append(orjson.dumps({**make_doc(int(doc_id[1:])), "title": "again"}))
    body = b"\n".join(lines) + b"\n"
    # The copy's tasks may fill the write queue: items refused with 429 are sent again (the
    # whole bulk: each line leaves the same final state when repeated).
    for _ in range(20):
        result = cluster.bulk(body)
        failed = [a for i in result["items"] for a in i.values() if "error" in a]
        if not failed or any(int(a.get("status", 0)) != 429 for a in failed):
            break
        time.sleep(0.5)
    assert not failed, failed[:3]
    return groups


def mutate_during_the_copy(
    cluster: Cluster, source: str, n: int
) -> tuple[list[dict[str, list[str]]], Callable[[ProgressEvent], None]]:
    """A progress callback that deletes, updates and re-creates documents of ``source`` at the
    copy's first report (:func:`_mutate`), once; and the list that gets what it did."""
    done: list[dict[str, list[str]]] = []
    once = threading.Lock()

    def on_progress(event: ProgressEvent) -> None:
        # Per-shard copy tasks report from their own threads: the writes are made once.
        if event.phase == "copy" and event.done and once.acquire(blocking=False):
            done.append(_mutate(cluster, source, n))

    return done, on_progress


@pytest.mark.parametrize("path", PATHS)
def test_deletes_updates_and_recreates_during_the_copy_end_exact(
    cluster: Cluster, prefix: str, path: str
) -> None:
    """The writes land in the middle of the copy (a throttled copy, written at its first
    progress report); the new index must end as the transform of the old one's final state."""
    n = 6_000
    alias, source, _ = create_source(cluster, prefix, n)
    done, on_progress = mutate_during_the_copy(cluster, source, n)
    result = blue_green_on(
        cluster, prefix, alias, path, requests_per_second=2000, page_size=200,
        on_progress=on_progress,
    ).run()  # fmt: skip
    assert done, "the copy reported no progress to write during"
    groups = done[0]
    state = checkpoint(cluster, prefix, result)
    assert state["copy_positioned"] > 0
    # Only what the rounds wrote was checked: never all of the new index.
    assert state["positions_checked"] < n // 2
    expected = transformed(cluster, source)
    actual = all_docs(cluster, result.target)
    assert sorted(set(expected) ^ set(actual)) == []
    assert [k for k in expected if expected[k] != actual[k]] == []
    assert not set(groups["deleted"]) & set(actual)
    assert all(actual[d]["title"] == "again" for d in groups["recreated"])
    assert all(actual[d]["title"].startswith("updated") for d in groups["updated"])


def test_a_snapshot_losing_a_shard_falls_back_to_checking_all_and_ends_exact(
    cluster: Cluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scroll that records the positions while the ``_reindex`` tasks copy loses its shard
    (the copy holding it relocated or left: the next page fails on that shard). The copy
    stands; the positions are incomplete, so the first position pass checks all of the new
    index, and deletes made during the copy are found all the same."""
    n = 6_000
    alias, source, _ = create_source(cluster, prefix, n)

    def lost_a_shard(self: Snapshot, halt: threading.Event | None = None) -> int:
        failure = {"type": "search_context_missing_exception", "reason": "No search context"}
        shards = {"total": 1, "failed": 1, "failures": [{"reason": failure}]}
        error = partial_results(source, {"_shards": shards})
        assert error is not None
        raise error

    monkeypatch.setattr(Snapshot, "record", lost_a_shard)
    done, on_progress = mutate_during_the_copy(cluster, source, n)
    result = blue_green_on(
        cluster, prefix, alias, "painless", requests_per_second=2000, page_size=200,
        on_progress=on_progress,
    ).run()  # fmt: skip
    assert done, "the copy reported no progress to write during"
    state = checkpoint(cluster, prefix, result)
    assert state["copy_positioned"] == 0
    assert state["positions_checked"] >= n - len(done[0]["deleted"])  # all of the new index
    expected = transformed(cluster, source)
    actual = all_docs(cluster, result.target)
    assert sorted(set(expected) ^ set(actual)) == []
    assert [k for k in expected if expected[k] != actual[k]] == []
    assert not set(done[0]["deleted"]) & set(actual)


@pytest.mark.parametrize("path", PATHS)
def test_live_writer_during_the_copy_ends_exact(
    cluster: Cluster, prefix: str, cluster_url: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 10_000)
    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        result = blue_green_on(cluster, prefix, alias, path, requests_per_second=2500).run()
        writer.wait_for(50, index=result.target)
    finally:
        writer.stop()
        ops, summary = writer.operations(), writer.report()
    check_final_state(cluster, alias, source, result.target, initial, ops)
    state = checkpoint(cluster, prefix, result)
    assert state["copy_positioned"] > 0
    assert state["positions_checked"] < len(initial)
    report(summary, ops, f"writes during the copy ({path})")


@pytest.mark.parametrize("path", PATHS)
def test_copy_killed_and_resumed_checks_all_and_ends_exact(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str, path: str
) -> None:
    """The copy a dead process started has no positions for what it copied: the resumed run
    checks all of the new index in its first pass, and the result is exact."""
    alias, source, initial = create_source(cluster, prefix, 10_000)
    cfg: dict[str, Any] = {
        "url": cluster_url,
        "alias": alias,
        "path": path,
        "kill_at": "copy",
        "fraction": 0.4,
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "rps": 2500,
        "page_size": 500,
        "lease_ttl": 6.0,
    }
    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        run_killed(tmp_path / "run.json", cfg)
        stored = Checkpoint(cluster, cfg["state_index"], f"blue-green:{alias}").load()
        assert stored["phase"] == "copy"
        assert not stored.get("positions")
        writer.wait_for(writer.count() + 50)
        cfg["rps"] = None
        result = migration(cluster, cfg).run()
        assert result.resumed
        writer.wait_for(50, index=result.target)
    finally:
        writer.stop()
        ops, _ = writer.operations(), writer.report()
    check_final_state(cluster, alias, source, result.target, initial, ops)
    state = checkpoint(cluster, prefix, result)
    assert state["copy_positioned"] == 0
    # The fallback: the first pass checked every document of the new index.
    assert state["positions_checked"] >= len(initial) // 2
