"""Shared fixtures: esmigrate's own pytest plugin (esmigrate.testing) under short names.

Integration tests run against a real cluster: ``ESMIGRATE_TEST_URL`` if set (e.g. an
Elasticsearch 8/9 of yours, with the usual ``ESMIGRATE_*`` credentials variables), otherwise an
embedded OpenSearch node started once for the session on a free port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings


def cli_argv(*args: str) -> list[str]:
    """``esmigrate ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "esmigrate", *args]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``esmigrate ARGS`` in a subprocess as a user would: text output captured, the exit
    status left to the test (``env`` None: this process's environment)."""
    return subprocess.run(
        cli_argv(*args),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``esmigrate ARGS`` in the background (stdout and stderr piped, as text)."""
    return subprocess.Popen(
        cli_argv(*args),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def env_without_esmigrate() -> dict[str, str]:
    """This environment without any ``ESMIGRATE_*`` variable (the project file decides)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}


@pytest.fixture(scope="session")
def cluster_settings(esmigrate_settings: ConnectionSettings) -> ConnectionSettings:
    return esmigrate_settings


@pytest.fixture(scope="session")
def cluster_url(esmigrate_settings: ConnectionSettings) -> str:
    return esmigrate_settings.urls[0]


@pytest.fixture(scope="session")
def session_cluster(esmigrate_cluster: Cluster) -> Cluster:
    return esmigrate_cluster


@pytest.fixture
def cluster(esmigrate_cluster: Cluster) -> Cluster:
    return esmigrate_cluster


@pytest.fixture
def prefix(esmigrate_prefix: str) -> str:
    """A unique index-name prefix; everything named ``{prefix}*`` is deleted after the test."""
    return esmigrate_prefix
