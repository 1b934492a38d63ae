"""``deploy --window`` on the real node: refused outside the window (exit 6, naming the next
opening), refused when the estimate would not fit, waiting with ``--wait-for-window`` (Ctrl-C
clean), and running inside it."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config, load_config
from esmigrate.deploy import deploy
from esmigrate.exceptions import ExitCode, OutsideWindow
from tests.conftest import run_cli, start_cli
from tests.test_deploy import project
from tests.test_plan_estimate import scratch_indices

pytestmark = pytest.mark.integration


def window(start: datetime, length: timedelta) -> str:
    """A window opening at ``start`` (UTC, to the second) and lasting ``length``."""
    end = start + length
    return f"{start:%a} {start:%H:%M:%S}-{end:%H:%M:%S} UTC"


def ready(tmp: Path, url: str, prefix: str, cluster: Cluster, extra_toml: str = "") -> Config:
    """The two-revision project of test_deploy at a1, with 300 documents to migrate."""
    toml = project(tmp, url, prefix)
    if extra_toml:
        toml.write_text(toml.read_text() + extra_toml)
    config = load_config(toml)
    command.upgrade(config, "a1")
    lines = []
    for i in range(300):
        lines += [
            orjson.dumps({"index": {"_index": f"{prefix}-posts", "_id": str(i)}}),
            orjson.dumps({"code": i}),
        ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    return config


def deployments(cluster: Cluster, prefix: str) -> list[dict[str, Any]]:
    cluster.refresh(f"{prefix}-hist")
    found = cluster.search(f"{prefix}-hist", {"query": {"term": {"kind": "deployment"}}})
    return [hit["_source"] for hit in found["hits"]["hits"]]


def test_outside_the_window_of_the_project_file_deploy_refuses_with_exit_6(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    opens = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    toml = f'[esmigrate.deploy]\nwindows = ["{window(opens, timedelta(hours=1))}"]\n'
    config = ready(tmp_path, cluster_url, prefix, cluster, toml)

    result = run_cli("--config", str(config.source), "--json", "deploy")

    assert result.returncode == ExitCode.WINDOW
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "OutsideWindow"
    assert "Outside the maintenance window" in error["message"]
    assert "in 2h" in error["message"] or "in 1h59m" in error["message"]
    assert datetime.fromisoformat(error["next_opening"]) == opens
    assert "--wait-for-window" in error["hint"]
    # Nothing started; the refusal is in the deployment log.
    assert command.status(config)["current"] == ["a1"]
    (log,) = deployments(cluster, prefix)
    assert log["outcome"] == "refused"
    assert [s["step"] for s in log["steps"]] == ["window"]


def test_a_deploy_that_would_not_fit_in_the_window_is_refused_before_it_starts(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    now = datetime.now(UTC).replace(microsecond=0)
    # Open now for another minute; the deploy needs its copy plus two minutes of monitoring.
    closing = window(now - timedelta(minutes=1), timedelta(minutes=2))

    with pytest.raises(OutsideWindow) as refused:
        deploy(config, windows=[closing], monitor_seconds=120)

    assert "would not finish inside the maintenance window" in refused.value.message
    assert refused.value.estimate_seconds is not None
    assert refused.value.estimate_seconds >= 120
    assert command.status(config)["current"] == ["a1"]
    assert scratch_indices(cluster) == []
    (log,) = deployments(cluster, prefix)
    assert log["outcome"] == "refused"


def test_inside_the_window_the_deploy_runs_and_logs_its_estimate(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    now = datetime.now(UTC).replace(microsecond=0)

    log = deploy(config, windows=[window(now - timedelta(minutes=5), timedelta(hours=2))])

    assert log["outcome"] == "done"
    step = log["steps"][0]
    assert step["step"] == "window"
    assert step["estimate_seconds"] > 0
    assert step["waited_seconds"] == 0
    assert command.status(config)["current"] == ["a2"]


def test_wait_for_window_waits_for_the_opening_then_deploys(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    opens = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    lines: list[str] = []

    log = deploy(
        config,
        windows=[window(opens, timedelta(hours=1))],
        wait_for_window=True,
        reporter=lines.append,
    )

    assert log["outcome"] == "done"
    assert datetime.now(UTC) >= opens
    assert any(line.startswith("waiting for the maintenance window") for line in lines)
    assert datetime.fromisoformat(log["steps"][0]["start"]) == opens
    assert command.status(config)["current"] == ["a2"]


def test_ctrl_c_while_waiting_for_the_window_stops_with_nothing_started(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    opens = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with start_cli(
        "--config",
        str(config.source),
        "deploy",
        "--window",
        window(opens, timedelta(hours=1)),
        "--wait-for-window",
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "waiting for the maintenance window" in line:
                    break
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert command.status(config)["current"] == ["a1"]
    assert scratch_indices(cluster) == []
    (log,) = deployments(cluster, prefix)
    assert log["outcome"] == "interrupted"


def test_a_bad_window_is_refused_before_anything_is_written(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = ready(tmp_path, cluster_url, prefix, cluster)
    result = run_cli("--config", str(config.source), "deploy", "--window", "Sat 2am-4am Berlin")
    assert result.returncode == ExitCode.ERROR
    assert "Invalid maintenance window 'Sat 2am-4am Berlin'" in result.stderr
    assert "Traceback" not in result.stderr
    assert deployments(cluster, prefix) == []
