"""Kill tests: the migration process is SIGKILLed at each phase while a writer keeps writing;
a second run resumes it. The result must be exactly as if nothing had happened, and the write
block a dead process left on the old index must be lifted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.migrate._layout import is_write_blocked
from esmigrate.state import Checkpoint
from tests.migrate_support import (
    check_final_state,
    create_source,
    live_writer,
    migration,
    report,
    run_killed,
)

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

CASES = [
    ("painless", "copy"),
    ("python", "copy"),
    ("painless", "catchup"),
    ("python", "catchup"),
    # In the first position pass (every document of the target checked against the source).
    ("painless", "reconcile"),
    ("painless", "blocked"),
    ("python", "blocked"),
    ("python", "cutover"),
]


@pytest.mark.parametrize(("path", "kill_at"), CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_kill_and_resume(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str, path: str, kill_at: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 10_000)
    cfg: dict[str, Any] = {
        "url": cluster_url,
        "alias": alias,
        "path": path,
        "kill_at": kill_at,
        "fraction": 0.3,
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        # Slow the copy down so that the kill lands in its middle.
        "rps": 2500 if kill_at == "copy" else None,
        "page_size": 500,
        # The killed run's lease must lapse before the resumed run may act.
        "lease_ttl": 6.0,
    }
    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        run_killed(tmp_path / "run.json", cfg)
        state = Checkpoint(cluster, cfg["state_index"], f"blue-green:{alias}").load()
        assert state["phase"] == {"copy": "copy", "catchup": "catchup", "reconcile": "catchup"}.get(
            kill_at, "blocked"
        )
        if kill_at in ("blocked", "cutover"):
            assert is_write_blocked(cluster, source), "the dead process should have left a block"
        else:
            writer.wait_for(writer.count() + 50)  # the writer goes on while nobody migrates
        cfg["rps"] = None
        result = migration(cluster, cfg).run()
        assert result.resumed
        writer.wait_for(50, index=result.target)
    finally:
        writer.stop()
        ops, summary = writer.operations(), writer.report()
    check_final_state(cluster, alias, source, result.target, initial, ops)
    report(summary, ops, f"killed in {kill_at} ({path})")
