"""A new primary term on a shard of the source (migrate/_bluegreen_run.py, ``_watch_primaries``).

After a failover or a node restart, operations above the global checkpoint may be rolled back: a
version the migration copied may be gone from the source, a document it copied may never have
existed, and an older version a round skipped (a newer one was above its checkpoint) may be back.
No checkpoint or range count can tell which, so a blue-green run that sees a shard's primary term
change reads that shard again in full and checks all of the new index against the source.

On the real node, both copy modes: the source's primary terms are raised by closing and opening
it (as a failover or restart raises them), while the new index holds what a rolled-back read would
have left there — a version the source never held and a document it never had. The run ends with
the new index exactly the transform of the source. An incremental run does the same between
runs: a shard whose term grew since the last run is read again whole."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate import ProgressEvent
from esmigrate.migrate._shards import primary_terms
from esmigrate.state import Checkpoint
from tests.migrate_support import (
    all_docs,
    blue_green_on,
    create_source,
    incremental_runs,
    transform,
)

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]


def reopen(cluster: Cluster, index: str) -> None:
    """Close and open ``index``: its shards' primaries are recovered from their store, under a
    new primary term."""
    cluster.request("POST", f"/{index}/_close")
    cluster.request("POST", f"/{index}/_open", params={"wait_for_active_shards": "all"})
    cluster.health(index, wait_for_status="green", timeout="60s")


@pytest.mark.parametrize("path", ["painless", "python"])
def test_a_new_primary_term_reads_the_shard_again_and_ends_exact(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 3_000, shards=2)
    before = primary_terms(cluster, source)
    assert set(before) == {0, 1}
    target = f"{alias}-v2"
    reopened: list[str] = []
    once = threading.Lock()
    victim = sorted(initial)[0]

    def on_progress(event: ProgressEvent) -> None:
        # At the end of the copy (before the first round): N holds a version of `victim` that O
        # never held and a document O never had, as reads of rolled-back operations would leave.
        if event.message == "copy complete" and once.acquire(blocking=False):
            cluster.request("PUT", f"/{target}/_doc/{victim}", body={"title": "never acknowledged"})
            cluster.request("PUT", f"/{target}/_doc/ghost", body={"title": "never created"})
            reopen(cluster, source)
            reopened.append(source)

    result = blue_green_on(
        cluster, prefix, alias, path, target=target, on_progress=on_progress
    ).run()
    assert reopened == [source], "the copy did not report its end"
    after = primary_terms(cluster, source)
    assert all(after[s] > before[s] for s in before)
    state: dict[str, Any] = Checkpoint(cluster, f"{prefix}-hist", result.migration).load()
    assert state["primary_changes"] == 1
    assert state["terms"] == {str(s): t for s, t in after.items()}
    # Both shards were read again in full (each document written a second time), and the
    # position pass after it checked all of the new index.
    assert result.copied >= 2 * len(initial)
    assert state["positions_checked"] >= len(initial)
    expected = {k: transform(v) for k, v in all_docs(cluster, source).items()}
    actual = all_docs(cluster, result.target)
    assert sorted(set(expected) ^ set(actual)) == []
    assert [k for k in expected if expected[k] != actual[k]] == []


@pytest.mark.parametrize("path", ["painless", "python"])
def test_a_new_primary_term_under_the_write_block_retries_the_cut_over(
    cluster: Cluster, prefix: str, path: str
) -> None:
    """The term changes after the block is set: the final round refuses to cut over on what the
    block's reads saw, lifts the block, reads the shards again and cuts over on the next try."""
    alias, source, initial = create_source(cluster, prefix, 2_000, shards=2)
    before = primary_terms(cluster, source)
    blocked: list[bool] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.phase == "blocked":
            blocked.append(True)
            if len(blocked) == 1:
                reopen(cluster, source)

    result = blue_green_on(cluster, prefix, alias, path, on_progress=on_progress).run()
    # Blocked twice: the reads under the first block were not cut over on.
    assert blocked == [True, True]
    state: dict[str, Any] = Checkpoint(cluster, f"{prefix}-hist", result.migration).load()
    assert state["phase"] == "done"
    assert state["primary_changes"] == 1
    assert state["terms"] == {str(s): t for s, t in primary_terms(cluster, source).items()}
    assert all(state["terms"][str(s)] > t for s, t in before.items())
    assert result.copied >= 2 * len(initial)
    settings = cluster.request("GET", f"/{source}/_settings")[source]["settings"]["index"]
    assert settings.get("blocks", {}).get("write") in (None, "false")
    expected = {k: transform(v) for k, v in all_docs(cluster, source).items()}
    assert all_docs(cluster, result.target) == expected


@pytest.mark.parametrize("path", ["painless", "python"])
def test_incremental_reads_a_shard_again_after_a_new_primary_term(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 2_000, shards=2)
    target, run = incremental_runs(cluster, alias, prefix, path)

    assert run().copied == len(initial)
    # Between runs: the target holds what reads of rolled-back operations would have left, and
    # the source's primaries are recovered under new terms.
    victim = sorted(initial)[0]
    cluster.request("PUT", f"/{target}/_doc/{victim}", body={"title": "never acknowledged"})
    cluster.request("PUT", f"/{target}/_doc/ghost", body={"title": "never created"})
    cluster.refresh(target)
    reopen(cluster, source)
    second = run()
    assert second.copied >= len(initial), "the shards were not read again in full"
    state = Checkpoint(cluster, f"{prefix}-hist", second.migration).load()
    assert state["primary_changes"] == 1
    assert state["terms"] == {str(s): t for s, t in primary_terms(cluster, source).items()}
    expected = {k: transform(v) for k, v in all_docs(cluster, source).items()}
    assert all_docs(cluster, target) == expected
    # Nothing changed since: the next run does not read it all again.
    assert run().copied == 0 or path == "painless"
