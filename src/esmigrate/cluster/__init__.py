"""Connection layer: :func:`connect` gives a :class:`Cluster`, the one interface to either engine."""

from esmigrate.cluster import _exact_json as exact_json
from esmigrate.cluster._cluster import (
    SUPPORTED,
    Capabilities,
    Cluster,
    Engine,
    connect,
    iter_bulk_errors,
    parse_engine,
)
from esmigrate.cluster._errors import lost_with_node, server_reason
from esmigrate.cluster._names import check_name, name_problem
from esmigrate.cluster._request import PlannedRequest
from esmigrate.cluster._retry import HISTORY, LOAD, RetryPolicy

__all__ = [
    "HISTORY",
    "LOAD",
    "SUPPORTED",
    "Capabilities",
    "Cluster",
    "Engine",
    "PlannedRequest",
    "RetryPolicy",
    "check_name",
    "connect",
    "exact_json",
    "iter_bulk_errors",
    "lost_with_node",
    "name_problem",
    "parse_engine",
    "server_reason",
]
