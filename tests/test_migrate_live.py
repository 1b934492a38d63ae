"""The key test of the blue-green strategy (keep it forever): 50k documents, a writer process
doing indexes, partial updates and deletes through the alias for the whole migration, a breaking
mapping change with a transform. Afterwards the new index must equal what the old one would be
with the transform applied to its final state: no write lost, no delete resurrected, no update
reverted. The writer's refused-write window (the write block) is reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate import ProgressEvent
from tests.migrate_support import (
    blue_green_on,
    check_final_state,
    create_source,
    live_writer,
    report,
)

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]


@pytest.mark.parametrize("path", ["painless", "python"])
def test_live_writes_survive_blue_green(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 50_000)
    writer = live_writer(cluster_url, alias, len(initial))
    events: list[ProgressEvent] = []
    try:
        writer.wait_for(100)
        migration = blue_green_on(cluster, prefix, alias, path, on_progress=events.append)
        result = migration.run()
        # Keep writing after the cut-over: those writes must land in the new index.
        writer.wait_for(100, index=result.target)
    finally:
        writer.stop()
        ops, summary = writer.operations(), writer.report()
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
