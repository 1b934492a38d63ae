"""The embedded development node: a real single-node OpenSearch from Maven Central jars.

``esmigrate dev-server start [--engine opensearch:3.9.0]`` (or :func:`start`) fetches the server and
module jars with Maven on first use, compiles the small launcher in ``java/`` and runs it in the
background on a Java it finds on the machine (:func:`find_java`). Every integration test of
esmigrate runs against such a node. ``--nodes N`` (``start(nodes=N)``) starts a cluster of N such
nodes on loopback, one process each; :func:`stop_node` and :func:`start_node` stop and start one
of them (the multi-node fault tests fail a primary over that way).

Layout under the cache folder (``$ESMIGRATE_CACHE`` or ``~/.cache/esmigrate``)::

    opensearch-2.19.6/lib/*.jar        jars of one version, shared by every node of it
    opensearch-2.19.6/launcher/        its compiled launcher
    opensearch-3.9.0/...               other versions side by side
    ecj/                               the compiler of the launchers
    java/localedata-th/                Thai data for a trimmed Java runtime (when one is used)
    nodes/<port>/node.json             one folder per running node, keyed by HTTP port
    nodes/<port>/launch.json           how it was started (kept: start_node starts it again)
    nodes/<port>/node.log
    nodes/<port>/home/                 path.home, snapshots (path.repo), and data unless --data
                                       (a cluster's nodes share its first node's snapshots)
"""

from esmigrate.devserver._build import VERSIONS, EmbeddedEngine, resolve_engine
from esmigrate.devserver._java import Java, find_java
from esmigrate.devserver._node import (
    OPENSEARCH_VERSION,
    DevServer,
    free_port,
    logs,
    members,
    snapshot_dir,
    start,
    start_node,
    status,
    stop,
    stop_node,
    transport_port,
)

#: Every engine the dev-server runs, as ``--engine`` takes them; the first is the default.
ENGINES = tuple(f"opensearch:{v}" for v in VERSIONS)

__all__ = [
    "ENGINES",
    "OPENSEARCH_VERSION",
    "DevServer",
    "EmbeddedEngine",
    "Java",
    "find_java",
    "free_port",
    "logs",
    "members",
    "resolve_engine",
    "snapshot_dir",
    "start",
    "start_node",
    "status",
    "stop",
    "stop_node",
    "transport_port",
]
