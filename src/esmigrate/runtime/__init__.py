"""Running migrations: the runner that plans, applies and records revisions.

What it stores (revision records, the lease) is in :mod:`esmigrate.state`.
"""

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
    "DOWNGRADE",
    "UPGRADE",
    "PlannedRevision",
    "Runner",
    "display_path",
    "plan_dict",
    "record_operations",
]
