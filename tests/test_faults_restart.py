"""Node restarts: the node a blue-green migration runs against is stopped and started again on
the same data path while the migration runs (during the copy in both copy modes, during the
catch-up, under the write block) and a live writer indexes, updates and deletes through the
alias.

The node is the test's own (a dev-server on its own port and data path), never the session's.
While it is down the writer's writes go unanswered and are sent again once it is back; its log
holds only answered operations. The migration either rides the restart out or fails with an
esmigrate error naming the node it lost (or the task that vanished with it); it is then run
again, as an operator would, until done. Then the new index must hold exactly what the writer's
acknowledged operations say, the alias must point at it and no write block may be left: the
``_reindex`` task the restart took away is started again, not waited for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command, devserver
from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import TaskLost
from esmigrate.migrate import ProgressEvent
from esmigrate.migrate._layout import resolve
from esmigrate.migrate._tasks import REINDEX, UPDATE_BY_QUERY, task_state
from esmigrate.testing._cluster import TEST_ENGINE_ENV, TEST_URL_ENV
from tests.conftest import run_cli
from tests.fault_runs import assert_clean, fault_run, full_only, outcome, run_until_done
from tests.migrate_support import create_source, live_writer, migration
from tests.random_kills import REVISION, TRACEBACK, MigrationWatch, migrate_revision, project

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: The test's node: small, beside the session's node on a 2-core machine.
HEAP = "512m"
#: The project's leases in the `esmigrate upgrade` scenario.
UPGRADE_LEASE_TTL = 10.0


class RestartableNode:
    """A dev-server node of the test's own (its own port and data path) that can be stopped and
    started again on the same data path while a migration runs."""

    def __init__(self, data: Path) -> None:
        self.port = devserver.free_port()
        self.data = data
        self.engine = os.environ.get(TEST_ENGINE_ENV) or None
        self.url = f"http://127.0.0.1:{self.port}"
        self.restarts = 0
        self._thread: threading.Thread | None = None
        self._down = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        devserver.start(self.port, engine=self.engine, data_dir=self.data, heap=HEAP)

    def stop(self) -> None:
        devserver.stop(self.port)

    def restart_in_background(self) -> None:
        """Stop the node (SIGTERM, as an orchestrator does) and start it again on the same data
        path, in a thread; :meth:`wait_down` returns once it is stopped."""

        def restart() -> None:
            try:
                self.stop()
                self._down.set()
                self.start()
            except BaseException as exc:
                self._error = exc
                self._down.set()

        self.restarts += 1
        self._down.clear()
        self._thread = threading.Thread(target=restart, name="node-restart", daemon=True)
        self._thread.start()

    def wait_down(self) -> None:
        self._down.wait(timeout=120)

    def wait_up(self) -> None:
        """Until the restarted node answers with every primary started (a no-op without one)."""
        if self._thread is not None:
            self._thread.join(timeout=300)
            assert not self._thread.is_alive(), "the node did not start again"
            self._thread = None
        if self._error is not None:
            raise self._error


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RestartableNode]:
    if os.environ.get(TEST_URL_ENV):
        pytest.skip("restarts a node of the test's own: the embedded dev-server only")
    own = RestartableNode(tmp_path / "node-data")
    own.start()
    try:
        yield own
    finally:
        own.wait_up()
        own.stop()


@dataclass(frozen=True)
class Case:
    name: str
    copy: str  # "painless" (copy mode reindex) or "python"
    #: The migration's phase in which the node restarts (copy: once a third is copied).
    phase: str
    docs: int = 3000
    fast: bool = False


CASES = [
    Case("copy-painless", "painless", "copy", docs=2000, fast=True),
    Case("copy-python", "python", "copy"),
    Case("catchup-painless", "painless", "catchup"),
    Case("catchup-python", "python", "catchup"),
    Case("blocked-painless", "painless", "blocked"),
    Case("blocked-python", "python", "blocked"),
]


def _params() -> list[Any]:
    return [
        pytest.param(case, id=case.name, marks=() if case.fast else full_only) for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_a_node_restart_mid_migration_loses_nothing(node: RestartableNode, case: Case) -> None:
    cluster = connect(ConnectionSettings(urls=(node.url,)))
    alias, source, initial = create_source(cluster, "rs", case.docs)
    cfg: dict[str, Any] = {
        "alias": alias,
        "path": case.copy,
        "state_index": "rs-hist",
        "dead_letter_index": "rs-dl",
        "page_size": 300,
        # Throttled: the copy lasts seconds, so the restart lands in it.
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
        with fired:  # copy mode python reports from one thread per shard
            if landed:
                return
            landed.append(event.phase)
        node.restart_in_background()
        # The migration goes on once the node is down: its next requests meet no node.
        node.wait_down()

    writer = live_writer(node.url, alias, len(initial))
    runs: list[Cluster] = []

    def make() -> Any:
        runs.append(connect(ConnectionSettings(urls=(node.url,))))
        return migration(runs[-1], cfg, on_progress)

    with fault_run("node-restart", case.name) as run:
        try:
            writer.wait_for(50)
            result, errors = run_until_done(make, between=lambda _attempt: node.wait_up())
            node.wait_up()
            writer.wait_for(writer.count() + 50, index=result.target)
        finally:
            run.set(faults=node.restarts)
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
                "rode_it_out": not errors,
                "errors": [m.splitlines()[0][:200] for m in messages],
            },
        )
        print(f"\n[{case.name}] restarts {node.restarts}; runs {len(errors) + 1}; {messages}")
        assert landed == [case.phase], "the node restarted in the phase named"
        assert_clean(found)
        for message in messages:
            # What was lost is named: the node (its address) or the task that vanished.
            assert f"127.0.0.1:{node.port}" in message or "is gone before it completed" in (
                message
            ), message
    cluster.close()


# -- a task id after a restart -------------------------------------------------------------------


def test_a_task_id_that_names_another_task_is_gone(cluster: Cluster, prefix: str) -> None:
    """A restarted node numbers its tasks from 1 again: the id a checkpoint kept may name an
    unrelated task, which must not be waited for as the migration's own."""
    _, source, _ = create_source(cluster, prefix, 600)
    started = cluster.request(
        "POST",
        f"/{source}/_update_by_query",
        params={"wait_for_completion": "false", "requests_per_second": 1, "scroll_size": 10},
        body={"script": {"source": "ctx._source.n += 0"}},
    )
    task_id = str(started["task"])
    try:
        assert task_state(cluster, task_id, action=UPDATE_BY_QUERY, mentions=f"[{source}") == (
            "running"
        )
        # Under a copy's checkpoint the same id is not the copy's _reindex task.
        assert task_state(cluster, task_id, action=REINDEX, mentions=f"to [{prefix}-x]") == "gone"
    finally:
        cluster.request("POST", f"/_tasks/{task_id}/_cancel")


