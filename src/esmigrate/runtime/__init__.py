"""Running migrations: the runner that plans, applies and records revisions.

What it stores (revision records, the lease) is in :mod:`esmigrate.state`.
"""

from esmigrate.runtime._revisions import (
    DOWNGRADE,
    UPGRADE,
    PlannedRevision,
    display_path,
    plan_dict,
    record_operations,
)
from esmigrate.runtime._runner import Runner

__all__ = [
    "DOWNGRADE",
    "UPGRADE",
    "PlannedRevision",
    "Runner",
    "display_path",
    "plan_dict",
    "record_operations",
]
