"""Shared fixtures. Integration tests run against a real cluster:

- ``ESMIGRATE_TEST_URL`` set: that cluster (e.g. an Elasticsearch 8/9 of yours), with the usual
  ``ESMIGRATE_*`` credentials variables;
- otherwise: an embedded OpenSearch node started once for the session on a free port.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from esmigrate import devserver
from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, load_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def cluster_settings() -> Iterator[ConnectionSettings]:
    url = os.environ.get("ESMIGRATE_TEST_URL")
    if url:
        yield load_config(url=url).connection
        return
    port = free_port()
    server, _ = devserver.start(port, heap=os.environ.get("ESMIGRATE_TEST_HEAP", "1g"))
    try:
        yield ConnectionSettings(urls=(server.url,))
    finally:
        devserver.stop(port)


@pytest.fixture(scope="session")
def cluster_url(cluster_settings: ConnectionSettings) -> str:
    return cluster_settings.urls[0]


@pytest.fixture(scope="session")
def session_cluster(cluster_settings: ConnectionSettings) -> Iterator[Cluster]:
    with connect(cluster_settings) as cluster:
        yield cluster


@pytest.fixture
def cluster(session_cluster: Cluster) -> Cluster:
    return session_cluster


@pytest.fixture
def prefix(session_cluster: Cluster) -> Iterator[str]:
    """A unique index-name prefix; every index and alias under it is deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    # Names are listed, then deleted one by one: Elasticsearch 8+ refuses wildcard deletes
    # (action.destructive_requires_name).
    rows = session_cluster.request(
        "GET",
        f"/_cat/indices/{name}*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )
    for row in rows:
        # Lift any write block a failed test left behind, then delete.
        session_cluster.request(
            "PUT", f"/{row['index']}/_settings", body={"index.blocks.write": None}
        )
        session_cluster.request("DELETE", f"/{row['index']}")
