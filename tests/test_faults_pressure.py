"""Cluster pressure during a blue-green migration, on the real node: a circuit-breaker storm that
refuses the copy's bulk requests for a while, and a shard of the source lost mid-copy (a red
index), a red source. The flood-stage disk watermark is in ``test_migrate_faults.py``. Each
records its figures for the reliability report (kind ``pressure``).

Each is judged as every data path is: what became of the documents, whether the application
still reads and writes the source, and whether the next run finishes with the exact state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import PreflightError
from esmigrate.migrate import ProgressEvent
from tests.fault_runs import assert_clean, fault_run, outcome
from tests.migrate_support import check_final_state, create_source, live_writer, migration

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BREAKER = "network.breaker.inflight_requests.limit"


def _tripped(cluster: Cluster) -> int:
    """Times the in-flight requests breaker refused a request, summed over the nodes."""
    stats = cluster.request(
        "GET",
        "/_nodes/stats/breaker",
        params={"filter_path": "nodes.*.breakers.in_flight_requests"},
    )
    return sum(
        int(node["breakers"]["in_flight_requests"]["tripped"]) for node in stats["nodes"].values()
    )


@pytest.fixture
def breaker(cluster: Cluster) -> Iterator[Any]:
    """Sets the in-flight requests breaker's limit; puts the default back whatever happens."""

    def set_limit(limit: str | None) -> None:
        cluster.request("PUT", "/_cluster/settings", body={"persistent": {BREAKER: limit}})

    yield set_limit
    set_limit(None)


def test_a_circuit_breaker_storm_during_the_copy_is_ridden_out(
    cluster: Cluster, cluster_url: str, prefix: str, breaker: Any
) -> None:
    """For a few seconds the node refuses every request body over 1 kB (HTTP 429,
    ``circuit_breaking_exception``): each bulk of the Python copy, never the application's
    one-document writes. The copy backs off and retries; nothing is lost or dead-lettered."""
    alias, source, initial = create_source(cluster, prefix, 3000)
    cfg = {
        "alias": alias,
        "path": "python",
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "rps": 400,  # a copy of several seconds: the storm lands in it
        "page_size": 100,
    }
    before = _tripped(cluster)
    storm: list[threading.Timer] = []

    def start_storm(event: ProgressEvent) -> None:
        if event.phase == "copy" and not storm:
            breaker("1kb")
            storm.append(threading.Timer(4.0, breaker, args=(None,)))
            storm[0].start()

    writer = live_writer(cluster_url, alias, len(initial), rate=100)
    with fault_run("pressure", "circuit-breaker-storm") as run:
        try:
            writer.wait_for(50)
            result = migration(cluster, cfg, on_progress=start_storm).run()
        finally:
            for timer in storm:
                timer.join()
            writer.stop()
        refused = _tripped(cluster) - before
        found = outcome(cluster, alias, source, result.target, initial, writer.operations())
        # The faults: requests the breaker refused.
        run.measured(found, writer.report().blocked_longest_s, faults=refused, runs=1)
        assert storm, "the copy never started"
        assert refused > 0, "the breaker refused nothing: no storm happened"
        assert result.failures == 0
        assert_clean(found)
        check_final_state(cluster, alias, source, result.target, initial, writer.operations())


def test_a_source_primary_failing_mid_copy_is_ridden_out(
    cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    """A primary of the source fails in the middle of the copy (cancelled as a failed shard is)
    and recovers from its own data, while the application writes: the copy's reads of that
    shard wait or retry, the writes made meanwhile are caught up, nothing is lost."""
    alias, source, initial = create_source(cluster, prefix, 3000)
    cfg = {
        "alias": alias,
        "path": "python",
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "rps": 400,
        "page_size": 100,
    }
    states: list[str] = []

    def fail_a_primary(event: ProgressEvent) -> None:
        if event.phase == "copy" and not states and event.done >= 500:
            node = cluster.request(
                "GET", f"/_cat/shards/{source}", params={"format": "json", "h": "node"}
            )[0]["node"]
            cancel = {"index": source, "shard": 1, "node": node, "allow_primary": True}
            cluster.request("POST", "/_cluster/reroute", body={"commands": [{"cancel": cancel}]})
            shards = cluster.request(
                "GET", f"/_cat/shards/{source}", params={"format": "json", "h": "shard,state"}
            )
            states.extend(s["state"] for s in shards if s["shard"] == "1")

    writer = live_writer(cluster_url, alias, len(initial), rate=100)
    with fault_run("pressure", "source-primary-failed") as run:
        try:
            writer.wait_for(50)
            result = migration(cluster, cfg, on_progress=fail_a_primary).run()
        finally:
            writer.stop()
        found = outcome(cluster, alias, source, result.target, initial, writer.operations())
        run.measured(found, writer.report().blocked_longest_s, faults=len(states[:1]), runs=1)
        assert states, "the copy ended before the primary failed"
        assert states[0] != "STARTED", f"the primary did not fail: {states}"
        assert result.failures == 0
        assert_clean(found)
        check_final_state(cluster, alias, source, result.target, initial, writer.operations())


def test_a_red_source_is_refused_before_the_migration_creates_anything(
    cluster: Cluster, prefix: str
) -> None:
    """A source whose primary cannot be allocated anywhere (a red index): the migration is
    refused in its pre-flight, naming the problem and the red index, before it creates an
    index."""
    alias, source = f"{prefix}-posts", f"{prefix}-posts-v1"
    cluster.request(
        "PUT",
        f"/{source}",
        body={
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "index.routing.allocation.require._name": "nowhere",
            },
            "aliases": {alias: {"is_write_index": True}},
        },
        params={"wait_for_active_shards": "0"},
    )
    before = sorted(
        i["index"]
        for i in cluster.request("GET", f"/_cat/indices/{prefix}*", params={"format": "json"})
    )
    cfg = {
        "alias": alias,
        "path": "python",
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
    }
    with fault_run("pressure", "red-source-refused") as run:
        run.set(faults=1, runs=1)
        try:
            with pytest.raises(PreflightError) as refused:
                migration(cluster, cfg).run()
        finally:
            cluster.request("DELETE", f"/{source}")
    assert refused.value.problem == "cluster_red"
    assert source in refused.value.message
    assert "allocation/explain" in (refused.value.hint or "")
    after = sorted(
        i["index"]
        for i in cluster.request("GET", f"/_cat/indices/{prefix}*", params={"format": "json"})
        if i["index"] != source
    )
    # Only the state index holding the migration's lease (as a history table would) is new.
    assert set(after) - set(before) <= {f"{prefix}-hist"}
