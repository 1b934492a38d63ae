"""A real multi-node cluster: three dev-server nodes on loopback (the test's own), the source index
with two shards and one replica each, a live writer through the alias; the node holding a
primary of the SOURCE is stopped (SIGTERM) or crashes (SIGKILL) mid-migration (during the copy in
both copy modes, the catch-up, under the write block) and is started again on its data path in
the background. The replica is promoted; the migration rides it out or
fails with an esmigrate error and is run again, as an operator would, until done. Then the new
index must hold exactly what the writer's acknowledged operations say, the alias must point at
it and no write block may be left. The same holds when the primary is relocated to the third
node mid-copy (the copy's open reads of the old copy end with it).

Two more things only a cluster shows: a new index whose writes wait for more active copies
(``index.write.wait_for_active_shards``) than a cluster that lost a node can give, and a snapshot
rollback point taken while a node is gone (the nodes share one snapshot location).

The writer and the migration talk to a node that holds no primary the test fails over, so
what is measured is the failover, not a lost coordinating node (tests/test_faults_restart.py).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from esmigrate import devserver
from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import EsmigrateError, RollbackError
from esmigrate.migrate import InPlace, ProgressEvent
from esmigrate.migrate import _layout as migrate_layout
from esmigrate.migrate._layout import alias_targets, is_write_blocked, resolve
from esmigrate.rollback import create_point, list_points, rollback
from esmigrate.state import Checkpoint
from esmigrate.testing._cluster import TEST_ENGINE_ENV, TEST_URL_ENV
from tests.fault_runs import assert_clean, fault_run, full_only, outcome, run_until_done
from tests.migrate_support import all_docs, create_source, diff, live_writer, migration
from tests.rollback_support import reverse

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: Three small nodes beside the session's node on a 2-core machine.
HEAP = "384m"
NODES = 3


class SmallCluster:
    """The test's own dev-server cluster; one node of it can be stopped and started again."""

    def __init__(self) -> None:
        self.port = devserver.free_port(NODES)
        self.engine = os.environ.get(TEST_ENGINE_ENV) or None
        self.failovers = 0
        self._thread: threading.Thread | None = None
        self._down = threading.Event()
        self._error: BaseException | None = None

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def start(self) -> None:
        devserver.start(self.port, engine=self.engine, heap=HEAP, nodes=NODES)

    def restart_in_background(self, port: int, *, kill: bool = False) -> None:
        """Stop the node on ``port`` (SIGTERM, or SIGKILL as a crash with ``kill``) and start
        it again on its data path, in a thread; :meth:`wait_down` returns once it is stopped."""

        def restart() -> None:
            try:
                devserver.stop_node(port, kill=kill)
                self._down.set()
                devserver.start_node(port)
            except BaseException as exc:
                self._error = exc
                self._down.set()

        self.failovers += 1
        self._down.clear()
        self._thread = threading.Thread(target=restart, name="node-restart", daemon=True)
        self._thread.start()

    def wait_down(self) -> None:
        self._down.wait(timeout=120)

    def wait_up(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=300)
            assert not self._thread.is_alive(), "the node did not start again"
            self._thread = None
        if self._error is not None:
            raise self._error


@pytest.fixture
def small_cluster() -> Iterator[SmallCluster]:
    if os.environ.get(TEST_URL_ENV):
        pytest.skip("starts a cluster of the test's own: the embedded dev-server only")
    own = SmallCluster()
    own.start()
    try:
        yield own
    finally:
        own.wait_up()
        devserver.stop(own.port)


def primary_node_port(cluster: Cluster, index: str, shard: int) -> int:
    """The HTTP port of the dev-server node holding the primary of ``index``'s ``shard``."""
    return int(shard_nodes(cluster, index, shard)["p"].rsplit("-", 1)[1])


@dataclass(frozen=True)
class Case:
    name: str
    copy: str  # "painless" (copy mode reindex) or "python"
    phase: str
    docs: int = 3000
    fast: bool = False
    #: the node crashes (SIGKILL) rather than being stopped (SIGTERM)
    kill: bool = False


