"""pytest fixtures for testing migrations against a real cluster (see :mod:`esmigrate.testing`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config, ConnectionSettings, load_config
from esmigrate.devserver import resolve_engine
from esmigrate.exceptions import DevServerError
from esmigrate.testing._cluster import (
    TEST_ENGINE_ENV,
    TEST_URL_ENV,
    cluster_for_tests,
    delete_indices,
    delete_prefixed,
    index_names,
    unique_prefix,
)
from esmigrate.testing._timing import Timings

_TIMINGS = pytest.StashKey[Timings]()


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


@pytest.fixture
def esmigrate_config(
    request: pytest.FixtureRequest,
    esmigrate_settings: ConnectionSettings,
    esmigrate_cluster: Cluster,
) -> Iterator[Config]:
    """The project's :class:`~esmigrate.config.Config` (the ``esmigrate.toml`` or
    ``pyproject.toml`` found from the test file's folder upwards), connected to the test cluster,
    with a history index of its own, so each test starts with nothing applied. Every index
    created during the test is deleted after it (the migrations' fixed index names included).

    Override it in a ``conftest.py`` to load the project another way.
    """
    before = index_names(esmigrate_cluster)
    config = load_config(cwd=request.path.parent, env={})
    yield replace(
        config,
        connection=esmigrate_settings,
        history_index=f"{config.history_index}-{unique_prefix()}",
    )
    delete_indices(esmigrate_cluster, sorted(index_names(esmigrate_cluster) - before))


@pytest.fixture
def esmigrate_timings(request: pytest.FixtureRequest) -> Timings:
    """A :class:`~esmigrate.testing.Timings` shared by the session; its steps are printed at the
    end of the run (they are figures to read, never asserted)."""
    stash = request.config.stash
    if _TIMINGS not in stash:
        stash[_TIMINGS] = Timings()
    return stash[_TIMINGS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    timings = config.stash.get(_TIMINGS, None)
    if timings is not None and timings.steps:
        terminalreporter.section("esmigrate timings")
        terminalreporter.write_line(timings.report())
