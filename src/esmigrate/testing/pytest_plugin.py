"""pytest fixtures for testing migrations against a real cluster (see :mod:`esmigrate.testing`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.testing._cluster import cluster_for_tests, delete_prefixed, unique_prefix


@pytest.fixture(scope="session")
def esmigrate_settings() -> Iterator[ConnectionSettings]:
    """Settings of the test cluster: ESMIGRATE_TEST_URL, or an embedded node for the session."""
    with cluster_for_tests() as settings:
        yield settings


@pytest.fixture(scope="session")
def esmigrate_cluster(esmigrate_settings: ConnectionSettings) -> Iterator[Cluster]:
    """A connected :class:`~esmigrate.cluster.Cluster` shared by the session."""
    with connect(esmigrate_settings) as cluster:
        yield cluster


@pytest.fixture
def esmigrate_prefix(esmigrate_cluster: Cluster) -> Iterator[str]:
    """A unique index-name prefix; every index named ``{prefix}*`` is deleted after the test."""
    prefix = unique_prefix()
    yield prefix
    delete_prefixed(esmigrate_cluster, prefix)
