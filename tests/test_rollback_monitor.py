"""Retention clean-up and health-triggered automatic rollback, against the real node."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import RollbackError
from esmigrate.migrate._layout import alias_targets, is_write_blocked
from esmigrate.rollback import (
    ClusterHealth,
    DocCountDrop,
    MonitorReport,
    SearchProbe,
    auto_rollback,
    cleanup,
    create_point,
    list_points,
    monitor,
)
from tests.migrate_support import all_docs, create_source, diff, live_writer
from tests.rollback_support import expected_old_format, migrate_with_point, reverse

pytestmark = pytest.mark.integration

# An aggregation the application runs: fine on the old mapping (code: long), an error on the new
# one (code: keyword) — the kind of breakage a health check must catch after a cut-over.
SUM_OF_CODES = {"size": 0, "aggs": {"codes": {"sum": {"field": "code"}}}}


def test_monitor_rolls_back_on_a_failing_probe_with_live_writes(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, old, initial = create_source(cluster, prefix, 2000)
    hist = f"{prefix}-hist"
    writer = live_writer(cluster_url, alias, len(initial), rate=150)
    seen: list[str] = []
    try:
        new = migrate_with_point(cluster, prefix, alias, "pre").target
        writer.wait_for(50, index=new)
        report = auto_rollback(
            cluster,
            "pre",
            [
                ClusterHealth(),
                DocCountDrop.from_point(cluster, "pre", alias, state_index=hist, max_drop=0.5),
                SearchProbe(alias, SUM_OF_CODES, window=3, max_error_rate=0.5),
            ],
            state_index=hist,
            duration=300,
            interval=0.2,
            consecutive=3,
            reverse_transform=reverse,
            on_sample=lambda s: seen.append(s.check),
        )
        writer.wait_for(writer.count(old) + 50, index=old)
    finally:
        writer.stop()
        ops = writer.operations()
    assert not report.healthy
    assert report.failed_check == "search_probe"
    assert len(report.failed) == 3
    assert report.last["health"].ok
    assert report.last["doc_count"].ok
    assert report.rollback is not None
    assert report.rollback.mode == "carry"
    assert set(alias_targets(cluster, alias)) == {old}
    assert not is_write_blocked(cluster, new)
    assert diff(expected_old_format(initial, ops, (old, new)), all_docs(cluster, old)) == {}
    assert {"health", "doc_count", "search_probe"} <= set(seen)
    # Back on the old mapping the same probe is healthy.
    healthy = monitor(cluster, [SearchProbe(alias, SUM_OF_CODES)], duration=0.5, interval=0.1)
    assert healthy.healthy
    assert healthy.last["search_probe"].ok


def test_monitor_calls_back_on_a_user_check(cluster: Cluster, prefix: str) -> None:
    calls: list[int] = []

    def flaky(_: Cluster) -> bool:
        calls.append(1)
        return len(calls) not in (2, 4, 5, 6)  # fails at 2, recovers, then 3 in a row

    reports: list[MonitorReport] = []
    report = monitor(
        cluster, [flaky], duration=60, interval=0, consecutive=3, on_unhealthy=reports.append
    )
    assert not report.healthy
    assert report.failed_check == "flaky"
    assert len(calls) == 6
    assert reports == [report]


def _index(cluster: Cluster, name: str, alias: str | None = None) -> None:
    body: dict[str, object] = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    if alias:
        body["aliases"] = {alias: {}}
    cluster.request("PUT", f"/{name}", body=body)


def test_cleanup_never_deletes_aliased_or_kept(cluster: Cluster, prefix: str) -> None:
    hist = f"{prefix}-hist"
    a, b = f"{prefix}-a", f"{prefix}-b"
    _index(cluster, f"{a}-1", a)
    _index(cluster, f"{b}-1", b)
    create_point(cluster, "p1", [a], state_index=hist)
    create_point(cluster, "p2", [b], state_index=hist)
    _index(cluster, f"{b}-2")
    cluster.request(
        "POST",
        "/_aliases",
        body={
            "actions": [
                {"remove": {"index": f"{b}-1", "alias": b}},
                {"add": {"index": f"{b}-2", "alias": b}},
            ]
        },
    )
    create_point(cluster, "p3", [b], state_index=hist)
    create_point(cluster, "p4", [a, b], state_index=hist)
    dry = cleanup(cluster, state_index=hist, keep=2, dry_run=True)
    assert dry.points_deleted == ["p1", "p2"]
    assert dry.indices_deleted == [f"{b}-1"]
    assert dry.protected == {f"{a}-1": "an alias points to it"}
    assert cluster.exists(f"{b}-1")
    assert len(list_points(cluster, state_index=hist)) == 4
    assert cleanup(cluster, state_index=hist, keep=2, older_than=3600).points_deleted == []
    done = cleanup(cluster, state_index=hist, keep=2)
    assert done.to_dict() == {**dry.to_dict(), "dry_run": False}
    assert not cluster.exists(f"{b}-1")
    assert cluster.exists(f"{a}-1")
    assert cluster.exists(f"{b}-2")
    assert [p.name for p in list_points(cluster, state_index=hist)] == ["p3", "p4"]
    # Unaliased but referenced by a kept point: protected.
    cluster.request(
        "POST", "/_aliases", body={"actions": [{"remove": {"index": f"{a}-1", "alias": a}}]}
    )
    again = cleanup(cluster, state_index=hist, keep=1)
    assert again.points_deleted == ["p3"]
    assert again.indices_deleted == []
    assert cluster.exists(f"{a}-1")


def test_monitor_stops_on_the_event_and_ends_at_a_shared_deadline(cluster: Cluster) -> None:
    stop = threading.Event()
    calls: list[int] = []

    def stops_third(_: Cluster) -> bool:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return True

    stopped = monitor(cluster, [stops_third], duration=600, interval=0, stop=stop)
    assert stopped.healthy
    assert stopped.stopped
    assert stopped.samples == 3
    assert len(calls) == 3
    assert "stopped" in stopped.reason
    assert stopped.started_at <= stopped.ended_at
    # Already set: nothing is sampled.
    assert monitor(cluster, [stops_third], duration=600, stop=stop).samples == 0
    assert len(calls) == 3

    # A deadline that has passed ends the window after one round, whatever the duration.
    ended = monitor(cluster, [lambda _: True], duration=600, interval=0, deadline=time.monotonic())
    assert ended.healthy
    assert not ended.stopped
    assert ended.samples == 1


def test_monitor_refuses_checks_with_the_same_name(cluster: Cluster) -> None:
    with pytest.raises(RollbackError, match="distinct check names"):
        monitor(cluster, [ClusterHealth(), ClusterHealth("x")], duration=1)
