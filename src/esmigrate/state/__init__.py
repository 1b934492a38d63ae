"""What esmigrate keeps in the cluster: the history index and the documents stored in it.

One index (the project's history index, ``.esmigrate`` by default) holds every revision record,
every rebuild record, the runner's lease, each data migration's lease and checkpoint, rollback
points and deployment logs, each a document with a ``kind``. Every write is a compare-and-set. This layer sits below
both the runner (:mod:`esmigrate.runtime`) and the migrator (:mod:`esmigrate.migrate`).
"""

from esmigrate.state._checkpoint import Checkpoint
from esmigrate.state._history import (
    APPLIED,
    FAILED,
    HISTORY_MAPPING,
    PENDING,
    ROLLED_BACK,
    RUNNING,
    STATES,
    HistoryStore,
    Identity,
    RevisionRecord,
    Version,
    timestamp,
)
from esmigrate.state._lease import Lease, migration_lease, read_lease
from esmigrate.state._rebuilds import REBUILD, RebuildRecord, rebuild_records, save_rebuild
from esmigrate.state._rollbacks import record_rollback
from esmigrate.state._watch import stop_on_cancel_or_lost_lease

__all__ = [
    "APPLIED",
    "FAILED",
    "HISTORY_MAPPING",
    "PENDING",
    "REBUILD",
    "ROLLED_BACK",
    "RUNNING",
    "STATES",
    "Checkpoint",
    "HistoryStore",
    "Identity",
    "Lease",
    "RebuildRecord",
    "RevisionRecord",
    "Version",
    "migration_lease",
    "read_lease",
    "rebuild_records",
    "record_rollback",
    "save_rebuild",
    "stop_on_cancel_or_lost_lease",
    "timestamp",
]
