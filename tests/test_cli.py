from __future__ import annotations

import json
import time

import pytest

from esmigrate import __version__
from tests.conftest import run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unreachable_cluster_fails_fast_with_one_line() -> None:
    began = time.monotonic()
    result = run_cli("info", "--url", "http://127.0.0.1:1")
    elapsed = time.monotonic() - began
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "http://127.0.0.1:1" in lines[0]
    assert "Traceback" not in result.stderr
    # Generous bound: the requirement is "under 10 s"; this only guards against retry storms.
    assert elapsed < 10


def test_credentials_never_in_errors() -> None:
    result = run_cli("info", "--url", "http://bob:pa55word@127.0.0.1:1", "--api-key", "APIKEY99")
    assert result.returncode == 1
    assert "pa55word" not in result.stderr + result.stdout
    assert "APIKEY99" not in result.stderr + result.stdout


@pytest.mark.integration
def test_info_against_the_node(cluster_url: str) -> None:
    human = run_cli("info", "--url", cluster_url)
    assert human.returncode == 0, human.stderr
    assert "engine" in human.stdout
    machine = run_cli("--json", "info", "--url", cluster_url)
    data = json.loads(machine.stdout)
    assert data["status"] in ("green", "yellow")
    assert data["nodes"] >= 1
    assert data["engine"] in ("opensearch", "elasticsearch")


@pytest.mark.integration
def test_tls_against_a_plain_http_port_is_a_clear_error(cluster_url: str) -> None:
    if not cluster_url.startswith("http://"):
        pytest.skip("needs a plain-HTTP test cluster")
    result = run_cli("info", "--url", cluster_url.replace("http://", "https://"), "--timeout", "5")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "TLS" in result.stderr or "Cannot connect" in result.stderr


def test_dev_server_status_when_none_runs() -> None:
    result = run_cli("dev-server", "status", "--port", "1")
    assert result.returncode == 3
    assert "No esmigrate dev-server" in result.stdout
