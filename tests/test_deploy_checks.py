"""User checks and probe limits of ``deploy`` on the real node: ``--check [ALIAS=]module:fn``,
``--max-latency``, ``--max-error-rate``, tripping the same automatic rollback as the standard
checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.deploy import deploy
from esmigrate.exceptions import ConfigError, DeployRolledBack, ExitCode
from tests.conftest import run_cli
from tests.test_deploy_window import ready

pytestmark = pytest.mark.integration

CHECKS = '''
def always_ok(cluster):
    return True


def orders_failing(cluster):
    """Stands for an application signal (checkout errors) that went bad after the cut-over."""
    return False


NOT_A_CHECK = "x"
'''


def with_checks(tmp: Path, url: str, prefix: str, cluster: Cluster) -> Config:
    config = ready(tmp, url, prefix, cluster)
    (tmp / "appchecks.py").write_text(CHECKS)
    return config


def backing(cluster: Cluster, alias: str) -> list[str]:
    return sorted(cluster.request("GET", f"/_alias/{alias}"))


def test_a_user_check_of_an_alias_that_fails_rolls_it_back(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = with_checks(tmp_path, cluster_url, prefix, cluster)
    alias = f"{prefix}-posts"

    with pytest.raises(DeployRolledBack) as rolled:
        deploy(
            config,
            monitor_seconds=10,
            interval=0.2,
            checks=["appchecks:always_ok", f"{alias}=appchecks:orders_failing"],
        )

    (entry,) = rolled.value.log["steps"][-1]["aliases"]
    assert entry["outcome"] == "rolled back"
    assert f"{alias}/orders_failing" in entry["reason"]
    report = entry["report"]
    assert report["failed_check"] == f"{alias}/orders_failing"
    # Every check of the watch was sampled: the standard ones and the user's.
    assert {"always_ok", f"{alias}/orders_failing", f"{alias}/health"} <= set(report["last"])
    assert backing(cluster, alias) == [f"{prefix}-posts-v1"]
    assert cluster.count(alias) == 300


def test_checks_that_pass_let_the_deploy_finish_and_a_check_of_an_alias_not_moved_is_logged(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = with_checks(tmp_path, cluster_url, prefix, cluster)
    other = f"{prefix}-elsewhere=appchecks:orders_failing"

    log = deploy(
        config,
        monitor_seconds=1,
        interval=0.2,
        checks=["appchecks:always_ok", other],
        max_error_rate=0.5,
        max_latency="60s",
    )

    assert log["outcome"] == "done"
    monitor = next(s for s in log["steps"] if s["step"] == "monitor")
    assert monitor["checks"] == ["appchecks:always_ok", other]
    assert monitor["checks_not_run"] == [other]
    assert monitor["healthy"] is True


def test_a_latency_limit_trips_the_rollback_on_the_command_line(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = with_checks(tmp_path, cluster_url, prefix, cluster)
    alias = f"{prefix}-posts"

    # No search answers in zero milliseconds: the probe's p99 is over the limit every time.
    result = run_cli(
        "--config",
        str(config.source),
        "--json",
        "deploy",
        "--monitor",
        "10",
        "--interval",
        "0.2",
        "--max-latency",
        "0ms",
    )

    assert result.returncode == ExitCode.PROBLEM, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "DeployRolledBack"
    assert "latency" in error["message"]
    assert backing(cluster, alias) == [f"{prefix}-posts-v1"]


def test_bad_checks_are_refused_before_anything_is_written(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = with_checks(tmp_path, cluster_url, prefix, cluster)

    with pytest.raises(ConfigError, match="no attribute 'missing'"):
        deploy(config, monitor_seconds=5, checks=["appchecks:missing"])
    with pytest.raises(ConfigError, match="NOT_A_CHECK is a str, not a check"):
        deploy(config, monitor_seconds=5, checks=["appchecks:NOT_A_CHECK"])
    with pytest.raises(ConfigError) as no_window:
        deploy(config, checks=["appchecks:always_ok"])
    assert "--monitor" in str(no_window.value.hint)
    result = run_cli(
        "--config", str(config.source), "deploy", "--monitor", "5", "--max-latency", "fast"
    )
    assert result.returncode == ExitCode.ERROR
    assert "Invalid --max-latency 'fast'" in result.stderr
    assert command.status(config)["current"] == ["a1"]
