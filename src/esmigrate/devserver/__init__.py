"""The embedded development node: a real single-node OpenSearch 2.19 from Maven Central jars.

``esmigrate dev-server start`` (or :func:`start`) fetches the server and module jars with Maven on
first use, compiles the small launcher in ``java/`` and runs it in the background. Every
integration test of esmigrate runs against such a node.

Layout under the cache folder (``$ESMIGRATE_CACHE`` or ``~/.cache/esmigrate``)::

    opensearch-2.19.6/lib/*.jar        jars, shared by every node
    opensearch-2.19.6/classes/         the compiled launcher
    nodes/<port>/node.pid              one folder per running node, keyed by HTTP port
    nodes/<port>/node.log
    nodes/<port>/home/                 path.home, snapshots (path.repo), and data unless --data
"""

from esmigrate.devserver._node import (
    OPENSEARCH_VERSION,
    DevServer,
    logs,
    start,
    status,
    stop,
)

__all__ = ["OPENSEARCH_VERSION", "DevServer", "logs", "start", "status", "stop"]
