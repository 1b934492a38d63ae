"""esmigrate: schema evolution and zero-downtime data migration for Elasticsearch and OpenSearch.

The public API is small on purpose; everything else is reached through its module:

- :func:`rebuild`: the zero-downtime migrator in one call (``esmigrate.rebuild("products",
  to=Product)``), recorded in the history like a revision;
- ``esmigrate.command``: one function per CLI verb (``upgrade``, ``plan``, ``deploy``...), each
  taking a :class:`Config`;
- ``esmigrate.operations``: what migration scripts call (``op.create_index``, ``op.migrate``...);
- ``esmigrate.migrate``: the migrator of live data (``BlueGreen``, ``InPlace``, ``Incremental``, ``adopt``);
- ``esmigrate.schema`` and ``esmigrate.transform``: versioned documents, mapping diffs, rule sets;
- ``esmigrate.rollback``: rollback points, rollback, retention, health-triggered rollback;
- ``esmigrate.testing``: the pytest plugin, ``LiveWriter``, ``compare_server_side``.
"""

from esmigrate import command
from esmigrate._version import __version__
from esmigrate.cluster import Cluster, connect
from esmigrate.command import rebuild
from esmigrate.config import Config, ConnectionSettings, load_config
from esmigrate.exceptions import EsmigrateError
from esmigrate.operations import Operations
from esmigrate.schema import SchemaVersion, VersionedDocument, upgrades
from esmigrate.transform import RuleSet

__all__ = [
    "Cluster",
    "Config",
    "ConnectionSettings",
    "EsmigrateError",
    "Operations",
    "RuleSet",
    "SchemaVersion",
    "VersionedDocument",
    "__version__",
    "command",
    "connect",
    "load_config",
    "rebuild",
    "upgrades",
]