def test_waiting_for_a_vanished_task_stops_naming_it(cluster: Cluster) -> None:
    node_id = next(iter(cluster.request("GET", "/_nodes/_local")["nodes"]))
    with pytest.raises(TaskLost) as lost:
        cluster.wait_task(f"{node_id}:987654321")
    assert f"{node_id}:987654321" in lost.value.message
    assert "restarted" in lost.value.message
    assert lost.value.hint


# -- the CLI: `esmigrate upgrade` across a restart ------------------------------------------------


@pytest.mark.parametrize("copy", [pytest.param("python", marks=full_only)])
def test_an_upgrade_a_node_restart_interrupted_resumes_without_repair(
    node: RestartableNode, tmp_path: Path, copy: str
) -> None:
    """``esmigrate upgrade`` loses its node in the copy: it exits naming the node, the revision
    is left to resume (not recorded as failed), and the next ``upgrade`` finishes it."""
    cluster = connect(ConnectionSettings(urls=(node.url,)))
    alias, source, initial = create_source(cluster, "rs", 8000)
    # Leases that outlive a heartbeat slipping on a loaded machine, not the node's downtime.
    proj = project(tmp_path / "p", node.url, "rs", lease_ttl=UPGRADE_LEASE_TTL)
    migrate_revision(proj.config, alias, "rs", copy, lease_ttl=UPGRADE_LEASE_TTL)
    phase = MigrationWatch(cluster, "rs-hist", f"rev:{REVISION}:{alias}")
    writer = live_writer(node.url, alias, len(initial))
    with fault_run("node-restart", f"upgrade-copy-{copy}") as run:
        try:
            writer.wait_for(50)
            first = proj.start("upgrade", "--lock-timeout", "60")()
            while phase() != "copy":
                assert first.poll() is None, first.communicate()
                time.sleep(0.1)
            node.restart_in_background()
            node.wait_down()
            _, err = first.communicate(timeout=300)
            node.wait_up()
            cut_short = first.returncode != 0
            if cut_short:
                assert TRACEBACK not in err, err
                assert f"127.0.0.1:{node.port}" in err, err
                assert "no repair needed" in err, err
                assert not command.status(proj.config)["failed"]
            # Run again, as an operator would, until done: no `repair` in between.
            runs = 1
            while True:
                again = run_cli("upgrade", "--lock-timeout", "60", cwd=proj.root, env=proj.env)
                runs += 1
                assert TRACEBACK not in again.stderr, again.stderr
                if again.returncode == 0:
                    break
                assert runs < 5, again.stderr
            target = resolve(cluster, alias).source
            writer.wait_for(writer.count() + 50, index=target)
        finally:
            run.set(faults=node.restarts)
            writer.stop()
        found = outcome(cluster, alias, source, target, initial, writer.operations())
        run.measured(
            found,
            writer.report().blocked_longest_s,
            runs=runs,
            detail={"copy": copy, "phase": "copy", "rode_it_out": not cut_short},
        )
        assert_clean(found)
        status = command.status(proj.config)
        assert status["current"] == [REVISION]
        assert not status["failed"]
    cluster.close()