CASES = [
    Case("copy-python", "python", "copy", fast=True),
    Case("copy-painless", "painless", "copy"),
    Case("catchup-python", "python", "catchup"),
    Case("blocked-python", "python", "blocked"),
    Case("copy-painless-sigkill", "painless", "copy", kill=True),
    Case("catchup-python-sigkill", "python", "catchup", kill=True),
    Case("blocked-python-sigkill", "python", "blocked", kill=True),
]


def _params() -> list[Any]:
    return [
        pytest.param(case, id=case.name, marks=() if case.fast else full_only) for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_a_primary_failing_over_mid_migration_loses_nothing(
    small_cluster: SmallCluster, case: Case
) -> None:
    first = connect(ConnectionSettings(urls=(small_cluster.url(small_cluster.port),)))
    alias, source, initial = create_source(first, "mn", case.docs)
    first.request("PUT", f"/{source}/_settings", body={"index": {"number_of_replicas": 1}})
    first.request("GET", "/_cluster/health", params={"wait_for_status": "green", "timeout": "120s"})
    victim = primary_node_port(first, source, 0)
    # Writer and migration go through another node: it stays up.
    entry = next(p for p in range(small_cluster.port, small_cluster.port + NODES) if p != victim)
    url = small_cluster.url(entry)
    cluster = connect(ConnectionSettings(urls=(url,)))
    first.close()
    cfg: dict[str, Any] = {
        "alias": alias,
        "path": case.copy,
        "state_index": "mn-hist",
        "dead_letter_index": "mn-dl",
        "page_size": 300,
        "rps": 600,
        "lease_ttl": 6.0,
    }
    fired = threading.Lock()
    landed: list[str] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.phase != case.phase or landed:
            return
        if case.phase == "copy" and (event.total is None or event.done < event.total / 3):
            return
        with fired:
            if landed:
                return
            landed.append(event.phase)
        small_cluster.restart_in_background(victim, kill=case.kill)
        small_cluster.wait_down()

    writer = live_writer(url, alias, len(initial))
    runs: list[Cluster] = []

    def make() -> Any:
        runs.append(connect(ConnectionSettings(urls=(url,))))
        return migration(runs[-1], cfg, on_progress)

    def between(_attempt: int) -> None:
        small_cluster.wait_up()
        cluster.request(
            "GET", "/_cluster/health", params={"wait_for_status": "yellow", "timeout": "120s"}
        )

    with fault_run("multi-node", f"primary-failover-{case.name}") as run:
        try:
            writer.wait_for(50)
            result, errors = run_until_done(make, between=between)
            small_cluster.wait_up()
            writer.wait_for(writer.count() + 50, index=result.target)
        finally:
            run.set(faults=small_cluster.failovers)
            writer.stop()
            for made in runs:
                made.close()
        ops, summary = writer.operations(), writer.report()
        found = outcome(cluster, alias, source, result.target, initial, ops)
        messages = [str(e) for e in errors]
        run.measured(
            found,
            summary.blocked_longest_s,
            runs=len(errors) + 1,
            detail={
                "copy": case.copy,
                "phase": case.phase,
                "signal": "SIGKILL" if case.kill else "SIGTERM",
                "rode_it_out": not errors,
                "errors": [m.splitlines()[0][:200] for m in messages],
            },
        )
        print(f"\n[{case.name}] failovers {small_cluster.failovers}; runs {len(errors) + 1}")
        print(f"[{case.name}] {found}; {messages}")
        assert landed == [case.phase], "the primary's node stopped in the phase named"
        assert_clean(found)
        if case.phase != "blocked":
            # A round after the failover saw shard 0's new primary term and read it again whole.
            # (Under the block, after its writes settled, nothing can be rolled back: a cut-over
            # that never saw the new term is right too.)
            state = Checkpoint(cluster, "mn-hist", result.migration).load()
            assert state["primary_changes"] >= 1, state.get("terms")
    cluster.close()


def shard_nodes(cluster: Cluster, index: str, shard: int) -> dict[str, str]:
    """Node name per role (``p``, ``r``) of ``index``'s ``shard``."""
    rows = cluster.request("GET", f"/_cat/shards/{index}", params={"format": "json"})
    return {r["prirep"]: str(r["node"]) for r in rows if int(r["shard"]) == shard}


@pytest.mark.parametrize("copy", [pytest.param(c, marks=full_only) for c in ("python", "painless")])
def test_a_primary_relocating_mid_copy_loses_nothing(
    small_cluster: SmallCluster, copy: str
) -> None:
    url = small_cluster.url(small_cluster.port)
    cluster = connect(ConnectionSettings(urls=(url,)))
    alias, source, initial = create_source(cluster, "mr", 3000)
    cluster.request("PUT", f"/{source}/_settings", body={"index": {"number_of_replicas": 1}})
    cluster.health(wait_for_status="green", timeout="120s")
    holders = shard_nodes(cluster, source, 0)
    names = [
        str(n["name"]) for n in cluster.request("GET", "/_cat/nodes", params={"format": "json"})
    ]
    (free,) = [n for n in names if n not in holders.values()]
    cfg: dict[str, Any] = {
        "alias": alias,
        "path": copy,
        "state_index": "mr-hist",
        "dead_letter_index": "mr-dl",
        "page_size": 300,
        "rps": 600,
    }
    moved: list[str] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.phase != "copy" or moved or event.total is None or event.done < event.total / 3:
            return
        moved.append(holders["p"])
        move = {"index": source, "shard": 0, "from_node": holders["p"], "to_node": free}
        cluster.request("POST", "/_cluster/reroute", body={"commands": [{"move": move}]})

    writer = live_writer(url, alias, len(initial))
    with fault_run("multi-node", f"primary-relocation-{copy}") as run:
        try:
            writer.wait_for(50)
            result, errors = run_until_done(lambda: migration(cluster, cfg, on_progress))
            writer.wait_for(writer.count() + 50, index=result.target)
        finally:
            run.set(faults=len(moved))
            writer.stop()
        cluster.request(
            "GET",
            "/_cluster/health",
            params={"wait_for_no_relocating_shards": "true", "timeout": "120s"},
        )
        found = outcome(cluster, alias, source, result.target, initial, writer.operations())
        run.measured(
            found,
            writer.report().blocked_longest_s,
            runs=len(errors) + 1,
            detail={"copy": copy, "phase": "copy", "rode_it_out": not errors},
        )
        assert moved, "the copy ended before the primary was moved"
        assert shard_nodes(cluster, source, 0)["p"] == free, "the primary did not move"
        assert_clean(found)
    cluster.close()


def test_a_new_index_whose_writes_wait_for_a_crashed_nodes_copy_stops_before_writing_and_resumes(
    small_cluster: SmallCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration asks the new index for two replicas, writes waiting for all three copies
    (``index.write.wait_for_active_shards: all``). It is loaded with one copy, then a node
    crashes (SIGKILL) mid-copy: two nodes cannot hold three copies, so the catch-up stops with
    an error naming the shards short of copies instead of writing (each write would wait a
    minute and fail), the alias still on the source, which keeps taking writes. With the node
    back, the next run resumes and finishes with the settings asked."""
    monkeypatch.setattr(migrate_layout, "WRITE_COPIES_TIMEOUT_S", 8.0)
    entry = small_cluster.port
    url = small_cluster.url(entry)
    cluster = connect(ConnectionSettings(urls=(url,)))
    # One shard: while it is loaded the new index is one primary, and of the two other nodes
    # one holds none of it (a node crashing with the loading primary is another test's).
    alias, source, initial = create_source(cluster, "wc", 3000, shards=1)
    cluster.request("PUT", f"/{source}/_settings", body={"index": {"number_of_replicas": 1}})
    cluster.health(wait_for_status="green", timeout="120s")
    cfg: dict[str, Any] = {
        "alias": alias,
        "path": "python",
        "state_index": "wc-hist",
        "dead_letter_index": "wc-dl",
        "page_size": 300,
        "rps": 600,
        "lease_ttl": 6.0,
        "settings": {"number_of_replicas": 2, "index.write.wait_for_active_shards": "all"},
    }
    crashed: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        if crashed or event.phase != "copy" or not event.total or event.done < event.total / 3:
            return
        loading = f"{alias}-v2-*"
        holding = {
            str(r["node"])
            for r in cluster.request("GET", f"/_cat/shards/{loading}", params={"format": "json"})
        }
        victim = next(
            p for p in range(entry + 1, entry + NODES) if f"esmigrate-dev-{p}" not in holding
        )
        crashed.append(victim)
        devserver.stop_node(victim, kill=True)

    writer = live_writer(url, alias, len(initial))
    with fault_run("multi-node", "write-copies-node-crashed") as run:
        errors: list[EsmigrateError] = []
        short: list[str] = []
        try:
            writer.wait_for(50)
            for _ in range(6):
                try:
                    result = migration(cluster, cfg, on_progress).run()
                    break
                except EsmigrateError as exc:
                    errors.append(exc)
                    if "active copies of each shard" in exc.message and not short:
                        # Stopped before writing: nothing moved, nothing blocked.
                        short.append(exc.message)
                        assert resolve(cluster, alias).source == source
                        assert not is_write_blocked(cluster, source)
                        devserver.start_node(crashed[0])
            else:
                raise AssertionError(f"not done after 6 runs: {[str(e) for e in errors]}")
            writer.wait_for(writer.count() + 50, index=result.target)
        finally:
            run.set(faults=len(crashed))
            writer.stop()
            if crashed:
                devserver.start_node(crashed[0])  # running already: returns it
        found = outcome(cluster, alias, source, result.target, initial, writer.operations())
        run.measured(
            found,
            writer.report().blocked_longest_s,
            runs=len(errors) + 1,
            detail={"errors": [str(e).splitlines()[0][:200] for e in errors]},
        )
        assert crashed, "the copy ended before the node crashed"
        assert short, f"no run stopped for the missing copies: {[str(e) for e in errors]}"
        assert "wait for 3 active copies" in short[0]
        assert "index.write.wait_for_active_shards" in short[0]
        assert_clean(found)
        live = cluster.request(
            "GET", f"/{result.target}/_settings", params={"flat_settings": "true"}
        )[result.target]["settings"]
        assert live["index.number_of_replicas"] == "2"
        assert live["index.write.wait_for_active_shards"] == "all"
    cluster.close()


def test_a_snapshot_point_taken_while_a_node_is_gone_restores(small_cluster: SmallCluster) -> None:
    """A node crashes (SIGKILL); its primaries fail over to their replicas. A snapshot rollback
    point of the index (an ``fs`` repository, the location every node shares) succeeds, and a
    rollback to it after a change in place restores what the index held, with the write made
    since carried back. An index whose only copy was on that node is red: no point of it is
    recorded, and the error says why."""
    cluster = connect(ConnectionSettings(urls=(small_cluster.url(small_cluster.port),)))
    cluster.request(
        "PUT", "/_snapshot/sn-repo", body={"type": "fs", "settings": {"location": "sn"}}
    )
    alias, index, initial = create_source(cluster, "sn", 500)
    cluster.request("PUT", f"/{index}/_settings", body={"index": {"number_of_replicas": 1}})
    cluster.health(wait_for_status="green", timeout="120s")
    victim = primary_node_port(cluster, index, 0)
    # An index whose one copy lives on that node only.
    cluster.request(
        "PUT",
        "/sn-single-v1",
        body={
            "settings": {
                "number_of_replicas": 0,
                "index.routing.allocation.require._name": f"esmigrate-dev-{victim}",
            },
            "aliases": {"sn-single": {}},
        },
    )
    cluster.health(wait_for_status="green", timeout="120s")
    if victim == small_cluster.port:  # keep the node this test talks to
        cluster.close()
        cluster = connect(ConnectionSettings(urls=(small_cluster.url(small_cluster.port + 1),)))
    devserver.stop_node(victim, kill=True)
    try:
        point_with_a_node_gone(cluster, alias, index, initial, victim)
    finally:
        devserver.start_node(victim)
    cluster.close()


def point_with_a_node_gone(
    cluster: Cluster, alias: str, index: str, initial: dict[str, dict[str, Any]], victim: int
) -> None:
    """The snapshot test's steps once the node on port ``victim`` is gone."""
    # Until the cluster has dropped the node (and promoted the replica), not just until a
    # health check that still counts it answers.
    cluster.request(
        "GET",
        "/_cluster/health",
        params={"wait_for_nodes": str(NODES - 1), "timeout": "60s"},
    )
    cluster.request(
        "GET",
        f"/_cluster/health/{index}",
        params={"wait_for_status": "yellow", "timeout": "60s"},
    )
    assert shard_nodes(cluster, index, 0)["p"] != f"esmigrate-dev-{victim}"
    hist = "sn-hist"
    point = create_point(
        cluster, "gone", [alias], state_index=hist, kind="snapshot", snapshot_repository="sn-repo"
    )
    assert point.snapshot is not None
    assert point.snapshot["state"] == "SUCCESS"
    InPlace(
        cluster,
        alias,
        {"properties": {"n2": {"type": "integer"}}},
        backfill="ctx._source.n2 = ctx._source.n * 2",
        state_index=hist,
    ).run()
    late = {"title": "t", "n": 2, "code": 2, "n2": 4}
    cluster.request("PUT", f"/{alias}/_doc/late", body=late, params={"refresh": "true"})
    done = rollback(cluster, "gone", state_index=hist, reverse_transform=reverse)
    assert done.mode == "carry"
    (restored,) = alias_targets(cluster, alias)
    expected = {**initial, "late": {"title": "t", "n": 2, "code": 2}}
    assert diff(expected, all_docs(cluster, restored)) == {}
    # sn-single lost its only copy with the node: no point of it can be recorded.
    with pytest.raises(RollbackError, match="sn-single-v1 is red") as err:
        create_point(
            cluster,
            "red",
            ["sn-single"],
            state_index=hist,
            kind="snapshot",
            snapshot_repository="sn-repo",
        )
    assert "snapshot" in err.value.message
    assert "allocation/explain" in (err.value.hint or "")
    assert [p.name for p in list_points(cluster, state_index=hist)] == ["gone"]


def test_a_write_block_that_failed_on_a_stalled_node_is_lifted(small_cluster: SmallCluster) -> None:
    """A ``_block/write`` that times out on a node that stalls (SIGSTOP) leaves the engine's
    temporary block (the write block's id, a uuid of its own), which refuses writes and which
    lifting ``index.blocks.write`` does not remove. Once the node is back, lifting the block
    lets writes in again and leaves no block in the cluster state."""
    port = small_cluster.port
    cluster = connect(ConnectionSettings(urls=(small_cluster.url(port),), request_timeout=120))
    index = "stall-v1"
    cluster.request(
        "PUT",
        f"/{index}",
        body={"settings": {"number_of_shards": NODES, "number_of_replicas": 1}},
    )
    cluster.health(wait_for_status="green", timeout="120s")
    master = cluster.request("GET", "/_cat/master", params={"format": "json"})[0]["node"]
    copies = cluster.request("GET", f"/_cat/shards/{index}", params={"format": "json"})
    holders = {str(row["node"]) for row in copies}
    (victim, *_) = sorted(
        int(name.rsplit("-", 1)[1])
        for name in holders
        if name not in (master, f"esmigrate-dev-{port}")
    )
    member = dict(devserver.members(port))[victim]
    assert member is not None
    os.kill(member.pid, signal.SIGSTOP)
    try:
        answer = cluster.request("PUT", f"/{index}/_block/write", params={"timeout": "2s"})
        assert migrate_layout.unconfirmed_blocks(answer) == [index]
        left = migrate_layout.write_block(cluster, index)
        assert left is not None
        assert left.get("uuid"), left
    finally:
        os.kill(member.pid, signal.SIGCONT)
    cluster.health(wait_for_status="green", timeout="120s")
    assert is_write_blocked(cluster, index)
    migrate_layout.lift_write_block(cluster, index)
    assert migrate_layout.write_block(cluster, index) is None
    written = cluster.request("PUT", f"/{index}/_doc/after", body={"n": 1})
    assert written["result"] == "created"
    cluster.close()
