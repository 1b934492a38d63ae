"""Rollback points, rollbacks that lose no writes, retention clean-up, automatic rollback.

- :func:`create_point` records where aliases point and what their indices hold, kept by the
  indices themselves, a clone or a snapshot (:data:`KINDS`); :func:`rollback_point_hook` records
  one at a migration's cut-over.
- :func:`rollback` moves the aliases back, carrying writes made since the cut-over back through a
  reverse transform (or refusing, or discarding them when told to).
- :func:`cleanup` deletes old points and what only they reference.
- :func:`monitor` / :func:`auto_rollback` watch real health signals and roll back on failure
  (:func:`alias_checks`: the standard checks of an alias after a cut-over).
"""

from esmigrate.rollback._cleanup import CleanupReport, cleanup
from esmigrate.rollback._monitor import (
    CallableCheck,
    Check,
    ClusterHealth,
    DocCountDrop,
    MonitorReport,
    Sample,
    SearchProbe,
    SearchRejections,
    alias_checks,
    auto_rollback,
    monitor,
)
from esmigrate.rollback._points import (
    KINDS,
    RollbackPoint,
    create_point,
    get_point,
    list_points,
    rollback_point_hook,
    snapshot_state,
)
from esmigrate.rollback._rollback import RollbackPlan, RollbackResult, plan_rollback, rollback

__all__ = [
    "KINDS",
    "CallableCheck",
    "Check",
    "CleanupReport",
    "ClusterHealth",
    "DocCountDrop",
    "MonitorReport",
    "RollbackPlan",
    "RollbackPoint",
    "RollbackResult",
    "Sample",
    "SearchProbe",
    "SearchRejections",
    "alias_checks",
    "auto_rollback",
    "cleanup",
    "create_point",
    "get_point",
    "list_points",
    "monitor",
    "plan_rollback",
    "rollback",
    "rollback_point_hook",
    "snapshot_state",
]
