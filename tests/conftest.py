"""Shared fixtures: esmigrate's own pytest plugin (esmigrate.testing) under short names.

Integration tests run against a real cluster: ``ESMIGRATE_TEST_URL`` if set (e.g. an
Elasticsearch 8/9 of yours, with the usual ``ESMIGRATE_*`` credentials variables), otherwise an
embedded OpenSearch node started once for the session on a free port.
"""

from __future__ import annotations

import socket

import pytest

from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
