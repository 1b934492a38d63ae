"""Running migrations: the history index, the lease, and the runner that applies revisions."""

from esmigrate.runtime._history import (
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
)
from esmigrate.runtime._lease import Lease, read_lease
from esmigrate.runtime._runner import (
    DOWNGRADE,
    UPGRADE,
    PlannedRevision,
    Runner,
    display_path,
    plan_dict,
    record_operations,
)

__all__ = [
    "APPLIED",
    "DOWNGRADE",
    "FAILED",
    "HISTORY_MAPPING",
    "PENDING",
    "ROLLED_BACK",
    "RUNNING",
    "STATES",
    "UPGRADE",
    "HistoryStore",
    "Identity",
    "Lease",
    "PlannedRevision",
    "RevisionRecord",
    "Runner",
    "Version",
    "display_path",
    "plan_dict",
    "read_lease",
    "record_operations",
]
