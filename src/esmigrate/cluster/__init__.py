"""Connection layer: :func:`connect` gives a :class:`Cluster`, the one interface to either engine."""

from esmigrate.cluster import _json as exact_json
from esmigrate.cluster._cluster import (
    SUPPORTED,
    Capabilities,
    Cluster,
    Engine,
    connect,
    iter_bulk_errors,
    parse_engine,
)
from esmigrate.cluster._errors import server_reason

__all__ = [
    "SUPPORTED",
    "Capabilities",
    "Cluster",
    "Engine",
    "connect",
    "exact_json",
    "iter_bulk_errors",
    "parse_engine",
    "server_reason",
]
