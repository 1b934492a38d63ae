"""esmigrate: schema evolution and zero-downtime data migration for Elasticsearch and OpenSearch."""

from esmigrate._version import __version__
from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config, ConnectionSettings, load_config
from esmigrate.exceptions import EsmigrateError

__all__ = [
    "Cluster",
    "Config",
    "ConnectionSettings",
    "EsmigrateError",
    "__version__",
    "connect",
    "load_config",
]
