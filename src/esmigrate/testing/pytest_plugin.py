"""pytest fixtures for testing migrations against a real cluster (see :mod:`esmigrate.testing`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.devserver import resolve_engine
from esmigrate.exceptions import DevServerError
from esmigrate.testing._cluster import (
    TEST_ENGINE_ENV,
    TEST_URL_ENV,
    cluster_for_tests,
    delete_prefixed,
    unique_prefix,
)


def pytest_report_header() -> str:
    """Which cluster the session's integration tests use (the URL is not shown: it may hold
    credentials)."""
    if os.environ.get(TEST_URL_ENV):
        return f"esmigrate: the cluster of {TEST_URL_ENV}"
    try:
        engine = resolve_engine(os.environ.get(TEST_ENGINE_ENV) or None)
    except DevServerError as exc:
        raise pytest.UsageError(f"{TEST_ENGINE_ENV}: {exc.message} {exc.hint or ''}") from None
    return f"esmigrate: an embedded {engine} node ({TEST_ENGINE_ENV} chooses another)"


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
