"""The key test of the blue-green strategy (keep it forever): 50k documents, a writer process
doing indexes, partial updates and deletes through the alias for the whole migration, a breaking
mapping change with a transform. Afterwards the new index must equal what the old one would be
with the transform applied to its final state: no write lost, no delete resurrected, no update
reverted. The writer's refused-write window (the write block) is reported.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate import BlueGreen, ProgressEvent
from esmigrate.migrate._layout import is_write_blocked, resolve
from tests.migrate_support import (
    PAINLESS,
    TARGET_MAPPING,
    all_docs,
    create_source,
    diff,
    expected_state,
    iter_lines,
    read_log,
    transform,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


class Writer:
    """The live writer subprocess (see tests/migrate_support.py)."""

    def __init__(self, url: str, alias: str, tmp: Path, initial: int, rate: float = 300) -> None:
        self.log = tmp / "writer.log"
        self.stop_file = tmp / "writer.stop"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.migrate_support",
                "writer",
                url,
                alias,
                str(self.log),
                str(self.stop_file),
                str(rate),
                "11",
            ],
            cwd=ROOT,
            env={"WRITER_INITIAL": str(initial), "PATH": "/usr/bin:/bin"},
        )

    def count(self, index: str | None = None) -> int:
        return sum(
            1
            for op in iter_lines(self.log)
            if op["op"] != "summary" and (index is None or op["index"] == index)
        )

    def wait_for(self, n: int, index: str | None = None, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count(index) < n:
            assert self.proc.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.2)

    def stop(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        self.stop_file.touch()
        assert self.proc.wait(timeout=60) == 0
        return read_log(self.log)


def check_final_state(
    cluster: Cluster,
    alias: str,
    source: str,
    target: str,
    initial: dict[str, dict[str, Any]],
    ops: list[dict[str, Any]],
) -> None:
    assert resolve(cluster, alias).source == target
    assert not is_write_blocked(cluster, source), "the write block was left on"
    expected = expected_state(initial, ops, source, target)
    actual = all_docs(cluster, target)
    assert diff(expected, actual) == {}


def report(summary: dict[str, Any], ops: list[dict[str, Any]], label: str) -> None:
    span = ops[-1]["t"] - ops[0]["t"] if len(ops) > 1 else 0.0
    kinds = {k: sum(1 for o in ops if o["op"] == k) for k in ("index", "update", "delete")}
    print(
        f"\n[{label}] writer: {len(ops)} ops ({kinds}) at {len(ops) / span:.0f} ops/s; "
        f"write-block window: longest {summary['blocked_longest_s'] * 1000:.0f} ms, "
        f"{summary['refused']} refused attempts"
    )


@pytest.mark.parametrize("path", ["painless", "python"])
def test_live_writes_survive_blue_green(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 50_000)
    writer = Writer(cluster_url, alias, tmp_path, len(initial))
    events: list[ProgressEvent] = []
    try:
        writer.wait_for(100)
        migration = BlueGreen(
            cluster,
            alias,
            TARGET_MAPPING,
            settings={"number_of_replicas": 0},
            script=PAINLESS if path == "painless" else None,
            transform=transform if path == "python" else None,
            state_index=f"{prefix}-hist",
            dead_letter_index=f"{prefix}-dl",
            on_progress=events.append,
        )
        result = migration.run()
        # Keep writing after the cut-over: those writes must land in the new index.
        writer.wait_for(100, index=result.target)
    finally:
        ops, summary = writer.stop()
    by_index = {i: sum(1 for o in ops if o["index"] == i) for i in (source, result.target)}
    assert by_index[source] >= 100
    assert by_index[result.target] >= 100
    check_final_state(cluster, alias, source, result.target, initial, ops)
    phases = {e.phase for e in events}
    assert {"copy", "catchup", "blocked", "validate", "done"} <= phases
    assert result.failures == 0
    assert result.rounds >= 2
    report(
        summary,
        ops,
        f"{path}: {result.rounds} rounds, {result.reconciled_deletes} deletes reconciled, block {result.blocked_seconds:.2f}s",
    )
