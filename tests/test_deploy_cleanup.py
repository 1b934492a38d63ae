"""Delayed clean-up of rollback points on the real node: ``deploy --cleanup-after`` schedules it
in the history, the next ``deploy`` or ``rollback-point cleanup`` carries it out once due, and
spares the points until then; ``--older-than`` takes Elasticsearch durations."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.deploy import deploy
from esmigrate.exceptions import ConfigError
from tests.conftest import run_cli
from tests.test_deploy_window import ready

pytestmark = pytest.mark.integration


def points(config: Config) -> list[str]:
    return [p["name"] for p in command.rollback_point_list(config)]


def test_a_scheduled_clean_up_spares_the_points_until_it_is_due(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(
        tmp_path, cluster_url, prefix, cluster, '[esmigrate.deploy]\ncleanup_after = "24h"\n'
    )
    point = f"before-a2-{prefix}-posts"

    # keep=0 would delete every point at once; the schedule from the project file keeps it.
    log = deploy(config, keep=0)

    step = log["steps"][-1]
    assert step["step"] == "cleanup"
    assert step["scheduled"]["points"] == [point]
    due = datetime.fromisoformat(step["scheduled"]["due_at"])
    assert timedelta(hours=23) < due - datetime.now(UTC) <= timedelta(hours=24)
    assert step["points_deleted"] == []
    assert [s["points"] for s in step["scheduled_pending"]] == [[point]]
    assert points(config) == [point]
    assert cluster.exists(f"{prefix}-posts-v1")

    # A clean-up run by hand spares it too, and says why.
    result = run_cli("--config", str(config.source), "rollback-point", "cleanup", "--keep", "0")
    assert result.returncode == 0, result.stderr
    assert f"Kept {point}: clean-up scheduled for" in result.stdout
    assert points(config) == [point]


def test_the_next_deploy_carries_out_a_clean_up_that_is_due(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    point = f"before-a2-{prefix}-posts"
    deploy(config, keep=5, cleanup_after="1s")
    assert points(config) == [point]
    time.sleep(1.5)  # until the schedule is due

    # Nothing left to migrate; the deploy's clean-up carries out the schedule despite keep=5.
    log = deploy(config, keep=5)

    step = log["steps"][-1]
    assert [s["points"] for s in step["scheduled_done"]] == [[point]]
    assert step["points_deleted"] == [point]
    assert step["indices_deleted"] == [f"{prefix}-posts-v1"]
    assert points(config) == []
    assert not cluster.exists(f"{prefix}-posts-v1")
    assert cluster.count(f"{prefix}-posts") == 300  # the live index is untouched
    # Carried out once: the schedule is gone from the history.
    again = command.rollback_point_cleanup(config, keep=5)
    assert again["scheduled_done"] == again["scheduled_pending"] == []


def test_older_than_takes_elasticsearch_durations(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    point = f"before-a2-{prefix}-posts"

    # The point is seconds old: --older-than 1h keeps it even with keep=0.
    log = deploy(config, keep=0, older_than="1h")
    assert log["steps"][-1]["points_deleted"] == []
    assert points(config) == [point]

    toml = str(config.source)
    bad = run_cli("--config", toml, "--json", "rollback-point", "cleanup", "--older-than", "3 days")
    assert bad.returncode == 1
    error = json.loads(bad.stdout)["error"]
    assert error["message"] == "Invalid --older-than '3 days'."
    assert "24h, 7d" in error["hint"]

    fresh = run_cli(
        "--config", toml, "rollback-point", "cleanup", "--keep", "0", "--older-than", "7d"
    )
    assert fresh.returncode == 0, fresh.stderr
    assert points(config) == [point]
    gone = run_cli(
        "--config", toml, "rollback-point", "cleanup", "--keep", "0", "--older-than", "0s"
    )
    assert gone.returncode == 0, gone.stderr
    assert points(config) == []

    with pytest.raises(ConfigError, match="--cleanup-after"):
        deploy(config, cleanup_after="a day")
