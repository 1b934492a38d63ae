from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from esmigrate import devserver
from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings, load_config

TEST_URL_ENV = "ESMIGRATE_TEST_URL"
TEST_ENGINE_ENV = "ESMIGRATE_TEST_ENGINE"


@contextmanager
def cluster_for_tests(
    heap: str | None = None, engine: str | None = None, nodes: int = 1, url: str | None = None
) -> Iterator[ConnectionSettings]:
    """Connection settings of a cluster for tests; starts (and stops) the embedded node if needed.

    With ``url`` given, or else ``ESMIGRATE_TEST_URL`` set, that cluster is used and nothing is
    started. Otherwise the embedded node runs ``engine``, else ``ESMIGRATE_TEST_ENGINE`` (e.g.
    ``opensearch:3.9.0``), else the dev-server's default version; ``nodes`` > 1 starts a cluster
    of that many (the settings name every node's URL).
    """
    url = url or os.environ.get(TEST_URL_ENV)
    if url:
        yield load_config(url=url).connection
        return
    port = devserver.free_port(nodes)
    server, _ = devserver.start(
        port,
        engine=engine or os.environ.get(TEST_ENGINE_ENV) or None,
        heap=heap or os.environ.get("ESMIGRATE_TEST_HEAP", "1g"),
        nodes=nodes,
    )
    try:
        yield ConnectionSettings(urls=tuple(f"http://127.0.0.1:{p}" for p in server.nodes))
    finally:
        devserver.stop(port)


def unique_prefix() -> str:
    """An index-name prefix no other test uses."""
    return f"t-{uuid.uuid4().hex[:10]}"


def delete_prefixed(cluster: Cluster, prefix: str) -> None:
    """Delete every index whose name starts with ``prefix`` (and the position indices of
    migrations into them), hidden ones and write-blocked ones too.

    Names are listed, then deleted one by one: Elasticsearch 8+ refuses wildcard deletes
    (``action.destructive_requires_name``).
    """
    rows = cluster.request(
        "GET",
        # Position indices of migrations into the prefixed indices too.
        f"/_cat/indices/{prefix}*,.esmigrate-positions-{prefix}*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )
    delete_indices(cluster, [row["index"] for row in rows])


def index_names(cluster: Cluster) -> set[str]:
    """Every index of the cluster, hidden ones too."""
    rows = cluster.request(
        "GET", "/_cat/indices", params={"format": "json", "h": "index", "expand_wildcards": "all"}
    )
    return {row["index"] for row in rows}


def delete_indices(cluster: Cluster, names: Iterable[str]) -> None:
    """Delete ``names``, write-blocked ones too."""
    for name in names:
        # A failed test may leave a write block behind; it would not stop the delete, but a
        # read-only-allow-delete block from a full disk would.
        cluster.request(
            "PUT",
            f"/{name}/_settings",
            body={"index.blocks.write": None, "index.blocks.read_only_allow_delete": None},
        )
        cluster.request("DELETE", f"/{name}")
