"""Lease loss: a runner paused with SIGSTOP past its lease while another takes over and finishes.
When it wakes (SIGCONT) it must write nothing more (no bulk, no alias change, no write block, no
checkpoint or history write) and stop with an error saying it lost its lease; the history must
name the runner that finished.

"Nothing more" is measured on the cluster: every index of the test keeps the ``max_seq_no`` of
each shard (any write takes a sequence number; a refused compare-and-set does not), its
settings (a write block) and its aliases from before the wake-up to after the woken process
has exited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.migrate._layout import is_write_blocked, resolve
from esmigrate.state import Checkpoint
from tests.conftest import run_cli, start_cli
from tests.fault_runs import FaultRun, fault_run
from tests.migrate_support import (
    PAUSE_AFTER,
    ROOT,
    check_final_state,
    create_source,
    live_writer,
    migration,
)
from tests.random_kills import LEASE_TTL, REVISION, TRACEBACK, migrate_revision, project

pytestmark = [pytest.mark.integration, pytest.mark.faults]


PAD = " padding" * 2000


def footprint(cluster: Cluster, prefix: str) -> dict[str, Any]:
    """What any write to the test's indices would change: per index, each shard's highest
    ``_seq_no``, the write block and the aliases."""
    stats = cluster.request("GET", f"/{prefix}*/_stats", params={"level": "shards"})
    seq = {
        index: sorted(
            (int(shard), max(int(c["seq_no"]["max_seq_no"]) for c in copies))
            for shard, copies in data["shards"].items()
        )
        for index, data in stats["indices"].items()
    }
    aliases = cluster.request("GET", f"/{prefix}*/_alias")
    blocks = {index: is_write_blocked(cluster, index) for index in seq}
    return {"seq_no": seq, "aliases": aliases, "blocked": blocks}


def woken_wrote(run: FaultRun, before: dict[str, Any], after: dict[str, Any]) -> None:
    """The figures of a lease-loss run (tests/fault_runs.py, kind ``lease-loss``): what the
    woken process wrote."""
    writes = sum(
        max(0, top - dict(before["seq_no"].get(index, [])).get(shard, -1))
        for index, shards in after["seq_no"].items()
        for shard, top in shards
    )
    changed = (after["aliases"] != before["aliases"]) + (after["blocked"] != before["blocked"])
    run.set(detail={"writes_after_wake": writes, "alias_or_block_changes": changed})


def wait_stopped(pid: int, timeout: float = 60) -> None:
    """Until the process is stopped (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "T":
        assert time.monotonic() < deadline, "the process never stopped"
        time.sleep(0.05)


def test_a_runner_paused_in_the_copy_writes_nothing_when_it_wakes(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, initial = create_source(cluster, prefix, 1000)
    with fault_run("lease-loss", "paused in the copy") as recorded:
        recorded.set(faults=1, runs=2)
        # Documents of ~16 kB: a bulk request (4 MB) fills before a page of the copy (300) ends,
        # so what follows the wake-up is the rest of that request and then its sending, with no
        # page boundary (where a stop request is looked at) in between.
        cluster.request(
            "POST",
            f"/{source}/_update_by_query",
            params={"refresh": "true"},
            body={"script": {"source": "ctx._source.body += params.pad", "params": {"pad": PAD}}},
        )
        for doc in initial.values():
            doc["body"] += PAD
        proj = project(tmp_path, cluster_url, prefix)
        migrate_revision(proj.config, alias, prefix, "python-pausing")
        writer = live_writer(cluster_url, alias, len(initial))
        # It stops itself in the middle of a page of the copy, before its first bulk request.
        paused = start_cli("upgrade", cwd=proj.root, env=proj.env | {PAUSE_AFTER: "130"})
        try:
            writer.wait_for(50)
            wait_stopped(paused.pid, timeout=300)
            time.sleep(LEASE_TTL + 1)  # both its leases (the runner's, the migration's) lapse
            taker = run_cli("upgrade", "--lock-timeout", "60", cwd=proj.root, env=proj.env)
            assert taker.returncode == 0, taker.stderr
            assert "Took over the expired lease" in taker.stderr
            target = resolve(cluster, alias).source
            writer.wait_for(writer.count() + 50, index=target)
        finally:
            writer.stop()
            before = footprint(cluster, prefix)
            paused.send_signal(signal.SIGCONT)
            _, err = paused.communicate(timeout=120)
        after = footprint(cluster, prefix)
        woken_wrote(recorded, before, after)
        assert after == before
        assert paused.returncode == 1, err
        assert TRACEBACK not in err, err
        assert "lost its lease" in err, err
        check_final_state(cluster, alias, source, target, initial, writer.operations())
        # The history names the runner that finished: applied, by the one that took over.
        status = command.status(proj.config)
        assert status["current"] == [REVISION]
        assert not status["failed"]
        (record,) = [r for r in command.history(proj.config) if r.get("revision") == REVISION]
        assert record["state"] == "applied"
        assert record["by"]["pid"] != paused.pid


def test_a_migration_paused_under_its_write_block_writes_nothing_when_it_wakes(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, source, initial = create_source(cluster, prefix, 2000)
    with fault_run("lease-loss", "paused under the write block") as recorded:
        recorded.set(faults=1, runs=2)
        cfg: dict[str, Any] = {
            "url": cluster_url,
            "alias": alias,
            "path": "python",
            "kill_at": "blocked",
            "signal": "stop",
            "state_index": f"{prefix}-hist",
            "dead_letter_index": f"{prefix}-dl",
            "page_size": 500,
            "lease_ttl": LEASE_TTL,
        }
        config = tmp_path / "run.json"
        config.write_text(json.dumps(cfg))
        writer = live_writer(cluster_url, alias, len(initial))
        paused = subprocess.Popen(
            [sys.executable, "-m", "tests.migrate_support", "run", str(config)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            writer.wait_for(50)
            wait_stopped(paused.pid, timeout=300)
            assert is_write_blocked(cluster, source), "it stops under its write block"
            time.sleep(LEASE_TTL + 1)
            # Another process takes the migration over: lifts the block, finishes the cut-over.
            result = migration(cluster, cfg).run()
            assert result.resumed
            writer.wait_for(writer.count() + 50, index=result.target)
        finally:
            writer.stop()
            before = footprint(cluster, prefix)
            os.kill(paused.pid, signal.SIGCONT)
            _, err = paused.communicate(timeout=120)
        after = footprint(cluster, prefix)
        woken_wrote(recorded, before, after)
        assert after == before
        assert paused.returncode not in (0, 3, -signal.SIGKILL), err
        assert "lost its lease" in err, err
        assert (
            Checkpoint(cluster, cfg["state_index"], f"blue-green:{alias}").load()["phase"] == "done"
        )
        check_final_state(cluster, alias, source, result.target, initial, writer.operations())
